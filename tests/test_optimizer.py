"""The optimizer: Optuna improves a bad parameter set, walk-forward validation rejects one that wins
only in sample, the design targets end the loop, every trial is stored and an interrupted run resumes,
trials run in worker processes (a new study's before its baseline exists) and across workers sharing a
PostgreSQL study, a model's ideas are validated and marked, and a winner reaches config.toml and the bot's
adjust phase."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from gobot.config import OptimizerConfig
from gobot.research.backtest.engine import ExecutionSettings, SimpleGate, Sizing
from gobot.research.market_data import Series, find_gaps
from gobot.research.optimizer import Optimization, decide, request_apply, storage, walk_forward, write_strategy_params
from gobot_hookspecs import Action, ParamSpec, Signal
from gobot_plugins.sma_cross.strategy import SmaCrossStrategy

T0 = 1_767_225_600_000
GOBOT = str(Path(sys.executable).parent / "gobot")


def wave(n: int = 6000, period: int = 400, seed: int = 1) -> Series:
    """A noisy sine around 100: an SMA cross with the right windows profits in every stretch of it."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    close = 100 * (1 + 0.05 * np.sin(2 * np.pi * i / period)) * np.exp(np.cumsum(rng.normal(0, 0.0005, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    ts = T0 + i.astype(np.int64) * 60_000
    return Series("BTC/USDT", "1m", ts, open_, np.maximum(open_, close) * 1.0005, np.minimum(open_, close) * 0.9995,
                  close, np.ones(n), gaps=find_gaps(ts, 60_000))


def write_csv(series: Series, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "BTC_USDT-1m.csv"
    rows = np.column_stack([series.timestamp, series.open, series.high, series.low, series.close, series.volume])
    with path.open("w") as handle:
        handle.write("timestamp_ms,open,high,low,close,volume\n")
        np.savetxt(handle, rows, fmt=["%d", "%.10g", "%.10g", "%.10g", "%.10g", "%.10g"], delimiter=",")
    return path


LONG_ONLY = ExecutionSettings(fee_percent=0.1, slippage_percent=0.0, stop_loss_percent=None, take_profit_percent=None,
                              start_equity=1000, sizing=Sizing("all_in"), allow_short=False)


def optimization(tmp_path, strategy, series, baseline, execution=LONG_ONLY, lines=None, **options) -> Optimization:
    # min_ratio_trades 0: these tests drive the search's mechanics on a few dozen trades (the sample gate and the
    # other statistics have their own tests, test_optimizer_statistics.py).
    config = OptimizerConfig(**{"max_iterations": 12, "min_trades": 3, "seed": 3, "folds": 3, "min_ratio_trades": 0,
                                **options})
    say = lines.append if lines is not None else (lambda text: None)
    return Optimization(strategy, [series], execution, lambda params: SimpleGate(execution.sizing), config,
                        baseline_params=baseline, storage_url=f"sqlite:///{tmp_path / 'optimizer.db'}", say=say)


def test_the_default_storage_is_the_study_s_own_journal_file_unless_an_earlier_sqlite_study_is_there(tmp_path,
                                                                                                      monkeypatch):
    from gobot.research.optimizer import default_storage_url

    monkeypatch.delenv("GOBOT_OPTIMIZER_STORAGE", raising=False)
    own = (tmp_path / "new" / "optimizer" / "weekly.journal").resolve()
    assert default_storage_url(tmp_path / "new", "weekly") == f"journal:{own}"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "optimizer.db").write_bytes(b"")
    assert (default_storage_url(tmp_path / "old", "weekly")
            == f"sqlite:///{(tmp_path / 'old' / 'optimizer.db').resolve()}")


def test_a_study_in_the_journal_earlier_versions_shared_is_resumed_there_and_a_new_one_gets_its_own(tmp_path,
                                                                                                   monkeypatch):
    import optuna

    from gobot.research.optimizer import default_storage_url

    monkeypatch.delenv("GOBOT_OPTIMIZER_STORAGE", raising=False)
    shared = tmp_path / "optimizer.journal"
    optuna.create_study(storage=storage(f"journal:{shared}"), study_name="sma-BTCUSDT-0.5*sharpe")
    assert default_storage_url(tmp_path, "sma-BTCUSDT-0.5*sharpe") == f"journal:{shared.resolve()}"
    fresh = default_storage_url(tmp_path, "other/study")
    assert fresh.startswith(f"journal:{(tmp_path / 'optimizer').resolve()}/other_study-")
    assert fresh.endswith(".journal")
    optuna.create_study(storage=storage(fresh), study_name="other/study")
    assert sorted(p.name for p in (tmp_path / "optimizer").iterdir() if p.suffix == ".journal") == [
        fresh.rsplit("/", 1)[1]]


