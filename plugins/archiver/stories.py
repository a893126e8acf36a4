"""Trade stories (``gobot_trade_stories``): each archived trade of a run with why it happened — the
signal that opened it, every risk verdict on its intent, the sizing, its fills with fees and
commissions, the stop and target at entry — and the positions still open.

How the rows link (all within one run): a trade names its opening order's ``client_order_id``; that
order names its ``intent_id`` (``<cycle>-<symbol>-open``, judged by the risk plugins under that id) and
the cycle it was placed in, whose signals hold the one the core acted on (the most confident LONG or
SHORT of that symbol: ``gobot.run.bot``); the cycle's phase records hold the sizing line. The
closing fill is the symbol's close fill at the trade's close time.

One query per table for the whole answer (never one per trade): a run of 7,000 trades answers in a
fraction of a second on SQLite. Imported lazily (SQLAlchemy).
"""

from __future__ import annotations

import gc
import json
import re
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import select

from gobot_hookspecs import Action, TradeStory
from gobot_hookspecs.money import money

from .schema import TABLES
from .store import ArchiveStore, loads

#: ``vision(run_id, {(cycle, symbol), ...})`` -> {(cycle, symbol): (images as data: URIs, the answer)}:
#: what a vision model saw and said for the signals of those cycles.
VisionLookup = Callable[[str, set[tuple[int, str]]], dict[tuple[int, str], tuple[list[str], str | None]]]

_TRADE_COLUMNS = ("trade_key", "symbol", "direction", "amount", "entry_price", "exit_price", "opened_at",
                  "closed_at", "fees", "pnl", "exit_reason", "strategy", "strategy_version", "client_order_id",
                  "initial_stop_loss")
_ORDER_COLUMNS = ("client_order_id", "intent_id", "iteration", "symbol", "side", "amount", "price", "stop_loss",
                  "take_profit", "created_at")
_FILL_COLUMNS = ("client_order_id", "symbol", "side", "purpose", "amount", "price", "fee", "time", "reason",
                 "commissions")
_SIGNAL_COLUMNS = ("iteration", "seq", "time", "symbol", "action", "confidence", "rationale", "timeframe", "strategy",
                   "strategy_version", "source")
_VERDICT_COLUMNS = ("intent_id", "seq", "plugin", "approved", "reason")


