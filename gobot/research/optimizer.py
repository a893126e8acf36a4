"""The strategy optimizer: Optuna searches a strategy's declared parameter space, every candidate is
walk-forward validated, and a change is kept only when it also wins out of sample.

The loop, each step printed:

1. **scan**: the current parameters (declared defaults, then ``[strategies.<name>]``) are
   backtested on every walk-forward window: the baseline.
2. **ideas**: Optuna proposes a candidate inside the declared ranges (TPE by default; NSGA-II or
   TPE for several objectives; random). Optionally, before every n-th trial a model proposes one
   from the history (``llm_ideas``), checked against the ranges and marked ``llm``.
3. **backtest**: the candidate's signals are computed once over all the data, then traded on each
   rolling window pair: in sample (IS) and the out-of-sample (OOS) window right after it.
4. **validate**: the sampler only ever sees the in-sample objective. A candidate is accepted when it
   has enough trades, beats the kept parameters in sample *and* out of sample, and its overfitting
   ratio (OOS objective / IS objective) reaches ``min_oos_ratio``; one that wins only in sample is
   rejected with that reason.
5. **report**: every decision, the winner with its IS and OOS metrics, and whether the design
   targets (win rate, profit factor, drawdown, trades, out of sample) were met — which ends the loop,
   as ``max_iterations`` does.

Every trial lives in an Optuna storage (by default the study's own journal file in the state folder,
``optimizer/<study>.journal``, shared by this machine's workers, or a database URL that several
``gobot optimize`` workers on several hosts share): that is the persisted history, and
running the same command again resumes the study. Trials left RUNNING by a worker of this host that
died are failed and retried; those of other hosts by Optuna's heartbeat.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Callable

from gobot.config import OptimizerConfig, parse_objective
from gobot.errors import GobotError
from gobot.host.strategy_params import REQUEST_FILE  # accepted parameters waiting for the adjust phase
from gobot.research.backtest.engine import ExecutionSettings, Gate, Signals, compute_signals, curve_metrics, simulate
from gobot.research.market_data import Series
from gobot.research.selection import SUMS, deflate, moments, neighbours, power_sums, stability_score
from gobot.testing.kill_point import kill_point
from gobot_hookspecs import Strategy
from gobot_hookspecs.redact import mask_credentials

MINIMISED = frozenset({"max_drawdown_pct"})
#: Objective terms shown, and eligible for a winner, only over min_ratio_trades trades (contract MIN_RATIO_SAMPLE).
SAMPLED_RATIOS = frozenset({"sharpe", "sortino", "calmar"})
PROFIT_FACTOR_CAP = 10.0  # an infinite profit factor (no losing trade) counts as this in objectives
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 30
WORKER = f"{socket.gethostname()}:{os.getpid()}"

Say = Callable[[str], None]


class OptimizerError(GobotError):
    """The optimizer cannot run; the message says why and what to change."""


# -- walk-forward windows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    number: int
    in_sample: tuple[int, int]  # epoch ms, [start, end)
    out_of_sample: tuple[int, int]


def walk_forward(series: list[Series], folds: int, out_of_sample_percent: float) -> list[Fold]:
    """Rolling windows over the data's span: in-sample windows of equal length, each followed by an
    out-of-sample window ``out_of_sample_percent`` of its length; the OOS windows tile the end."""
    start = min(int(s.timestamp[0]) for s in series)
    end = max(int(s.timestamp[-1]) + s.step_ms for s in series)
    ratio = out_of_sample_percent / 100.0
    in_length = (end - start) / (1.0 + folds * ratio)
    out_length = in_length * ratio
    out = []
    for number in range(folds):
        a = start + number * out_length
        b = a + in_length
        out.append(Fold(number + 1, (int(a), int(b)), (int(b), int(min(b + out_length, end)))))
    return out


# -- metrics of a candidate -----------------------------------------------------------------------------


def trade_stats(pnls: list[float]) -> dict[str, Any]:
    """The trade metrics the optimizer judges by, from the closed trades' P&L in order, as
    ``gobot_hookspecs.metrics.trade_metrics`` defines them (trades, wins, win rate, gross profit and loss,
    profit factor, expectancy) without the holding times and R multiples it also works out per trade,
    which the optimizer never reads: the same sums in the same order, so the same numbers to the bit (a
    test holds them equal)."""
    n = len(pnls)
    gains = [p for p in pnls if p > 0]
    falls = [p for p in pnls if p < 0]
    wins, losses = len(gains), len(falls)
    gross_profit, gross_loss = sum(gains, 0.0), 0.0 - sum(falls, 0.0)
    avg_win = gross_profit / wins if wins else None
    avg_loss = -gross_loss / losses if losses else None
    return {
        "trades": n, "wins": wins, "win_rate": wins / n if n else None, "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "profit_factor": gross_profit / gross_loss if gross_loss > 0 else (math.inf if gross_profit > 0 else None),
        "expectancy": (wins / n * (avg_win or 0.0) - losses / n * abs(avg_loss or 0.0)) if n else None,
    }


def window_metrics(simulation) -> dict[str, Any]:
    """The numbers the optimizer judges a window by (the contract's trade metrics, vectorized curve metrics,
    the sums of each trade's return on its position: P&L / (entry price x amount), 0 for an empty one),
    from the trades' columns: the trade records are never made."""
    import numpy as np

    curve = curve_metrics(simulation.timeline, simulation.equity)
    pnl, notional = simulation.closed_columns()
    returns = np.divide(pnl, notional, out=np.zeros(len(pnl)), where=notional != 0)
    return {
        **trade_stats(pnl.tolist()), "return_pct": (simulation.end_equity / simulation.start_equity - 1.0) * 100.0,
        "max_drawdown_pct": curve["max_drawdown_pct"] * 100.0, "sharpe": curve["sharpe"], "sortino": curve["sortino"],
        "calmar": curve["calmar"], "return_sums": power_sums(returns),
    }


def combine(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Several windows as one: trades summed, ratios over all trades, curve metrics averaged, the worst drawdown."""
    trades = sum(w["trades"] for w in windows)
    wins = sum(w["wins"] for w in windows)
    profit = sum(w["gross_profit"] for w in windows)
    loss = sum(w["gross_loss"] for w in windows)
    pnl = sum((w["expectancy"] or 0.0) * w["trades"] for w in windows)

    def mean(key: str) -> float:
        return sum(w[key] or 0.0 for w in windows) / len(windows) if windows else 0.0

    return {
        "trades": trades, "wins": wins, "win_rate": wins / trades if trades else None,
        "gross_profit": profit, "gross_loss": loss,
        "profit_factor": profit / loss if loss > 0 else (math.inf if profit > 0 else None),
        "expectancy": pnl / trades if trades else None, "return_pct": mean("return_pct"),
        "max_drawdown_pct": max((w["max_drawdown_pct"] for w in windows), default=0.0),
        "sharpe": mean("sharpe"), "sortino": mean("sortino"), "calmar": mean("calmar"),
        "return_sums": [sum(w.get("return_sums", [0.0] * SUMS)[i] for w in windows) for i in range(SUMS)],
    }


def metric_value(metrics: dict[str, Any], name: str) -> float:
    """A metric as an objective term: undefined counts as 0, an infinite profit factor as the cap."""
    value = metrics.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0
    if name == "profit_factor":
        return min(float(value), PROFIT_FACTOR_CAP)
    return float(value)


def objective_value(metrics: dict[str, Any], terms: list[tuple[float, str]]) -> float:
    """The weighted sum of the objective's metrics; a minimised metric counts negatively."""
    return sum(weight * (-1 if name in MINIMISED else 1) * metric_value(metrics, name) for weight, name in terms)


@dataclass
class Evaluation:
    """One parameter set, walk-forward: per-fold and combined IS and OOS metrics, and the objective."""

    params: dict[str, float]
    in_sample: dict[str, Any]
    out_of_sample: dict[str, Any]
    folds: list[dict[str, Any]]
    objective_in: float
    objective_out: float
    values: list[float]  # what the sampler sees: the in-sample objective(s)

    @property
    def ratio(self) -> float | None:
        """Overfitting ratio: OOS objective / IS objective (None when the IS objective is not positive)."""
        return self.objective_out / self.objective_in if self.objective_in > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """The fields and the ratio, not copied (``dataclasses.asdict`` deep-copies every number, ~1 ms a trial):
        both callers store it through ``_clean``, which copies its dicts and lists."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "ratio": self.ratio}


def _clean(value: Any) -> Any:
    """JSON-safe: infinities as the string "inf" (Optuna keeps user attributes as JSON)."""
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# -- decisions ---------------------------------------------------------------------------------------


@dataclass
class Decision:
    number: int | None  # trial number; None for the baseline
    params: dict[str, float]
    source: str  # baseline, tpe, random, nsga2, llm, enqueued
    objective_in: float
    objective_out: float
    ratio: float | None
    in_sample: dict[str, Any]
    out_of_sample: dict[str, Any]
    accepted: bool = False
    reason: str = ""
    targets_met: bool = False
    rationale: str = ""  # the model's, for llm ideas
    ratio_sample: int = 0  # trades the objective's Sharpe/Sortino/Calmar needs to be shown (0: no such term)
    stability: float | None = None  # mean objective of the ± one step neighbours / its own (winners only)

    def objective_text(self, where: str) -> str:
        """The IS or OOS objective, or "— (n=12)" when it rests on a ratio over fewer trades than its sample."""
        value, trades = ((self.objective_in, self.in_sample["trades"]) if where == "in"
                         else (self.objective_out, self.out_of_sample["trades"]))
        return f"— (n={trades})" if trades < self.ratio_sample else f"{value:+.3f}"

    def line(self) -> str:
        params = " ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        head = "baseline" if self.number is None else f"#{self.number} {self.source}"
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}"
        verdict = "ACCEPTED" if self.accepted else "rejected"
        stable = "" if self.stability is None else f", stability {self.stability:.2f}"
        shown_in, shown_out = (self.objective_text(where).removesuffix(f" (n={trades})") for where, trades in
                               (("in", self.in_sample["trades"]), ("out", self.out_of_sample["trades"])))
        return (f"{head}: {params} -> IS {shown_in} ({self.in_sample['trades']} trades), "
                f"OOS {shown_out} ({self.out_of_sample['trades']}), ratio {ratio}{stable}: "
                + (verdict if self.number is not None else "kept") + (f" — {self.reason}" if self.reason else ""))


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def targets_met(metrics: dict[str, Any], options: OptimizerConfig) -> bool:
    """The design targets, out of sample: win rate, profit factor, max drawdown, trades."""
    return (
        (metrics.get("win_rate") or 0.0) >= options.target_win_rate
        and metric_value(metrics, "profit_factor") >= options.target_profit_factor
        and metrics.get("max_drawdown_pct", math.inf) <= options.target_max_drawdown_pct
        and metrics.get("trades", 0) >= options.target_trades
    )


def sampled_ratio(options: OptimizerConfig) -> str | None:
    """The Sharpe, Sortino or Calmar term of the objective that decides acceptance, if it has one."""
    names = options.objectives[:1] or [name for _, name in parse_objective(options.objective)]
    return next((name for name in names if name in SAMPLED_RATIOS), None)


def decide(baseline: Decision, candidates: list[Decision], options: OptimizerConfig,
           stability: Callable[[Decision], float | None] | None = None) -> Decision:
    """Walk the candidates in trial order and keep each one that beats the kept parameters in sample
    and out of sample, on enough trades for a ratio objective, and is no lone spike (``stability``
    scores a candidate that passed everything else); fill in each one's verdict. Returns the
    parameters kept at the end."""
    kept = baseline
    min_out = math.ceil(options.min_trades * options.out_of_sample_percent / 100.0) if options.min_trades else 0
    ratio_name = sampled_ratio(options)
    gate = options.min_ratio_trades if ratio_name else 0
    baseline.ratio_sample = gate
    for candidate in sorted(candidates, key=lambda d: d.number):
        candidate.accepted, candidate.targets_met, candidate.ratio_sample = False, False, gate
        where = "baseline" if kept.number is None else f"#{kept.number}"
        thin = min(candidate.in_sample["trades"], candidate.out_of_sample["trades"]) < gate
        if candidate.in_sample["trades"] < options.min_trades:
            candidate.reason = (f"too few trades in sample ({candidate.in_sample['trades']} "
                                f"< min_trades {options.min_trades})")
        elif candidate.out_of_sample["trades"] < min_out:
            candidate.reason = f"too few trades out of sample ({candidate.out_of_sample['trades']} < {min_out})"
        elif thin:
            candidate.reason = (f"too few trades for a {ratio_name} objective ({candidate.in_sample['trades']} in "
                                f"sample, {candidate.out_of_sample['trades']} out; min_ratio_trades {gate} each)")
        elif candidate.objective_in <= kept.objective_in:
            candidate.reason = (f"not better in sample ({candidate.objective_in:+.3f} <= {where} "
                                f"{kept.objective_in:+.3f})")
        elif candidate.objective_out <= kept.objective_out:
            candidate.reason = (f"wins in sample only: out of sample {candidate.objective_out:+.3f} <= {where} "
                                f"{kept.objective_out:+.3f} (in sample {candidate.objective_in:+.3f} "
                                f"> {kept.objective_in:+.3f})")
        elif candidate.ratio is not None and candidate.ratio < options.min_oos_ratio:
            candidate.reason = (f"overfit: out-of-sample/in-sample ratio {candidate.ratio:.2f} < min_oos_ratio "
                                f"{options.min_oos_ratio:g}")
        elif lone_spike(candidate, options, stability):
            candidate.reason = (f"lone spike: its ± one step neighbours reach {candidate.stability:.2f} of its "
                                f"in-sample objective on average (< min_stability {options.min_stability:g})")
        else:
            candidate.accepted = True
            candidate.targets_met = targets_met(candidate.out_of_sample, options)
            candidate.reason = (f"beats {where} in and out of sample"
                                + ("; design targets met out of sample" if candidate.targets_met else ""))
            kept = candidate
    return kept


def lone_spike(candidate: Decision, options: OptimizerConfig,
               stability: Callable[[Decision], float | None] | None) -> bool:
    """Score the candidate's stability (when a scorer is given and min_stability is on); True when it
    is below min_stability. A candidate that cannot be scored (no neighbour, objective <= 0) passes."""
    if stability is None or options.min_stability <= 0:
        return False
    candidate.stability = stability(candidate)
    return candidate.stability is not None and candidate.stability < options.min_stability


# -- the optimization ----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def redact_url(url: str) -> str:
    """A database URL without its password (the contract's one masking rule)."""
    return mask_credentials(url)


JOURNAL = "journal:"  # a storage "URL" naming a journal file: journal:/path/to/study.journal


def storage(url: str):
    """A ``journal:PATH`` file (this machine's workers), or an Optuna RDB storage with heartbeats (a crashed
    worker's trial on another host is failed and retried)."""
    import warnings

    from gobot.host.extras import require

    require("optimize", "optuna", "gobot optimize")

    optuna = import_optuna()
    from optuna import storages

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if url.startswith(JOURNAL):
        return _journal(url.removeprefix(JOURNAL))
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9
        retry = {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=2)}
    else:
        retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=2)}
    for attempt in range(6):
        try:
            opened = storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                                         grace_period=GRACE_SECONDS, **retry)
            return _write_ahead(opened) if url.startswith("sqlite") else opened
        except Exception as exc:
            # Workers starting together race to create Optuna's tables: the loser retries.
            racing = any(word in str(exc) for word in ("duplicate key", "already exists", "UniqueViolation", "locked"))
            if not racing or attempt == 5:
                error = exc
                break
            time.sleep(0.1 * 2**attempt)
    else:  # pragma: no cover
        error = RuntimeError("unreachable")
    try:
        raise error
    except Exception as exc:  # a wrong URL, an unreachable server, a missing driver
        raise OptimizerError(f"cannot open the optimizer storage {redact_url(url)}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}".replace(url, redact_url(url))) from None


