"""Strategy versions: the registered strategies and their first version (declared defaults, then
``[strategies.<name>]``); the adjust phase, where adjusters' decisions and the optimizer's accepted
parameters become new versions within the declared ranges; and the validate phase, where a new
version that fails validation is reverted. Every version is kept in ``state.strategy_history``.
"""

from __future__ import annotations

from gobot.run import RunningBot
from gobot_hookspecs import AdjustmentDecision, PhaseRecord, Strategy, StrategyVersion, ValidationResult


class StrategyVersions:
    """The strategy versions of one bot; the strategies themselves stay in ``bot.strategies``."""

    def __init__(self, bot: RunningBot):
        self.bot = bot

    def register(self, strategy: Strategy) -> None:
        if strategy.name in self.bot.strategies:
            raise ValueError(f"strategy '{strategy.name}' is registered twice")
        self.bot.strategies[strategy.name] = strategy

    def initial(self, name: str) -> StrategyVersion:
        from gobot.host.strategy_params import configured_params  # declared defaults, then [strategies.<name>]

        params = configured_params(self.bot.settings, self.bot.strategies[name])
        version = StrategyVersion(name=name, version=1, params=params, created_at=None)
        self.bot.state.strategy_history.append(version)
        return version

    async def adjust(self, phase: PhaseRecord) -> dict[str, StrategyVersion]:
        """Apply adjustment decisions; return the previous version of each adjusted strategy."""
        previous: dict[str, StrategyVersion] = {}
        self.bot.requests.apply_optimizer(phase, previous)
        for name, current in self.current():
            decisions = await self.bot.hooks.collect("gobot_adjust_strategy", ctx=self.bot.ctx, strategy=current)
            if not decisions:
                phase.records.append(f"{name} v{current.version}: no adjuster answered")
            for plugin, decision in decisions:
                decision: AdjustmentDecision = decision.model_copy(update={"plugin": plugin})
                self.bot.audit("adjustment", decision=decision)
                changes = self.in_range(name, decision.changes, phase)
                if not changes or name in previous:
                    phase.records.append(f"{name} v{current.version}: keep ({plugin}: {decision.reason})")
                    continue
                new = self.new_version(name, changes, f"{plugin}: {decision.reason}", previous)
                phase.records.append(f"{name} v{current.version} -> v{new.version}: {changes} ({decision.reason})")
        return previous

    def new_version(self, name: str, changes: dict[str, float], reason: str,
                    previous: dict[str, StrategyVersion]) -> StrategyVersion:
        """The current version of ``name`` with ``changes``, made current; the old one kept in ``previous``."""
        current = self.bot.state.strategies[name]
        version = max(v.version for v in self.bot.state.strategy_history if v.name == name) + 1
        new = StrategyVersion(name=name, version=version, params={**current.params, **changes},
                              created_at=self.bot.clock.now(), reason=reason)
        previous[name] = current
        self.bot.state.strategies[name] = new
        self.bot.state.strategy_history.append(new)
        return new

    def current(self) -> list[tuple[str, StrategyVersion]]:
        """Registered strategies with their current version (a disabled plugin's are left alone)."""
        return [(name, self.bot.state.strategies[name]) for name in sorted(self.bot.strategies)]

    def in_range(self, name: str, changes: dict[str, float], phase: PhaseRecord) -> dict[str, float]:
        """The changes inside the strategy's declared parameter ranges; the others refused, in the phase's record."""
        specs = self.bot.strategies[name].parameters if name in self.bot.strategies else {}
        accepted = {}
        for key, value in changes.items():
            spec = specs.get(key)
            if spec is None or not spec.low <= value <= spec.high:
                phase.records.append(f"{name}: change {key}={value} refused (outside the declared range)")
                continue
            accepted[key] = value
        return accepted

    async def validate(self, phase: PhaseRecord, adjusted: dict[str, StrategyVersion]) -> None:
        for name, current in self.current():
            results = await self.bot.hooks.collect("gobot_validate_strategy", ctx=self.bot.ctx, strategy=current)
            failed = []
            for plugin, result in results:
                result: ValidationResult = result.model_copy(update={"plugin": plugin})
                self.bot.audit("validation", result=result)
                phase.records.append(
                    f"{name} v{result.version}: {'pass' if result.passed else 'FAIL'} ({plugin}: {result.reason})"
                )
                if not result.passed:
                    failed.append(result)
            if name in adjusted and failed:
                old = adjusted[name]
                self.bot.state.strategies[name] = old
                phase.records.append(f"{name}: adjustment to v{current.version} rejected, back to v{old.version}")
                self.bot.audit("adjustment_rejected", strategy=name, version=current.version,
                               reasons=[f.reason for f in failed])