def newest_run(store: ArchiveStore) -> dict[str, Any] | None:
    """The run the archive saw last (the highest row id, as ``gobot report`` picks it), or None."""
    runs = TABLES["runs"].__table__
    with store.engine.connect() as connection:
        row = connection.execute(select(runs).order_by(runs.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row is not None else None


def run_row(store: ArchiveStore, run_id: str) -> dict[str, Any] | None:
    runs = TABLES["runs"].__table__
    with store.engine.connect() as connection:
        row = connection.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
    return dict(row) if row is not None else None


def read_stories(store: ArchiveStore, run_id: str, symbol: str | None = None, start: datetime | None = None,
                 end: datetime | None = None, limit: int = 10_000, *, currency: str = "",
                 vision: VisionLookup | None = None) -> list[TradeStory]:
    """The stories of ``run_id``'s trades open at any time between ``start`` and ``end`` (None: unbounded),
    on ``symbol`` (None: all), positions still open included: the newest ``limit``, oldest first."""
    with _no_collection():
        rows = _Rows.read(store, run_id, symbol, end)
        stories = [_closed_story(trade, rows, currency) for trade in rows.trades
                   if start is None or trade["closed_at"] is None or trade["closed_at"] >= start]
        stories += [story for story in _open_stories(rows, currency) if end is None or story.entry_time <= end]
    stories.sort(key=lambda s: (s.entry_time, s.id))
    stories = stories[-limit:] if limit > 0 else []
    if vision is not None:
        _add_vision(stories, rows, vision, run_id)
    return stories


@contextmanager
def _no_collection() -> Iterator[None]:
    """No garbage collection while the rows and stories are made: tens of thousands of small objects,
    none in a cycle, whose allocation would set off collections that find nothing (a third of the time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Rows:
    """A run's rows that stories are made of, one query per table, indexed for the joins."""

    def __init__(self) -> None:
        self.trades: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}  # opening orders by client order id
        self.open_fills: dict[str, list[dict[str, Any]]] = defaultdict(list)  # by client order id
        self.close_fills: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)  # by (symbol, time)
        self.last_close: dict[str, Any] = {}  # symbol -> time of its latest close fill
        self.signals: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)  # by (cycle, symbol)
        self.verdicts: dict[str, list[dict[str, Any]]] = defaultdict(list)  # by intent id
        self.sizing: dict[tuple[int, str], str] = {}  # (cycle, "symbol side") -> the phase record's line
        self.cycles: dict[str, int] = {}  # story id -> the cycle its position was opened in

    @classmethod
    def read(cls, store: ArchiveStore, run_id: str, symbol: str | None, end: datetime | None) -> _Rows:
        t, o, f, s, v, c = (TABLES[name].__table__ for name in
                            ("trades", "orders", "fills", "signals", "risk_verdicts", "cycles"))
        mine = [o.c.run_id == run_id, o.c.purpose == "open"] + ([o.c.symbol == symbol] if symbol else [])
        if end is not None:
            mine.append(o.c.created_at <= end)
        opening = select(o.c.iteration).where(*mine)  # the cycles that opened a position: their signals only
        queries = {
            "trades": select(*(t.c[n] for n in _TRADE_COLUMNS)).where(
                t.c.run_id == run_id, *([t.c.symbol == symbol] if symbol else []),
                *([t.c.opened_at <= end] if end is not None else [])).order_by(t.c.opened_at, t.c.id),
            "orders": select(*(o.c[n] for n in _ORDER_COLUMNS)).where(*mine),
            "fills": select(*(f.c[n] for n in _FILL_COLUMNS)).where(
                f.c.run_id == run_id, *([f.c.symbol == symbol] if symbol else [])).order_by(f.c.time, f.c.id),
            "signals": select(*(s.c[n] for n in _SIGNAL_COLUMNS)).where(
                s.c.run_id == run_id, s.c.action != Action.HOLD.value, s.c.iteration.in_(opening),
                *([s.c.symbol == symbol] if symbol else [])),
            # by cycle, as the unique index reads them (an intent id is its cycle's: "<cycle>-<symbol>-open")
            "verdicts": select(*(v.c[n] for n in _VERDICT_COLUMNS)).where(
                v.c.run_id == run_id, v.c.iteration.in_(opening)).order_by(v.c.seq),
            "cycles": select(c.c.iteration, c.c.phase_records).where(c.c.run_id == run_id, c.c.iteration.in_(opening)),
        }
        with store.engine.connect() as connection:
            found = {name: _dicts(connection.execute(query)) for name, query in queries.items()}
        rows = cls()
        rows.trades = found["trades"]
        rows.orders = {r["client_order_id"]: r for r in found["orders"]}
        for fill in found["fills"]:
            if fill["purpose"] == "open":
                rows.open_fills[fill["client_order_id"]].append(fill)
            else:
                rows.close_fills[(fill["symbol"], fill["time"])].append(fill)
                rows.last_close[fill["symbol"]] = max(rows.last_close.get(fill["symbol"], fill["time"]), fill["time"])
        for signal in found["signals"]:
            rows.signals[(signal["iteration"], signal["symbol"])].append(signal)
        for verdict in found["verdicts"]:
            rows.verdicts[verdict["intent_id"]].append(verdict)
        for cycle in found["cycles"]:
            rows.sizing.update(_sizing_lines(cycle["iteration"], cycle["phase_records"]))
        return rows

    def signal_of(self, order: dict[str, Any] | None, direction: str) -> dict[str, Any] | None:
        """The signal the core acted on: the most confident of its cycle for the symbol and direction
        (ties: the first produced), as ``gobot.run.bot`` chooses it."""
        if order is None:
            return None
        cycle = self.signals.get((order["iteration"], order["symbol"]), ())
        candidates = [s for s in cycle if s["action"] == direction]
        return min(candidates, key=lambda s: (-s["confidence"], s["seq"]), default=None)

    def close_fill(self, trade: dict[str, Any]) -> dict[str, Any] | None:
        """The fill that closed ``trade``: the symbol's close fill at its close time (its price if several)."""
        candidates = self.close_fills.get((trade["symbol"], trade["closed_at"]), [])
        return min(candidates, key=lambda f: abs(f["price"] - trade["exit_price"]), default=None)