def _journal(path: str):
    """Optuna's journal file: every change one appended line, every process holding the study in memory and
    reading only the lines added since its last look. A trial costs a few appends (about 4 ms of storage a
    trial, against 16 ms for SQLite in WAL mode and 24 ms in its default mode, in Optuna's own loop); no
    heartbeat, which only other hosts need: a dead worker of this machine is found by its process id.

    An append is one write under an exclusive ``flock`` of the journal, on a descriptor each process opens
    once: the kernel queues the workers of this machine and wakes the next at once. (Optuna's own lock makes
    and renames a symbolic link at each of a trial's eight appends, ~0.1 ms each, and a worker that finds it
    taken sleeps 1, 2, 4 ms...: 3 % of a --jobs 1 run, more with two workers.) Only gobot's appends use this
    lock: a study is not shared at the same moment with a program appending under Optuna's symbolic link.

    The lines are not fsynced one by one (Optuna's backend waits for the disk at each append, 1-2 ms each): a
    killed process loses nothing, a power cut at most the last trials, and a line cut short at the end is
    skipped when the journal is read."""
    import fcntl

    from optuna.storages import journal

    class Journal(journal.JournalFileBackend):
        _handle, _pid = None, None

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode("utf-8")
            if self._pid != os.getpid():  # this process's own descriptor: a flock is shared across a fork
                self._handle, self._pid = open(self._file_path, "ab", buffering=0), os.getpid()
            fcntl.flock(self._handle, fcntl.LOCK_EX)
            try:
                written = 0
                while written < len(text):  # an unbuffered write may take part of it
                    written += self._handle.write(text[written:])
            finally:
                fcntl.flock(self._handle, fcntl.LOCK_UN)

    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # <state_dir>/optimizer/, at a study's first start
        return journal.JournalStorage(Journal(path))
    except Exception as exc:
        raise OptimizerError(f"cannot open the optimizer journal {path}: {type(exc).__name__}: {exc}") from None


