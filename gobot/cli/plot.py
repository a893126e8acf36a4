"""``gobot plot``: one self-contained HTML chart of a symbol's candles — with a backtest's trades, a run's
archived trades, or none — and optionally a PNG of it through the ``gobot_render_page`` hook."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from gobot.cli.common import config_option, load
from gobot.errors import GobotError

STORY_LIMIT = 100_000  # the most archived trades asked for


class PlotError(GobotError):
    """A chart that cannot be drawn as asked (exit status 2, one line): the message says what to pass."""


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not sep or not (200 <= size[0] <= 8000 and 200 <= size[1] <= 8000):
        raise click.BadParameter(f"{text!r}: WIDTHxHEIGHT in pixels, 200 to 8000 each, e.g. 1600x900",
                                 param_hint="--png-size")
    return size


@click.command()
@config_option
@click.option("--symbol", "symbols", required=True, multiple=True, metavar="BASE/QUOTE",
              help="Symbol to chart, e.g. BTC/USDT (repeatable: the page gets a symbol selector).")
@click.option("--from", "start", metavar="DATE", help="First candle, e.g. 2026-01-01 or 2026-01-01T12:00 (UTC).")
@click.option("--to", "end", metavar="DATE", help="End (exclusive), same format.")
@click.option("--timeframe", metavar="TF", help="Candle size, e.g. 5m, 1h; default [backtest] timeframe.")
@click.option("--run", "run_id", is_flag=False, flag_value="", default=None, metavar="ID",
              help="Plot a run's trades from the archive (gobot_trade_stories); --run alone: the newest run.")
@click.option("--backtest", "backtest", is_flag=True,
              help="Backtest the strategy on these candles (as `gobot backtest`) and plot its trades.")
@click.option("-s", "--strategy", metavar="NAME",
              help="Strategy to backtest, and whose indicators to draw; default: the only one registered.")
@click.option("--set", "assignments", multiple=True, metavar="PARAM=VALUE",
              help="Override a strategy parameter (repeatable).")
@click.option("-p", "--plugin", "enable", multiple=True, metavar="NAME", help="Enable a plugin for this command.")
@click.option("--disable", multiple=True, metavar="NAME", help="Disable a plugin for this command.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default="plot.html", show_default=True,
              help="The HTML file to write.")
@click.option("--png", "png_path", type=click.Path(dir_okay=False),
              help="Also render the page to this PNG (the charts plugin, headless Chromium; enabled for this).")
@click.option("--png-size", "png_size", default="1600x900", show_default=True, metavar="WxH",
              help="The PNG's size in pixels.")
def plot(config_path, symbols, start, end, timeframe, run_id, backtest, strategy, assignments, enable, disable,
         output, png_path, png_size):
    """Chart candles with trades in one self-contained HTML file (works offline).

    Candles come from where `gobot backtest` reads them ([backtest] data_dir, else the bundled demo
    market, or [plugins.replay] data_dir), with the strategy's indicators. --backtest runs the
    backtest and plots its trades; --run plots a run's trades from the archive. Click a trade (its
    marker or its row) for its story: the signal and rationale, every risk verdict, the sizing and
    the fills with fees. Scroll to zoom, drag to pan, switch symbol and timeframe above the chart.

    \b
    Examples:
      gobot plot --symbol BTC/USDT                  # candles and indicators only
      gobot plot --symbol BTC/USDT --backtest -s sma_cross -p sma_cross \\
          --set fast=12 -o bt.html                  # a backtest's trades, each with its story
      gobot plot --symbol BTC/USDT --run            # the newest run's trades, from the archive
      gobot plot --symbol BTC/USDT --run RUN_ID --from 2026-01-02 --to 2026-01-05 \\
          --timeframe 15m --png run.png             # one run, a window of it, also as a PNG
    """
    from gobot.research.market_data import parse_time

    if backtest and run_id is not None:
        raise PlotError("--backtest or --run, not both: a chart shows one set of trades")
    size = _size(png_size) if png_path else None
    start_ms, end_ms = parse_time(start, "--from"), parse_time(end, "--to")
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise PlotError(f"--to {end} is not after --from {start}: an empty range")
    if png_path and "charts" not in disable:
        enable = (*enable, "charts")
    from gobot.cli.common import LoadedConfig
    from gobot.research.backtest.setup import BacktestSetup

    settings, plugin_set = load(config_path, enable, disable, explain=False)
    setup = BacktestSetup.build(settings, plugin_set)  # the strategies, the plugins' sections, the hooks
    view = LoadedConfig(settings, setup.plugin_configs)
    tf = timeframe or settings.backtest.timeframe
    if backtest:
        start, end = (None if ms is None else _moment(ms) for ms in (start_ms, end_ms))
        for symbol in symbols:  # an unknown symbol or an empty range said as without --backtest
            _history(view, symbol, tf, start, end)
        payload, said = _backtested(setup, symbols, tf, start_ms, end_ms, strategy, assignments)
    else:
        payload, said = _charted(setup, view, symbols, tf, start_ms, end_ms, strategy, assignments, run_id)
    from gobot_hookspecs import tradechart

    title = f"{', '.join(symbols)} · {tf}" + (f" · {said}" if said else "")
    page = tradechart.page(payload, title=title)
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    click.echo(f"HTML chart: {target} ({len(page.encode()) / 1e6:.1f} MB; {len(payload.get('trades', ())):,} trades"
               + (f", {said})" if said else ")"))
    if png_path:
        png = _render(setup.hooks, view, page, size)
        Path(png_path).parent.mkdir(parents=True, exist_ok=True)
        Path(png_path).write_bytes(png)
        click.echo(f"PNG: {png_path} ({size[0]}x{size[1]})")


def _strategy_and_params(setup: Any, name: str | None, assignments: tuple[str, ...], needed: bool):
    """The strategy (None when none was named, it is not needed, and it cannot be told) and its parameters."""
    from gobot.research.backtest.setup import BacktestSetupError, parse_assignments

    try:
        component = setup.strategy(name)
    except BacktestSetupError:
        if needed or name or assignments:
            raise
        return None, {}
    return component, setup.params(component, parse_assignments(assignments))


def _indicators(component: Any, params: dict) -> list[str]:
    from gobot.research.backtest.chart import DEFAULT_INDICATORS, strategy_indicators

    return strategy_indicators(component, params) if component is not None else list(DEFAULT_INDICATORS)


def _backtested(setup, symbols, tf, start_ms, end_ms, strategy, assignments) -> tuple[dict, str]:
    """The backtest as `gobot backtest` runs it on ``symbols``, its trades told as stories."""
    from gobot.research.backtest.chart import backtest_payload
    from gobot.research.backtest.engine import run
    from gobot.research.backtest.setup import BacktestSetupError
    from gobot.research.backtest.stories import trade_stories

    component, params = _strategy_and_params(setup, strategy, assignments, needed=True)
    try:
        series = setup.series(list(symbols), tf, start_ms, end_ms)
    except BacktestSetupError as exc:  # fewer than 2 candles in the range, symbols of two quotes
        raise PlotError(str(exc)) from None
    execution = setup.execution()
    if getattr(component, "long_only", False):
        from dataclasses import replace

        execution = replace(execution, allow_short=False)
    gate = setup.gate(execution, component)
    if callable(getattr(gate, "keep_decisions", None)):
        gate.keep_decisions()
    result = run(component, params, series, execution, gate=gate)
    stories = trade_stories(result, gate, component)
    metrics = result.metrics()
    said = f"backtest {component.name}: {metrics['trades']} closed trades, {metrics['return_pct']:+.2f}%"
    return backtest_payload(result, stories, _indicators(component, params), title=said), said


def _charted(setup, view, symbols, tf, start_ms, end_ms, strategy, assignments, run_id) -> tuple[dict, str]:
    """Candles from ``ConfigView.history``, with a run's archived trades when ``run_id`` is not None."""
    from gobot.research.backtest.chart import chart_payload

    start, end = (None if ms is None else _moment(ms) for ms in (start_ms, end_ms))
    candles = [(symbol, _history(view, symbol, tf, start, end)) for symbol in symbols]
    stories, said = [], ""
    if run_id is not None:
        stories = _stories(setup.hooks, view, run_id or None, symbols, start, end)
        said = f"{'run ' + run_id if run_id else 'newest run'}: {len(stories)} trades"
    if strategy is None and stories:
        named = Counter(s.strategy for s in stories if s.strategy in setup.strategies).most_common(1)
        strategy = named[0][0] if named else None
    component, params = _strategy_and_params(setup, strategy, assignments, needed=False)
    currency = stories[0].currency if stories and stories[0].currency else _quote(symbols[0])
    return chart_payload(candles, stories, currency=currency, indicators=_indicators(component, params),
                         title=said or ", ".join(symbols)), said


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _quote(symbol: str) -> str:
    from gobot_hookspecs.money import quote_of

    return quote_of(symbol)


