"""Fixtures of gobot's own test suite (plugin authors get theirs from ``gobot.testing``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


class PluginVenv:
    """A virtual environment beside gobot's own, where tests pip-install plugin distributions.

    Made without pip (fast); a ``.pth`` file adds gobot's environment as a site directory, so
    gobot, the contract, pip, setuptools and pytest are importable in it, while whatever pip
    installs here stays here. Every pip call is offline (``--no-index``, ``--no-deps``,
    ``--no-build-isolation``): a test never needs PyPI.
    """

    def __init__(self, path: Path):
        self.path = path
        self.python = path / "bin" / "python"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        drop = ("GOBOT_CONFIG", "PYTHONPATH", "VIRTUAL_ENV", "BINANCE_API_KEY", "BINANCE_API_SECRET",
                "GOBOT_DASHBOARD_TOKEN")
        environment = {k: v for k, v in os.environ.items() if k not in drop}
        environment.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", COLUMNS="200")
        environment.update(extra or {})
        return environment

    def run(self, *args: str, cwd: Path,
            env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), *args], cwd=cwd, env=self.env(env), capture_output=True, text=True,
                              timeout=timeout)

    def gobot(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return self.run("-m", "gobot", *args, cwd=cwd, env=env)

    def pip(self, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        done = self.run("-m", "pip", *args, cwd=cwd)
        assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    def build_and_install(self, source: Path, work: Path) -> Path:
        """Build a wheel of the distribution in ``source`` (from a copy: no build files left in the
        repository) and pip-install it here; returns the wheel."""
        copy = work / f"src-{source.name}"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "dist"))
        dist = work / "dist"
        self.pip("wheel", "--no-index", "--no-deps", "--no-build-isolation", "-w", str(dist), str(copy), cwd=work)
        name = copy.name.removeprefix("src-").replace("-", "_")
        wheel = next(dist.glob(f"{name}-*.whl"))
        self.pip("install", "--no-index", "--no-deps", str(wheel), cwd=work)
        return wheel

    @property
    def site_packages(self) -> Path:
        return self.path / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


@pytest.fixture(scope="session")
def plugin_venv(tmp_path_factory) -> PluginVenv:
    """One fresh virtual environment per test session, beside gobot's (see ``PluginVenv``)."""
    path = tmp_path_factory.mktemp("plugin-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    venv = PluginVenv(path)
    parent_site = sysconfig.get_paths()["purelib"]  # gobot's environment (.venv), editable installs included
    (venv.site_packages / "_gobot_parent_env.pth").write_text(f"import site; site.addsitedir({parent_site!r})\n",
                                                              encoding="utf-8")
    return venv