def _own_worker_id(opened):
    """The coordinator's journal storage in a worker it forked, with what it has read of the journal (replaying a
    journal shared by many studies again cost each worker 0.1-0.7 s of CPU in a bench run) and the
    worker's own id, as Optuna gives a storage restored from a snapshot: the trials it creates are its own."""
    replayed = getattr(opened, "_replay_result", None)
    if not all(hasattr(replayed, name) for name in ("_worker_id_prefix", "_worker_id_to_owned_trial_id")):
        return None  # pragma: no cover - another Optuna: the worker reads the journal again
    import uuid

    opened._worker_id_prefix = replayed._worker_id_prefix = f"{uuid.uuid4()}-"
    replayed._worker_id_to_owned_trial_id = {}
    replayed._last_created_trial_id_by_this_process = -1
    return opened


def _write_ahead(opened):
    """SQLite in WAL mode with ``synchronous=NORMAL``: a commit appends to the log without waiting for the disk
    (the default waits, about 5 ms a commit, and a trial makes a dozen), readers never block the writer, and a
    killed process loses nothing (a power cut may lose the last trials, never the file's consistency)."""
    from sqlalchemy import event

    def pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(opened.engine, "connect", pragmas)
    opened.engine.dispose()  # the connections of the table set-up are opened again, with the pragmas
    return opened


