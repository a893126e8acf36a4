"""An idea source for the optimizer: a language model proposes the next parameter change from the
history of trials, through the openai SDK (any OpenAI-compatible ``base_url``).

The answer must be JSON ``{"params": {...}, "rationale": "..."}``. Every value is checked against
the strategy's declared space (known name, a number, inside ``low..high``, an integer where the
parameter is one); a parameter left out keeps the kept value. An answer that fails any check, a
refusal or an error is not used — the search goes on with the sampler's own ideas — and the reason
is recorded. A valid idea is queued as the next trial, marked ``llm`` with the model's rationale.
The API key comes from ``OPENAI_API_KEY`` only and never appears in output.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from gobot.secrets import redact
from gobot_hookspecs import Strategy

SYSTEM = (
    "You tune the parameters of a trading strategy. Propose ONE next parameter set to try, inside the "
    "declared ranges, that you expect to improve the objective OUT OF SAMPLE (not just in sample). "
    'Answer with JSON only: {"params": {"<name>": <number>, ...}, "rationale": "<one or two sentences>"}.'
)


@dataclass
class Idea:
    params: dict[str, float] | None  # None: not usable (see reason)
    rationale: str = ""
    reason: str = ""


def check_params(strategy: Strategy, proposed: Any, current: dict[str, float]) -> tuple[dict[str, float] | None, str]:
    """``proposed`` validated against the declared space and completed with ``current``; or (None, why)."""
    if not isinstance(proposed, dict) or not proposed:
        return None, "no 'params' object in the answer"
    params = dict(current)
    for name, value in proposed.items():
        spec = strategy.parameters.get(name)
        if spec is None:
            return None, f"unknown parameter '{name}' (declared: {', '.join(strategy.parameters)})"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, f"{name} = {value!r} is not a number"
        if not spec.low <= value <= spec.high:
            return None, f"{name} = {value:g} is outside its declared range {spec.low:g}..{spec.high:g}"
        if spec.integer:
            if float(value) != int(value):
                return None, f"{name} = {value:g} must be an integer"
            value = int(value)
            step = max(1, int(round(spec.step))) if spec.step else 1
            if (value - int(spec.low)) % step:
                return None, f"{name} = {value} is not on its step of {step} from {spec.low:g}"
        params[name] = value
    if params == current:
        return None, "the proposal changes nothing"
    return params, ""


class LlmIdeas:
    def __init__(self, model: str, base_url: str = "", *, timeout: float = 60.0):
        from gobot.host.extras import require

        require("optimize", "openai", "gobot optimize --llm")
        self.model, self.base_url, self.timeout = model, base_url, timeout
        self._client = None

    def client(self):
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url or None, api_key=os.environ.get("OPENAI_API_KEY") or "not-set",
                                  timeout=self.timeout, max_retries=1)
        return self._client

    def messages(self, strategy: Strategy, objective: Any, kept, history: list) -> list[dict[str, str]]:
        space = {name: {"low": spec.low, "high": spec.high, "step": spec.step, "integer": spec.integer,
                        "description": spec.description} for name, spec in strategy.parameters.items()}
        trials = [{"trial": d.number, "source": d.source, "params": d.params,
                   "objective_in_sample": round(d.objective_in, 4),
                   "objective_out_of_sample": round(d.objective_out, 4), "trades_in_sample": d.in_sample["trades"],
                   "accepted": d.accepted, "verdict": d.reason} for d in history]
        prompt = {
            "strategy": strategy.name, "objective": objective, "parameter_space": space,
            "kept_parameters": kept.params, "kept_objective": {"in_sample": round(kept.objective_in, 4),
                                                               "out_of_sample": round(kept.objective_out, 4)},
            "recent_trials": trials,
        }
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": json.dumps(prompt)}]

    def propose(self, strategy: Strategy, objective: Any, kept, history: list) -> Idea:
        try:
            answer = self.client().chat.completions.create(
                model=self.model, messages=self.messages(strategy, objective, kept, history),
                response_format={"type": "json_object"}, temperature=0.2)
        except Exception as exc:  # network, HTTP errors, timeouts: no idea this time
            return Idea(None, reason=redact(f"the model could not be asked: {type(exc).__name__}: {exc}")[:300])
        message = answer.choices[0].message if answer.choices else None
        if message is None or getattr(message, "refusal", None) or not message.content:
            return Idea(None, reason="the model refused or gave no answer")
        try:
            data = json.loads(message.content)
        except ValueError:
            return Idea(None, reason="the answer is not JSON")
        if not isinstance(data, dict):
            return Idea(None, reason="the answer is not a JSON object")
        params, why = check_params(strategy, data.get("params"), kept.params)
        rationale = str(data.get("rationale", ""))[:500]
        return Idea(params, rationale, why)
