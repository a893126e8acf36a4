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
    assert out.strip() == "1.0"
