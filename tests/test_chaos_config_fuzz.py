"""Hostile config: hypothesis throws random values (wrong types, NaN, huge numbers, odd strings, nested
tables) at every core key and every installed plugin's ``[plugins.<name>]`` keys. Each input is either
accepted or refused with ``ConfigError`` whose every problem names ``file:key`` — never a traceback.

The same path ``gobot start`` takes: ``settings_from_dict`` then ``load_plugin_configs`` over every
plugin's ``gobot_config_model``. Cases: ``count(300, 3000)`` (``make chaos`` runs the full count).
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from chaos_support import count, record_figures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gobot.config import Settings, settings_from_dict
from gobot.errors import ConfigError
from gobot.hook_caller import HookCaller
from gobot.orchestrator import load_plugin_configs
from gobot.plugin_manager import build_plugin_set

CASES = count(300, 3000)
LABEL = "fuzz/config.toml"
SEEN = {"cases": 0, "refused": 0}

PLUGIN_SET = build_plugin_set(enable=sorted({ep.name for ep in entry_points(group="gobot")}))
HOOKS = HookCaller(PLUGIN_SET.pm)
PLUGIN_MODELS = {plugin: model for plugin, model in HOOKS.collect_sync("gobot_config_model")}
CORE_SECTIONS = {name: field.annotation for name, field in Settings.model_fields.items()
                 if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)}

scalars = st.one_of(
    st.text(max_size=12), st.integers(min_value=-(10**20), max_value=10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.sampled_from(["", "0", "-1", "nan", "1e999", "BTC/USDT", "../../etc/passwd", "<script>", "\x00", "ü" * 3]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)


def section(model: type[BaseModel]) -> st.SearchStrategy[dict]:
    keys = st.sampled_from(sorted(model.model_fields) + ["no_such_key"])
    return st.dictionaries(keys, values, max_size=4)


config = st.fixed_dictionaries({}, optional={
    **{name: st.one_of(section(model), values) for name, model in CORE_SECTIONS.items()},
    "state_dir": values,
    "plugins": st.fixed_dictionaries({}, optional={name: st.one_of(section(model), values) for name, model in PLUGIN_MODELS.items()}),
})


@settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(config)
def test_any_config_is_accepted_or_refused_naming_file_and_key(data):
    SEEN["cases"] += 1
    try:
        load_plugin_configs(settings_from_dict(data, LABEL), HOOKS)
    except ConfigError as exc:
        SEEN["refused"] += 1
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == LABEL and problem.key, problem
            assert str(problem).startswith(f"{LABEL}:{problem.key}: ")


def test_zz_config_fuzz_figures():
    if not SEEN["cases"]:
        pytest.skip("the fuzz test did not run in this session")
    print(f"config fuzz: {SEEN['cases']} cases, {SEEN['refused']} refused with file:key errors, 0 tracebacks")
    record_figures("config fuzz", cases=SEEN["cases"], refused=SEEN["refused"], tracebacks=0)
