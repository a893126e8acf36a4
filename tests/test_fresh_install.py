"""gobot as a new user meets it: the wheels built from this checkout, pip-installed (not editable, the
core only, its dependencies from the package index) into a fresh virtual environment and used in an
empty folder; then the worked example of docs/plugins.md and a scaffold, built and installed there
as their authors would, loaded and trading.

The wheels are built once per session, the environment made once (``python -m venv``, then pip with
its usual cache): the whole module takes well under a minute once pip's cache is warm.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS_MD = ROOT / "docs" / "plugins.md"
CODE_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)

#: The issue's target for the core environment (python -m venv + the core install), in MB.
CORE_MB_LIMIT = 250
#: Distributions only extras may bring; the core install must hold none of them.
HEAVY = ("ccxt", "openai", "playwright", "matplotlib", "optuna", "redis", "aiohttp", "psycopg", "httpx",
         "pyrate-limiter")
#: Build output that means the packaging configuration needs fixing.
BUILD_WARNINGS = ("SetuptoolsDeprecationWarning", "is absent from the `packages` configuration", "License classifiers",
                  "`project.license` as a TOML table is deprecated")

pytestmark = pytest.mark.slow


@dataclass
class Wheels:
    gobot: Path
    hookspecs: Path
    log: str


@dataclass
class FreshVenv:
    """A virtual environment made with ``python -m venv`` (its own pip), nothing of gobot's own."""

    path: Path
    install_seconds: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def run(self, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([*args], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def gobot(self, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        return self.run(str(self.bin / "gobot"), *args, cwd=cwd)

    def pip(self, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        done = self.run(str(self.bin / "python"), "-m", "pip", *args, cwd=cwd)
        assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    def distributions(self) -> set[str]:
        code = ("import importlib.metadata as m, json; "
                "print(json.dumps(sorted({d.metadata['Name'].lower() for d in m.distributions()})))")
        done = self.run(str(self.bin / "python"), "-c", code, cwd=self.path)
        return set(json.loads(done.stdout))


def clean_env() -> dict[str, str]:
    drop = ("GOBOT_CONFIG", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "BINANCE_API_KEY", "BINANCE_API_SECRET",
            "GOBOT_DASHBOARD_TOKEN", "OPENAI_API_KEY")
    environment = {k: v for k, v in os.environ.items() if k not in drop}
    environment.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", COLUMNS="200")
    return environment


def copy_sources(work: Path) -> Path:
    """What goes into the wheels, copied: building in place would leave build/ and *.egg-info behind."""
    source = work / "src"
    ignore = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "gobot_state", ".pytest_cache")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("gobot", "plugins", "data", "hookspecs"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    return source


def build_wheels(sources: list[Path], out: Path, cwd: Path) -> str:
    """``pip wheel`` in gobot's own environment (its setuptools, no download), verbose: the log is checked."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-v", "-w", str(out), *map(str, sources)], cwd=cwd, env=clean_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> Wheels:
    work = tmp_path_factory.mktemp("wheels")
    source = copy_sources(work)
    log = build_wheels([source, source / "hookspecs"], work / "dist", work)
    return Wheels(next((work / "dist").glob("gobot_trading-*.whl")),
                  next((work / "dist").glob("gobot_hookspecs-*.whl")), log)


@pytest.fixture(scope="session")
def core_venv(tmp_path_factory, wheels) -> FreshVenv:
    """``python -m venv``, then ``pip install`` of the two wheels: the core, dependencies from the index."""
    path = tmp_path_factory.mktemp("fresh") / "venv"
    venv = FreshVenv(path, env=clean_env())
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    started = time.monotonic()
    venv.pip("install", "--quiet", str(wheels.hookspecs), str(wheels.gobot), cwd=path.parent)
    venv.install_seconds = time.monotonic() - started
    return venv


@pytest.fixture
def empty_folder(tmp_path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def du_mb(path: Path) -> float:
    return sum(p.lstat().st_size for p in path.rglob("*")) / 1e6


# -- the wheels ----------------------------------------------------------------------------------


def test_the_wheels_build_without_packaging_warnings(wheels):
    found = [line.strip() for line in wheels.log.splitlines() if any(w in line for w in BUILD_WARNINGS)]
    assert found == []


def test_the_wheel_carries_the_demo_data_the_web_assets_and_the_migrations(wheels):
    names = set(zipfile.ZipFile(wheels.gobot).namelist())
    for csv in ("BTC_USDT-5m.csv", "ETH_USDT-5m.csv"):
        assert zipfile.ZipFile(wheels.gobot).read(f"gobot/demo_data/{csv}") == (ROOT / "data" / csv).read_bytes()
    assert {"gobot/ops/web/index.html", "gobot/ops/web/dashboard.js", "gobot/ops/web/dashboard.css"} <= names
    assert any(n.startswith("gobot_plugins/archiver/migrations/versions/0001") for n in names)
    metadata = zipfile.ZipFile(wheels.gobot).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Name: gobot-trading" in metadata and "Requires-Python: >=3.11" in metadata
    assert "License-Expression: Apache-2.0" in metadata


# -- the core install ----------------------------------------------------------------------------


def test_the_core_environment_is_light_and_holds_no_robotics_simulator(core_venv):
    installed = core_venv.distributions()
    assert "gobot" not in installed  # PyPI's gobot is an unrelated project
    assert {"gobot-trading", "gobot-hookspecs", "sqlmodel", "numpy"} <= installed
    assert [name for name in HEAVY if name in installed] == []
    size = du_mb(core_venv.path)
    print(f"core environment: {len(installed)} distributions, {size:.0f} MB, installed in "
          f"{core_venv.install_seconds:.1f} s")
    assert size <= CORE_MB_LIMIT, f"the core environment takes {size:.0f} MB (target {CORE_MB_LIMIT} MB)"


def test_a_new_user_runs_the_demo_in_an_empty_folder(core_venv, empty_folder):
    init = core_venv.gobot("init", cwd=empty_folder)
    assert init.returncode == 0, init.stderr
    assert (empty_folder / "config.toml").is_file()

    start = core_venv.gobot("start", "--max-iterations", "5", cwd=empty_folder)
    assert start.returncode == 0, start.stderr[-3000:]
    assert "paper mode" in start.stdout and "max_iterations (5) reached" in start.stdout
    assert not (empty_folder / "data").exists()  # the bundled market is read where it was installed
    cycles = [json.loads(line) for line in (empty_folder / "gobot_state" / "audit.jsonl").read_text().splitlines()]
    assert sum(1 for e in cycles if e["event"] == "cycle_completed") == 5

    backtest = core_venv.gobot("backtest", "--html", "backtest.html", cwd=empty_folder)
    assert backtest.returncode == 0, backtest.stderr[-3000:]
    assert "BTC/USDT" in backtest.stdout and (empty_folder / "backtest.html").is_file()

    report = core_venv.gobot("report", "--html", "report.html", cwd=empty_folder)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (empty_folder / "report.html").read_text()
    assert "gobot performance report" in html and "gobot-trading[plots]" in html  # tables; plots need the extra


def test_a_plugin_whose_extra_is_missing_says_what_to_install(core_venv, empty_folder):
    listed = core_venv.gobot("plugins", "--json", cwd=empty_folder)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    for name, extra in {"vision": "vision", "binance": "binance", "telegram": "telegram", "charts": "charts"}.items():
        assert (rows[name]["status"], rows[name]["reason"]) == ("disabled",
                                                                f"needs: pip install 'gobot-trading[{extra}]'")
    assert all(rows[name]["status"] == "enabled" for name in ("replay", "paper", "archiver", "risk_limits"))

    enabled = core_venv.gobot("start", "-p", "vision", "--max-iterations", "1", cwd=empty_folder)
    assert enabled.returncode == 2
    assert enabled.stderr.strip() == ("Error: plugin 'vision' (distribution gobot-trading): "
                                      "needs: pip install 'gobot-trading[vision]'")

    for args, extra in ((("start", "--serve", "--max-iterations", "1"), "server"),
                        (("optimize", "--strategy", "sma_rsi", "--max-iterations", "1"), "optimize")):
        done = core_venv.gobot(*args, cwd=empty_folder)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert f"needs: pip install 'gobot-trading[{extra}]'" in done.stderr


# -- docs that run: the worked example of docs/plugins.md and the scaffold, pip-installed ---------


def plugins_md_files() -> dict[str, str]:
    """The worked example's distribution as docs/plugins.md writes it: its pyproject.toml, module and tests."""
    files = {}
    for language, code in CODE_BLOCK.findall(PLUGINS_MD.read_text(encoding="utf-8")):
        first = code.splitlines()[0].strip() if code else ""
        if language == "toml" and first == "# pyproject.toml of a plugin distribution":
            files["pyproject.toml"] = code
        elif language == "python" and first in ("# gobot_breakout.py", "# test_breakout.py"):
            files[first.removeprefix("# ")] = code
    return files


def build_and_install(venv: FreshVenv, source: Path, work: Path, extra: str = "") -> None:
    """Build the distribution in ``source`` the way pip does, then install it (and its extra) here."""
    dist = work / "dist"
    build_wheels([source], dist, work)
    wheel = next(dist.glob(f"{source.name.replace('-', '_')}-*.whl"))
    venv.pip("install", "--quiet", "--find-links", str(dist), f"{wheel}{extra}", cwd=work)


def audit(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "gobot_state" / "audit.jsonl").read_text().splitlines()]


def test_the_worked_example_of_plugins_md_installs_loads_and_trades(core_venv, tmp_path, empty_folder):
    files = plugins_md_files()
    assert sorted(files) == ["gobot_breakout.py", "pyproject.toml", "test_breakout.py"]
    source = tmp_path / "gobot-breakout"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text, encoding="utf-8")
    build_and_install(core_venv, source, tmp_path, "[test]")  # the test extra: gobot-trading and pytest
    try:
        installed = core_venv.distributions()
        assert "gobot" not in installed and "pytest" in installed

        listed = {r["name"]: r for r in json.loads(core_venv.gobot("plugins", "--json", "-p", "breakout",
                                                                   cwd=empty_folder).stdout)}
        assert (listed["breakout"]["status"], listed["breakout"]["distribution"]) == ("enabled", "gobot-breakout")

        run = core_venv.gobot("start", "-p", "breakout", "--disable", "sma_rsi", "--max-iterations", "30", "--quiet",
                              cwd=empty_folder)
        assert run.returncode == 0, run.stderr[-3000:]
        events = audit(empty_folder)
        signals = [e["signal"] for e in events if e["event"] == "signal" and e["signal"]["source"] == "breakout"]
        assert len(signals) == 30 * 2 and any(s["action"] != "HOLD" for s in signals)
        assert any(e["event"] == "risk_verdicts" and (e["intent"]["signal"] or {}).get("source") == "breakout"
                   for e in events)

        # Its own tests, from the docs, pass where it is installed (gobot's fixtures come with gobot-trading).
        tests = core_venv.run(str(core_venv.bin / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              str(source / "test_breakout.py"), cwd=tmp_path)
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
        assert "3 passed" in tests.stdout
    finally:
        core_venv.pip("uninstall", "-y", "gobot-breakout", cwd=tmp_path)


def test_a_scaffold_installs_from_its_wheel_loads_and_trades(core_venv, tmp_path, empty_folder):
    made = core_venv.gobot("plugins", "new", "momentum", "--kind", "signal", "--dir", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    source = tmp_path / "gobot-signal-momentum"
    assert 'test = ["gobot-trading"' in (source / "pyproject.toml").read_text()
    build_and_install(core_venv, source, tmp_path, "[test]")
    try:
        assert "gobot" not in core_venv.distributions()
        run = core_venv.gobot("start", "-p", "momentum", "--max-iterations", "10", "--quiet", cwd=empty_folder)
        assert run.returncode == 0, run.stderr[-3000:]
        sources = {e["signal"]["source"] for e in audit(empty_folder) if e["event"] == "signal"}
        assert "momentum" in sources
        tests = core_venv.run(str(core_venv.bin / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              str(source / "tests"), cwd=tmp_path)
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    finally:
        core_venv.pip("uninstall", "-y", "gobot-signal-momentum", cwd=tmp_path)