@dataclass
class Report:
    """What an optimization decided: the baseline, every trial's verdict, the parameters kept."""

    study: str
    storage: str
    strategy: str
    objective: str
    baseline: Decision
    decisions: list[Decision]
    kept: Decision
    folds: list[Fold]
    stopped: str
    pareto: list[int] = field(default_factory=list)

    @property
    def improved(self) -> bool:
        return self.kept.number is not None

    @property
    def selection(self) -> dict[str, Any]:
        """The winner's deflated Sharpe ratio among the trials (per-trade, in sample; see
        ``gobot.research.selection``) and its stability; empty without a winner."""
        if not self.improved:
            return {}
        sharpes = [moments(d.in_sample.get("return_sums", []))["sharpe"] for d in self.decisions]
        return {**deflate(self.kept.in_sample.get("return_sums", []), [s for s in sharpes if s is not None]),
                "stability": self.kept.stability}

    def as_dict(self) -> dict[str, Any]:
        return _clean({
            "study": self.study, "storage": self.storage, "strategy": self.strategy, "objective": self.objective,
            "folds": [asdict(f) for f in self.folds], "baseline": _shown(self.baseline),
            "winner": _shown(self.kept) if self.improved else None, "selection": self.selection,
            "targets_met": self.kept.targets_met, "stopped": self.stopped, "pareto_front": self.pareto,
            "trials": [_shown(d) for d in self.decisions],
        })


def _shown(decision: Decision) -> dict[str, Any]:
    """A decision as --json prints it: Sharpe, Sortino and Calmar null over fewer closed trades than the
    contract's MIN_RATIO_SAMPLE, as gobot backtest --json and gobot report print them (stored raw)."""
    from gobot_hookspecs.metrics import enough_for_ratios

    data = {f.name: getattr(decision, f.name) for f in fields(decision)}  # Report.as_dict's _clean copies it
    for key in ("in_sample", "out_of_sample"):
        if not enough_for_ratios(data[key].get("trades", 0)):
            data[key] = {**data[key], **dict.fromkeys(SAMPLED_RATIOS)}
    return data