def test_names_that_are_not_file_names_get_distinct_files():
    from gobot.research.optimizer import study_file_name

    assert study_file_name("weekly") == "weekly.journal"
    names = {study_file_name(name) for name in ("a/b", "a b", "a*b", "../a", "x" * 300)}
    assert len(names) == 5 and all("/" not in n and not n.startswith(".") and len(n) < 140 for n in names)


def test_walk_forward_windows_roll_and_the_out_of_sample_ones_tile_the_end():
    folds = walk_forward([wave(1000)], 3, 25)
    ins = [f.in_sample for f in folds]
    outs = [f.out_of_sample for f in folds]
    assert all(a[1] == b[0] for a, b in zip(ins, outs))  # each OOS window starts where its IS window ends
    assert all(o1[1] == o2[0] for o1, o2 in zip(outs, outs[1:]))  # consecutive, no overlap
    assert outs[-1][1] == T0 + 1000 * 60_000
    assert all((b - a) * 4 == pytest.approx(d - c, abs=4) for (a, b), (c, d) in zip(outs, ins))


def test_optuna_improves_a_deliberately_bad_parameter_set_in_and_out_of_sample(tmp_path):
    lines: list[str] = []
    run = optimization(tmp_path, SmaCrossStrategy(), wave(), {"fast": 27, "slow": 18}, lines=lines,
                       max_iterations=15).run()
    assert run.improved, lines
    assert run.kept.objective_in > run.baseline.objective_in and run.kept.objective_out > run.baseline.objective_out
    assert run.kept.accepted and run.kept.reason.startswith("beats")
    spec = SmaCrossStrategy.parameters
    for decision in run.decisions:
        assert all(spec[k].low <= v <= spec[k].high for k, v in decision.params.items())
    assert lines[0].startswith("scan: backtesting the current parameters")
    assert any(line.startswith(f"#{run.kept.number} ") and "ACCEPTED" in line for line in lines)


class Regime:
    """mode 1 = always long, 0 = stay out: on data that rises in sample and falls out of sample,
    mode 1 is the textbook candidate that wins only in sample."""

    name = "regime"
    parameters = {"mode": ParamSpec(default=0, low=0, high=1, description="0 out, 1 long")}

    def signal(self, symbol, candles, params):
        action = Action.LONG if params["mode"] == 1 else Action.HOLD
        return Signal(symbol=symbol, action=action, confidence=1.0 if action is Action.LONG else 0.0)

    def vectorized(self, symbol, candles, params):
        n = len(candles.close)
        return {"action": np.full(n, 1 if params["mode"] == 1 else 0, dtype=np.int8)}


