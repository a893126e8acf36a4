"""``gobot sentiment download fear-greed``: the index's history as a recorded file
(``<data_dir>/sentiment/fear_greed.csv``), so replays and backtests answer with real values.
Light at import: click only (this runs for ``gobot --help``)."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click


def _group(parent: click.Group, name: str, help_text: str) -> click.Group:
    """``parent``'s subgroup ``name``, made if no plugin made it yet (other sentiment plugins add theirs)."""
    found = parent.commands.get(name)
    if isinstance(found, click.Group):
        return found
    group = click.Group(name=name, help=help_text)
    parent.add_command(group)
    return group


def add_download_command(cli: click.Group, load_config) -> None:
    sentiment = _group(cli, "sentiment", "Sentiment sources: download their history for replays and backtests.")
    download = _group(sentiment, "download", "Download a sentiment source's history as a recorded file "
                      "(<data_dir>/sentiment/<source>.csv).")

    @download.command(name="fear-greed")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                  help="Config file (default: $GOBOT_CONFIG, else ./config.toml, else built-in defaults).")
    @click.option("--days", type=click.IntRange(min=0), default=365, show_default=True,
                  help="Days of history, newest last; 0 = all the source has.")
    @click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                  help="Market data folder to write sentiment/fear_greed.csv into (default: [plugins.replay] "
                       "data_dir).")
    def fear_greed(config_path, days, out_dir):
        """Download the Fear & Greed index history from [plugins.fear_greed] url.

        \b
        Writes <data_dir>/sentiment/fear_greed.csv, oldest first, in the recorded format that
        replays and backtests read (gobot_hookspecs.sentiment), replacing the file once the
        download is complete. One request (?limit=DAYS&format=json).
        """
        view = load_config(config_path)
        folder = Path(out_dir) if out_dir else _data_dir(view)
        written = download_history(view, folder, days, echo=click.echo)
        click.echo(f"wrote {written}")


def _data_dir(view) -> Path:
    """The replay plugin's data folder; it must exist: without one replay uses the bundled demo market,
    and a new folder holding only sentiment would leave it without candles."""
    replay = view.plugin_config("replay")
    folder = Path(view.config.resolve(getattr(replay, "data_dir", None) or "data"))
    if not folder.is_dir():
        raise click.ClickException(f"{folder}: no such folder ([plugins.replay] data_dir) — give --out DIR, or "
                                   "create it with your candle files first")
    return folder


def download_history(view, folder: Path, days: int, echo=print) -> Path:
    """Fetch ``days`` values (0 = all) as ``folder``'s recorded file (replaced when complete); its path."""
    from gobot_hookspecs.sentiment import append_reading, read_recorded, recorded_path

    from . import NAME
    from .client import fetch, shown_url
    from .config import FearGreedConfig
    from .index import SourceError, history

    config = FearGreedConfig.of(view, NAME)
    echo(f"fear_greed: asking {shown_url(config.url)} for {days or 'all'} days of history ...")
    try:
        values = asyncio.run(fetch(config.url, days, config.timeout_seconds))
    except SourceError as exc:
        raise click.ClickException(f"{shown_url(config.url)}: {exc}") from None
    readings = history(values, datetime.now(timezone.utc), timedelta(hours=config.update_period_hours))
    path = recorded_path(folder, NAME)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    for one in readings:
        append_reading(partial, one)
    read_recorded(partial)  # what replays will read: never replace a good file with one they cannot
    os.replace(partial, path)
    echo(f"fear_greed: {len(readings)} values, {readings[0].time:%Y-%m-%d} to {readings[-1].time:%Y-%m-%d}")
    return path
