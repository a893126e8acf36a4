"""``gobot optimize``: tune a strategy's parameters with Optuna, walk-forward validated."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gobot.cli import imported
from gobot.cli.common import config_option, percent_or_none


@click.command()
@config_option
@click.option("-s", "--strategy", metavar="NAME",
              help="Strategy to tune; default [optimizer] strategy, else the only one.")
@click.option("--data", multiple=True, metavar="PATH|SYMBOL", help="Candles, as for gobot backtest (repeatable).")
@click.option("--timeframe", metavar="TF", help="Candle size; default [backtest] timeframe.")
@click.option("--from", "start", metavar="DATE", help="First candle (UTC).")
@click.option("--to", "end", metavar="DATE", help="End (exclusive).")
@click.option("--set", "assignments", multiple=True, metavar="PARAM=VALUE",
              help="Change a baseline parameter (repeatable).")
@click.option("-p", "--plugin", "enable", multiple=True, metavar="NAME", help="Enable a plugin for this run.")
@click.option("--disable", multiple=True, metavar="NAME", help="Disable a plugin for this run.")
@click.option("--objective",
              help="sharpe, sortino, calmar, profit_factor, ... or a weighted sum \"0.5*sharpe + 0.5*calmar\".")
@click.option("--objectives", multiple=True, metavar="METRIC",
              help="Several objectives (Pareto search), e.g. --objectives sharpe "
              "--objectives max_drawdown_pct; the first one decides acceptance.")
@click.option("--sampler", type=click.Choice(["tpe", "random", "nsga2"]), help="Optuna sampler (default tpe).")
@click.option("--max-iterations", type=click.IntRange(min=1), help="Trials in the study, resumed ones included.")
@click.option("--min-trades", type=click.IntRange(min=0),
              help="Trades a candidate needs in sample (and pro rata out of sample).")
@click.option("--folds", type=click.IntRange(1, 20), help="Walk-forward window pairs.")
@click.option("--oos-percent", type=click.FloatRange(0, 100, min_open=True),
              help="Out-of-sample window, % of the in-sample one.")
@click.option("--storage", metavar="URL",
              help="Optuna storage shared by workers, e.g. postgresql+psycopg://user@host/db "
              "(default: [optimizer] storage, $GOBOT_OPTIMIZER_STORAGE, else a journal file in the state folder).")
@click.option("--study", metavar="NAME", help="Study name: the same name resumes it, or joins other workers on it.")
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes on this machine.")
@click.option("--seed", type=int, help="Sampler seed.")
@click.option("--llm/--no-llm", "llm", default=None,
              help="Also ask a model for ideas ([optimizer] llm_*; key in OPENAI_API_KEY).")
@click.option("--llm-base-url", metavar="URL", help="OpenAI-compatible endpoint for --llm.")
@click.option("--llm-model", metavar="NAME", help="Model for --llm.")
@click.option("--llm-every", type=click.IntRange(min=1), metavar="N", help="Ask the model before every N-th trial.")
@click.option("--sizing", metavar="plugins|all-in|N%|N",
              help="Position size during the search; default [backtest] sizing.")
@click.option("--risk", type=click.Choice(["plugins", "none"]),
              help="Risk checks during the search; default [backtest] risk.")
@click.option("--stop-loss", metavar="PCT|none", help="Stop distance when the signal gives none, %; default [trading].")
@click.option("--take-profit", metavar="PCT|none",
              help="Target distance when the signal gives none, %; default [trading].")
@click.option("--apply", "apply", is_flag=True,
              help="Write an accepted winner to config.toml [strategies.NAME] and hand it "
              "to the bot's adjust phase as a proposal: a new strategy version once validated (the "
              "previous one is archived).")
@click.option("--history", is_flag=True, help="Print the study's trials and verdicts, run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def optimize(config_path, strategy, data, timeframe, start, end, assignments, enable, disable, objective, objectives,
             sampler, max_iterations, min_trades, folds, oos_percent, storage, study, jobs, seed, llm, llm_base_url,
             llm_model, llm_every, sizing, risk, stop_loss, take_profit, apply, history, as_json, progress):
    """Tune a strategy's parameters: Optuna proposes candidates inside the ranges the strategy
    declares, each is backtested on rolling in-sample/out-of-sample windows, and a candidate is
    kept only when it beats the current parameters out of sample too (one that wins only in
    sample is rejected, with that reason). Every trial is stored: the same command resumes an
    interrupted study, and workers on several machines share one through --storage.

    \b
    Examples:
      gobot optimize --strategy sma_rsi --max-iterations 100 --jobs 2
      gobot optimize -s sma_rsi --objective "0.5*sharpe + 0.5*calmar" --apply
      gobot optimize -s sma_rsi --storage postgresql+psycopg://opt@db.lan/gobot --study weekly   # on each host
    """
    from gobot.research.heap import end_without_teardown, keep_freed_memory, one_blas_thread

    one_blas_thread()  # before numpy's import
    from gobot.research.backtest.setup import BacktestSetup, parse_assignments
    from gobot.research.market_data import parse_time
    from gobot.research.optimizer import Optimization

    setup = BacktestSetup.load(config_path, enable, disable, strategy, risk, sizing, search=True)
    settings = setup.settings
    options = _options(
        settings, objective=objective, objectives=list(objectives) or None, sampler=sampler,
        max_iterations=max_iterations, min_trades=min_trades, folds=folds, out_of_sample_percent=oos_percent,
        storage=storage, study=study, jobs=jobs, seed=seed, llm_ideas=llm, llm_base_url=llm_base_url,
        llm_model=llm_model, llm_every=llm_every,
    )
    component = setup.strategy(strategy or options.strategy or None)
    baseline = setup.params(component, parse_assignments(assignments))
    series = setup.series(data, timeframe, parse_time(start, "--from"), parse_time(end, "--to"))
    execution = _execution(setup, component, sizing, risk, stop_loss, take_profit)
    ideas = None
    if options.llm_ideas:
        from gobot.research.llm_ideas import LlmIdeas

        ideas = LlmIdeas(options.llm_model, options.llm_base_url)
    say = (lambda text: click.echo(text, err=True)) if as_json else click.echo

    def gate_factory(params):
        from gobot_hookspecs import StrategyVersion

        return setup.gate(execution, component, StrategyVersion(name=component.name, params=params))

    optimization = Optimization(component, series, execution, gate_factory, options, baseline_params=baseline,
                                storage_url=options.storage, state_path=settings.state_path, ideas=ideas, say=say)
    imported()  # the collector back on for the trials (gobot.cli.PREPARED_UNCOLLECTED)
    if history:
        report = _stored_report(optimization, optimization.storage_url)
    else:
        keep_freed_memory()  # for this process and the workers it forks: trials reuse freed blocks
        report = _search(optimization, say, progress, as_json)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        _print_report(report)
    if apply:
        _apply(settings, report, component)
    end_without_teardown()


def _options(settings, **overrides):
    """The [optimizer] section with the command line's options over it (an option not given keeps the config's
    value); an invalid combination is a usage error in one line."""
    updates = {key: value for key, value in overrides.items() if value is not None}
    try:
        return settings.optimizer.model_validate({**settings.optimizer.model_dump(), **updates})
    except Exception as exc:
        raise click.UsageError(str(exc).splitlines()[-1] if str(exc) else repr(exc)) from None


def _execution(setup, component, sizing, risk, stop_loss, take_profit):
    """How candidates trade during the search: [backtest] sizing and risk and [trading] stops unless the options
    say otherwise, long only for a strategy that declares it."""
    from gobot.research.backtest.engine import Sizing

    try:
        execution = setup.execution(sizing=Sizing.parse(sizing) if sizing else ..., risk=risk or ...,
                                    stop_loss_percent=percent_or_none(stop_loss, "--stop-loss"),
                                    take_profit_percent=percent_or_none(take_profit, "--take-profit"))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if getattr(component, "long_only", False):
        from dataclasses import replace

        execution = replace(execution, allow_short=False)
    return execution


def _stored_report(optimization, url: str):
    """--history: the report of the study as stored, nothing run."""
    import optuna

    from gobot.errors import GobotError
    from gobot.research.optimizer import JOURNAL, redact_url
    from gobot.research.optimizer import storage as open_storage

    if url.startswith(JOURNAL) and not Path(url.removeprefix(JOURNAL)).exists():  # not made by opening it
        raise GobotError(f"no study '{optimization.study_name}' in {redact_url(url)}; name one with --study")
    try:
        found = optuna.load_study(study_name=optimization.study_name, storage=open_storage(url))
    except KeyError:
        raise GobotError(f"no study '{optimization.study_name}' in {redact_url(url)}; name one with --study") from None
    if "baseline" not in found.user_attrs:
        raise GobotError(f"study '{optimization.study_name}' has no baseline yet (its first worker is still starting)")
    return optimization.report(found)


def _search(optimization, say, progress: bool | None, as_json: bool):
    """Run the study (resumed if it exists), with a progress bar on a terminal unless told otherwise."""
    import sys

    from gobot.research.optimizer import redact_url

    options, series = optimization.options, optimization.series
    say(f"study '{optimization.study_name}' in {redact_url(optimization.storage_url)}: {optimization.strategy.name}, "
        f"{len(series)} symbol(s), {sum(len(s) for s in series):,} candles, {options.folds} folds, "
        f"objective {', '.join(options.objectives) or options.objective}, up to {options.max_iterations} trials, "
        f"{options.jobs} worker(s)")
    show = progress if progress is not None else (sys.stderr.isatty() and not as_json)
    return _run(optimization, options.jobs, show)


def _run(optimization, jobs: int, show: bool):
    if not show:
        return optimization.run(jobs)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("trials", total=optimization.options.max_iterations)
        optimization.say = console.print
        return optimization.run(jobs, progress=lambda done, total: bar.update(task, completed=done, total=total))


def _print_report(report) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from gobot.research.optimizer import selection_text

    console = Console()
    winner = [(f"winner #{report.kept.number}", report.kept)] if report.improved else []
    columns = [("baseline", report.baseline)] + winner
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
                  title=f"walk-forward, {len(report.folds)} folds: {report.objective}")
    table.add_column("")
    for label, _ in columns:
        table.add_column(label, justify="right")

    def pct(value):
        return "-" if value is None else f"{value:.0%}"

    def pf(value):
        return "-" if value is None else ("inf" if value == float("inf") else f"{value:.2f}")

    for name in columns[0][1].params:
        table.add_row(name, *[f"{d.params.get(name, 0):g}" for _, d in columns])
    rows = [
        ("objective in / out of sample", lambda d: f"{d.objective_text('in')} / {d.objective_text('out')}"),
        ("overfitting ratio (out / in)", lambda d: "-" if d.ratio is None else f"{d.ratio:.2f}"),
        ("trades in / out", lambda d: f"{d.in_sample['trades']} / {d.out_of_sample['trades']}"),
        ("win rate in / out", lambda d: f"{pct(d.in_sample.get('win_rate'))} / {pct(d.out_of_sample.get('win_rate'))}"),
        ("profit factor in / out",
         lambda d: f"{pf(d.in_sample.get('profit_factor'))} / {pf(d.out_of_sample.get('profit_factor'))}"),
        ("max drawdown % in / out",
         lambda d: f"{d.in_sample['max_drawdown_pct']:.1f} / {d.out_of_sample['max_drawdown_pct']:.1f}"),
        ("return % in / out (per window)",
         lambda d: f"{d.in_sample['return_pct']:+.2f} / {d.out_of_sample['return_pct']:+.2f}"),
    ]
    if report.improved:
        rows.append(("stability (± one step)", lambda d: "-" if d.stability is None else f"{d.stability:.2f}"))
    for label, cell in rows:
        table.add_row(label, *[cell(d) for _, d in columns])
    console.print(table)
    accepted = sum(1 for d in report.decisions if d.accepted)
    reasons: dict[str, int] = {}
    for d in report.decisions:
        if not d.accepted:
            key = d.reason.split(":")[0].split(" (")[0]
            reasons[key] = reasons.get(key, 0) + 1
    console.print(f"{len(report.decisions)} trials, {accepted} accepted; rejected: "
                  + (", ".join(f"{n}x {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])) or "none"))
    console.print(f"stopped: {report.stopped}" + (f"; Pareto front: trials {report.pareto}" if report.pareto else ""))
    if report.improved:
        console.print(f"[green]winner #{report.kept.number}[/] ({report.kept.source}): {report.kept.reason}. "
                      "Apply it with --apply.")
        console.print(f"selection: {selection_text(report.selection)} — a deflated Sharpe near 1 is unlikely to be "
                      "the luck of the search, near 0.5 a coin flip", highlight=False)
    else:
        console.print("no candidate beat the current parameters out of sample: keep them")


def _apply(settings, report, component) -> None:
    from gobot.errors import GobotError
    from gobot.research.optimizer import archive_version, request_apply, write_strategy_params

    if not report.improved:
        click.echo("--apply: nothing to apply (no accepted winner)")
        return
    if not settings.source:
        raise GobotError("--apply needs a config file to write to: run `gobot init` or pass --config PATH")
    path = Path(settings.source)
    previous = {k: v for k, v in report.baseline.params.items()}
    write_strategy_params(path, component.name, report.kept.params)
    archive_version(settings.state_path, component.name, previous, report.kept.params,
                    f"gobot optimize --apply: study '{report.study}' trial #{report.kept.number}")
    request_apply(settings.state_path, report, "gobot optimize --apply")
    click.echo(f"applied: {path} [strategies.{component.name}] updated; previous parameters archived in "
               f"{settings.state_path / 'strategy_archive.jsonl'}; "
               "a running bot takes them as a new version next cycle")
