"""``gobot data``: market data files for replay and backtests."""

from __future__ import annotations

import click

from gobot.cli.common import config_option


@click.group()
def data():
    """Market data: download candles from an exchange, or generate the synthetic demo data."""


@data.command()
@config_option
@click.option("--symbol", "symbols", multiple=True, default=("BTC/USDT", "ETH/USDT"), show_default=True,
              help="Symbol (repeatable).")
@click.option("--days", type=click.IntRange(min=1), default=10, show_default=True, help="Length of the series.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed: same seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Folder to write to, relative to the config file's folder.")
def synth(config_path, symbols, days, seed, out):
    """Generate SYNTHETIC 5-minute candles from the seeded market model (trends, volatility
    clustering, jumps) in the replay format. The bundled demo data was made with the defaults."""
    from gobot.config import load_settings
    from gobot.research.synthetic import DEMO_SYMBOLS, csv_name, generate, write_csv

    folder = load_settings(config_path).resolve(out)

    for symbol in symbols:
        start_price = DEMO_SYMBOLS.get(symbol, 100.0)
        rows = generate(symbol, start_price, days * 288, seed=seed)
        path = folder / csv_name(symbol, "5m")
        write_csv(path, rows)
        click.echo(f"{path}: {len(rows)} synthetic candles, {symbol} from {start_price:g}")


def _date(value: str | None):
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date such as 2025-01-01 or 2025-01-01T12:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@data.command()
@config_option
@click.option("--symbol", "symbols", multiple=True, required=True, help="Symbol such as BTC/USDT (repeatable).")
@click.option("--timeframe", default="1m", show_default=True,
              help="Candle size, as Binance names it: 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M.")
@click.option("--from", "--since", "since", required=True, metavar="DATE",
              help="First candle's open time, UTC: 2025-01-01 or 2025-01-01T12:00 (--since is the same option).")
@click.option("--to", "--until", "until", default=None, metavar="DATE",
              help="End of the range (exclusive), UTC; default: now, only closed candles (--until is the same option).")
@click.option("--exchange", default="binance", show_default=True, help="Exchange plugin to download from.")
@click.option("--market", type=click.Choice(["spot", "futures"]), default=None,
              help="Override [plugins.<exchange>] market.")
@click.option("--api-url", default=None, help="Override [plugins.<exchange>] api_url: a Binance-compatible base URL.")
@click.option("--out", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Folder to write to (the replay plugin's data_dir), relative to the config file's folder.")
def download(config_path, symbols, timeframe, since, until, exchange, market, api_url, out):
    """Download OHLCV candles from an exchange into the replay format.

    Writes <out>/<BASE>_<QUOTE>-<timeframe>.csv (what [plugins.replay] reads) and records each
    market's precision and limits in <out>/markets.json, for backtests that need them offline.
    Requests are paced by the adaptive rate limiter, so a long download never earns a ban.

    \b
      gobot data download --symbol BTC/USDT --timeframe 1m --from 2025-01-01
    """
    import asyncio
    import json
    from datetime import datetime, timezone

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from gobot.config import load_plugin_configs, load_settings
    from gobot.errors import GobotError
    from gobot.host.hook_caller import HookCaller
    from gobot.host.plugin_manager import build_plugin_set
    from gobot.research.synthetic import csv_name, write_csv
    from gobot.run.context import CommandContext

    start, end = _date(since), _date(until) or datetime.now(timezone.utc)
    if start >= end:
        raise click.BadParameter(f"--from {since} is not before --to {until or 'now'}")
    settings = load_settings(config_path)
    overrides = {key: value for key, value in (("market", market), ("api_url", api_url)) if value is not None}
    if overrides:
        settings.plugin_sections[exchange] = {**settings.plugin_sections.get(exchange, {}), **overrides}
    plugin_set = build_plugin_set(enable=[*settings.plugins.enable, exchange, "adaptive_rate_limit"],
                                  disable=settings.plugins.disable)
    plugin_set.raise_for_failures()
    hooks = HookCaller(plugin_set.pm)
    ctx = CommandContext(settings, load_plugin_configs(settings, hooks), report=lambda line: click.echo(line, err=True))
    ctx.rate_limiter = hooks.first_sync("gobot_rate_limit_policy", ctx=ctx)
    folder = settings.resolve(out)
    markets_path = folder / "markets.json"

    async def fetch(symbol: str, progress: Progress, task) -> object:
        def advance(done_ms: int, total_ms: int) -> None:
            progress.update(task, completed=done_ms, total=total_ms)

        answer = await hooks.first("gobot_download_candles", ctx=ctx, exchange=exchange, symbol=symbol,
                                   timeframe=timeframe, since=start, until=end, progress=advance)
        if answer is None:
            raise GobotError(f"no enabled plugin downloads from '{exchange}' (is it installed? `gobot plugins`)")
        return answer[1]

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        for symbol in symbols:
            task = progress.add_task(f"{symbol} {timeframe}", total=None)
            result = asyncio.run(fetch(symbol, progress, task))
            candles = result.candles
            path = folder / csv_name(symbol, timeframe)
            write_csv(path, list(zip(candles.timestamp, candles.open, candles.high, candles.low, candles.close,
                                     candles.volume)))
            markets = json.loads(markets_path.read_text(encoding="utf-8")) if markets_path.exists() else {}
            markets[symbol] = result.market
            markets_path.write_text(json.dumps(markets, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
            first = (datetime.fromtimestamp(candles.timestamp[0] / 1000, tz=timezone.utc).isoformat()
                     if candles.timestamp else "-")
            progress.console.print(f"{path}: {len(candles)} candles of {timeframe} from {first}; "
                                   f"market rules in {markets_path.name}")
