"""Strategy versions: the registered strategies and their first version (declared defaults, then
``[strategies.<name>]``); the adjust phase, where adjusters' decisions and the optimizer's accepted
parameters become *proposals* within the declared ranges; and the validate phase, where a proposal
accepted by every validator becomes the next version and the active version is judged again when
new evidence arrived. ``state.strategy_history`` holds the accepted versions, ``state.proposals``
the latest proposals with their verdicts, ``state.strategy_checks`` each active version's judgement.

A rejected proposal is remembered: the same parameters are refused until
``[strategy_versions] new_evidence_trades`` more trades of the strategy closed. An active version
that fails its judgement gets ``on_active_failure``: ``keep`` (an alert), ``revert`` (to the last
version that passed; ``stop`` when none did) or ``stop`` (no new positions with it, see ``entry_block``).
"""

from __future__ import annotations

from gobot.run import RunningBot
from gobot.run.state import MAX_PROPOSALS, BotState, StrategyCheck
from gobot_hookspecs import (
    AdjustmentDecision,
    Alert,
    PhaseRecord,
    Severity,
    Signal,
    Strategy,
    StrategyProposal,
    StrategyVersion,
    ValidationResult,
)


def _changes(changes: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in changes.items())


def _by(plugin: str, reason: str) -> str:
    """``adjuster: won 0 of the last 4 ...``; a reason that already names its plugin is left as it is."""
    return reason if reason.startswith(f"{plugin}:") else f"{plugin}: {reason}"


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

    def current(self) -> list[tuple[str, StrategyVersion]]:
        """Registered strategies with their current version (a disabled plugin's are left alone)."""
        return [(name, self.bot.state.strategies[name]) for name in sorted(self.bot.strategies)]

    def evidence(self, name: str) -> int:
        """Closed trades of strategy ``name`` in this run: what counts as new evidence."""
        return sum(1 for t in self.bot.state.trades if t.strategy == name)

    # -- adjust: decisions become proposals ---------------------------------------------------

    async def adjust(self, phase: PhaseRecord) -> dict[str, StrategyProposal]:
        """Turn adjustment decisions (and the optimizer's request) into at most one proposal per strategy."""
        proposals: dict[str, StrategyProposal] = {}
        self.bot.requests.apply_optimizer(phase, proposals)
        for name, current in self.current():
            decisions = await self.bot.hooks.collect("gobot_adjust_strategy", ctx=self.bot.ctx, strategy=current)
            if not decisions:
                phase.records.append(f"{name} v{current.version}: no adjuster answered")
            for plugin, decision in decisions:
                decision: AdjustmentDecision = decision.model_copy(update={"plugin": plugin})
                self.bot.audit("adjustment", decision=decision)
                changes = self.in_range(name, decision.changes, phase)
                if not changes or name in proposals:
                    phase.records.append(f"{name} v{current.version}: keep ({plugin}: {decision.reason})")
                    continue
                self.propose(name, changes, decision.reason, plugin, phase, proposals)
        return proposals

    def propose(self, name: str, changes: dict[str, float], reason: str, plugin: str, phase: PhaseRecord,
                proposals: dict[str, StrategyProposal]) -> StrategyProposal | None:
        """A proposal of the current version with ``changes``, unless it changes nothing or the same
        parameters were rejected without enough new evidence since (the phase record says which)."""
        bot = self.bot
        current = bot.state.strategies[name]
        params = {**current.params, **changes}
        if params == current.params:
            phase.records.append(f"{name} v{current.version}: keep, it already has {_changes(changes)} ({plugin})")
            return None
        evidence, needed = self.evidence(name), bot.settings.strategy_versions.new_evidence_trades
        earlier = next((p for p in reversed(bot.state.proposals)
                        if p.strategy == name and p.verdict == "rejected" and p.params == params), None)
        if earlier is not None and evidence - earlier.evidence < needed:
            phase.records.append(
                f"{name} v{current.version}: {_changes(changes)} not proposed again ({_by(plugin, reason)}) — rejected "
                f"in cycle {earlier.iteration} ({'; '.join(earlier.reasons)}); {evidence - earlier.evidence} of "
                f"{needed} new closed trades since")
            bot.audit("proposal_refused", strategy=name, params=params, plugin=plugin, rejected_in=earlier.iteration,
                      new_trades=evidence - earlier.evidence, needed=needed)
            return None
        proposal = StrategyProposal(strategy=name, base_version=current.version, params=params, changes=changes,
                                    reason=reason, plugin=plugin, created_at=bot.clock.now(),
                                    iteration=bot.ctx.iteration, evidence=evidence)
        proposals[name] = proposal
        phase.records.append(f"{name} v{current.version}: proposes {_changes(changes)} ({_by(plugin, reason)})")
        return proposal

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

    # -- validate: proposals judged once, the active version when there is new evidence ----------

    async def validate(self, phase: PhaseRecord, proposals: dict[str, StrategyProposal]) -> None:
        """Judge each active version that is new or has new evidence (or failed long enough ago), then each proposal."""
        config = self.bot.settings.strategy_versions
        needed = config.new_evidence_trades
        for name, current in self.current():
            check = self.bot.state.strategy_checks.get(name)
            evidence = self.evidence(name)
            # A failed version whose entries are stopped closes no new trades: it is judged again on the market.
            again = check is not None and not check.passed and \
                self.bot.ctx.iteration - check.iteration >= config.recheck_failed_cycles
            if check is None or check.version != current.version or evidence - check.evidence >= needed or again:
                await self.judge_active(phase, current, check, evidence)
            else:
                phase.records.append(f"{name} v{current.version}: {'passed' if check.passed else 'FAILED'} in cycle "
                                     f"{check.iteration}, {evidence - check.evidence} of {needed} new closed trades "
                                     "since: not judged again yet")
            if name in proposals:
                await self.judge_proposal(phase, proposals[name])

    async def judge(self, version: StrategyVersion, phase: PhaseRecord, label: str) -> list[str]:
        """Every validator's verdict on ``version``, audited and recorded; the failures' reasons."""
        seen = len(self.bot.failures)
        results = await self.bot.hooks.collect("gobot_validate_strategy", ctx=self.bot.ctx, strategy=version)
        # A validator that raised did not judge: a failure, so no version passes unjudged (fail closed).
        failed = [f"{f.plugin}: could not judge ({type(f.error).__name__}: {f.error})"
                  for f in self.bot.failures[seen:] if f.hook == "gobot_validate_strategy"]
        for reason in failed:
            phase.records.append(f"{version.name} v{version.version} ({label}): FAIL ({reason})")
        for plugin, result in results:
            result: ValidationResult = result.model_copy(update={"plugin": plugin})
            self.bot.audit("validation", result=result, judged=label)
            phase.records.append(f"{version.name} v{version.version} ({label}): "
                                 f"{'pass' if result.passed else 'FAIL'} ({plugin}: {result.reason})")
            if not result.passed:
                failed.append(f"{plugin}: {result.reason}")
        return failed

    async def judge_proposal(self, phase: PhaseRecord, proposal: StrategyProposal) -> StrategyProposal:
        """Accepted by every validator: the next version, made current. Rejected: remembered with its reasons."""
        state, name = self.bot.state, proposal.strategy
        number = max(v.version for v in state.strategy_history if v.name == name) + 1
        candidate = StrategyVersion(name=name, version=number, params=proposal.params, created_at=self.bot.clock.now(),
                                    reason=_by(proposal.plugin, proposal.reason))
        reasons = await self.judge(candidate, phase, "proposed")
        if reasons:
            proposal = proposal.model_copy(update={"verdict": "rejected", "reasons": reasons})
            phase.records.append(f"{name}: proposal {_changes(proposal.changes)} rejected, "
                                 f"v{proposal.base_version} stays")
        else:
            proposal = proposal.model_copy(update={"verdict": "accepted", "version": number})
            state.strategies[name] = candidate
            state.strategy_history.append(candidate)
            earlier = state.strategy_checks.get(name)
            state.strategy_checks[name] = StrategyCheck(
                version=number, evidence=proposal.evidence, iteration=self.bot.ctx.iteration, time=self.bot.clock.now(),
                passed_versions=[*(earlier.passed_versions if earlier else []), number])
            phase.records.append(f"{name} v{proposal.base_version} -> v{number}: {_changes(proposal.changes)} "
                                 f"({proposal.reason})")
        state.proposals.append(proposal)
        del state.proposals[:-MAX_PROPOSALS]
        self.bot.audit("proposal", proposal=proposal)
        return proposal

    async def judge_active(self, phase: PhaseRecord, current: StrategyVersion, earlier: StrategyCheck | None,
                           evidence: int) -> None:
        """Judge the active version; on a failure apply ``[strategy_versions] on_active_failure``."""
        name = current.name
        reasons = await self.judge(current, phase, "active")
        passed = [v for v in (earlier.passed_versions if earlier else []) if v != current.version]
        check = StrategyCheck(version=current.version, evidence=evidence, passed=not reasons, reasons=reasons,
                              iteration=self.bot.ctx.iteration, time=self.bot.clock.now(),
                              passed_versions=passed + ([] if reasons else [current.version]))
        was_failing = earlier is not None and not earlier.passed
        self.bot.state.strategy_checks[name] = check
        if not reasons:
            if was_failing:
                self.bot.audit("strategy_recovered", strategy=name, version=current.version)
                self.bot.ctx.alert(Alert(kind="strategy_failed", title=f"Strategy {name} v{current.version} passes "
                                         "validation again", text="new positions allowed with it",
                                         data={"strategy": name, "version": current.version, "action": "none"}))
            return
        self.on_failure(phase, current, check, earlier)

    def on_failure(self, phase: PhaseRecord, current: StrategyVersion, check: StrategyCheck,
                   earlier: StrategyCheck | None) -> None:
        bot, name = self.bot, current.name
        action = bot.settings.strategy_versions.on_active_failure
        target = None
        if action == "revert":
            target = next((v for v in reversed(bot.state.strategy_history)
                           if v.name == name and v.version in check.passed_versions), None)
            action = "revert" if target is not None else "stop"
        check.action = action
        if action == "revert":
            bot.state.strategies[name] = target
            what = f"reverted to v{target.version}, the last version that passed"
        elif action == "stop":
            what = "no new positions with it until a version passes (exits and stops go on)"
        else:
            what = "kept ([strategy_versions] on_active_failure = \"keep\")"
        phase.records.append(f"{name} v{current.version}: active version FAILED validation — {what}")
        bot.audit("strategy_failed", strategy=name, version=current.version, action=action, reasons=check.reasons,
                  reverted_to=target.version if target else None)
        same = earlier is not None and not earlier.passed and earlier.version == current.version \
            and earlier.action == action
        if not same:  # one alert per change, not one per judgement
            bot.ctx.alert(Alert(kind="strategy_failed", severity=Severity.WARNING,
                                title=f"Strategy {name} v{current.version} failed validation: {what}",
                                text="; ".join(check.reasons),
                                data={"strategy": name, "version": current.version, "action": action,
                                      "reverted_to": target.version if target else None}))

    def entry_block(self, signal: Signal) -> str | None:
        """Why ``signal`` may not open a position (its strategy's active version failed, action ``stop``), or None."""
        check = self.bot.state.strategy_checks.get(signal.strategy or "")
        if check is None or check.passed or check.action != "stop":
            return None
        current = self.bot.state.strategies.get(signal.strategy)
        if current is None or current.version != check.version:
            return None
        return (f"strategy {signal.strategy} v{check.version} failed validation in cycle {check.iteration} "
                f"({'; '.join(check.reasons)}): no new positions with it")