class Optimization:
    """One study: a strategy, its candles, the execution rules, and the search and validation options."""

    def __init__(self, strategy: Strategy, series: list[Series], execution: ExecutionSettings,
                 gate_factory: Callable[[dict[str, float]], Gate], options: OptimizerConfig, *,
                 baseline_params: dict[str, float], storage_url: str = "", state_path=None, study_name: str = "",
                 path: str = "auto", ideas: Any = None, say: Say = print):
        """``storage_url`` empty: the default storage of ``state_path`` for this study (``default_storage_url``)."""
        from gobot.host.extras import require

        require("optimize", "optuna", "gobot optimize")
        if not strategy.parameters:
            raise OptimizerError(f"strategy '{strategy.name}' declares no parameters to optimise")
        self.strategy, self.series, self.execution = strategy, series, execution
        self.gate_factory, self.options, self.path = gate_factory, options, path
        self.baseline_params = dict(baseline_params)
        self.ideas, self.say = ideas, say
        self.objectives: list[str] = list(options.objectives)
        self.terms = parse_objective(options.objective)
        self.folds = walk_forward(series, options.folds, options.out_of_sample_percent)
        self.study_name = study_name or options.study or self.default_study_name()
        if not storage_url and state_path is None:
            raise OptimizerError("an optimization needs a storage URL or a state folder")
        self.storage_url = storage_url or default_storage_url(state_path, self.study_name)
        self._printed: set[int] = set()
        self._stability: dict[tuple, float | None] = {}  # params -> stability score (an evaluation each neighbour)
        # What this process has read of the study, kept between trials: each callback reads only the trials
        # finished since the last one (Optuna's cached storage), never every trial again.
        self._baseline: Decision | None = None
        self._candidates: dict[int, Decision] = {}
        self._pending: set[int] = set()
        self._study = None  # the study sync() read last: where stability scores are shared
        self._windows: dict[tuple[int, int], list[tuple[Series, int]]] = {}  # (start, end) -> candles, first bar
        self._inherited = None  # the coordinator's journal storage, what its forked workers start from
        self.unscanned = False  # prepare(scan=False) left a new study's baseline scan for later

    # -- evaluating a parameter set --------------------------------------------------------------

    def default_study_name(self) -> str:
        symbols = "+".join(s.symbol.replace("/", "") for s in self.series)
        objective = ",".join(self.objectives) if self.objectives else self.options.objective.replace(" ", "")
        span = f"{_day(self.series[0].timestamp[0])}-{_day(self.series[0].timestamp[-1])}"
        return f"{self.strategy.name}-{symbols}-{self.series[0].timeframe}-{span}-{objective}"

    def data_fingerprint(self) -> str:
        return ";".join(f"{s.symbol}:{s.timeframe}:{len(s)}:{int(s.timestamp[0])}:{int(s.timestamp[-1])}:"
                        f"{float(s.close[-1])!r}" for s in self.series)

    def execution_fingerprint(self) -> str:
        e = self.execution
        return (f"fill {e.fill}, fee {e.fee_percent:g} %, slippage {e.slippage_percent:g} %, stop "
                f"{_fmt(e.stop_loss_percent)} %, target {_fmt(e.take_profit_percent)} %, equity {e.start_equity:g}, "
                f"sizing {e.sizing}, risk {e.risk}, shorts {'yes' if e.allow_short else 'no'}")

    def evaluate(self, params: dict[str, float]) -> Evaluation:
        signals: list[Signals] = [compute_signals(self.strategy, params, s, self.path) for s in self.series]
        per_fold, ins, outs = [], [], []
        for fold in self.folds:
            row = {"fold": fold.number}
            for label, (start, end), bucket in (("in", fold.in_sample, ins), ("out", fold.out_of_sample, outs)):
                metrics = window_metrics(self.simulate_window(signals, params, start, end))
                bucket.append(metrics)
                row[label] = metrics
            per_fold.append(row)
        in_sample, out_of_sample = combine(ins), combine(outs)
        if self.objectives:
            values = [metric_value(in_sample, name) for name in self.objectives]
            first = [(1.0, self.objectives[0])]
            objective_in, objective_out = objective_value(in_sample, first), objective_value(out_of_sample, first)
        else:
            objective_in, objective_out = (objective_value(in_sample, self.terms),
                                           objective_value(out_of_sample, self.terms))
            values = [objective_in]
        return Evaluation(dict(params), in_sample, out_of_sample, per_fold, objective_in, objective_out, values)

    def stability(self, decision: Decision) -> float | None:
        """The decision's stability score: its neighbours at ± one declared step of each parameter,
        walk-forward evaluated, mean in-sample objective over its own (once per parameter set)."""
        key = tuple(sorted(decision.params.items()))
        if key not in self._stability and decision.objective_in <= 0:  # not judged: no neighbour to evaluate
            self._stability[key] = stability_score(decision.objective_in, [])
        if key not in self._stability:
            # Scored once per study where it can be: --jobs processes share the scores through the study.
            label = "stability " + " ".join(f"{name}={_fmt(value)}" for name, value in key)
            shared = self._study.user_attrs if self._study is not None else {}
            if label in shared:
                self._stability[key] = shared[label]
            else:
                around = [self.in_sample_objective(params)
                          for params in neighbours(decision.params, self.strategy.parameters)]
                self._stability[key] = stability_score(decision.objective_in, around)
                if self._study is not None:
                    self._study.set_user_attr(label, self._stability[key])
        return self._stability[key]

    def in_sample_objective(self, params: dict[str, float]) -> float:
        """``evaluate(params).objective_in`` without the out-of-sample windows (what a stability neighbour needs)."""
        signals = [compute_signals(self.strategy, params, s, self.path) for s in self.series]
        metrics = combine([window_metrics(self.simulate_window(signals, params, *fold.in_sample))
                           for fold in self.folds])
        return objective_value(metrics, [(1.0, self.objectives[0])] if self.objectives else self.terms)

    def simulate_window(self, signals: list[Signals], params: dict[str, float], start: int, end: int):
        """Trade the signals (worked out over all the data) on one window, handing the engine the window's
        candles and signals only: what it does once per call over every bar then covers the window, not the
        whole span six times a trial. It reads no bar outside the window, so the trades are the same."""
        if (start, end) not in self._windows:  # the window's candles, kept for every trial (views, no copies)
            import numpy as np

            self._windows[(start, end)] = [(s.between(start, end), int(np.searchsorted(s.timestamp, start, "left")))
                                           for s in self.series]
        parts = self._windows[(start, end)]
        cut = [_slice(sig, lo, lo + len(part)) for sig, (part, lo) in zip(signals, parts)]
        return simulate([part for part, _ in parts], cut, self.execution, self.gate_factory(params),
                        strategy=self.strategy.name, start_ms=start, end_ms=end)

    # -- the study ----------------------------------------------------------------------------------

    def _sampler(self, worker: int = 0):
        import optuna

        seed = None if self.options.seed is None else self.options.seed + worker
        # Optuna 5 reads constraints set on the trial (set_constraint); older ones take a function.
        constraints = self._constraints if self.options.min_trades and not _TRIAL_CONSTRAINTS else None
        if self.options.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.options.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints)
        return optuna.samplers.TPESampler(seed=seed, constraints_func=constraints, multivariate=True,
                                          n_startup_trials=min(10, max(3, self.options.max_iterations // 4)))

    def _constraints(self, trial) -> list[float]:
        """Optuna's feasibility: <= 0 when the candidate has at least ``min_trades`` in sample."""
        in_sample = trial.user_attrs.get("evaluation", trial.user_attrs).get("in_sample", {})
        return [float(self.options.min_trades - in_sample.get("trades", 0))]

    def open_study(self, worker: int = 0):
        import optuna

        directions = (["minimize" if name in MINIMISED else "maximize" for name in self.objectives]
                      if self.objectives else ["maximize"])
        opened = (self._inherited is not None and _own_worker_id(self._inherited)) or storage(self.storage_url)
        study = optuna.create_study(storage=opened, study_name=self.study_name,
                                    directions=directions, sampler=self._sampler(worker), load_if_exists=True)
        if [d.name.lower() for d in study.directions] != directions:
            raise OptimizerError(f"study '{self.study_name}' was made with other objectives; pick another --study")
        return study

    def prepare(self, scan: bool = True):
        """Open or resume the study; compute (or load) the baseline; retry trials of dead local workers. With
        ``scan`` off, a new study's baseline is left for ``scan`` (``self.unscanned`` says so)."""
        study = self.open_study()
        attrs = study.user_attrs
        fingerprint = self.data_fingerprint()
        self.unscanned = False
        if "baseline" in attrs:
            if attrs.get("data") != fingerprint:
                raise OptimizerError(f"study '{self.study_name}' was made on other candles ({attrs.get('data')}); "
                                     "use the same --data/--from/--to, or another --study")
            if attrs.get("execution", self.execution_fingerprint()) != self.execution_fingerprint():
                raise OptimizerError(f"study '{self.study_name}' was made with other execution settings "
                                     f"({attrs['execution']}; now {self.execution_fingerprint()}): use the same "
                                     "options, or another --study")
            self.say(f"resuming study '{self.study_name}': {len(self._complete(study))} trials done")
        elif scan:
            self.scan(study)
        else:
            self.unscanned = True
        self._retry_dead_workers(study)
        return study

    def scan(self, study) -> None:
        """Backtest the current parameters on every fold and store them as the study's baseline."""
        self.say(f"scan: backtesting the current parameters on {len(self.folds)} walk-forward folds")
        baseline = self.evaluate(self.baseline_params)
        study.set_user_attr("data", self.data_fingerprint())  # first: a worker that sees the baseline sees the data
        study.set_user_attr("execution", self.execution_fingerprint())
        study.set_user_attr("baseline", _clean(baseline.as_dict()))
        study.set_user_attr("strategy", self.strategy.name)
        study.set_user_attr("objective", self.objectives or self.options.objective)
        self.unscanned = False

    def baseline(self, study) -> Decision:
        """The baseline as stored (read once: it never changes after the scan)."""
        if self._baseline is None:
            data = study.user_attrs["baseline"]
            self._baseline = Decision(None, data["params"], "baseline", data["objective_in"], data["objective_out"],
                                      data["ratio"], _unclean(data["in_sample"]), _unclean(data["out_of_sample"]),
                                      reason="the current parameters",
                                      ratio_sample=self.options.min_ratio_trades if sampled_ratio(self.options) else 0)
        return self._baseline

    @staticmethod
    def _complete(study) -> list:
        from optuna.trial import TrialState

        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def _retry_dead_workers(self, study) -> None:
        """Trials RUNNING on this host whose process is gone (killed mid-trial): fail and re-enqueue them."""
        from optuna.trial import TrialState

        host = socket.gethostname()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = trial.user_attrs.get("worker", "")
            name, _, pid = worker.rpartition(":")
            if name != host or not pid.isdigit() or _alive(int(pid)):
                continue
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"source": trial.user_attrs.get("source", "retry"),
                                                          "retry_of": trial.number})
            self.say(f"#{trial.number} was interrupted (worker {worker} is gone): failed, and queued again")

    def sync(self, study) -> int:
        """Read the trials finished since the last call (one query); returns how many trials are complete."""
        from optuna.trial import TrialState

        complete = 0
        self._pending, self._study = set(), study
        for trial in study.get_trials(deepcopy=False):
            if trial.state == TrialState.COMPLETE:
                complete += 1
                if trial.number not in self._candidates:
                    self._add(trial)
            elif trial.state in (TrialState.RUNNING, TrialState.WAITING):
                self._pending.add(trial.number)
        return complete

    def _add(self, trial) -> None:
        attrs = {**trial.user_attrs, **trial.user_attrs.get("evaluation", {})}  # one attribute, or (older) several
        if "in_sample" in attrs:
            self._candidates[trial.number] = Decision(
                trial.number, dict(trial.params), attrs.get("source", "?"), attrs["objective_in"],
                attrs["objective_out"], attrs.get("ratio"), _unclean(attrs["in_sample"]),
                _unclean(attrs["out_of_sample"]), rationale=attrs.get("rationale", ""))

    def decisions(self, study, synced: bool = False) -> tuple[Decision, list[Decision], Decision]:
        baseline = self.baseline(study)
        if not synced:
            self.sync(study)
        candidates = sorted(self._candidates.values(), key=lambda d: d.number)
        kept = decide(baseline, candidates, self.options, self.stability)
        return baseline, candidates, kept

    # -- one worker's trials --------------------------------------------------------------------------

    def objective(self, trial):
        trial.set_user_attr("worker", WORKER)  # before the work: a dead worker's RUNNING trial is found by it
        params = {}
        for name, spec in self.strategy.parameters.items():
            if spec.integer:
                step = max(1, int(round(spec.step))) if spec.step else 1
                params[name] = trial.suggest_int(name, int(spec.low), int(spec.high), step=step)
            else:
                step = (spec.step if spec.step
                        and (spec.high - spec.low) / spec.step == int((spec.high - spec.low) / spec.step) else None)
                params[name] = trial.suggest_float(name, spec.low, spec.high, step=step)
        kill_point(f"optimizer_trial:{trial.number}")  # SIGKILL while trial N runs (resume tests)
        evaluation = self.evaluate(params)
        if _TRIAL_CONSTRAINTS and self.options.min_trades:
            trial.set_constraint("min_trades", float(self.options.min_trades - evaluation.in_sample["trades"]))
        record = {key: value for key, value in _clean(evaluation.as_dict()).items() if key != "params"}
        if "source" not in trial.user_attrs:  # an enqueued trial (llm, retry) came with its own
            record["source"] = self.options.sampler
        trial.set_user_attr("evaluation", record)  # one write (a storage transaction) for the whole evaluation
        return evaluation.values if self.objectives else evaluation.values[0]

    def after_trial(self, study, trial, say_trials: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> None:
        """Stop at max_iterations or when an accepted candidate meets the targets; print the new verdicts; ask
        the model for ideas. One read of the trials finished since the last one. (A forked worker's first trials
        may end before the coordinator has stored the baseline: until then only max_iterations can stop them.)"""
        complete = self.sync(study)
        if self._baseline is None and "baseline" not in study.user_attrs:
            if complete >= self.options.max_iterations:
                study.set_user_attr("stopped", f"max_iterations ({self.options.max_iterations}) reached")
                study.stop()
            return
        _, candidates, kept = self.decisions(study, synced=True)
        if say_trials:
            self._say_new(candidates)
        if progress:
            progress(complete, self.options.max_iterations)
        if complete >= self.options.max_iterations:
            study.set_user_attr("stopped", f"max_iterations ({self.options.max_iterations}) reached")
            study.stop()
        elif kept.targets_met:
            study.set_user_attr("stopped", f"design targets met out of sample by #{kept.number}")
            study.stop()
        elif self.ideas is not None and (trial.number + 1) % self.options.llm_every == 0:
            self.ask_model(study, candidates, kept)

    def ask_model(self, study, candidates: list[Decision], kept: Decision) -> None:
        idea = self.ideas.propose(self.strategy, self.objectives or self.options.objective, kept, candidates[-20:])
        if idea.params is None:
            self.say(f"llm idea rejected: {idea.reason}")
            rejected = (list(study.user_attrs.get("llm_rejected", []))[-49:]
                        + [{"after": len(candidates), "reason": idea.reason}])
            study.set_user_attr("llm_rejected", rejected)
            return
        study.enqueue_trial(idea.params, user_attrs={"source": "llm", "rationale": idea.rationale[:500]})
        self.say(f"llm idea queued: {' '.join(f'{k}={_fmt(v)}' for k, v in idea.params.items())} "
                 f"({idea.rationale[:120]})")

    def work(self, worker: int = 0, say_trials: bool = True) -> None:
        """Run trials until the study stops (max_iterations, targets) in this process."""
        study = self.open_study(worker)
        study.optimize(self.objective, n_trials=self.options.max_iterations, gc_after_trial=False,
                       callbacks=[lambda study, trial: self.after_trial(study, trial, say_trials)])

    def print_new(self, study) -> None:
        """Print the verdicts of trials whose earlier trials are all done (so the verdicts are final)."""
        _, candidates, _ = self.decisions(study)
        self._say_new(candidates)

    def _say_new(self, candidates: list[Decision], limit: float = math.inf) -> None:
        horizon = min(min(self._pending) if self._pending else math.inf, limit)
        for candidate in candidates:
            if candidate.number < horizon and candidate.number not in self._printed:
                self._printed.add(candidate.number)
                self.say(candidate.line())

    # -- the whole run ----------------------------------------------------------------------------

    def run(self, jobs: int = 1, progress: Callable[[int, int], None] | None = None) -> Report:
        # A new study's workers are forked before its baseline scan, which this process then runs beside their
        # trials instead of before them (not with model ideas: a worker asks for them by the verdicts).
        study = self.prepare(scan=jobs <= 1 or self.ideas is not None)
        if self.unscanned:
            study.set_user_attr("stopped", "")
            self._run_workers(study, jobs, progress)
            return self.report(study)
        baseline = self.baseline(study)
        self.say(baseline.line())
        done = len(self._complete(study))
        if done >= self.options.max_iterations:
            self.say(f"max_iterations ({self.options.max_iterations}) already reached: reporting")
        elif study.user_attrs.get("stopped", "").startswith("design targets"):
            self.say(f"the study already stopped: {study.user_attrs['stopped']}")
        elif jobs <= 1:
            study.set_user_attr("stopped", "")  # a larger max_iterations continues a study that reached the old one
            self._printed = {t.number for t in self._complete(study)}
            study.optimize(self.objective, n_trials=self.options.max_iterations - done, gc_after_trial=False,
                           callbacks=[lambda s, t: self.after_trial(s, t, True, progress)])
        else:
            study.set_user_attr("stopped", "")
            self._run_workers(study, jobs, progress)
        return self.report(study)

    def _run_workers(self, study, jobs: int, progress) -> None:
        """``jobs - 1`` forked workers and this process run trials on the study together; this one prints."""
        import multiprocessing

        self._printed = {t.number for t in self._complete(study)}
        engine = getattr(getattr(study._storage, "_backend", study._storage), "engine", None)
        if engine is not None:
            engine.dispose()  # the workers open their own database connections
        self._inherited = study._storage if self.storage_url.startswith(JOURNAL) else None
        context = multiprocessing.get_context("fork")
        workers = [context.Process(target=_worker_main, args=(self, index), name=f"gobot-optimize-{index}")
                   for index in range(1, jobs)]
        for process in workers:
            process.start()
        self._inherited = None
        finished = False
        try:
            if self.unscanned:
                self.scan(study)
                self.say(self.baseline(study).line())
            study.optimize(self.objective, n_trials=self.options.max_iterations, gc_after_trial=False,
                           callbacks=[lambda s, t: self.after_trial(s, t, True, progress)])
            for process in workers:  # a trial in flight when the study stopped is finished and stored
                process.join()
            finished = True
        finally:
            if not finished:
                for process in workers:
                    process.terminate()
        self.print_new(study)
        failed = [p.name for p in workers if p.exitcode]
        if failed:
            self.say(f"worker processes ended with an error: {', '.join(failed)}")

    def report(self, study) -> Report:
        baseline, candidates, kept = self.decisions(study)
        stopped = study.user_attrs.get("stopped") or (
            f"max_iterations ({self.options.max_iterations}) reached" if len(candidates) >= self.options.max_iterations
            else f"not finished: {len(candidates)} trials done (interrupted, or workers still running)")
        pareto = []
        if self.objectives:
            pareto = sorted(t.number for t in study.best_trials)
        return Report(self.study_name, redact_url(self.storage_url), self.strategy.name,
                      ", ".join(self.objectives) if self.objectives else self.options.objective, baseline, candidates,
                      kept, self.folds, stopped, pareto)


def _slice(signals: Signals, lo: int, hi: int) -> Signals:
    """The signals of bars ``[lo, hi)`` (views)."""
    from dataclasses import replace

    return replace(signals, action=signals.action[lo:hi], confidence=signals.confidence[lo:hi],
                   stop_loss=None if signals.stop_loss is None else signals.stop_loss[lo:hi],
                   take_profit=None if signals.take_profit is None else signals.take_profit[lo:hi])


def import_optuna():
    """Optuna, imported without the Redis client its Redis journal backend imports eagerly when installed (0.2 s
    and more of a serial start that ``--jobs`` cannot share): gobot never uses that backend (journal files, SQLite,
    PostgreSQL), and ``redis`` stays importable for the rest of the process (the rate limiter's). Its progress bar's
    ``tqdm.auto`` (tqdm and asyncio, ~30 ms) is imported when a bar is first made, which gobot never asks for."""
    if "optuna" in sys.modules:
        return sys.modules["optuna"]
    stand_ins = {name: stand_in for name, stand_in in (("redis", None), ("tqdm.auto", _lazy_tqdm_module()))
                 if name not in sys.modules}
    # `import redis` raises ImportError (Optuna's try_import notes it and goes on); `from tqdm.auto import tqdm`
    # takes the stand-in, which imports the real one when it is used.
    sys.modules.update(stand_ins)
    try:
        import optuna
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name, stand_in) is stand_in:
                sys.modules.pop(name, None)
    return optuna


def _lazy_tqdm_module():
    """A ``tqdm.auto`` whose ``tqdm`` imports the real ``tqdm.auto`` when it is first called or asked anything."""
    import types

    def real():
        from tqdm.auto import tqdm

        return tqdm

    class Lazy(type):
        def __getattr__(cls, name: str):
            return getattr(real(), name)

    class tqdm(metaclass=Lazy):  # noqa: N801  the name Optuna imports
        def __new__(cls, *args: Any, **kwargs: Any):
            return real()(*args, **kwargs)

    module = types.ModuleType("tqdm.auto")
    module.tqdm = tqdm
    return module


def _trial_constraints() -> bool:
    try:
        optuna = import_optuna()
    except ImportError:  # pragma: no cover
        return False
    return hasattr(optuna.trial.Trial, "set_constraint")


_TRIAL_CONSTRAINTS = _trial_constraints()


def _worker_main(optimization: Optimization, index: int) -> None:
    """A worker process (forked): its own storage connection, its own sampler seed."""
    global WORKER
    WORKER = f"{socket.gethostname()}:{os.getpid()}"
    optimization.say = lambda text: None  # the coordinator prints the verdicts
    optimization.work(index, say_trials=False)


def _unclean(value: Any) -> Any:
    if value == "inf":
        return math.inf
    if isinstance(value, dict):
        return {k: _unclean(v) for k, v in value.items()}
    return value


def _day(ms: Any) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).strftime("%Y%m%d")


