"""``vision``: trading ideas from a vision model reading charts (OpenAI, or any OpenAI-compatible endpoint).

Each cycle, for each symbol, it asks ``ctx.chart`` for a chart per configured timeframe (the
``charts`` plugin draws them), sends them with a prompt to ``model`` at ``base_url`` and turns the
structured answer into a ``Signal``:

- the answer is validated (``answer.py``); malformed, cut off, refused or out of range is HOLD
  with the reason in the rationale: it never raises and never trades;
- LONG/SHORT needs ``min_agreeing_timeframes`` charts read the same way by the model; the
  confidence is passed on, and the risk plugins' ``min_confidence_threshold`` applies;
- answers are cached by image hashes + prompt (and PROMPT_VERSION) + model + base_url, so a replay costs
  nothing the second time and another model or endpoint is never answered from the cache;
- the snapshot's sentiment readings (``snapshot.sentiment``: score, inputs, fields, stale), when there
  are any, are a text part of the prompt (and so of the cache key);
- a per-day cap on tokens and estimated USD: past it, HOLD and one alert;
- with no ``OPENAI_API_KEY`` and no ``base_url`` it switches itself off with a message, and the
  bot trades on the other plugins' ideas.

A timeframe the market data does not have (1m from the bundled 5m files) is left out, said once
per run, and simply cannot agree: the gate is not lowered. ``gobot vision replay`` re-sends a past
cycle's charts. Not on by default: ``[plugins] enable = ["charts", "vision"]``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timezone
from typing import Any

from gobot_hookspecs import Action, Alert, Severity, Signal, hookimpl

from .answer import Reading, read_answer
from .client import VisionClient, build_request, safe_url, sentiment_lines
from .config import VisionConfig
from .store import VisionStore

NAME = "vision"
KEY_ENV = "OPENAI_API_KEY"
log = logging.getLogger(__name__)


def cache_root(ctx_config: Any, config: VisionConfig):
    """``cache_dir`` relative to the config file, or ``<state_dir>/vision``."""
    return ctx_config.resolve(config.cache_dir) if config.cache_dir else ctx_config.state_path / "vision"


def to_signal(symbol: str, reading: Reading, *, model: str, cached: bool, shown: list[str],
              missing: dict[str, str]) -> Signal:
    """The reading as a Signal; any problem makes it HOLD, confidence 0, with the problem first in the rationale."""
    views = ", ".join(f"{tf} {reading.views.get(tf, '?')}" for tf in shown)
    said = f"{model}{' (cached)' if cached else ''}"
    gaps = f"; no {', '.join(missing)} chart" if missing else ""
    if reading.problem is not None:
        what = f"model said {reading.action} {reading.confidence:.2f}; " if reading.views or reading.rationale else ""
        rationale = f"HOLD: {reading.problem} ({said}; {what}{views or 'no reading'}{gaps})"
        return Signal(symbol=symbol, action=Action.HOLD, confidence=0.0, rationale=rationale[:500],
                      timeframe=",".join(shown) or None)
    agree = f"{len(reading.agreeing)}/{len(shown)} timeframes agree" if reading.action != "HOLD" else "timeframes"
    rationale = f"{said}: {agree} ({views}{gaps}): {reading.rationale}"
    return Signal(
        symbol=symbol,
        action=Action(reading.action),
        confidence=reading.confidence,
        entry=reading.entry,
        stop_loss=reading.stop_loss,
        take_profit=reading.take_profit,
        rationale=rationale[:500],
        timeframe=",".join(reading.agreeing if reading.action != "HOLD" else shown) or None,
    )


def _answer_text(answer: dict[str, Any] | None) -> str | None:
    """The model's answer as it gave it (its text, else its refusal), kept with the request: a trade's
    story shows it even when answers are not cached."""
    if answer is None:
        return None
    return answer.get("content") or answer.get("refusal")


class Vision:
    """One instance per bot: the client and store of the run, and what was already said once."""

    def __init__(self) -> None:
        self.client: VisionClient | None = None
        self.store: VisionStore | None = None
        self.disabled_reason: str | None = None
        self._said: set[str] = set()  # alert keys already raised this run

    @hookimpl
    def gobot_config_model(self):
        return VisionConfig

    @hookimpl
    def gobot_register_commands(self, cli, load_config):
        from . import cli as commands

        # the core's validated config: the file, GOBOT_<SECTION>__<KEY>, the defaults
        commands.LOAD_CONFIG = load_config
        cli.add_command(commands.vision)

    def _once(self, ctx, key: str, alert: Alert) -> None:
        if key not in self._said:
            self._said.add(key)
            ctx.alert(alert)

    @hookimpl
    def gobot_startup(self, ctx):
        config = VisionConfig.of(ctx, NAME)
        api_key = os.environ.get(KEY_ENV, "").strip()
        if not api_key and not config.base_url:
            self.disabled_reason = f"no {KEY_ENV} in the environment and no [plugins.vision] base_url"
            log.info("vision: off — %s; the other plugins' ideas still trade", self.disabled_reason)
            ctx.audit("vision_disabled", reason=self.disabled_reason)
            ctx.alert(
                Alert(
                    kind="vision_disabled",
                    title="Vision signals off: no model to ask",
                    text=f"{self.disabled_reason}. Set {KEY_ENV} for OpenAI, or base_url for a local model "
                    "(docs/vision.md); the other plugins' ideas still trade.",
                    severity=Severity.WARNING,
                )
            )
            return
        self.store = VisionStore(cache_root(ctx.config, config))
        self.client = VisionClient(config, self.store, api_key or None)
        ctx.audit("vision_ready", model=config.model, endpoint=safe_url(config.base_url), timeframes=config.timeframes)
        if config.price(config.model) is None:
            self._once(
                ctx,
                "price",
                Alert(
                    kind="vision_price_unknown",
                    title=f"Vision: no price for model '{config.model}'",
                    text="estimated USD spend counts as 0 (fine for a local model); max_tokens_per_day still caps it. "
                    "Add the model to [plugins.vision] prices.",
                ),
            )

    @hookimpl
    async def gobot_shutdown(self):
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    @hookimpl
    async def gobot_generate_ideas(self, ctx, snapshots):
        if self.client is None:
            return None
        config = VisionConfig.of(ctx, NAME)
        results = await asyncio.gather(*(self._idea(ctx, config, snap) for snap in snapshots))
        self._say_missing(ctx, config, results)
        return [signal for signal, _missing in results]

    def _say_missing(self, ctx, config: VisionConfig, results: list[tuple[Signal, dict[str, str]]]) -> None:
        """Once per run: which timeframes had no chart, and what the gate then means."""
        missing: dict[str, list[str]] = {}
        for signal, gaps in results:
            for timeframe in gaps:
                missing.setdefault(timeframe, []).append(signal.symbol)
        if not missing:
            return
        shown = [tf for tf in config.timeframes if tf not in missing]
        key = "missing:" + ",".join(sorted(missing))
        if not shown:
            failed = sorted({why for _signal, gaps in results for why in gaps.values() if why != "no chart"})
            text = (
                f"the chart plugin failed: {failed[0]}" if failed
                else "no chart plugin answered: enable `charts` ([plugins] enable = [\"charts\", \"vision\"])"
            )
            self._once(ctx, key, Alert(kind="vision_no_charts", title="Vision: no charts to read", text=text,
                                       severity=Severity.WARNING))
            return
        text = (
            f"no {', '.join(missing)} candles for {', '.join(sorted({s for v in missing.values() for s in v}))}; "
            f"reading {', '.join(shown)}, and LONG/SHORT still needs {config.min_agreeing_timeframes} agreeing "
            "timeframes"
        )
        self._once(ctx, key, Alert(kind="vision_timeframes", title=f"Vision: no {', '.join(missing)} charts",
                                   text=text))

    async def _idea(self, ctx, config: VisionConfig, snap) -> tuple[Signal, dict[str, str]]:
        try:
            return await self._read_charts(ctx, config, snap)
        except Exception as exc:  # never into the loop: an idea we cannot form is HOLD
            log.exception("vision: %s failed", snap.symbol)
            reason = f"HOLD: vision failed: {type(exc).__name__}: {exc}"
            return Signal(symbol=snap.symbol, action=Action.HOLD, confidence=0.0, rationale=reason[:500]), {}

    async def _read_charts(self, ctx, config: VisionConfig, snap) -> tuple[Signal, dict[str, str]]:
        assert self.client is not None and self.store is not None
        symbol = snap.symbol
        charts, missing = [], {}
        for timeframe in config.timeframes:
            try:
                charts.append(await ctx.chart(symbol, timeframe, config.chart_candles))
            except LookupError:
                missing[timeframe] = "no chart"
            except Exception as exc:
                missing[timeframe] = f"chart failed: {exc}"
        shown = [chart.timeframe for chart in charts]
        if len(charts) < config.min_agreeing_timeframes:
            # The gate could not pass whatever the model said: don't pay for the question.
            reason = (
                f"{len(charts)} chart(s) for min_agreeing_timeframes {config.min_agreeing_timeframes}"
                f" ({'; '.join(f'{tf}: {why}' for tf, why in missing.items())})"
            )
            ctx.audit("vision", symbol=symbol, asked=False, reason=reason)
            return to_signal(symbol, Reading.hold(reason), model=config.model, cached=False, shown=shown,
                             missing=missing), missing

        body = build_request(config, symbol, snap.price, ctx.now(), charts, missing,
                             sentiment_lines(snap.sentiment) if snap.sentiment else [])
        images = {chart.sha256: chart.png for chart in charts}
        if config.keep_images:
            for sha, png in images.items():
                self.store.put_image(sha, png)
        asked = await self.client.ask(body, images)
        if asked.answer is not None:
            answer = asked.answer
            reading = read_answer(
                answer.get("content"),
                answer.get("refusal"),
                answer.get("finish_reason"),
                price=snap.price,
                shown=shown,
                min_agreeing=config.min_agreeing_timeframes,
            )
        else:
            reading = Reading.hold(asked.failure or "no answer")
            self._say_failure(ctx, asked)
        signal = to_signal(symbol, reading, model=config.model, cached=asked.cached, shown=shown, missing=missing)
        outcome = {
            "action": signal.action.value,
            "confidence": signal.confidence,
            "agreeing": reading.agreeing,
            "views": reading.views,
            "problem": reading.problem,
        }
        charts_record = [
            {"timeframe": c.timeframe, "sha256": c.sha256, "width": c.width, "height": c.height, "candles": c.candles,
             "end": c.end.isoformat() if c.end else None, "source": c.source}
            for c in charts
        ]
        self.store.record_request(
            {
                "run_id": ctx.run_id, "iteration": ctx.iteration, "time": ctx.now().isoformat(), "symbol": symbol,
                "price": snap.price, "key": asked.key, "cached": asked.cached, "model": config.model,
                "charts": charts_record, "missing": missing, "tokens": asked.tokens, "usd": asked.usd,
                "failure": asked.failure_kind, "outcome": outcome, "request": body,
                "answer": _answer_text(asked.answer), "images_kept": config.keep_images,
            }
        )
        ctx.audit(
            "vision", symbol=symbol, asked=True, key=asked.key, cached=asked.cached, model=config.model,
            charts={c["timeframe"]: c["sha256"] for c in charts_record}, missing=missing, tokens=asked.tokens,
            usd=round(asked.usd, 6), failure=asked.failure_kind, **outcome,
        )
        return signal, missing

    def _say_failure(self, ctx, asked) -> None:
        if asked.failure_kind == "spend_cap":
            day = datetime.now(timezone.utc).date().isoformat()
            alert = Alert(kind="vision_spend_cap", title="Vision: daily spend cap reached, holding",
                          text=asked.failure or "", severity=Severity.WARNING)
            self._once(ctx, f"cap:{day}", alert)
            return
        alert = Alert(
            kind="vision_error", title=f"Vision: no answer ({asked.failure_kind}), holding", text=asked.failure or "",
            severity=Severity.WARNING,
        )
        self._once(ctx, f"error:{asked.failure_kind}", alert)