def up_then_down(n: int = 5000) -> Series:
    rng = np.random.default_rng(9)
    drift = np.where(np.arange(n) < n * 0.8, 0.0004, -0.0012)  # folds=1, 25 %: in sample is the first 80 %
    close = 100 * np.exp(np.cumsum(drift + rng.normal(0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    ts = T0 + np.arange(n, dtype=np.int64) * 60_000
    return Series("BTC/USDT", "1m", ts, open_, np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999,
                  close, np.ones(n), gaps=[])


def test_a_candidate_that_wins_only_in_sample_is_rejected_with_that_reason(tmp_path):
    execution = ExecutionSettings(fee_percent=0.05, slippage_percent=0.0, stop_loss_percent=1.0,
                                  take_profit_percent=1.0, start_equity=1000, sizing=Sizing("all_in"))
    opt = optimization(tmp_path, Regime(), up_then_down(), {"mode": 0}, execution, folds=1, max_iterations=1,
                       min_trades=0)
    opt.prepare().enqueue_trial({"mode": 1}, user_attrs={"source": "test"})
    report = opt.run()
    (candidate,) = report.decisions
    assert candidate.objective_in > 0 > candidate.objective_out
    assert not candidate.accepted and candidate.reason.startswith("wins in sample only")
    assert not report.improved and report.kept.params == {"mode": 0}


def test_the_optimizers_trade_stats_are_the_contracts_trade_metrics_to_the_bit():
    from gobot.research.backtest.engine import compute_signals, simulate
    from gobot.research.optimizer import trade_stats
    from gobot_hookspecs import metrics as contract

    series = wave()
    for params in ({"fast": 27, "slow": 18}, {"fast": 5, "slow": 60}, {"fast": 40, "slow": 41}):
        signals = compute_signals(SmaCrossStrategy(), params, series)
        trades = simulate([series], [signals], LONG_ONLY, SimpleGate(LONG_ONLY.sizing)).trades
        assert len(trades) > 10
        for sample in (trades, [t for t in trades if t.pnl > 0], trades[:1], []):
            expected = contract.trade_metrics(sample, 1000.0, curve=[])
            stats = trade_stats([t.pnl for t in sample])
            assert stats == {key: getattr(expected, key) for key in stats}


STOPS_AND_SHORTS = ExecutionSettings(fee_percent=0.1, slippage_percent=0.05, stop_loss_percent=0.3,
                                     take_profit_percent=0.6, start_equity=1000, sizing=Sizing("all_in"))


@pytest.mark.parametrize("execution", [LONG_ONLY, STOPS_AND_SHORTS, ExecutionSettings(
    fill="close", fee_percent=0.1, slippage_percent=0.0, stop_loss_percent=0.5, take_profit_percent=None,
    start_equity=1000, sizing=Sizing.parse("10%"))])
@pytest.mark.parametrize("symbols", [1, 2])
def test_a_window_traded_on_its_own_candles_makes_the_trades_of_the_whole_series(tmp_path, execution, symbols):
    from dataclasses import replace

    from gobot.research.backtest.engine import compute_signals, simulate

    series = [wave(), replace(wave(seed=2), symbol="ETH/USDT").between(T0 + 700 * 60_000, None)][:symbols]
    opt = Optimization(SmaCrossStrategy(), series, execution, lambda params: SimpleGate(execution.sizing),
                       OptimizerConfig(folds=3), baseline_params={"fast": 10, "slow": 50},
                       storage_url=f"sqlite:///{tmp_path / 'optimizer.db'}", say=lambda text: None)

    def traded(sim):
        return ([(t.symbol, t.entry_price, t.exit_price, t.amount, t.pnl, t.exit_reason, t.entry_ms, t.exit_ms)
                 for t in sim.trades], sim.end_equity, sim.equity.tolist(), sim.timeline.tolist())

    for params in ({"fast": 5, "slow": 60}, {"fast": 27, "slow": 18}):
        signals = [compute_signals(SmaCrossStrategy(), params, s) for s in series]
        for fold in opt.folds:
            for start, end in (fold.in_sample, fold.out_of_sample):
                whole = simulate(series, signals, execution, SimpleGate(execution.sizing), strategy="sma_cross",
                                 start_ms=start, end_ms=end)
                assert whole.trades and traded(opt.simulate_window(signals, params, start, end)) == traded(whole)


@pytest.mark.parametrize("options", [{}, {"objective": "0.5*sharpe + 0.5*calmar"},
                                     {"objectives": ["max_drawdown_pct", "sharpe"]}])
def test_a_stability_neighbours_in_sample_objective_is_its_walk_forward_one(tmp_path, options):
    opt = optimization(tmp_path, SmaCrossStrategy(), wave(), {"fast": 27, "slow": 18}, **options)
    for params in ({"fast": 5, "slow": 60}, {"fast": 27, "slow": 18}, {"fast": 12, "slow": 80}):
        assert opt.in_sample_objective(params) == opt.evaluate(params).objective_in


def test_the_decision_chain_refuses_too_few_trades_and_a_poor_out_of_sample_ratio():
    from gobot.research.optimizer import Decision

    options = OptimizerConfig(min_trades=10, min_oos_ratio=0.5, min_ratio_trades=0)
    base = Decision(None, {"x": 0}, "baseline", 0.1, 0.05, 0.5, {"trades": 50}, {"trades": 12})
    thin = Decision(0, {"x": 1}, "tpe", 3.0, 2.0, 0.66, {"trades": 4}, {"trades": 1})
    overfit = Decision(1, {"x": 2}, "tpe", 4.0, 0.5, 0.125, {"trades": 40}, {"trades": 10})
    good = Decision(2, {"x": 3}, "tpe", 2.0, 1.5, 0.75, {"trades": 40}, {"trades": 10})
    kept = decide(base, [thin, overfit, good], options)
    assert thin.reason.startswith("too few trades in sample")
    assert overfit.reason.startswith("overfit: out-of-sample/in-sample ratio 0.12")
    assert good.accepted and kept is good


def test_the_design_targets_end_the_loop_when_met_out_of_sample(tmp_path):
    easy = dict(target_win_rate=0.0, target_profit_factor=0.0, target_max_drawdown_pct=100.0, target_trades=1)
    report = optimization(tmp_path, SmaCrossStrategy(), wave(), {"fast": 27, "slow": 18}, max_iterations=40,
                          **easy).run()
    assert report.kept.targets_met
    assert report.stopped.startswith("design targets met out of sample")
    assert len(report.decisions) < 40


def test_several_objectives_search_a_pareto_front(tmp_path):
    report = optimization(tmp_path, SmaCrossStrategy(), wave(3000), {"fast": 27, "slow": 18}, max_iterations=6,
                          objectives=["sharpe", "max_drawdown_pct"], sampler="nsga2").run()
    assert report.pareto and set(report.pareto) <= {d.number for d in report.decisions}
    assert report.objective == "sharpe, max_drawdown_pct"


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_trials_run_in_worker_processes_on_one_study(tmp_path, kind):
    lines: list[str] = []
    opt = optimization(tmp_path, SmaCrossStrategy(), wave(3000), {"fast": 27, "slow": 18}, lines=lines,
                       max_iterations=8, jobs=2)
    if kind == "journal":
        opt.storage_url = f"journal:{tmp_path / 'optimizer.journal'}"
    report = opt.run(jobs=2)
    printed = sorted(int(line.split(" ")[0][1:]) for line in lines if line.startswith("#"))
    assert printed == sorted(d.number for d in report.decisions)  # the coordinator says each verdict once
    assert 8 <= len(report.decisions) <= 9  # a worker may finish one trial in flight after the limit
    import optuna

    study = optuna.load_study(study_name=opt.study_name, storage=storage(opt.storage_url))
    workers = {t.user_attrs["worker"] for t in study.trials if "worker" in t.user_attrs}
    assert len(workers) == 2 and str(os.getpid()) in {w.split(":")[1] for w in workers}  # this process and a fork


def test_a_forked_worker_keeps_what_the_coordinator_read_of_the_journal_under_its_own_worker_id(tmp_path):
    import optuna

    from gobot.research.optimizer import _own_worker_id

    opened = storage(f"journal:{tmp_path / 'optimizer.journal'}")
    optuna.create_study(storage=opened, study_name="shared").enqueue_trial({"x": 1.0})
    read, coordinator = opened._replay_result.log_number_read, opened._replay_result.worker_id
    worker = _own_worker_id(opened)
    assert worker._replay_result.log_number_read == read  # nothing read again
    assert worker._replay_result.worker_id != coordinator
    trial = optuna.load_study(study_name="shared", storage=worker).ask()
    assert trial.number == 0 and trial.suggest_float("x", 0.0, 2.0) == 1.0  # the worker owns the trial it took


def test_an_append_waits_for_the_journal_lock_even_in_a_process_forked_after_the_coordinator_appended(tmp_path):
    import fcntl

    import optuna

    path = tmp_path / "optimizer.journal"
    opened = storage(f"journal:{path}")
    study = optuna.create_study(storage=opened, study_name="shared")  # the coordinator has appended
    holder = opened._backend._handle  # its descriptor: in the middle of its next append
    fcntl.flock(holder, fcntl.LOCK_EX)
    done_read, done_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked worker
        try:
            study.set_user_attr("from", "the forked worker")
            os.write(done_write, b"x")
        finally:
            os._exit(0)
    try:
        assert select.select([done_read], [], [], 0.3)[0] == []  # its append waits for the lock
        fcntl.flock(holder, fcntl.LOCK_UN)
        assert select.select([done_read], [], [], 30)[0] == [done_read]  # and goes on once it is free
    finally:
        os.waitpid(pid, 0)
    lines = path.read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)  # whole lines only
    assert optuna.load_study(study_name="shared", storage=storage(f"journal:{path}")).user_attrs == {
        "from": "the forked worker"}


# -- a new study's workers start before its baseline exists (the coordinator scans beside their trials) ----------


def test_trials_that_end_before_the_baseline_stop_at_max_iterations_unjudged_and_are_judged_once_it_is_stored(
        tmp_path):
    lines: list[str] = []
    opt = optimization(tmp_path, SmaCrossStrategy(), wave(3000), {"fast": 27, "slow": 18}, lines=lines,
                       max_iterations=3)
    study = opt.prepare(scan=False)  # what a forked worker of a new study starts from
    assert opt.unscanned and "baseline" not in study.user_attrs
    shown: list[tuple[int, int]] = []
    study.optimize(opt.objective, n_trials=10, callbacks=[lambda s, t: opt.after_trial(s, t, True, shown.append)])
    assert complete_numbers(study) == [0, 1, 2]  # max_iterations stops the trials without a baseline
    assert study.user_attrs["stopped"] == "max_iterations (3) reached"
    assert "baseline" not in study.user_attrs and lines == [] and shown == []  # nothing judged, said or shown
    opt.scan(study)  # the coordinator's scan, after the worker's trials
    assert not opt.unscanned
    report = opt.report(study)
    assert report.baseline.source == "baseline" and report.baseline.reason == "the current parameters"
    assert [d.number for d in report.decisions] == [0, 1, 2] and all(d.reason for d in report.decisions)


def test_a_worker_judges_its_earlier_trials_once_another_process_stores_the_baseline(tmp_path):
    worker_lines: list[str] = []
    worker = optimization(tmp_path, SmaCrossStrategy(), wave(3000), {"fast": 27, "slow": 18}, lines=worker_lines,
                          max_iterations=4)
    study = worker.prepare(scan=False)
    study.optimize(worker.objective, n_trials=2, callbacks=[lambda s, t: worker.after_trial(s, t, True)])
    assert complete_numbers(study) == [0, 1] and worker_lines == [] and "stopped" not in study.user_attrs
    coordinator = optimization(tmp_path, SmaCrossStrategy(), wave(3000), {"fast": 27, "slow": 18}, max_iterations=4)
    coordinator.scan(coordinator.prepare(scan=False))  # the same study, opened on its own
    study.optimize(worker.objective, n_trials=10, callbacks=[lambda s, t: worker.after_trial(s, t, True)])
    assert complete_numbers(study) == [0, 1, 2, 3] and study.user_attrs["stopped"] == "max_iterations (4) reached"
    said = [line.split(" ")[0] for line in worker_lines if line.startswith("#")]
    assert said == ["#0", "#1", "#2", "#3"]  # the trials before the baseline judged after it, each once
    report = worker.report(study)
    assert [d.number for d in report.decisions] == [0, 1, 2, 3] and all(d.reason for d in report.decisions)


def complete_numbers(study) -> list[int]:
    from optuna.trial import TrialState

    return sorted(t.number for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


class BaselineAfterTwoTrials(SmaCrossStrategy):
    """sma_cross whose coordinator's first signals (its baseline scan) wait until the forked worker asks for its
    third trial's: the worker's first two trials end, and their after_trial runs, before the baseline is stored.
    A pipe, not a clock: with no live worker holding its other end (the scan before the fork, or the worker
    crashed), the scan fails at once."""

    def __init__(self, timeout: float = 20):
        super().__init__()
        self.coordinator, self.calls, self.timeout = os.getpid(), 0, timeout
        self.read_end, self.write_end = os.pipe()

    def vectorized(self, symbol, candles, params):
        self.calls += 1
        if os.getpid() == self.coordinator and self.calls == 1:
            os.close(self.write_end)  # the worker's copy is the only one left
            self.write_end = -1
            ready = select.select([self.read_end], [], [], self.timeout)[0]
            if not ready or os.read(self.read_end, 1) != b"2":
                raise RuntimeError("the baseline scan ran before a worker's two trials ended")
        elif os.getpid() != self.coordinator and self.calls == 3:
            os.write(self.write_end, b"2")
        return super().vectorized(symbol, candles, params)

    def close(self) -> None:
        for end in (self.read_end, self.write_end):
            if end >= 0:
                os.close(end)


def test_a_new_studys_worker_finishes_trials_before_the_baseline_and_the_run_judges_every_trial_once(tmp_path):
    import optuna
    from optuna.trial import TrialState

    lines: list[str] = []
    strategy = BaselineAfterTwoTrials()
    try:
        opt = optimization(tmp_path, strategy, wave(3000), {"fast": 27, "slow": 18}, lines=lines, max_iterations=6)
        opt.storage_url = f"journal:{tmp_path / 'optimizer.journal'}"
        report = opt.run(jobs=2)
    finally:
        strategy.close()
    study = optuna.load_study(study_name=opt.study_name, storage=storage(opt.storage_url))
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}  # none left running, failed or queued
    numbers = [t.number for t in study.trials]
    assert 6 <= len(numbers) <= 7  # max_iterations, and a trial the other process had in flight
    assert [d.number for d in report.decisions] == numbers and all(d.reason for d in report.decisions)
    assert report.baseline.reason == "the current parameters" and report.stopped == "max_iterations (6) reached"
    first = {study.trials[n].user_attrs["worker"].split(":")[1] for n in (0, 1)}
    assert first == first - {str(os.getpid())} and len(first) == 1  # the fork's, before the baseline
    said = [int(line.split(" ")[0][1:]) for line in lines if line.startswith("#")]
    assert sorted(said) == numbers and len(set(said)) == len(said)  # each verdict said once
    assert [line for line in lines if "worker processes ended" in line] == []


# -- the command: resume, shared studies, model ideas, --apply --------------------------------------


def make_config(tmp_path: Path, extra: str = "") -> Path:
    data = tmp_path / "data"
    write_csv(wave(3000), data)
    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent(f"""\
        state_dir = "{tmp_path / 'state'}"
        [plugins]
        enable = ["sma_cross"]
        disable = ["archiver", "circuit_breaker", "kelly_size"]
        [backtest]
        data_dir = "{data}"
        timeframe = "1m"
        sizing = "all-in"
        risk = "none"
        fee_percent = 0.1
        slippage_percent = 0
        [trading]
        symbols = ["BTC/USDT"]
        stop_loss_percent = 50
        take_profit_percent = 400
        [optimizer]
        strategy = "sma_cross"
        min_trades = 3
        min_ratio_trades = 0
        seed = 7
        [strategies.sma_cross]
        fast = 27
        slow = 18
        """) + extra, encoding="utf-8")
    return config


def optimize(config: Path, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([GOBOT, "optimize", "--config", str(config), "--no-progress", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_every_trial_is_stored_and_an_interrupted_run_resumes(tmp_path):
    import optuna
    from optuna.trial import TrialState

    config = make_config(tmp_path)
    killed = optimize(config, "--max-iterations", "6", "--study", "resume",
                      env={"GOBOT_TEST_KILL_POINT": "optimizer_trial:3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    url = f"journal:{tmp_path / 'state' / 'optimizer' / 'resume.journal'}"  # the default: the study's journal file
    study = optuna.load_study(study_name="resume", storage=storage(url))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING]
    interrupted = study.trials[3].params

    resumed = optimize(config, "--max-iterations", "6", "--study", "resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert "#3 was interrupted" in resumed.stderr
    study = optuna.load_study(study_name="resume", storage=storage(url))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 6 and TrialState.RUNNING not in states
    retried = [t for t in study.trials if t.user_attrs.get("retry_of") == 3]
    assert len(retried) == 1 and retried[0].params == interrupted
    report = json.loads(resumed.stdout)
    assert [t["number"] for t in report["trials"]][:3] == [0, 1, 2]  # the first run's trials are kept


def postgres_url() -> str:
    url = os.environ.get("GOBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {url} is not reachable under CI=true: {exc}")
        pytest.skip(f"PostgreSQL at {url} is not reachable: {exc}")
    return url


def test_history_of_a_study_never_run_says_so_and_leaves_no_file(tmp_path):
    config = make_config(tmp_path)
    shown = optimize(config, "--history", "--study", "never run")
    assert shown.returncode != 0 and "no study 'never run'" in shown.stderr + shown.stdout
    assert not list((tmp_path / "state").glob("optimizer/*.journal"))


def test_two_workers_share_one_study_through_postgresql(tmp_path):
    import optuna

    url = postgres_url()
    config = make_config(tmp_path)
    name = f"gobot-test-{uuid.uuid4().hex[:10]}"
    command = [GOBOT, "optimize", "--config", str(config), "--no-progress", "--storage", url, "--study", name,
               "--max-iterations", "10", "--json"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen([*command, "--seed", "99"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        outs = [process.communicate(timeout=180) for process in (first, second)]
        assert first.returncode == 0 and second.returncode == 0, outs
        study = optuna.load_study(study_name=name, storage=storage(url))
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        assert 10 <= len(complete) <= 11
        assert len({t.number for t in complete}) == len(complete)
        pids = {t.user_attrs["worker"].split(":")[1] for t in complete}
        assert pids == {str(first.pid), str(second.pid)}  # both workers ran trials of the one study
        assert json.loads(outs[0][0])["study"] == json.loads(outs[1][0])["study"] == name
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
        try:
            optuna.delete_study(study_name=name, storage=storage(url))
        except Exception:
            pass


def test_a_models_ideas_are_checked_against_the_declared_ranges_and_marked(tmp_path, loopback_openai):
    from gobot.testing.loopback_openai import Reply

    loopback_openai.queue(
        Reply.answer({"params": {"fast": 500, "slow": 40}, "rationale": "much slower"}),  # outside 2..100
        Reply.answer({"params": {"fast": 9, "slow": 41}, "rationale": "a faster pair follows the swings"}),
    )
    config = make_config(tmp_path)
    done = optimize(config, "--max-iterations", "5", "--study", "llm", "--llm", "--llm-every", "2",
                    "--llm-base-url", loopback_openai.base_url,
                    "--json", env={"OPENAI_API_KEY": "sk-test-not-a-real-key"})
    assert done.returncode == 0, done.stderr
    assert "llm idea rejected: fast = 500 is outside its declared range 2..100" in done.stderr
    report = json.loads(done.stdout)
    llm = [t for t in report["trials"] if t["source"] == "llm"]
    assert len(llm) == 1 and llm[0]["params"] == {"fast": 9, "slow": 41}
    assert llm[0]["rationale"] == "a faster pair follows the swings"
    sent = json.loads(loopback_openai.received[0].body["messages"][1]["content"])
    assert sent["parameter_space"]["fast"]["high"] == 100 and sent["recent_trials"]
    assert "sk-test-not-a-real-key" not in done.stdout + done.stderr


def test_stop_loss_and_take_profit_none_search_without_the_configs_levels(tmp_path):
    tight = make_config(tmp_path / "tight")
    tight.write_text(tight.read_text().replace("stop_loss_percent = 50", "stop_loss_percent = 0.2")
                     .replace("take_profit_percent = 400", "take_profit_percent = 0.2"))
    wide = make_config(tmp_path / "wide")  # 50 % / 400 %: never touched on this data

    def baseline(config: Path, *flags: str) -> dict:
        done = optimize(config, "--max-iterations", "1", "--json", *flags)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["baseline"]

    with_levels = baseline(tight)
    without = baseline(tight, "--stop-loss", "none", "--take-profit", "none", "--study", "no-levels")
    assert without["in_sample"] == baseline(wide)["in_sample"] != with_levels["in_sample"]
    refused = optimize(tight, "--stop-loss", "two")
    assert refused.returncode == 2 and "a percent such as 2, or none" in refused.stderr
    other = optimize(tight, "--max-iterations", "1", "--study", "no-levels")  # the same study, other levels
    assert other.returncode == 2 and "was made with other execution settings" in other.stderr


def test_apply_writes_the_winner_to_config_and_archives_the_previous_version(tmp_path):
    config = make_config(tmp_path)
    done = optimize(config, "--max-iterations", "12", "--study", "apply", "--apply")
    assert done.returncode == 0, done.stderr
    assert "applied:" in done.stdout
    from gobot.config import load_settings

    settings = load_settings(str(config))
    winner = settings.strategies["sma_cross"]
    assert winner != {"fast": 27, "slow": 18}
    archive = [json.loads(line) for line in (tmp_path / "state" / "strategy_archive.jsonl").read_text().splitlines()]
    assert archive[-1]["previous"] == {"fast": 27, "slow": 18} and archive[-1]["new"] == winner
    request = json.loads((tmp_path / "state" / "OPTIMIZED.json").read_text())
    assert request["params"] == winner and request["strategy"] == "sma_cross"
    assert (tmp_path / "state" / "OPTIMIZED.json").stat().st_mode & 0o777 == 0o600  # like every file in state_dir


def test_config_strategy_parameters_start_the_bot_and_bad_ones_are_named(replay_bot, tmp_path):
    from gobot.errors import ConfigError

    bot = replay_bot(config={"strategies": {"sma_cross": {"fast": 12, "slow": 40}}}, enable=["sma_cross"])
    assert bot.state.strategies["sma_cross"].params == {"fast": 12, "slow": 40}
    with pytest.raises(ConfigError, match=r"strategies.sma_cross: .*slow = 999 is outside its range 5..400"):
        replay_bot(config={"strategies": {"sma_cross": {"slow": 999}}}, enable=["sma_cross"],
                   state_dir=tmp_path / "other")


def test_the_adjust_phase_makes_accepted_parameters_a_new_strategy_version(replay_bot, tmp_path):
    import asyncio

    from gobot.research.optimizer import Decision, Report

    bot = replay_bot(enable=["sma_cross"], disable=["validator"])
    asyncio.run(bot.run_cycle())
    winner = Decision(4, {"fast": 8, "slow": 30}, "tpe", 1.2, 0.9, 0.75, {"trades": 30}, {"trades": 9}, accepted=True)
    baseline = Decision(None, {"fast": 10, "slow": 50}, "baseline", 0.4, 0.2, 0.5, {"trades": 30}, {"trades": 9})
    request_apply(bot.settings.state_path,
                  Report("weekly", "sqlite", "sma_cross", "sharpe", baseline, [winner], winner, [], "done"), "test")
    report = asyncio.run(bot.run_cycle())
    current = bot.state.strategies["sma_cross"]
    assert (current.version, current.params) == (2, {"fast": 8, "slow": 30})
    assert current.reason.startswith("optimizer: study 'weekly' trial #4")
    assert any("optimizer: study 'weekly' trial #4" in line for line in report.phase("adjust").records)
    # v1 archived in the history
    assert [v.version for v in bot.state.strategy_history if v.name == "sma_cross"] == [1, 2]
    asyncio.run(bot.run_cycle())
    assert bot.state.strategies["sma_cross"].version == 2  # applied once


def test_write_strategy_params_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('# mine\n[trading]\nsymbols = ["BTC/USDT"]\n\n[strategies.sma_rsi]\nfast = 9\nslow = 26\n\n'
                    '[plugins]\nenable = []\n')
    write_strategy_params(path, "sma_rsi", {"fast": 12, "slow": 40.5})
    text = path.read_text()
    assert text.startswith("# mine\n[trading]") and "[plugins]\nenable = []" in text
    import tomllib

    assert tomllib.loads(text)["strategies"]["sma_rsi"] == {"fast": 12, "slow": 40.5}


def test_optuna_is_imported_without_the_redis_client_which_stays_importable():
    pytest.importorskip("redis")
    code = ("import sys, gobot.research.optimizer as o; o.import_optuna(); print('redis' in sys.modules); "
            "import redis; print(redis.Redis.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "Redis"]


def test_optuna_is_imported_without_tqdm_whose_bars_are_the_real_tqdm_once_made():
    code = textwrap.dedent("""\
        import sys, gobot.research.optimizer as o
        optuna = o.import_optuna()
        print(*[m for m in ("tqdm", "tqdm.auto", "asyncio") if m in sys.modules], "|")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study()
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        print(len(study.trials), "tqdm" in sys.modules)
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, show_progress_bar=True)  # Optuna's bar
        print(len(study.trials), "tqdm" in sys.modules)
        from tqdm.auto import tqdm as auto
        from tqdm.std import tqdm as std
        print(issubclass(auto, std), isinstance(auto(range(2), disable=True), std), *auto(range(2), disable=True))
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["|", "3", "False", "5", "True", "True", "True", "0", "1"]
    assert "2/2" in done.stderr  # the progress bar Optuna made drew its two trials


def test_the_program_imports_and_prepares_without_the_collector_and_runs_its_trials_with_it(tmp_path):
    config = make_config(tmp_path)
    code = textwrap.dedent(f"""\
        import atexit, gc, sys
        passes = {{"preparing": 0, "trials": 0}}

        def count(phase, info):
            if phase == "start" and "gobot.cli.optimize" in sys.modules:
                passes["trials" if gc.get_freeze_count() and "optuna" in sys.modules else "preparing"] += 1

        gc.callbacks.append(count)
        atexit.register(lambda: print(passes["preparing"], passes["trials"] > 0, gc.isenabled()))
        import gobot.cli
        sys.argv = ["gobot", "optimize", "--config", {str(config)!r}, "--no-progress", "--max-iterations", "6"]
        gobot.cli.run()
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # no collector pass while numpy, Optuna and the candles load; frozen, then on for the trials
    assert done.stdout.split()[-3:] == ["0", "True", "True"]