STUDIES_FOLDER = "optimizer"  # in state_dir: one journal file per study, <name>.journal
SHARED_JOURNAL = "optimizer.journal"  # in state_dir: every study in one journal, as earlier versions kept them


def default_storage_url(state_path, study: str) -> str:
    """The study's own journal file ``<state_dir>/optimizer/<study>.journal``, so that opening a study reads its
    lines only, not every study kept; unless $GOBOT_OPTIMIZER_STORAGE names a database, the state folder holds the
    SQLite file of an earlier version (whose studies it keeps resuming), or the study is in the journal file that
    earlier versions shared between all studies (it is resumed there)."""
    url = os.environ.get("GOBOT_OPTIMIZER_STORAGE", "")
    if url:
        return url
    state_path.mkdir(parents=True, exist_ok=True)
    earlier, shared = state_path / "optimizer.db", state_path / SHARED_JOURNAL
    if earlier.exists() and not shared.exists():
        return f"sqlite:///{earlier.resolve()}"
    own = state_path / STUDIES_FOLDER / study_file_name(study)
    if not own.exists() and shared.exists() and journal_holds(shared, study):
        return f"{JOURNAL}{shared.resolve()}"
    return f"{JOURNAL}{own.resolve()}"


def study_file_name(study: str) -> str:
    """``<study>.journal`` with every character but letters, digits and ``.+=,_-`` as ``_``; a name that changes or
    is long gets a hash of the full name (two names that still meet share one file, which a journal allows)."""
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9.+=,_-]", "_", study).lstrip(".") or "_"
    if safe != study or len(safe) > 120:
        safe = f"{safe[:120]}-{hashlib.sha256(study.encode('utf-8')).hexdigest()[:8]}"
    return f"{safe}.journal"


