"""A strategy's parameters from the configuration: the declared defaults, then ``[strategies.<name>]``
in config.toml (what ``gobot optimize --apply`` writes), each checked against the declared space."""

from __future__ import annotations

from typing import Any

from gobot.errors import ConfigError, ConfigProblem, GobotError
from gobot_hookspecs import ParamSpec, Strategy

#: In the state folder: parameters the optimizer accepted, waiting for the adjust phase of a bot.
REQUEST_FILE = "OPTIMIZED.json"


class ParameterError(GobotError):
    """A parameter that is not declared, not a number, or out of its range; the message says which."""


def check_params(strategy: Strategy, params: dict[str, Any], label: str) -> dict[str, float]:
    """``params`` checked against the strategy's declared space: known names, numbers in range."""
    checked: dict[str, float] = {}
    for name, value in params.items():
        spec: ParamSpec | None = strategy.parameters.get(name)
        if spec is None:
            known = ", ".join(strategy.parameters) or "none"
            raise ParameterError(f"{label}: strategy '{strategy.name}' has no parameter '{name}' (it has: {known})")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"{label}: {name} = {value!r} is not a number") from None
        if not spec.low <= number <= spec.high:
            raise ParameterError(f"{label}: {name} = {number:g} is outside its range {spec.low:g}..{spec.high:g}")
        checked[name] = int(number) if spec.integer and number == int(number) else number
    return checked


def configured_params(settings: Any, strategy: Strategy) -> dict[str, float]:
    """Declared defaults, overridden by the config's ``[strategies.<name>]`` table."""
    params = {name: spec.default for name, spec in strategy.parameters.items()}
    table = (settings.strategies or {}).get(strategy.name, {})
    try:
        params.update(check_params(strategy, table, f"[strategies.{strategy.name}]"))
    except ParameterError as exc:
        raise ConfigError([ConfigProblem(settings.file_label, f"strategies.{strategy.name}",
                                         str(exc).split(": ", 1)[-1],
                                         "use a parameter the strategy declares, within its range")]) from None
    return params
