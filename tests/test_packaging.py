"""Packaging promises: no generic top-level import names; the contract is light."""

import subprocess
import sys


def test_no_generic_top_level_names_are_importable_outside_the_repo(tmp_path):
    code = "import importlib.util as u; print([n for n in ('plugins', 'hookspecs') if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_builtins_and_contract_import_under_their_own_names(tmp_path):
    code = "import gobot_hookspecs, gobot_plugins.paper, gobot; print(gobot_hookspecs.CONTRACT_VERSION)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1.4"


def test_requires_python_states_what_the_tests_run_on():
    """3.10 was claimed and never tested: every distribution here (and the scaffold) says >=3.11."""
    import tomllib
    from pathlib import Path

    from packaging.specifiers import SpecifierSet

    from gobot.cli.scaffold import PYPROJECT

    root = Path(__file__).resolve().parent.parent
    files = [root / "pyproject.toml", root / "hookspecs" / "pyproject.toml",
             *sorted(root.glob("examples/*/pyproject.toml"))]
    declared = {str(path.relative_to(root)): tomllib.loads(path.read_text())["project"]["requires-python"]
                for path in files}
    declared["gobot/cli/scaffold.py"] = tomllib.loads(PYPROJECT.replace("$", ""))["project"]["requires-python"]
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    for where, spec in declared.items():
        assert SpecifierSet(spec).contains(running), (
            f"{where}: requires-python {spec} excludes the tests' Python {running}")
        assert not SpecifierSet(spec).contains("3.10"), (
            f"{where}: requires-python {spec} claims 3.10, which no test runs on")