def strategy_status(state: BotState) -> dict[str, dict]:
    """Each strategy's active version, its last judgement and what was done about a failure, and its
    proposals so far: what ``gobot status`` and the dashboard show."""
    out = {}
    for name, current in sorted(state.strategies.items()):
        check = state.strategy_checks.get(name)
        proposals = [p for p in state.proposals if p.strategy == name]
        judged = check is not None and check.version == current.version or (check is not None and not check.passed)
        stopped = check is not None and not check.passed and check.action == "stop" and check.version == current.version
        out[name] = {
            "version": current.version, "params": current.params,
            "judged_in_cycle": check.iteration if judged else None,
            "passed": check.passed if judged else None,
            "failed_version": check.version if judged and not check.passed else None,
            "action": check.action if judged and not check.passed else "",
            "reasons": check.reasons if judged else [],
            "new_positions": "stopped" if stopped else "allowed",
            "proposals": {"accepted": sum(1 for p in proposals if p.verdict == "accepted"),
                          "rejected": sum(1 for p in proposals if p.verdict == "rejected")},
        }
    return out


def status_line(name: str, status: dict) -> str:
    """``sma_rsi v2: passed validation in cycle 5; 1 proposal accepted, 3 rejected``, or what a failure did."""
    if status["passed"] is None:
        judged = "not judged yet"
    elif status["passed"]:
        judged = f"passed validation in cycle {status['judged_in_cycle']}"
    else:
        done = {"keep": "kept", "revert": f"reverted from v{status['failed_version']}",
                "stop": "NO NEW POSITIONS with it"}.get(status["action"], status["action"])
        judged = (f"v{status['failed_version']} FAILED validation in cycle {status['judged_in_cycle']} "
                  f"({'; '.join(status['reasons'])}): {done}")
    counts = status["proposals"]
    return (f"{name} v{status['version']}: {judged}; proposals {counts['accepted']} accepted, "
            f"{counts['rejected']} rejected")
