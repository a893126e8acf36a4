"""Operator requests: files that commands leave in the state folder for the running bot, and the risk
reset and status those commands ask for.

- ``CLOSE_POSITIONS`` (``gobot kill --close-positions``): each cycle asks for CRITICAL closes of the
  open positions; removed, audited and alerted once the bot is flat.
- ``RISK_RESET`` (``gobot risk reset`` while a bot runs): ``gobot_risk_reset`` at the start of the
  next cycle; removed only once that cycle is persisted, so a crash applies it again.
- ``OPTIMIZED.json`` (``gobot optimize --apply``): the accepted parameters become a new strategy
  version in the adjust phase; which request was applied is kept in the persisted state.
"""

from __future__ import annotations

import json
from pathlib import Path

from gobot.run import RunningBot
from gobot_hookspecs import Alert, PhaseRecord, RiskStatus, Severity, StrategyProposal


def request_text(path: Path, default: str) -> str:
    """The reason written in an operator's request file (its first line, or a JSON ``reason``), or ``default``."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return default
    if text.startswith("{"):
        try:
            return str(json.loads(text).get("reason") or default)
        except ValueError:
            return default
    return text.splitlines()[0] if text else default


class OperatorRequests:
    """The request files of one bot's state folder, taken at defined points of its cycle."""

    def __init__(self, bot: RunningBot):
        self.bot = bot
        self._reset_applied = False  # RISK_RESET applied in the cycle running now, not yet persisted

    def close_out_pending(self) -> bool:
        """A close-out was asked for (``CLOSE_POSITIONS``) and a position or its close is still open.

        Once flat, the request is removed, audited and alerted, and this returns False.
        """
        bot = self.bot
        request = bot.store.close_request_file
        if not request.exists():
            return False
        if bot.state.positions or any(i.purpose == "close" for i in bot.state.intents.values()):
            return True
        request.unlink(missing_ok=True)
        bot.audit("close_out_complete", reason=request_text(request, "close-out"))
        bot.ctx.alert(Alert(kind="close_out_complete", title="Close-out complete: no open positions",
                            severity=Severity.WARNING))
        return False

    async def take(self) -> None:
        """At the start of a cycle: turn the close-out and reset requests into actions."""
        bot = self.bot
        request = bot.store.close_request_file
        if request.exists() and self.close_out_pending() and bot.state.positions:  # removed once flat
            bot.ctx.close_positions(request_text(request, "gobot kill --close-positions"))
        reset = bot.store.reset_request_file
        if reset.exists() and not self._reset_applied:
            await self.risk_reset(request_text(reset, "gobot risk reset"), source="request file")
            self._reset_applied = True

    def cycle_persisted(self) -> None:
        """The cycle's state is on disk: a reset applied in it is done (a crash before re-applies it)."""
        if self._reset_applied:
            self.bot.store.reset_request_file.unlink(missing_ok=True)
            self._reset_applied = False

    async def risk_reset(self, reason: str, source: str = "gobot risk reset") -> list[tuple[str, str]]:
        """Call ``gobot_risk_reset`` on every plugin; audit and alert what was reset."""
        bot = self.bot
        answers = [(plugin, str(line)) for plugin, line in
                   await bot.hooks.collect("gobot_risk_reset", ctx=bot.ctx, reason=reason)]
        bot.audit("risk_reset", reason=reason, source=source, reset={plugin: line for plugin, line in answers})
        text = "; ".join(f"{plugin}: {line}" for plugin, line in answers) or "nothing was latched"
        bot.ctx.alert(Alert(kind="risk_reset", title=f"Risk state reset: {reason}", text=text,
                            severity=Severity.WARNING))
        return answers

    async def risk_statuses(self) -> list[RiskStatus]:
        """Every plugin's ``gobot_risk_status`` (a raising one is reported as unknown, not allowing trades)."""
        bot = self.bot
        bot.failures = []
        statuses = [status.model_copy(update={"plugin": plugin})
                    for plugin, status in await bot.hooks.collect("gobot_risk_status", ctx=bot.ctx)]
        for failure in bot.failures:
            reason = f"status unknown: {type(failure.error).__name__}: {failure.error}"
            statuses.append(RiskStatus(plugin=failure.plugin, allows_trading=False, reason=reason))
        return statuses

    def apply_optimizer(self, phase: PhaseRecord, proposals: dict[str, StrategyProposal]) -> None:
        """Parameters ``gobot optimize`` accepted (``<state_dir>/OPTIMIZED.json``) become a proposal.

        Which request was applied is kept in the persisted state (``plugin_state["optimizer"]``), so a
        cycle abandoned before it is persisted applies it again; the validate phase judges the proposal.
        """
        from gobot.host.strategy_params import REQUEST_FILE

        bot = self.bot
        path = bot.settings.state_path / REQUEST_FILE
        if not path.exists():
            return
        marker = bot.state.plugin_state.setdefault("optimizer", {})
        try:
            request = json.loads(path.read_text(encoding="utf-8"))
            name, params, stamp = request["strategy"], dict(request["params"]), request["created_at"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            phase.records.append(f"optimizer: {path.name} unreadable ({exc}), ignored")
            return
        if marker.get("applied") == stamp:
            return
        marker["applied"] = stamp
        if name not in bot.strategies:
            phase.records.append(f"optimizer: no strategy '{name}' registered, request ignored")
            return
        current = bot.state.strategies[name]
        changes = bot.versions.in_range(name, {k: v for k, v in params.items() if current.params.get(k) != v}, phase)
        if not changes:
            phase.records.append(f"optimizer: {name} v{current.version} already has the accepted parameters")
            return
        proposal = bot.versions.propose(name, changes, str(request.get("reason", "accepted by gobot optimize")),
                                        "optimizer", phase, proposals)
        if proposal is not None:
            bot.audit("optimizer_applied", strategy=name, params=proposal.params, study=request.get("study"),
                      trial=request.get("trial"))
            phase.records.append(f"{name}: optimizer study '{request.get('study')}' trial #{request.get('trial')} "
                                 "proposed")