def _history(view, symbol: str, tf: str, start, end):
    """``view.history``; an unknown symbol or an empty range is a ``PlotError`` that says which."""
    try:
        candles = view.history(symbol, tf, start, end)
    except ValueError as exc:
        raise PlotError(f"--timeframe {tf}: {exc}") from None
    if len(candles):
        return candles
    whole = view.history(symbol, tf) if start is not None or end is not None else candles
    if not len(whole):
        from gobot.research.backtest.history import data_dirs

        folders = ", ".join(str(f) for f in data_dirs(view.config, view.plugin_config("replay")))
        raise PlotError(f"no {tf} candles for {symbol} in {folders}; check the symbol, or download them with "
                        f"`gobot data download --symbol {symbol}`")
    first, last = _moment(int(whole.timestamp[0])), _moment(int(whole.timestamp[-1]))
    raise PlotError(f"no {symbol} candles between --from and --to: the data covers {first:%Y-%m-%d %H:%M} "
                    f"to {last:%Y-%m-%d %H:%M} UTC")


def _stories(hooks, view, run_id: str | None, symbols, start, end) -> list:
    """The run's trades on ``symbols`` from the first plugin that keeps an archive."""
    found = []
    for symbol in symbols:
        answer = hooks.first_sync("gobot_trade_stories", config=view, run_id=run_id, symbol=symbol, start=start,
                                  end=end, limit=STORY_LIMIT)
        if answer is None and run_id:
            raise PlotError(f"no archive holds run {run_id}: check the ID (`gobot status` shows the current "
                            "run's), [plugins.archiver] database_url, and that the archiver plugin is enabled")
        if answer is None:
            raise PlotError("no archive answered: enable the archiver plugin (-p archiver) and check "
                            "[plugins.archiver] database_url, or run the bot first (`gobot start`)")
        found.extend(answer)
    return sorted(found, key=lambda story: story.entry_time)


def _render(hooks, view, page: str, size: tuple[int, int]) -> bytes:
    """The page as PNG bytes, through the first plugin that renders pages (``gobot_render_page``)."""
    import asyncio

    answer = asyncio.run(hooks.first("gobot_render_page", config=view, html=page, width=size[0], height=size[1]))
    if answer is None:
        raise PlotError("no plugin renders pages: enable the charts plugin (it is, unless --disable charts) "
                        "and install Chromium")
    return answer[1]
