"""`gobot plugins new`: the distribution it writes installs with pip, loads as generated, and
passes its own tests; bad names and existing folders are refused with a reason."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gobot.cli import cli
from gobot.cli.scaffold import KINDS, Scaffold
from gobot_hookspecs import CONTRACT_VERSION

KIND_HOOKS = {
    "signal": {"gobot_generate_ideas", "gobot_register_strategies", "gobot_config_model", "gobot_startup"},
    "risk": {"gobot_risk_check", "gobot_config_model"},
    "alert": {"gobot_send_alert", "gobot_startup", "gobot_shutdown", "gobot_config_model"},
    "executor": {"gobot_execute_order", "gobot_sync_executions", "gobot_config_model"},
}


def new(*args, cwd):
    return CliRunner().invoke(cli, ["plugins", "new", *args, "--dir", str(cwd)])


def test_new_writes_a_distribution_with_the_entry_point_and_the_contract_range(tmp_path):
    result = new("momentum", "--kind", "signal", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "gobot-signal-momentum"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "README.md", "gobot_signal_momentum/__init__.py", "pyproject.toml", "tests/test_momentum.py",
    ]
    pyproject = (folder / "pyproject.toml").read_text()
    assert 'momentum = "gobot_signal_momentum:Momentum"' in pyproject
    assert f'dependencies = ["gobot-hookspecs>={CONTRACT_VERSION},<2"]' in pyproject  # the contract it was built on
    assert "pip install -e" in result.output and "gobot start -p momentum" in result.output


@pytest.mark.parametrize("name, reason", [
    ("Momentum", "lowercase snake_case"),
    ("2fast", "lowercase snake_case"),
    ("my-plugin", "lowercase snake_case"),
    ("lambda", "Python keyword"),
    ("paper", "already installed"),
])
def test_a_bad_or_taken_name_is_refused_with_the_reason(tmp_path, name, reason):
    result = new(name, "--kind", "risk", cwd=tmp_path)
    assert result.exit_code == 2 and reason in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path):
    assert new("guard", "--kind", "risk", cwd=tmp_path).exit_code == 0
    (tmp_path / "gobot-risk-guard" / "README.md").write_text("mine")
    result = new("guard", "--kind", "risk", cwd=tmp_path)
    from gobot.cli import exit_status

    # one line, status 2 via main()
    assert exit_status(result.exception) == 2 and "already exists" in str(result.exception)
    assert (tmp_path / "gobot-risk-guard" / "README.md").read_text() == "mine"


def test_plugins_without_a_subcommand_still_lists_plugins():
    rows = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    assert "paper" in {row["name"] for row in rows}


@pytest.mark.slow
def test_each_generated_plugin_installs_loads_and_passes_its_own_tests(plugin_venv, tmp_path):
    """One distribution per kind, all installed into the session's venv, listed, then their own
    tests run there (one pytest run for the four: the same as four, faster)."""
    scaffolds = [Scaffold(f"my_{kind}", kind) for kind in KINDS]
    for scaffold in scaffolds:
        assert new(scaffold.name, "--kind", scaffold.kind, cwd=tmp_path).exit_code == 0
        plugin_venv.build_and_install(tmp_path / scaffold.distribution, tmp_path)
    try:
        enable = [arg for scaffold in scaffolds for arg in ("-p", scaffold.name)]
        rows = {r["name"]: r for r in json.loads(plugin_venv.gobot("plugins", "--json", *enable, cwd=tmp_path).stdout)}
        for scaffold in scaffolds:
            row = rows[scaffold.name]
            assert (row["status"], row["distribution"]) == ("enabled", scaffold.distribution), row["reason"]
            assert set(row["hooks"]) == KIND_HOOKS[scaffold.kind]
        folders = [str(tmp_path / scaffold.distribution / "tests") for scaffold in scaffolds]
        tests = plugin_venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", *folders, cwd=tmp_path)
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
        assert "12 passed" in tests.stdout and "skipped" not in tests.stdout  # 3 tests per kind
    finally:
        plugin_venv.pip("uninstall", "-y", *(scaffold.distribution for scaffold in scaffolds), cwd=tmp_path)