def _dicts(result: Any) -> list[dict[str, Any]]:
    """A result's rows as plain dicts (without a mapping object per row: 7,000 trades have 50,000 rows)."""
    keys = list(result.keys())
    return [dict(zip(keys, row)) for row in result]


#: A decision line of the validate phase, inside the cycle's phase records (JSON): ``"BTC/USDT buy 50.00
#: USDT approved by 2 risk checks"``.
_APPROVED = re.compile(r'"((?:[^"\\]|\\.)* approved by (?:[^"\\]|\\.)*)"')


def _sizing_lines(iteration: int, phase_records: str | None) -> dict[tuple[int, str], str]:
    """The cycle's entry decisions as the validate phase recorded them, by (cycle, "BTC/USDT buy"): the
    lines are picked out of the JSON text, not the whole cycle's records parsed."""
    lines: dict[tuple[int, str], str] = {}
    if not phase_records or " approved by " not in phase_records:
        return lines
    for match in _APPROVED.finditer(phase_records):
        line = json.loads(f'"{match.group(1)}"')
        symbol, side, *_ = line.split(" ", 2)
        lines[(iteration, f"{symbol} {side}")] = line
    return lines


def _closed_story(trade: dict[str, Any], rows: _Rows, currency: str) -> TradeStory:
    order = rows.orders.get(trade["client_order_id"] or "")
    fills = list(rows.open_fills.get(trade["client_order_id"] or "", ()))
    closing = rows.close_fill(trade)
    if closing is not None:
        fills.append(closing)
    return _story(
        rows, order, fills, currency, id=trade["trade_key"], symbol=trade["symbol"], direction=trade["direction"],
        amount=trade["amount"], entry_time=trade["opened_at"], entry_price=trade["entry_price"],
        exit_time=trade["closed_at"], exit_price=trade["exit_price"], exit_reason=trade["exit_reason"],
        stop_loss=(order or {}).get("stop_loss") or trade["initial_stop_loss"],
        take_profit=(order or {}).get("take_profit"), pnl=trade["pnl"], fees=trade["fees"],
        strategy=trade["strategy"], strategy_version=trade["strategy_version"],
    )


def _open_stories(rows: _Rows, currency: str) -> list[TradeStory]:
    """Positions still open: entry fills of an order no trade names, after the symbol's last close fill."""
    closed = {t["client_order_id"] for t in rows.trades}
    stories = []
    for coid, fills in rows.open_fills.items():
        last_close = rows.last_close.get(fills[0]["symbol"])
        if coid in closed or (last_close is not None and last_close > fills[0]["time"]):
            continue
        amount = sum(f["amount"] for f in fills)
        order = rows.orders.get(coid)
        stories.append(_story(
            rows, order, fills, currency, id=coid, symbol=fills[0]["symbol"],
            direction=Action.LONG.value if fills[0]["side"] == "buy" else Action.SHORT.value, amount=amount,
            entry_time=fills[0]["time"], entry_price=sum(f["price"] * f["amount"] for f in fills) / amount,
            stop_loss=(order or {}).get("stop_loss"), take_profit=(order or {}).get("take_profit"),
            fees=sum(f["fee"] for f in fills), strategy=None, strategy_version=None,
        ))
    return stories


