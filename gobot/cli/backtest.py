"""``gobot backtest``: a strategy over candle files, offline, with the paper executor's fill rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gobot.cli.common import config_option, percent_or_none
from gobot.research.heap import one_blas_thread, short_command


@click.command()
@config_option
@click.option("-s", "--strategy", metavar="NAME",
              help="Strategy to test (registered by an enabled plugin); default: the only one.")
@click.option("--data", multiple=True, metavar="PATH|SYMBOL",
              help="A CSV file (BTC_USDT-1m.csv), a folder, or a symbol looked up in [backtest] data_dir. Repeatable: "
                   "several symbols trade as one portfolio. Default: every [trading] symbol in data_dir.")
@click.option("--timeframe", metavar="TF",
              help="Candle size, e.g. 1m, 5m, 1h (a finer file is resampled); default [backtest] timeframe.")
@click.option("--from", "start", metavar="DATE", help="First candle, e.g. 2025-01-01 or 2025-01-01T12:00 (UTC).")
@click.option("--to", "end", metavar="DATE", help="End (exclusive), same format.")
@click.option("--set", "assignments", multiple=True, metavar="PARAM=VALUE",
              help="Override a strategy parameter (repeatable).")
@click.option("-p", "--plugin", "enable", multiple=True, metavar="NAME",
              help="Enable a plugin for this run, e.g. -p sma_cross.")
@click.option("--disable", multiple=True, metavar="NAME", help="Disable a plugin for this run.")
@click.option("--path", "path", type=click.Choice(["auto", "vectorized", "per-bar"]), default="auto", show_default=True,
              help="Signals from the strategy's vectorized() (auto when it has one) or signal() per bar.")
@click.option("--fill", type=click.Choice(["next-open", "close"]),
              help="When a decision fills; default [backtest] fill (next-open).")
@click.option("--fee", type=click.FloatRange(min=0, max=100, max_open=True),
              help="Fee per fill, %; default as [plugins.paper].")
@click.option("--slippage", type=click.FloatRange(min=0, max=100, max_open=True),
              help="Slippage of market and stop fills, %.")
@click.option("--stop-loss", metavar="PCT|none", help="Stop distance when the signal gives none, %; default [trading].")
@click.option("--take-profit", metavar="PCT|none",
              help="Target distance when the signal gives none, %; default [trading].")
@click.option("--equity", type=click.FloatRange(min=0, min_open=True),
              help="Starting equity; default [backtest] or [trading].")
@click.option("--sizing", metavar="plugins|all-in|N%|N",
              help="Position size: the sizer plugin (as live), all available margin, "
              "a percent of equity, or a notional; default [backtest] sizing.")
@click.option("--risk", type=click.Choice(["plugins", "none"]),
              help="Ask every risk plugin at each entry (as live), or nobody.")
@click.option("--long-only", is_flag=True, help="A SHORT signal only closes a long.")
@click.option("--check-lookahead", is_flag=True,
              help="Also re-run the strategy on truncated data; fail if earlier signals change.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write a self-contained HTML report here: candle chart with every trade "
                   "(click one: signal, risk verdicts, sizing, fills), equity and drawdown.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as JSON (metrics, trades, data gaps) instead of tables.")
@click.option("--trades", "show_trades", type=click.IntRange(min=0), default=0, help="Also list the last N trades.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: on a terminal, for long per-bar runs).")
@short_command
def backtest(config_path, strategy, data, timeframe, start, end, assignments, enable, disable, path, fill, fee,
             slippage, stop_loss, take_profit, equity, sizing, risk, long_only, check_lookahead, html_path, as_json,
             show_trades, progress):
    """Backtest a strategy on candle files, offline.

    The strategy component is the one its plugin registers for live trading, called directly:
    its vectorized() method when it has one, else signal() for every candle. Fills follow the
    paper executor (next open, fee, slippage, stops inside candles, the stop first when a candle
    touches both); sizing and risk plugins are asked at each entry, as in live. Several --data
    symbols share one cash balance. Gaps in the data are reported, never filled in.

    \b
    Examples:
      gobot backtest -p sma_cross -s sma_cross --data data/BTC_USDT-1m.csv --sizing all-in --risk none
      gobot backtest --strategy sma_rsi --from 2026-01-01 --set fast=12 --html report.html
    """
    one_blas_thread()  # before numpy's import
    from gobot.research.backtest.engine import lookahead_check, run
    from gobot.research.backtest.setup import BacktestSetup, parse_assignments
    from gobot.research.market_data import parse_time

    setup = BacktestSetup.load(config_path, enable, disable, strategy, risk, sizing,
                               needs_paper=fee is None or slippage is None)
    component = setup.strategy(strategy)
    params = setup.params(component, parse_assignments(assignments))
    series = setup.series(data, timeframe, parse_time(start, "--from"), parse_time(end, "--to"))
    execution = _execution(setup, fill, fee, slippage, equity, stop_loss, take_profit, sizing, risk,
                           long_only or getattr(component, "long_only", False))
    bars = sum(len(s) for s in series)
    will_loop = path == "per-bar" or (path == "auto" and not callable(getattr(component, "vectorized", None)))
    show_progress = progress if progress is not None else (sys.stderr.isatty() and will_loop and bars > 100_000)
    gate = setup.gate(execution, component)
    if html_path and callable(getattr(gate, "keep_decisions", None)):
        gate.keep_decisions()  # the risk verdicts and sizing of each trade, for the chart's drill-down
    with _progress(show_progress) as report:
        result = run(component, params, series, execution, gate=gate, path=path, progress=report)
    metrics = result.metrics()
    problems: list[str] = []
    if check_lookahead:
        for s in series:
            problems += [f"{s.symbol}: {p}" for p in lookahead_check(component, params, s, path=path)]
    if html_path:
        from gobot.research.backtest.chart import strategy_indicators
        from gobot.research.backtest.report import write_html
        from gobot.research.backtest.stories import trade_stories

        written = write_html(result, metrics, Path(html_path), stories=trade_stories(result, gate, component),
                             indicators=strategy_indicators(component, params))
    if as_json:
        from gobot.research.backtest.report import as_json as to_json

        document = to_json(result, metrics)
        if check_lookahead:
            document["lookahead"] = problems
        click.echo(json.dumps(document, indent=2, default=str))
    else:
        from gobot.research.backtest.report import print_summary

        print_summary(result, metrics, show_trades=show_trades)
        if html_path:
            click.echo(f"HTML report: {written}")
        if check_lookahead:
            click.echo("lookahead check: "
                       + ("no earlier signal changed on truncated data" if not problems else "FAILED"))
            for problem in problems:
                click.echo(f"  {problem}", err=True)
    if problems:
        sys.exit(1)


class _progress:
    """A rich progress bar on stderr fed by the backtester's progress callback (or nothing)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.completed:,}/{task.total:,} candles"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.start()
        return self.update

    def update(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


def _execution(setup, fill, fee, slippage, equity, stop_loss, take_profit, sizing, risk, long_only: bool):
    """The fills, costs, sizing and risk of the run: the options given, ``[backtest]`` for the others."""
    from dataclasses import replace

    from gobot.research.backtest.engine import Sizing

    try:
        execution = setup.execution(
            fill=fill.replace("-", "_") if fill else ..., fee_percent=fee if fee is not None else ...,
            slippage_percent=slippage if slippage is not None else ..., start_equity=equity or ...,
            stop_loss_percent=percent_or_none(stop_loss, "--stop-loss"),
            take_profit_percent=percent_or_none(take_profit, "--take-profit"),
            sizing=Sizing.parse(sizing) if sizing else ..., risk=risk or ...,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return replace(execution, allow_short=False) if long_only else execution
