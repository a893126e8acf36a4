"""``fear_greed``: a market-wide Fear & Greed index on every snapshot (``snapshot.sentiment["fear_greed"]``).

Reads the index (0 = extreme fear ... 100 = extreme greed) from an HTTP JSON endpoint in the format
of alternative.me's public API (``url``), once per published value (``feed.Feed``: cached until the
next is due, backoff while the source fails, ``stale`` with a note when out of date), and answers
``gobot_scan_sentiment`` with one reading: ``score = (value - 50) / 50``, fields ``value`` and
``classification``. On a simulated clock (replay, backtest) it answers nothing: a live value would
be lookahead there; recorded readings replay instead. ``record`` appends each new value to
``<state_dir>/sentiment/fear_greed.csv``, and ``gobot sentiment download fear-greed`` writes the
history in the same format for backtests and replays. See docs/sentiment.md.
"""

from __future__ import annotations

from gobot_hookspecs import PluginStatus, hookimpl
from gobot_hookspecs.sentiment import recorded_path

from .config import FearGreedConfig
from .index import SOURCE

NAME = "fear_greed"


class FearGreed:
    """One feed per bot, made at start-up from ``[plugins.fear_greed]``."""

    def __init__(self) -> None:
        self.feed = None

    @hookimpl
    def gobot_config_model(self):
        return FearGreedConfig

    @hookimpl
    def gobot_register_commands(self, cli, load_config):
        from .cli import add_download_command

        add_download_command(cli, load_config)

    def _feed(self, ctx):
        if self.feed is None:
            from .feed import Feed

            config = FearGreedConfig.of(ctx, NAME)
            record_to = recorded_path(ctx.config.state_path, SOURCE) if config.record else None
            self.feed = Feed(config, record_to)
        return self.feed

    @hookimpl
    async def gobot_scan_sentiment(self, ctx, snapshots):
        if ctx.simulated:
            return None  # a live value in a replay or backtest would be lookahead
        found = await self._feed(ctx).read(ctx.now())
        return [found] if found is not None else None

    @hookimpl
    def gobot_status(self, ctx):
        if self.feed is None or ctx.simulated:
            return None
        facts = self.feed.status(ctx.now())
        if "value" in facts:
            reason = (f"Fear & Greed {facts['value']:g} ({facts['classification']}), {facts['age_hours']:g} h old"
                      + (f" — STALE: {facts['note']}" if facts["stale"] else ""))
        else:
            reason = f"Fear & Greed: no value yet{': ' + facts['error'] if facts['error'] else ''}"
        return PluginStatus(reason=reason, state="stale" if facts.get("stale", True) else "fresh", data=facts)
