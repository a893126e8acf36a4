"""``GET /api/chart``: the running bot's candles with its trades, as the chart kit
(``gobot_hookspecs.tradechart``) draws them in the dashboard.

The candles come through the bot's own market data (``ctx.candles``), at most ``MAX_CANDLES`` a
request. The trades are the run's closed trades and open positions, told as ``TradeStory``: the bot's
own ledger says which trades there are and how they stand (it is never behind); the archive's
``gobot_trade_stories`` answer adds what the ledger does not keep (the signal's rationale, every risk
verdict, the sizing, the fills, a vision model's charts and answer). Without an archive, a story holds
what the ledger knows. Open positions carry their stop and target as they rest now.

Only the hook calls run on the bot's event loop (between the cycle's awaits, as every dashboard read
does); the candles' encoding and the JSON are made in a worker thread (the page computes the indicators
the strategies name), so a chart request costs the cycle little more than its hook calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from gobot_hookspecs import Position, StorySignal, Trade, TradeStory
from gobot_hookspecs.candles import TIMEFRAMES

if TYPE_CHECKING:
    from gobot.run.bot import Bot

log = logging.getLogger(__name__)

#: Candles a chart request fetches at most (and by default).
MAX_CANDLES = 1000
#: Stories a chart asks the archive for at most: a window of MAX_CANDLES rarely holds more trades.
MAX_STORIES = 2000
DEFAULT_TIMEFRAME = "5m"
#: Indicators drawn at most (the running strategies' own, else SMA 20 and 50).
MAX_INDICATORS = 4
#: Story fields the archive knows and the bot's ledger does not.
ARCHIVE_DETAILS = ("signal", "verdicts", "sizing", "fills", "images", "answer")


class ChartRequestError(ValueError):
    """A chart request the bot cannot answer as asked (HTTP 400, or 404 for ``missing``)."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


def traded_symbols(bot: Bot) -> list[str]:
    """The configured symbols, then any other the run holds or traded (a symbol dropped from the config)."""
    symbols = list(bot.settings.trading.symbols)
    for symbol in [*bot.state.positions, *(t.symbol for t in bot.state.trades)]:
        if symbol not in symbols:
            symbols.append(symbol)
    return symbols


def base_timeframe(bot: Bot) -> str:
    """The timeframe the bot's market scan hands to its strategies (the last scan's candles)."""
    for snapshot in bot.ctx.snapshots:
        if snapshot.candles.timeframe in TIMEFRAMES:
            return snapshot.candles.timeframe
    return DEFAULT_TIMEFRAME


def chart_query(bot: Bot, query: dict[str, str]) -> tuple[str, str, int]:
    """``symbol``, ``timeframe`` and ``limit`` of a request, checked: only the run's symbols and known
    timeframes reach a market-data plugin."""
    symbols = traded_symbols(bot)
    symbol = query.get("symbol") or (symbols[0] if symbols else "")
    if symbol not in symbols:
        raise ChartRequestError(f"no chart of {symbol!r}: this run trades {', '.join(symbols) or 'nothing'}",
                                missing=True)
    timeframe = query.get("timeframe") or base_timeframe(bot)
    if timeframe not in TIMEFRAMES:
        raise ChartRequestError(f"unknown timeframe {timeframe!r}: use one of {', '.join(TIMEFRAMES)}")
    try:
        limit = int(query.get("limit", MAX_CANDLES))
    except ValueError:
        raise ChartRequestError("limit must be a whole number of candles") from None
    return symbol, timeframe, max(1, min(limit, MAX_CANDLES))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _key(symbol: str, direction: Any, entry: datetime) -> tuple[str, str, int]:
    """What matches an archived story to the ledger's trade: symbol, side and entry time (to the ms)."""
    return symbol, str(getattr(direction, "value", direction)), round(_utc(entry).timestamp() * 1000)


def story_id(symbol: str, client_order_id: str, opened_at: datetime) -> str:
    """A trade's id for the chart: its opening client order id, which its open position had too."""
    return client_order_id or f"{symbol}@{round(_utc(opened_at).timestamp() * 1000)}"


