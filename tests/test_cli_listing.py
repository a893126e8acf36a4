"""`gobot --help` lists the plugin commands from a kept listing (``gobot.cli.listing``): the same
help as a run that loads the plugins, without importing the config or pydantic, and found again as
soon as something that decides it changes (here: the config file)."""

from __future__ import annotations

import os
import subprocess
import sys

HELP = (
    "import sys\n"
    "from gobot.cli import cli\n"
    "try:\n"
    "    cli.main(['--help'], prog_name='gobot')\n"
    "except SystemExit as exit:\n"
    "    assert exit.code == 0, exit.code\n"
    "print('LOADED', sorted(m for m in ('gobot.config', 'pydantic', 'gobot_hookspecs') if m in sys.modules))\n"
)


def gobot_help(cwd) -> tuple[str, str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "cache")}
    env.pop("GOBOT_CONFIG", None)
    done = subprocess.run([sys.executable, "-c", HELP], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    *text, loaded = done.stdout.splitlines()
    return "\n".join(text), loaded


def test_help_lists_plugin_commands_from_the_kept_listing_without_loading_the_config(tmp_path):
    first, loaded = gobot_help(tmp_path)
    assert "\n  report " in first and loaded != "LOADED []"  # found by loading the plugins
    again, loaded = gobot_help(tmp_path)
    assert again == first
    assert loaded == "LOADED []"


def test_a_changed_config_is_listed_afresh(tmp_path):
    gobot_help(tmp_path)
    (tmp_path / "config.toml").write_text('[plugins]\ndisable = ["archiver"]\n', encoding="utf-8")
    text, loaded = gobot_help(tmp_path)
    assert "\n  report " not in text and loaded != "LOADED []"
    assert gobot_help(tmp_path) == (text, "LOADED []")