def journal_holds(path, study: str) -> bool:
    """Whether the journal file creates that study: its lines scanned as bytes, only those naming a study parsed
    (about 30 times cheaper than Optuna's replay of every line)."""
    with open(path, "rb") as handle:
        for line in handle:
            if b'"study_name"' not in line:
                continue
            try:
                log = json.loads(line)
            except ValueError:  # a line cut short at the end
                continue
            if log.get("study_name") == study:
                return True
    return False


def selection_text(selection: dict[str, Any]) -> str:
    """"deflated Sharpe 0.93 over 50 trials (per-trade Sharpe 0.21, 140 trades), stability 0.87"."""
    if not selection:
        return "no winner"
    dsr, sharpe = selection.get("deflated_sharpe"), selection.get("sharpe_per_trade")
    stability = selection.get("stability")
    return ((f"deflated Sharpe {dsr:.2f}" if dsr is not None else "deflated Sharpe —")
            + f" over {selection['trials']} trials (per-trade Sharpe "
            + (f"{sharpe:.2f}" if sharpe is not None else "—") + f", {selection['trades']} trades), stability "
            + (f"{stability:.2f}" if stability is not None else "— (not scored)"))


# -- applying a winner --------------------------------------------------------------------------------

ARCHIVE_FILE = "strategy_archive.jsonl"  # in state_dir: every version replaced by gobot optimize --apply