def _signal(source: str | None, direction: Any, confidence: float | None) -> StorySignal | None:
    if confidence is None:
        return None
    return StorySignal(source=source or "", action=direction, confidence=confidence)


def trade_story(trade: Trade, currency: str) -> TradeStory:
    """A closed trade as the ledger knows it."""
    return TradeStory(
        id=story_id(trade.symbol, trade.client_order_id, trade.opened_at), symbol=trade.symbol,
        direction=trade.direction, amount=trade.amount, entry_time=trade.opened_at, entry_price=trade.entry_price,
        exit_time=trade.closed_at, exit_price=trade.exit_price, exit_reason=trade.exit_reason,
        stop_loss=trade.initial_stop_loss, pnl=trade.pnl, fees=trade.fees, currency=currency,
        strategy=trade.strategy, strategy_version=trade.strategy_version,
        signal=_signal(trade.strategy, trade.direction, trade.confidence),
    )


def position_story(position: Position, currency: str) -> TradeStory:
    """An open position as the ledger knows it, with its stop and target as they rest now."""
    return TradeStory(
        id=story_id(position.symbol, position.client_order_id, position.opened_at), symbol=position.symbol,
        direction=position.direction, amount=position.amount, entry_time=position.opened_at,
        entry_price=position.entry_price, stop_loss=position.stop_loss, take_profit=position.take_profit,
        fees=position.entry_fee, currency=currency, strategy=position.strategy,
        strategy_version=position.strategy_version,
        signal=_signal(position.strategy, position.direction, position.confidence),
    )


def ledger_stories(bot: Bot, symbol: str, start: datetime | None, end: datetime | None) -> list[TradeStory]:
    """The run's trades on ``symbol`` that were open within [start, end], and its open position, oldest first."""
    currency = bot.ctx.currency
    stories = [trade_story(t, currency) for t in bot.state.trades
               if t.symbol == symbol and (start is None or _utc(t.closed_at) >= start)
               and (end is None or _utc(t.opened_at) <= end)]
    position = bot.state.positions.get(symbol)
    if position is not None:
        stories.append(position_story(position, currency))
    return stories[-MAX_STORIES:]


def _matches(stories: list[TradeStory], archived: list[TradeStory]) -> list[TradeStory | None]:
    """Each ledger story's archived twin (by id, else symbol, side and entry time), or None."""
    by_id = {s.id: s for s in archived}
    by_key = {_key(s.symbol, s.direction, s.entry_time): s for s in archived}
    return [by_id.get(s.id) or by_key.get(_key(s.symbol, s.direction, s.entry_time)) for s in stories]


def with_details(stories: list[TradeStory], archived: list[TradeStory]) -> list[TradeStory]:
    """The ledger's stories with the archive's details of the same trades. The ledger's facts win: the
    archive may be a write behind."""
    told = []
    for story, match in zip(stories, _matches(stories, archived)):
        if match is None:
            told.append(story)
            continue
        details: dict[str, Any] = {field: getattr(match, field) for field in ARCHIVE_DETAILS}
        if match.signal is None:
            details["signal"] = story.signal
        if story.take_profit is None:
            details["take_profit"] = match.take_profit
        if story.stop_loss is None:
            details["stop_loss"] = match.stop_loss
        told.append(story.model_copy(update=details))
    return told


async def archived_stories(bot: Bot, symbol: str, start: datetime | None,
                           end: datetime | None) -> list[TradeStory]:
    """The archive's stories of this run's trades on ``symbol`` (``gobot_trade_stories``); [] when no
    plugin answers or the answer fails (logged: the ledger's stories are shown instead)."""
    from gobot.host.hook_caller import HookCaller

    def failed(failure) -> None:  # not counted against the cycle that happens to be running
        log.warning("dashboard chart: %s", failure)

    try:
        answer = await HookCaller(bot.plugin_set.pm, on_failure=failed).first(
            "gobot_trade_stories", config=bot.ctx, run_id=bot.state.run_id, symbol=symbol, start=start, end=end,
            limit=MAX_STORIES)
    except Exception as exc:  # noqa: BLE001 - a broken archive must not break the chart
        log.warning("dashboard chart: no trade stories from the archive: %s", exc)
        return []
    if answer is None:
        return []
    plugin, stories = answer
    if not isinstance(stories, list) or not all(isinstance(s, TradeStory) for s in stories):
        log.warning("dashboard chart: %s answered gobot_trade_stories with %s, not a list of TradeStory",
                    plugin, type(stories).__name__)
        return []
    return stories