def _story(rows: _Rows, order: dict[str, Any] | None, fills: list[dict[str, Any]], currency: str,
           **fields: Any) -> TradeStory:
    signal = rows.signal_of(order, fields["direction"])
    if order is not None:
        rows.cycles[fields["id"]] = order["iteration"]
    verdicts = rows.verdicts.get(order["intent_id"], []) if order is not None else []
    if signal is not None:
        fields["strategy"] = fields["strategy"] or signal["strategy"]
        if fields["strategy_version"] is None:
            fields["strategy_version"] = signal["strategy_version"]
    return TradeStory.model_validate({
        **fields, "currency": currency,
        "signal": None if signal is None else {
            "source": signal["source"], "action": signal["action"], "confidence": signal["confidence"],
            "rationale": signal["rationale"] or "", "time": signal["time"], "timeframe": signal["timeframe"]},
        "verdicts": [{"plugin": v["plugin"], "approved": v["approved"], "reason": v["reason"] or ""}
                     for v in verdicts],
        "sizing": _sizing(rows, order, fills, currency),
        "fills": [{"time": f["time"], "side": f["side"], "purpose": f["purpose"], "price": f["price"],
                   "amount": f["amount"], "fee": f["fee"], "commissions": loads(f["commissions"], {}),
                   "reason": f["reason"] or ""} for f in fills],
    })


def _sizing(rows: _Rows, order: dict[str, Any] | None, fills: list[dict[str, Any]], currency: str) -> str:
    """One line: the amount and its notional at the entry, then the cycle's decision line when recorded."""
    if order is None and not fills:
        return ""
    amount = order["amount"] if order is not None else sum(f["amount"] for f in fills)
    price = (order or {}).get("price") or (fills[0]["price"] if fills else None)
    symbol = order["symbol"] if order is not None else fills[0]["symbol"]
    base, _, quote = symbol.partition("/")
    text = f"{amount:.8g} {base}"
    if price:
        text += f" ≈ {money(amount * price, quote.split(':')[0] or currency)} at {price:.8g}"
    if order is not None and (line := rows.sizing.get((order["iteration"], f"{symbol} {order['side']}"))):
        text += f" — {line}"
    return text


def _add_vision(stories: list[TradeStory], rows: _Rows, vision: VisionLookup, run_id: str) -> None:
    """Give each vision signal's story the charts the model saw and its answer (``vision`` finds them by
    the signal's cycle and symbol)."""
    wanted = {story.id: (rows.cycles[story.id], story.symbol) for story in stories
              if story.signal is not None and story.signal.source == "vision" and story.id in rows.cycles}
    if not wanted:
        return
    found = vision(run_id, set(wanted.values()))
    for story in stories:
        if story.id in wanted and (seen := found.get(wanted[story.id])) is not None:
            story.images, story.answer = seen


def vision_lookup(view: Any, max_with_images: int = 200) -> VisionLookup:
    """What the vision plugin kept of its requests (``gobot_plugins.vision.store``, which owns that folder):
    found through its configured ``cache_dir`` (default ``<state_dir>/vision``)."""

    def lookup(run_id: str, wanted: set[tuple[int, str]]) -> dict[tuple[int, str], tuple[list[str], str | None]]:
        try:
            from ..vision import cache_root
            from ..vision.config import VisionConfig
            from ..vision.store import VisionStore
        except ImportError:  # the vision plugin is not installed: nothing to show
            return {}
        config = view.plugin_config("vision") or VisionConfig()
        return VisionStore(cache_root(view.config, config)).shown_to_model(run_id, wanted, max_with_images)

    return lookup


def stories_of(view: Any, url: str, run_id: str | None, symbol: str | None, start: datetime | None,
               end: datetime | None, limit: int, *, store: ArchiveStore | None = None,
               max_with_images: int = 200) -> list[TradeStory] | None:
    """``gobot_trade_stories`` from the archive at ``url`` (``store``: an open one, e.g. the running
    writer's); None when there is no archive there or not that run."""
    from .report import report_currency
    from .store import sqlite_path

    own = store is None
    if own:
        path = sqlite_path(url)
        if path is not None and (path == ":memory:" or not Path(path).exists()):
            return None  # reading never creates an archive
        store = ArchiveStore(url)
    try:
        if own:
            store.migrate()  # an archive of an older gobot is brought up to date first, as `gobot report` does
        run = run_row(store, run_id) if run_id else newest_run(store)
        if run is None:
            return None
        currency = report_currency([run], loads) or view.config.trading.portfolio_currency
        return read_stories(store, run["run_id"], symbol, start, end, limit, currency=currency,
                            vision=vision_lookup(view, max_with_images))
    finally:
        if own:
            store.close()