def request_apply(state_path, report: Report, source: str) -> dict[str, Any]:
    """Leave the winner for the bot's adjust phase, which makes it a new strategy version."""
    state_path.mkdir(parents=True, exist_ok=True)
    kept = report.kept
    selection = report.selection
    request = {
        "strategy": report.strategy, "params": kept.params, "study": report.study, "trial": kept.number,
        "source": source, "created_at": datetime.now(timezone.utc).isoformat(),
        "reason": (f"optimizer: study '{report.study}' trial #{kept.number} — {report.objective} in sample "
                   f"{kept.objective_text('in')}, out of sample {kept.objective_text('out')} (baseline "
                   f"{report.baseline.objective_text('in')} / {report.baseline.objective_text('out')}); "
                   + selection_text(selection)),
        "deflated_sharpe": selection.get("deflated_sharpe"), "stability": selection.get("stability"),
        "trials": selection.get("trials"),
    }
    from gobot.run.state import (
        atomic_write,  # owner-only, like every file in state_dir; a dot temporary the start-up cleans
    )

    atomic_write(state_path / REQUEST_FILE, json.dumps(_clean(request), indent=2))
    return request


def archive_version(state_path, strategy: str, previous: dict[str, float], new: dict[str, float], note: str) -> None:
    state_path.mkdir(parents=True, exist_ok=True)
    entry = {"time": datetime.now(timezone.utc).isoformat(), "strategy": strategy, "previous": previous, "new": new,
             "note": note}
    with (state_path / ARCHIVE_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def write_strategy_params(config_path, strategy: str, params: dict[str, float]) -> None:
    """Write ``[strategies.<name>]`` into config.toml, replacing that table and keeping everything else."""
    import re

    from gobot.config import tomllib

    text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*strategies\s*\.\s*" + re.escape(strategy) + r"\s*\]\s*(#.*)?$")
    body = [f"{name} = {_toml_number(value)}" for name, value in params.items()]
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        block = ["", f"[strategies.{strategy}]", "# written by gobot optimize --apply", *body]
        lines = lines + block
    else:
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\s*\[", lines[i])), len(lines))
        lines = lines[: start + 1] + ["# written by gobot optimize --apply", *body, ""] + lines[end:]
    new_text = "\n".join(lines).rstrip("\n") + "\n"
    parsed = tomllib.loads(new_text)  # never write a file that no longer parses
    if parsed.get("strategies", {}).get(strategy) is None:
        raise OptimizerError(f"{config_path}: could not write [strategies.{strategy}]")
    temporary = config_path.with_name(config_path.name + ".tmp")
    temporary.write_text(new_text, encoding="utf-8")
    os.replace(temporary, config_path)


def _toml_number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return repr(value) if isinstance(value, float) else str(value)
