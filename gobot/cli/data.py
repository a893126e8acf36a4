"""``gobot data``: market data files for replay and backtests."""

from __future__ import annotations

import click

from .common import config_option


@click.group()
def data():
    """Market data commands."""


@data.command()
@config_option
@click.option("--symbol", "symbols", multiple=True, default=("BTC/USDT", "ETH/USDT"), show_default=True, help="Symbol (repeatable).")
@click.option("--days", type=click.IntRange(min=1), default=10, show_default=True, help="Length of the series.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed: same seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False), default="data", show_default=True,
              help="Folder to write to, relative to the config file's folder.")
def synth(config_path, symbols, days, seed, out):
    """Generate SYNTHETIC 5-minute candles from the seeded market model (trends, volatility
    clustering, jumps) in the replay format. The bundled demo data was made with the defaults."""
    from ..config import load_settings
    from ..synthetic import DEMO_SYMBOLS, csv_name, generate, write_csv

    folder = load_settings(config_path).resolve(out)

    for symbol in symbols:
        start_price = DEMO_SYMBOLS.get(symbol, 100.0)
        rows = generate(symbol, start_price, days * 288, seed=seed)
        path = folder / csv_name(symbol, "5m")
        write_csv(path, rows)
        click.echo(f"{path}: {len(rows)} synthetic candles, {symbol} from {start_price:g}")