class ArchiveDetails:
    """The archive's stories of each symbol, kept while they tell every trade the ledger holds as it stands
    (a trade closed in the archive too): the archive is asked again only when the ledger's trades changed or
    its last answer was a write behind. A chart refresh then costs no archive query."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple, list[TradeStory]]] = {}

    async def of(self, bot: Bot, symbol: str, stories: list[TradeStory], start: datetime) -> list[TradeStory]:
        """The archive's stories for the ledger's ``stories`` of ``symbol`` (from ``start``)."""
        ledger = tuple((s.id, s.exit_time is None) for s in stories)
        kept = self._kept.get(symbol)
        if kept is not None and kept[0] == ledger:
            return kept[1]
        archived = await archived_stories(bot, symbol, start, None)
        if all(match is not None and (match.exit_time is None) == (story.exit_time is None)
               for story, match in zip(stories, _matches(stories, archived))):
            self._kept[symbol] = (ledger, archived)
        else:
            self._kept.pop(symbol, None)
        return archived


async def chart_document(bot: Bot, archive: ArchiveDetails, symbol: str, timeframe: str, limit: int) -> bytes:
    """The chart kit's payload for ``symbol`` as JSON: the newest ``limit`` candles of ``timeframe`` and
    the trades within them. Raises ChartRequestError (missing) when the market data has no such candles."""
    try:
        candles = await bot.ctx.candles(symbol, timeframe, limit)
    except LookupError as exc:
        raise ChartRequestError(str(exc), missing=True) from None
    if candles is None or not len(candles):
        raise ChartRequestError(f"no {timeframe} candles of {symbol} yet", missing=True)
    start = datetime.fromtimestamp(candles.timestamp[0] / 1000, timezone.utc)
    stories = ledger_stories(bot, symbol, start, None)
    if stories:
        stories = with_details(stories, await archive.of(bot, symbol, stories, start))
    strategies = [(bot.strategies[name], dict(version.params)) for name, version in sorted(bot.state.strategies.items())
                  if name in bot.strategies]
    title = f"{symbol} · run {bot.state.run_id}"
    return await asyncio.to_thread(_encode, symbol, timeframe, candles, stories, bot.ctx.currency, title, strategies)


def indicators(strategies: list[tuple[Any, dict[str, float]]]) -> list[str]:
    """What the running strategies' current versions compute, as ``gobot plot`` draws it (each strategy's
    ``chart_indicators(params)``, else what its parameter names give away), at most MAX_INDICATORS."""
    from gobot.research.backtest.chart import DEFAULT_INDICATORS, strategy_indicators  # numpy: in the worker

    found = [spec for strategy, params in strategies for spec in strategy_indicators(strategy, params)]
    return list(dict.fromkeys(found))[:MAX_INDICATORS] or list(DEFAULT_INDICATORS)


def _encode(symbol: str, timeframe: str, candles: Any, stories: list[TradeStory], currency: str, title: str,
            strategies: list[tuple[Any, dict[str, float]]]) -> bytes:
    """The payload's series (candles encoded, indicators named) and JSON, in a worker thread: the loop keeps cycling."""
    from gobot_hookspecs.tradechart import chart_payload, chart_series

    try:
        series = chart_series(symbol, timeframe, candles, indicators=indicators(strategies))
    except ValueError as exc:  # a strategy naming an indicator the chart does not draw: the chart's own
        log.warning("dashboard chart: %s; drawing SMA 20 and 50", exc)
        series = chart_series(symbol, timeframe, candles)
    payload = chart_payload([series], stories, currency=currency, title=title, symbol=symbol)
    return json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")
