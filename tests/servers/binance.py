"""A Binance-compatible REST server on 127.0.0.1 for tests, the bench and chaos tests.

It speaks enough of Binance's spot (``/api/v3``) and USDT-M futures (``/fapi/v1``, ``/fapi/v2``,
``/fapi/v3``) APIs for the real ccxt client pointed at it with ``api_url``: exchangeInfo (with
*scaled* ``rateLimits``, e.g. a 2-second window, so limit tests run in seconds), ticker, depth,
klines, account and balance, orders (place, query, cancel, open orders), spot OCO order lists
(refusable), futures algo (conditional) orders, positions, leverage and margin type, funding rate
and open interest, and the futures income history's funding payments (``pay_funding`` books one);
the funding rate history and the ``/futures/data`` statistics (open interest history, global
long/short account ratio, taker buy/sell volume) the ``market_sentiment`` plugin reads, set with
``set_sentiment``.

Like Binance it verifies HMAC-SHA256 signatures and the API key, counts request weight per IP in
fixed windows (``X-MBX-USED-WEIGHT-<n><unit>`` and ``X-MBX-ORDER-COUNT-<n><unit>`` headers), answers
429 with ``Retry-After`` when a request would exceed the limit and 418 (a ban, also with
``Retry-After``) after repeated 429s, and rejects a repeated client order id only while the first
order with it is still open. Faults can be injected per endpoint: process the request and then drop
the connection, drop it without processing, answer 5xx (Binance's JSON body or plain text), or
answer late.

Usage::

    with BinanceTestServer() as server:
        exchange.urls["api"] = ...  # or the binance plugin's api_url = server.url
        server.set_price("BTCUSDT", 51000)   # moves the market, triggers resting orders
        server.inject(Fault(path="/api/v3/order", method="POST", action="drop", when="after"))

The server runs its own event loop in a thread, so sync tests, async tests and other processes
(the bench) can all use it. State reads (``orders``, ``requests``, ``weight_used``) take a lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import math
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

API_KEY = "test-api-key-0123456789"
API_SECRET = "test-api-secret-0123456789"
FEE_RATE = Decimal("0.001")

# Request weights as Binance documents them (and ccxt's cost tables encode: spot cost / 0.2).
SPOT_WEIGHTS = {
    ("GET", "ping"): 1, ("GET", "time"): 1, ("GET", "exchangeInfo"): 20, ("GET", "depth"): 5, ("GET", "klines"): 2,
    ("GET", "ticker/24hr"): 2, ("GET", "ticker/price"): 2, ("GET", "account"): 20, ("POST", "order"): 1,
    ("GET", "order"): 4, ("DELETE", "order"): 1, ("GET", "openOrders"): 6, ("POST", "orderList/oco"): 1,
    ("GET", "orderList"): 4, ("DELETE", "orderList"): 1, ("GET", "openOrderList"): 6, ("GET", "myTrades"): 20,
}
FUTURES_WEIGHTS = {
    ("GET", "ping"): 1, ("GET", "time"): 1, ("GET", "exchangeInfo"): 1, ("GET", "depth"): 2, ("GET", "klines"): 1,
    ("GET", "ticker/24hr"): 1, ("GET", "premiumIndex"): 1, ("GET", "openInterest"): 1, ("GET", "account"): 5,
    ("GET", "balance"): 5, ("GET", "positionRisk"): 5, ("POST", "order"): 4, ("GET", "order"): 1,
    ("DELETE", "order"): 1,
    ("GET", "openOrders"): 1, ("POST", "algoOrder"): 1, ("GET", "algoOrder"): 1, ("DELETE", "algoOrder"): 1,
    ("GET", "openAlgoOrders"): 1, ("POST", "leverage"): 1, ("POST", "marginType"): 1, ("GET", "leverageBracket"): 1,
    ("GET", "positionSide/dual"): 30, ("GET", "userTrades"): 5, ("GET", "income"): 30,
    # USDⓈ-M docs: fundingRate "share 500/5min/IP rate limit with GET /fapi/v1/fundingInfo" and the
    # /futures/data statistics weight 0 ("IP rate limit 1000 requests/5min"): none counts in REQUEST_WEIGHT
    ("GET", "fundingRate"): 0, ("GET", "data/openInterestHist"): 0, ("GET", "data/globalLongShortAccountRatio"): 0,
    ("GET", "data/takerlongshortRatio"): 0,
}
PUBLIC = {"ping", "time", "exchangeInfo", "depth", "klines", "ticker/24hr", "ticker/price", "premiumIndex",
          "openInterest", "fundingRate", "data/openInterestHist", "data/globalLongShortAccountRatio",
          "data/takerlongshortRatio"}
#: the periods of the /futures/data statistics (USDⓈ-M "Open Interest Statistics", "Long/Short Ratio",
#: "Taker Buy/Sell Volume"); only the last 30 days are kept
DATA_PERIODS = {"5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400, "6h": 21600,
                "12h": 43200, "1d": 86400}
FUNDING_INTERVAL_MS = 8 * 3600 * 1000
ORDER_ENDPOINTS = {("POST", "order"), ("POST", "orderList/oco"), ("POST", "algoOrder")}
INTERVALS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400, "1d": 86400}
OPEN = ("NEW", "PARTIALLY_FILLED")
#: Spot types that wait for their stop price: not working (``workingTime: -1``, ``isWorking: false``)
#: until triggered; only they carry ``stopPrice`` in placing and cancel answers (spot rest-api.md
#: "Conditional fields in Order Responses").
SPOT_STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
#: spot ``newOrderRespType`` values (rest-api.md "New order"); the default is FULL for MARKET and
#: LIMIT, ACK for every other type.
SPOT_RESP_TYPES = ("ACK", "RESULT", "FULL")


@dataclass
class Fault:
    """An injected failure for requests matching ``method`` and ``path`` (None = any).

    ``action``: ``drop`` closes the connection without an answer; ``status`` answers ``status``
    with Binance's JSON error body (or plain text with ``text=True``); ``delay`` answers after
    ``delay`` seconds; ``callback`` calls ``callback()`` (e.g. SIGKILL the client: a crash after the
    order was sent and before its answer was read) and then drops the connection; ``mangle``
    processes the request and answers ``callback(payload)`` instead of the payload (a malformed
    answer: missing fields, wrong types, NaN — its effects happened all the same). ``when``: ``after``
    the request was processed (its effects happened) or ``before`` (nothing happened). Lets the first
    ``skip`` matching requests through, then applies to the next ``times`` of them. ``code`` and ``msg``:
    the JSON error body of ``status`` (default: -1001 "Internal error"); e.g. a refused order, as
    Binance's errors.md lists them, is ``status=400, code=-2010`` ("Account has insufficient balance for
    requested action.", NEW_ORDER_REJECTED) or ``code=-1013`` ("Filter failure: LOT_SIZE").
    ``retry_after``: a ``Retry-After`` header (seconds) on the ``status`` answer, as Binance sends with
    429 and 418 (``status=429, code=-1003, msg="Too many requests..."``).
    """

    path: str | None = None
    method: str | None = None
    action: str = "drop"
    when: str = "after"
    status: int = 503
    text: bool = False
    delay: float = 0.0
    times: int = 1
    skip: int = 0
    hits: int = 0
    callback: Any = None
    code: int = -1001
    msg: str = "Internal error; unable to process your request. Please try again."
    retry_after: float | None = None


@dataclass
class FuturesStats:
    """What the funding and ``/futures/data`` endpoints answer for one symbol (``set_sentiment``).

    Series are oldest first, their last value the newest period; an answer asking for more periods
    than a series holds repeats its first value before it (a flat past)."""

    funding_rate: str = "0.00010000"  # premiumIndex lastFundingRate
    funding_history: list[str] = field(default_factory=lambda: ["0.00010000"])  # settled, every 8 h
    open_interest: list[str] = field(default_factory=lambda: ["10659.509"])  # sumOpenInterest per period
    open_interest_prices: list[str] = field(default_factory=list)  # price per period (empty: the price now)
    long_account: str = "0.5"  # share of accounts net long
    taker_buy: str = "100"  # taker buy volume per period, base asset
    taker_sell: str = "100"


@dataclass
class Market:
    symbol: str
    base: str
    quote: str
    tick: str = "0.01"
    step: str = "0.00001"
    min_qty: str = "0.00001"
    max_qty: str = "9000"
    min_notional: str = "5"
    futures: bool = False
    #: exchangeInfo ``orderTypes`` (spot); None = Binance's mainnet list. The spot testnet has long
    #: listed only ``LIMIT LIMIT_MAKER MARKET STOP_LOSS_LIMIT TAKE_PROFIT_LIMIT`` (ccxt's recorded
    #: exchangeInfo, ts/src/test/static/response/binance.json, shows the same list).
    order_types: list[str] | None = None


def _ds(value: Decimal | float | str) -> str:
    text = format(Decimal(str(value)).normalize(), "f")
    return text


class ApiError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


@dataclass
class _Window:
    start: float = 0.0
    used: int = 0


@dataclass
class ServerState:
    orders: dict[int, dict] = field(default_factory=dict)
    order_lists: dict[int, dict] = field(default_factory=dict)
    algo_orders: dict[int, dict] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, dict] = field(default_factory=dict)  # futures: symbol -> {amt, entry, leverage, margin}
    income: list[dict] = field(default_factory=list)  # futures income history (funding payments), oldest first
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)


class BinanceTestServer:
    """See the module docstring. ``window_seconds`` scales every "1 minute" budget."""

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        api_secret: str = API_SECRET,
        window_seconds: float = 2.0,
        weight_limit: int = 1200,
        futures_weight_limit: int = 2400,
        orders_limit: int = 50,
        order_window_seconds: float = 1.0,
        orders_per_day: int = 160000,
        ban_after_429s: int = 3,
        ban_seconds: float = 2.0,
        refuse_oco: bool = False,
        lock_balances: bool = False,
        markets: list[Market] | None = None,
        prices: dict[str, float] | None = None,
        quote_balance: float = 10000.0,
        commission_asset: str | None = None,
        commission_zero: bool = False,
        actual_order_id: bool = True,
    ):
        self.api_key, self.api_secret = api_key, api_secret
        self.window_seconds = window_seconds
        self.weight_limit, self.futures_weight_limit = weight_limit, futures_weight_limit
        self.orders_limit, self.order_window_seconds = orders_limit, order_window_seconds
        self.orders_per_day = orders_per_day
        self.ban_after_429s, self.ban_seconds = ban_after_429s, ban_seconds
        self.refuse_oco = refuse_oco
        # Spot commissions: in the asset received (Binance's default), or in BNB when the account's
        # BNB fee discount is on (``commission_asset="BNB"``: 0.075 %, the 25 % discount); the spot
        # testnet often reports ``"commission": "0"`` (``commission_zero``).
        self.commission_asset, self.commission_zero = commission_asset, commission_zero
        # Futures: whether a triggered algo order's query answer names the order it created
        # (``actualOrderId``); answers seen from Binance-compatible servers leave it empty.
        self.actual_order_id = actual_order_id
        # the next market orders fill only this share and expire (thin book); 0: they expire with nothing filled
        self.fill_ratio = Decimal(1)
        # Knobs for drift tests (issue 21), all off by default: market orders (and spot stop-market orders
        # once triggered) fill ``slippage`` (a fraction) worse than the price; with ``hold_market_orders`` they rest
        # unfilled until ``release_held()`` (a delayed fill) or ``expire_held()``; the market's clock (klines,
        # order and fill times) runs ``market_offset_ms`` ahead of the wall clock, so a test steps through candles
        # without waiting for them (signed requests are still checked against the wall clock).
        self.slippage = Decimal(0)
        self.hold_market_orders = False
        self.market_offset_ms = 0
        self.lock_balances = lock_balances  # spot: resting orders hold their balance, as on Binance
        self.markets = {m.symbol + (":F" if m.futures else ""): m for m in (markets or default_markets())}
        self.prices = {k: Decimal(str(v)) for k, v in (prices or {"BTCUSDT": 50000.0, "ETHUSDT": 3000.0,
                                                                  "BNBUSDT": 600.0}).items()}
        self.state = ServerState(balances={"USDT": Decimal(str(quote_balance)), "BTC": Decimal(0), "ETH": Decimal(0),
                                           "BNB": Decimal(1) if commission_asset == "BNB" else Decimal(0)})
        self.futures_wallet = Decimal(str(quote_balance))
        self.faults: list[Fault] = []
        self.stats: dict[str, FuturesStats] = {}  # futures symbol -> its funding and statistics (set_sentiment)
        self.clock_skew_ms = 0  # the server's clock runs this far ahead: signed requests get -1021
        self.lock = threading.RLock()
        self._ids = itertools.count(1000)
        # generated client ids of cancel requests (their own counter: order ids stay as they were)
        self._cancel_ids = itertools.count(1)
        self._weight = {"spot": _Window(), "futures": _Window()}
        self._order_count = {"spot": _Window(), "futures": _Window()}
        self._429s = 0
        self.banned_until = 0.0
        self.status_counts: dict[int, int] = {}
        self.weight_used = {"spot": 0, "futures": 0}  # accepted weight, all windows
        # (window start, weight) of past windows
        self.window_log: dict[str, list[tuple[float, int]]] = {"spot": [], "futures": []}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- life cycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BinanceTestServer:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start_app())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="binance-test-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Binance test server did not start")
        return self

    async def _start_app(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> BinanceTestServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- test controls -----------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def set_price(self, symbol: str, price: float) -> None:
        """Move the market; resting orders whose condition the new price meets execute."""
        with self.lock:
            self.prices[symbol] = Decimal(str(price))
            self._trigger(symbol)

    def set_sentiment(self, symbol: str, **values: Any) -> FuturesStats:
        """Set what the funding and statistics endpoints answer for ``symbol`` (``FuturesStats``'s fields;
        numbers may be given as floats, series as lists, oldest first)."""
        with self.lock:
            stats = self.stats.setdefault(symbol, FuturesStats())
            for key, value in values.items():
                if not hasattr(stats, key):
                    raise TypeError(f"FuturesStats has no {key}")
                setattr(stats, key, [_ds(v) for v in value] if isinstance(value, (list, tuple)) else _ds(value))
            return stats

    def release_held(self) -> None:
        """Fill the market orders ``hold_market_orders`` kept waiting, at the price now."""
        with self.lock:
            self.hold_market_orders = False
            for order in list(self.state.orders.values()):
                if order["type"] == "MARKET" and order["status"] in OPEN:
                    self._execute_if_marketable(order)

    def expire_held(self) -> None:
        """The market orders ``hold_market_orders`` kept waiting expire with nothing filled (no liquidity came)."""
        with self.lock:
            self.hold_market_orders = False
            for order in self.state.orders.values():
                if order["type"] == "MARKET" and order["status"] in OPEN and not order["executedQty"]:
                    order["status"], order["updateTime"] = "EXPIRED", self.market_ms()

    def market_ms(self) -> int:
        """The market's clock, epoch ms (the wall clock plus ``market_offset_ms``)."""
        return int(time.time() * 1000) + self.market_offset_ms

    def orders_with(self, client_order_id: str) -> list[dict]:
        with self.lock:
            return [dict(o) for o in self.state.orders.values() if o["clientOrderId"] == client_order_id]

    def filled_orders(self, symbol: str | None = None) -> list[dict]:
        with self.lock:
            return [dict(o) for o in self.state.orders.values() if o["status"] == "FILLED"
                    and (symbol is None or o["symbol"] == symbol)]

    def open_orders(self) -> list[dict]:
        with self.lock:
            return [dict(o) for o in self.state.orders.values() if o["status"] in OPEN]

    def open_algo_orders(self) -> list[dict]:
        with self.lock:
            return [dict(o) for o in self.state.algo_orders.values() if o["algoStatus"] == "NEW"]

    def position(self, symbol: str) -> Decimal:
        with self.lock:
            return self.state.positions.get(symbol, {}).get("amt", Decimal(0))

    def balance(self, asset: str) -> Decimal:
        with self.lock:
            return self.state.balances.get(asset, Decimal(0))

    def windows(self, api: str = "spot") -> list[tuple[float, int]]:
        """(start, accepted weight) of every window so far, the current one last."""
        with self.lock:
            current = self._weight[api]
            return list(self.window_log[api]) + ([(current.start, current.used)] if current.used else [])

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.state.requests if m == method and p == path)

    def set_min_notional(self, symbol: str, value: float, futures: bool = False) -> None:
        with self.lock:
            self.markets[symbol + (":F" if futures else "")].min_notional = str(value)

    def close_outside(self, symbol: str, futures: bool = False, prefix: str = "web_", fraction: float = 1.0) -> dict:
        """The account's position in ``symbol`` closed (``fraction`` of it) by an order that is not the bot's.

        ``prefix`` is the client order id Binance gives it: ``web_`` (closed by hand in the web UI),
        ``autoclose-`` (a liquidation) or ``adl_autoclose`` (auto-deleveraging), as the USDⓈ-M
        futures docs describe for ``clientOrderId`` in User Data Stream ORDER_TRADE_UPDATE events."""
        with self.lock:
            market = self.markets[symbol + (":F" if futures else "")]
            if futures:
                held = self._position(symbol)["amt"]
            else:
                held = self.state.balances.get(market.base, Decimal(0))
            step = Decimal(market.step)
            quantity = (abs(held) * Decimal(str(fraction)) / step).to_integral_value(rounding="ROUND_FLOOR") * step
            side = "SELL" if held > 0 else "BUY"
            # Binance's ADL order id is exactly "adl_autoclose"; the others are a prefix and digits
            coid = prefix if prefix == "adl_autoclose" else f"{prefix}{next(self._ids)}"
            order = self._new_order(market, {"type": "MARKET", "side": side, "quantity": _ds(quantity),
                                             "reduceOnly": "true" if futures else "false"}, coid, futures=futures)
            self._fill(order, self._price(symbol))
            return dict(order)

    def pay_funding(self, symbol: str, rate: float, held: float | None = None) -> Decimal:
        """A funding time on the futures position in ``symbol``: at ``rate`` a long pays (a short receives)
        ``rate x position notional at the mark price``; the wallet moves and the income history lists it
        (``FUNDING_FEE``, at the market clock's time). ``held``: the signed position at the funding time,
        when it has changed since (a payment Binance books after a close a moment later). Returns the
        amount booked (positive: received)."""
        with self.lock:
            held = self._position(symbol)["amt"] if held is None else Decimal(str(held))
            amount = -held * self._price(symbol) * Decimal(str(rate))
            self.futures_wallet += amount
            self.state.income.append({"symbol": symbol, "incomeType": "FUNDING_FEE", "income": _ds(amount),
                                      "asset": "USDT", "info": "FUNDING_FEE", "time": self.market_ms(),
                                      "tranId": next(self._ids), "tradeId": ""})
            return amount

    # -- the request pipeline ------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/api/v3/"):
            api, endpoint = "spot", path[len("/api/v3/"):]
        elif path.startswith(("/fapi/v1/", "/fapi/v2/", "/fapi/v3/")):
            api, endpoint = "futures", path[len("/fapi/v1/"):]
        elif path.startswith("/futures/data/"):  # USDⓈ-M statistics: ccxt's fapiData
            api, endpoint = "futures", "data/" + path[len("/futures/data/"):]
        else:
            return web.json_response({"code": -1000, "msg": f"unknown path {path}"}, status=404)
        body = await request.text()
        raw = request.query_string + (body if body else "")
        params = dict(parse_qsl(request.query_string)) | dict(parse_qsl(body))
        fault = self._fault(request.method, path)
        if fault is not None and fault.action == "delay":
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.when == "before" and fault.action in ("drop", "status", "callback"):
            return self._faulted(request, fault)
        with self.lock:
            status, payload, headers = self._process(api, request.method, endpoint, params, raw, request.headers)
            self.state.requests.append((request.method, path, status))
            self.status_counts[status] = self.status_counts.get(status, 0) + 1
        if fault is not None and fault.when == "after" and fault.action in ("drop", "status", "callback"):
            return self._faulted(request, fault)
        if fault is not None and fault.action == "mangle" and status == 200:
            payload = fault.callback(payload)
        return web.json_response(payload, status=status, headers=headers)

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (fault.method is None or fault.method == method) and (fault.path is None or fault.path == path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.hits += 1
                    if fault.hits >= fault.times:
                        self.faults.remove(fault)
                    return fault
        return None

    def _faulted(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.action == "callback" and fault.callback is not None:
            fault.callback()
        if fault.action in ("drop", "callback"):
            request.transport.abort()  # no answer at all: the client sees a dropped connection
            raise asyncio.CancelledError()
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
        if fault.text:
            return web.Response(status=fault.status, text="Service Unavailable", content_type="text/plain",
                                headers=headers)
        return web.json_response({"code": fault.code, "msg": fault.msg}, status=fault.status, headers=headers)

    def _process(self, api: str, method: str, endpoint: str, params: dict,
                 raw: str, request_headers: Any) -> tuple[int, Any, dict]:
        now = time.time()
        if self.banned_until > now:
            retry = max(1, math.ceil(self.banned_until - now))
            return (418, {"code": -1003,
                          "msg": f"Way too many requests; IP banned until {int(self.banned_until * 1000)}."},
                    {"Retry-After": str(retry)})
        weights = SPOT_WEIGHTS if api == "spot" else FUTURES_WEIGHTS
        weight = weights.get((method, endpoint), 1)
        if endpoint == "depth":
            weight = _depth_weight(api, int(params.get("limit", 100)))
        if endpoint == "ticker/24hr" and "symbol" not in params:
            weight = 80 if api == "spot" else 40
        window = self._weight[api]
        limit = self.weight_limit if api == "spot" else self.futures_weight_limit
        start = now - now % self.window_seconds
        if window.start != start:
            if window.used:
                self.window_log[api].append((window.start, window.used))
            window.start, window.used = start, 0
        if window.used + weight > limit:
            self._429s += 1
            retry = max(1, math.ceil(start + self.window_seconds - now))
            if self._429s >= self.ban_after_429s:
                self.banned_until = now + self.ban_seconds
                self._429s = 0
                return 418, {"code": -1003, "msg": "Way too many requests; IP banned."}, {
                    "Retry-After": str(max(1, math.ceil(self.ban_seconds)))}
            return 429, {"code": -1003, "msg": "Too many requests; current limit is exceeded."}, {
                "Retry-After": str(retry), **self._weight_headers(api)}
        window.used += weight
        self.weight_used[api] += weight
        headers = self._weight_headers(api)
        try:
            if endpoint not in PUBLIC:
                self._verify(params, raw, request_headers)
            result = self._route(api, method, endpoint, params)
        except ApiError as exc:
            return exc.status, {"code": exc.code, "msg": exc.msg}, headers
        if (method, endpoint) in ORDER_ENDPOINTS:
            counter = self._order_count[api]
            ostart = now - now % self.order_window_seconds
            if counter.start != ostart:
                counter.start, counter.used = ostart, 0
            counter.used += 1
            headers[f"X-MBX-ORDER-COUNT-{_interval_name(self.order_window_seconds)}"] = str(counter.used)
        return 200, result, headers

    def _weight_headers(self, api: str) -> dict[str, str]:
        return {f"X-MBX-USED-WEIGHT-{_interval_name(self.window_seconds)}": str(self._weight[api].used)}

    def _verify(self, params: dict, raw: str, request_headers: Any) -> None:
        if request_headers.get("X-MBX-APIKEY") != self.api_key:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        signature = params.get("signature")
        marker = raw.rfind("&signature=")
        payload = raw[:marker] if marker >= 0 else raw
        expected = hmac.new(self.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if signature is None or not hmac.compare_digest(signature, expected):
            raise ApiError(-1022, "Signature for this request is not valid.")
        timestamp = int(params.get("timestamp", 0))
        recv_window = int(params.get("recvWindow", 5000))
        if abs(time.time() * 1000 + self.clock_skew_ms - timestamp) > recv_window:
            raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")

    # -- routing ---------------------------------------------------------------------------------

    def _route(self, api: str, method: str, endpoint: str, params: dict) -> Any:
        handler = getattr(self, f"_{api}_{method.lower()}_{endpoint.replace('/', '_')}", None)
        if handler is None:
            handler = getattr(self, f"_any_{method.lower()}_{endpoint.replace('/', '_')}", None)
            if handler is None:
                raise ApiError(-1000, f"{method} {endpoint} is not implemented by the test server", 404)
            return handler(api, params)
        return handler(params)

    def _market(self, api: str, params: dict) -> Market:
        symbol = params.get("symbol", "")
        market = self.markets.get(symbol + (":F" if api == "futures" else ""))
        if market is None:
            raise ApiError(-1121, "Invalid symbol.")
        return market

    def _price(self, symbol: str) -> Decimal:
        return self.prices.get(symbol, Decimal(100))

    # -- public ------------------------------------------------------------------------------------

    def _any_get_ping(self, api: str, params: dict) -> dict:
        return {}

    def _any_get_time(self, api: str, params: dict) -> dict:
        return {"serverTime": int(time.time() * 1000 + self.clock_skew_ms)}

    def _any_get_exchangeInfo(self, api: str, params: dict) -> dict:
        futures = api == "futures"
        limit = self.futures_weight_limit if futures else self.weight_limit
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [
                _rate_limit("REQUEST_WEIGHT", self.window_seconds, limit),
                _rate_limit("ORDERS", self.order_window_seconds, self.orders_limit),
                _rate_limit("ORDERS", 86400, self.orders_per_day),
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(m, self.refuse_oco) for m in self.markets.values() if m.futures == futures],
        } | ({"assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "0"},  # USDⓈ-M only
                         {"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "-0.10"},
                         {"asset": "BNB", "marginAvailable": False, "autoAssetExchange": None}]} if futures else {})

    def _any_get_ticker_24hr(self, api: str, params: dict) -> Any:
        markets = [self._market(api, params)] if "symbol" in params else [m for m in self.markets.values()
                                                                          if m.futures == (api == "futures")]
        now = int(time.time() * 1000)
        tickers = []
        for market in markets:
            price = self._price(market.symbol)
            tickers.append({
                "symbol": market.symbol, "priceChange": "0", "priceChangePercent": "0", "weightedAvgPrice": _ds(price),
                "lastPrice": _ds(price), "lastQty": "1", "bidPrice": _ds(price - Decimal(market.tick)), "bidQty": "1",
                "askPrice": _ds(price + Decimal(market.tick)), "askQty": "1", "openPrice": _ds(price),
                "highPrice": _ds(price * Decimal("1.01")), "lowPrice": _ds(price * Decimal("0.99")), "volume": "1234.5",
                "quoteVolume": _ds(price * Decimal("1234.5")),
                "openTime": now - 86400000, "closeTime": now, "firstId": 1, "lastId": 2, "count": 2,
            })
            if api == "futures":  # USDⓈ-M "24hr Ticker Price Change Statistics": no book top, no prevClosePrice
                for key in ("bidPrice", "bidQty", "askPrice", "askQty"):
                    del tickers[-1][key]
            elif params.get("type", "FULL").upper() == "MINI":  # spot rest-api.md "Response - MINI"
                tickers[-1] = {k: v for k, v in tickers[-1].items() if k not in (
                    "priceChange", "priceChangePercent", "weightedAvgPrice", "lastQty", "bidPrice", "bidQty",
                    "askPrice", "askQty")}
            else:  # spot "Response - FULL"
                tickers[-1]["prevClosePrice"] = tickers[-1]["openPrice"]
        return tickers[0] if "symbol" in params else tickers

    def _any_get_depth(self, api: str, params: dict) -> dict:
        market = self._market(api, params)
        price, tick = self._price(market.symbol), Decimal(market.tick)
        levels = min(int(params.get("limit", 100)), 20)
        bids = [[_ds(price - tick * (i + 1)), "0.5"] for i in range(levels)]
        asks = [[_ds(price + tick * (i + 1)), "0.5"] for i in range(levels)]
        result = {"lastUpdateId": int(time.time() * 1000), "bids": bids, "asks": asks}
        if api == "futures":
            result |= {"E": int(time.time() * 1000), "T": int(time.time() * 1000)}
        return result

    def _any_get_klines(self, api: str, params: dict) -> list:
        market = self._market(api, params)
        step = INTERVALS[params.get("interval", "1m")] * 1000
        limit = min(int(params.get("limit", 500)), 1000 if api == "spot" else 1500)
        now = self.market_ms()
        current = now - now % step
        end = int(params.get("endTime", now))
        start = params.get("startTime")
        if start is not None:
            first = int(start) + (-int(start)) % step
            opens = [t for t in range(first, min(end, current) + 1, step)][:limit]
        else:
            last = min(end - end % step, current)
            opens = [last - step * i for i in range(limit)][::-1]
        rows = []
        for t in opens:
            o, h, lo, c = _candle(market.symbol, float(self._price(market.symbol)), t, step, current)
            rows.append([t, _ds(o), _ds(h), _ds(lo), _ds(c), "10.5", t + step - 1, _ds(c * 10.5), 5, "5.0", _ds(c * 5),
                         "0"])
        return rows

    def _futures_get_premiumIndex(self, params: dict) -> dict | list:
        """USDⓈ-M "Mark Price": one object for ``symbol``, an array of them when no symbol is sent."""
        if "symbol" not in params:
            return [self._futures_get_premiumIndex({"symbol": m.symbol}) for m in self.markets.values() if m.futures]
        market = self._market("futures", params)
        price = self._price(market.symbol)
        now = int(time.time() * 1000)
        return {"symbol": market.symbol, "markPrice": _ds(price), "indexPrice": _ds(price),
                "estimatedSettlePrice": _ds(price), "lastFundingRate": self._stats(market.symbol).funding_rate,
                "interestRate": "0.00010000",
                "nextFundingTime": now - now % 28800000 + 28800000, "time": now}

    def _futures_get_openInterest(self, params: dict) -> dict:
        market = self._market("futures", params)
        return {"openInterest": "10659.509", "symbol": market.symbol, "time": int(time.time() * 1000)}

    # -- futures statistics: funding history and /futures/data (what market_sentiment reads) -------------

    def _stats(self, symbol: str) -> FuturesStats:
        return self.stats.setdefault(symbol, FuturesStats())

    def _futures_get_fundingRate(self, params: dict) -> list:
        """USDⓈ-M "Get Funding Rate History": ascending by ``fundingTime``, the most recent ``limit``
        (default 100, max 1000) when no time range is sent; ``markPrice`` of each funding time."""
        market = self._market("futures", params)
        limit = _limit(params, default=100, most=1000)
        history = self._stats(market.symbol).funding_history[-limit:]
        now = self.market_ms()
        last = now - now % FUNDING_INTERVAL_MS
        price = _ds(self._price(market.symbol))
        return [{"symbol": market.symbol, "fundingRate": rate,
                 "fundingTime": last - FUNDING_INTERVAL_MS * (len(history) - 1 - i), "markPrice": price}
                for i, rate in enumerate(history)]

    def _data_rows(self, params: dict) -> tuple[Market, list[int]]:
        """The symbol's market and the timestamps of the ``limit`` (default 30, max 500) latest periods."""
        market = self._market("futures", params)
        step = DATA_PERIODS.get(params.get("period", ""))
        if step is None:
            raise ApiError(-1130, "Invalid data sent for a parameter.")
        limit = _limit(params, default=30, most=500)
        now = self.market_ms()
        last = now - now % (step * 1000)
        return market, [last - step * 1000 * (limit - 1 - i) for i in range(limit)]

    def _futures_get_data_openInterestHist(self, params: dict) -> list:
        """USDⓈ-M "Open Interest Statistics": ``sumOpenInterest`` (base asset), ``sumOpenInterestValue``
        (USDT: the open interest times the price then) and ``CMCCirculatingSupply``, per period."""
        market, stamps = self._data_rows(params)
        stats = self._stats(market.symbol)
        interest = _series(stats.open_interest, len(stamps))
        prices = _series(stats.open_interest_prices or [_ds(self._price(market.symbol))], len(stamps))
        return [{"symbol": market.symbol, "sumOpenInterest": f"{Decimal(oi):.8f}",
                 "sumOpenInterestValue": f"{Decimal(oi) * Decimal(p):.8f}", "CMCCirculatingSupply": "19800000.000",
                 "timestamp": t} for oi, p, t in zip(interest, prices, stamps)]

    def _futures_get_data_globalLongShortAccountRatio(self, params: dict) -> list:
        """USDⓈ-M "Long/Short Ratio": the share of accounts net long and short, and their ratio, per period."""
        market, stamps = self._data_rows(params)
        long = Decimal(self._stats(market.symbol).long_account)
        short = 1 - long
        ratio = long / short if short else Decimal(0)
        return [{"symbol": market.symbol, "longShortRatio": f"{ratio:.4f}", "longAccount": f"{long:.4f}",
                 "shortAccount": f"{short:.4f}", "timestamp": t} for t in stamps]

    def _futures_get_data_takerlongshortRatio(self, params: dict) -> list:
        """USDⓈ-M "Taker Buy/Sell Volume": ``buyVol``, ``sellVol`` and ``buySellRatio`` per period."""
        market, stamps = self._data_rows(params)
        stats = self._stats(market.symbol)
        buy, sell = Decimal(stats.taker_buy), Decimal(stats.taker_sell)
        ratio = buy / sell if sell else Decimal(0)
        return [{"buySellRatio": f"{ratio:.4f}", "buyVol": f"{buy:.4f}", "sellVol": f"{sell:.4f}", "timestamp": t}
                for t in stamps]

    # -- spot account and orders ---------------------------------------------------------------

    def _spot_get_account(self, params: dict) -> dict:
        """rest-api.md "Account information (USER_DATA)"; ``omitZeroBalances=true`` leaves out empty assets."""
        locked = self._locked()
        rate = _ds(FEE_RATE.quantize(Decimal("0.00000001")))
        balances = [{"asset": a, "free": _ds(v - locked.get(a, 0)), "locked": _ds(locked.get(a, 0))}
                    for a, v in self.state.balances.items()]
        if str(params.get("omitZeroBalances", "false")).lower() == "true":
            balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
        return {
            "makerCommission": int(FEE_RATE * 10000), "takerCommission": int(FEE_RATE * 10000), "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": rate, "taker": rate, "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False, "updateTime": int(time.time() * 1000), "accountType": "SPOT", "balances": balances,
            "permissions": ["SPOT"], "uid": 354937868,
        }

    def _locked(self) -> dict[str, Decimal]:
        """Balance held by resting spot orders (an OCO list holds it once); none unless lock_balances."""
        locked: dict[str, Decimal] = {}
        if not self.lock_balances:
            return locked  # resting orders are checked only when they execute
        seen_lists = set()
        for order in self.state.orders.values():
            if order["futures"] or order["status"] not in OPEN:
                continue
            if order.get("orderListId", -1) >= 0:
                if order["orderListId"] in seen_lists:
                    continue
                seen_lists.add(order["orderListId"])
            market: Market = order["market"]
            remaining = order["origQty"] - order["executedQty"]
            if order["side"] == "SELL":
                locked[market.base] = locked.get(market.base, Decimal(0)) + remaining
            else:
                price = order["price"] or order["stopPrice"] or self._price(order["symbol"])
                locked[market.quote] = locked.get(market.quote, Decimal(0)) + remaining * price
        return locked

    def _spot_post_order(self, params: dict) -> dict:
        market = self._market("spot", params)
        default = "FULL" if params.get("type", "").upper() in ("MARKET", "LIMIT") else "ACK"
        resp_type = self._spot_resp_type(params, default)
        coid = params.get("newClientOrderId") or f"srv{next(self._ids)}"
        self._check_duplicate(coid, futures=False)
        order = self._new_order(market, params, coid, futures=False)
        self._execute_if_marketable(order)
        return self._spot_order_response(order, resp_type)

    @staticmethod
    def _spot_resp_type(params: dict, default: str) -> str:
        resp_type = params.get("newOrderRespType") or default
        if resp_type not in SPOT_RESP_TYPES:
            raise ApiError(-1136, "Invalid newOrderRespType.")
        return resp_type

    def _spot_get_order(self, params: dict) -> dict:
        return self._spot_order_response(self._find_order("spot", params))

    def _spot_delete_order(self, params: dict) -> dict:
        order = self._find_order("spot", params, missing=(-2011, "Unknown order sent."))
        if order["status"] not in OPEN:
            raise ApiError(-2011, "Unknown order sent.")
        self._cancel(order)
        return self._spot_order_response(order, "CANCEL", cancel_id=params.get("newClientOrderId"))

    def _spot_get_myTrades(self, params: dict) -> list:
        trades = []
        for order in self.state.orders.values():
            if order["futures"] or order["symbol"] != params.get("symbol"):
                continue
            if params.get("orderId") not in (None, str(order["orderId"])):
                continue
            for fill in order["fills"]:
                if fill["time"] < int(params.get("startTime", 0)):
                    continue
                trades.append({"symbol": order["symbol"], "id": fill["tradeId"], "orderId": order["orderId"],
                               "orderListId": order.get("orderListId", -1),
                               "price": fill["price"], "qty": fill["qty"],
                               "quoteQty": _ds(Decimal(fill["price"]) * Decimal(fill["qty"])),
                               "commission": fill["commission"], "commissionAsset": fill["commissionAsset"],
                               "time": fill["time"],
                               "isBuyer": order["side"] == "BUY", "isMaker": order["type"] != "MARKET",
                               "isBestMatch": True})
        return sorted(trades, key=lambda t: t["id"])

    def _futures_get_userTrades(self, params: dict) -> list:
        """GET /fapi/v1/userTrades (USDⓈ-M "Account Trade List"): every trade of the account's orders,
        liquidations, ADL and orders placed by hand included."""
        trades = []
        for order in self.state.orders.values():
            if not order["futures"] or order["symbol"] != params.get("symbol"):
                continue
            if params.get("orderId") not in (None, str(order["orderId"])):
                continue
            for fill in order["fills"]:
                if fill["time"] < int(params.get("startTime", 0)):
                    continue
                trades.append({"buyer": order["side"] == "BUY", "commission": fill["commission"],
                               "commissionAsset": fill["commissionAsset"],
                               "id": fill["tradeId"], "maker": order["type"] != "MARKET", "orderId": order["orderId"],
                               "price": fill["price"], "qty": fill["qty"],
                               "quoteQty": _ds(Decimal(fill["price"]) * Decimal(fill["qty"])),
                               "realizedPnl": fill.get("realizedPnl", "0"), "side": order["side"],
                               "positionSide": "BOTH", "symbol": order["symbol"], "time": fill["time"]})
        return sorted(trades, key=lambda t: t["id"])

    def _spot_get_openOrders(self, params: dict) -> list:
        symbol = params.get("symbol")
        return [self._spot_order_response(o) for o in self.state.orders.values()
                if not o["futures"] and o["status"] in OPEN and (symbol is None or o["symbol"] == symbol)]

    def _spot_post_orderList_oco(self, params: dict) -> dict:
        market = self._market("spot", params)
        if self.refuse_oco:
            raise ApiError(-1013, "OCO orders are not supported for this symbol.")
        list_coid = params.get("listClientOrderId") or f"srvlist{next(self._ids)}"
        legs = []
        for side_key in ("above", "below"):
            leg_params = {
                "symbol": market.symbol, "side": params["side"], "quantity": params["quantity"],
                "type": params[f"{side_key}Type"],
                "price": params.get(f"{side_key}Price"), "stopPrice": params.get(f"{side_key}StopPrice"),
                "timeInForce": params.get(f"{side_key}TimeInForce"),
            }
            coid = params.get(f"{side_key}ClientOrderId") or f"srv{next(self._ids)}"
            self._check_duplicate(coid, futures=False)
            legs.append((coid, leg_params))
        # a live testnet answer without it has FULL reports ("fills": [])
        resp_type = self._spot_resp_type(params, "FULL")
        list_id = next(self._ids)
        orders = [self._new_order(market, p, coid, futures=False, order_list_id=list_id) for coid, p in legs]
        self.state.order_lists[list_id] = {"orderListId": list_id, "listClientOrderId": list_coid,
                                           "symbol": market.symbol,
                                           "orderIds": [o["orderId"] for o in orders], "status": "EXECUTING",
                                           "transactionTime": int(time.time() * 1000)}
        for order in orders:
            self._execute_if_marketable(order)
        return self._order_list_response(self.state.order_lists[list_id], resp_type)

    def _spot_get_orderList(self, params: dict) -> dict:
        return self._order_list_response(self._find_list(params))

    def _spot_delete_orderList(self, params: dict) -> dict:
        order_list = self._find_list(params)
        for order_id in order_list["orderIds"]:
            order = self.state.orders[order_id]
            if order["status"] in OPEN:
                self._cancel(order, cascade=False)
        order_list["status"] = "ALL_DONE"
        return self._order_list_response(order_list, "CANCEL")

    def _spot_get_openOrderList(self, params: dict) -> list:
        return [self._order_list_response(ol) for ol in self.state.order_lists.values() if ol["status"] == "EXECUTING"]

    def _find_list(self, params: dict) -> dict:
        for order_list in self.state.order_lists.values():
            if (str(order_list["orderListId"]) == params.get("orderListId")
                    or order_list["listClientOrderId"] == params.get("origClientOrderId",
                                                                     params.get("listClientOrderId"))):
                return order_list
        raise ApiError(-2011, "Order list does not exist.")

    def _order_list_response(self, order_list: dict, reports: str | None = None) -> dict:
        """An order list: its fields and ``orders``; the placing (``reports`` = ACK/RESULT/FULL) and
        cancel (``CANCEL``) answers add ``orderReports`` in that shape, a query has none."""
        orders = [self.state.orders[i] for i in order_list["orderIds"]]
        response = {
            "orderListId": order_list["orderListId"], "contingencyType": "OCO",
            "listStatusType": "ALL_DONE" if order_list["status"] == "ALL_DONE" else "EXEC_STARTED",
            "listOrderStatus": order_list["status"], "listClientOrderId": order_list["listClientOrderId"],
            "transactionTime": order_list["transactionTime"], "symbol": order_list["symbol"],
            "orders": [{"symbol": o["symbol"], "orderId": o["orderId"], "clientOrderId": o["clientOrderId"]}
                       for o in orders],
        }
        if reports is not None:
            response["orderReports"] = [self._spot_order_response(o, reports) for o in orders]
        return response

    def _spot_order_response(self, order: dict, shape: str = "QUERY", cancel_id: str | None = None) -> dict:
        """A spot order as Binance answers it (rest-api.md): ``ACK``/``RESULT``/``FULL`` (placing,
        by ``newOrderRespType``), ``QUERY`` (query order, open orders) or ``CANCEL`` (cancel order:
        ``origClientOrderId`` is the order's id, ``clientOrderId`` the cancel's — ``cancel_id``, the
        request's ``newClientOrderId``, generated when not sent)."""
        working = order["type"] not in SPOT_STOP_TYPES or order.get("triggered", False)
        working_time = order.get("workingTime", order["time"]) if working else -1
        stop = {"stopPrice": _ds(order["stopPrice"])}
        conditional = stop if order["type"] in SPOT_STOP_TYPES else {}
        ids = {"symbol": order["symbol"], "orderId": order["orderId"], "orderListId": order.get("orderListId", -1),
               "clientOrderId": order["clientOrderId"]}
        if shape == "CANCEL":
            ids = {"symbol": order["symbol"], "origClientOrderId": order["clientOrderId"], "orderId": order["orderId"],
                   "orderListId": order.get("orderListId", -1),
                   "clientOrderId": cancel_id or f"srvcancel{next(self._cancel_ids)}"}
        if shape in ("ACK", "RESULT", "FULL", "CANCEL"):
            ids["transactTime"] = order["updateTime"]
        if shape == "ACK":
            return ids
        amounts = {"price": _ds(order["price"]), "origQty": _ds(order["origQty"]),
                   "executedQty": _ds(order["executedQty"])}
        state = {"status": order["status"], "timeInForce": order.get("timeInForce") or "GTC", "type": order["type"],
                 "side": order["side"]}
        if shape == "QUERY":  # the query example lists stopPrice for every type
            return ids | amounts | {"cummulativeQuoteQty": _ds(order["cumQuote"])} | state | stop | {
                "time": order["time"], "updateTime": order["updateTime"], "isWorking": working,
                "workingTime": working_time, "origQuoteOrderQty": "0", "selfTradePreventionMode": "EXPIRE_MAKER"}
        response = ids | amounts | {"origQuoteOrderQty": "0",
                                    "cummulativeQuoteQty": _ds(order["cumQuote"])} | state | conditional
        if shape != "CANCEL":
            response["workingTime"] = working_time
        response["selfTradePreventionMode"] = "EXPIRE_MAKER"
        if shape == "FULL":
            response["fills"] = [{"price": f["price"], "qty": f["qty"], "commission": f["commission"],
                                  "commissionAsset": f["commissionAsset"],
                                  "tradeId": f["tradeId"]} for f in order["fills"]]
        return response

    # -- futures account, positions and orders ------------------------------------------------------

    def _futures_post_leverage(self, params: dict) -> dict:
        market = self._market("futures", params)
        position = self._position(market.symbol)
        position["leverage"] = int(params["leverage"])
        return {"leverage": position["leverage"], "maxNotionalValue": "100000000", "symbol": market.symbol}

    def _futures_post_marginType(self, params: dict) -> dict:
        market = self._market("futures", params)
        position = self._position(market.symbol)
        wanted = params["marginType"].upper()
        if position["margin"] == wanted:
            raise ApiError(-4046, "No need to change margin type.")
        if position["amt"] != 0:
            raise ApiError(-4048, "Margin type cannot be changed if there exists position.")
        position["margin"] = wanted
        return {"code": 200, "msg": "success"}

    def _position(self, symbol: str) -> dict:
        return self.state.positions.setdefault(symbol, {"amt": Decimal(0), "entry": Decimal(0), "leverage": 20,
                                                        "margin": "CROSSED"})

    def _position_rows(self, params: dict) -> list:
        """``GET /fapi/v3/positionRisk`` rows (USDⓈ-M "Position Information V3"): only symbols with a
        position or open orders are returned; no ``leverage``/``marginType`` (those were V2 fields)."""
        now = int(time.time() * 1000)
        rows = []
        for market in (m for m in self.markets.values() if m.futures):
            if params.get("symbol") not in (None, market.symbol) or not self._position_listed(market.symbol):
                continue
            p = self._position(market.symbol)
            mark = self._price(market.symbol)
            notional = mark * p["amt"]
            initial = abs(notional) / p["leverage"]
            isolated = initial if p["margin"] == "ISOLATED" and p["amt"] else Decimal(0)
            upnl = (mark - p["entry"]) * p["amt"]
            rows.append({
                "symbol": market.symbol, "positionSide": "BOTH", "positionAmt": _ds(p["amt"]),
                "entryPrice": _ds(p["entry"]),
                "breakEvenPrice": _ds(p["entry"]), "markPrice": _ds(mark), "unRealizedProfit": _ds(upnl),
                "liquidationPrice": "0", "isolatedMargin": _ds(isolated + upnl if isolated else 0),
                "notional": _ds(notional),
                "marginAsset": market.quote, "isolatedWallet": _ds(isolated), "initialMargin": _ds(initial),
                "maintMargin": _ds(abs(notional) * Decimal("0.004")), "positionInitialMargin": _ds(initial),
                "openOrderInitialMargin": "0",
                "adl": 2 if p["amt"] else 0, "bidNotional": "0", "askNotional": "0", "updateTime": now,
            })
        return rows

    def _position_listed(self, symbol: str) -> bool:
        """Binance lists a futures symbol in positionRisk / account ``positions`` only while it has a
        position or open orders (conditional algo orders included)."""
        if self._position(symbol)["amt"]:
            return True
        return any(o["futures"] and o["symbol"] == symbol and o["status"] in OPEN
                   for o in self.state.orders.values()) or any(
            a["symbol"] == symbol and a["algoStatus"] == "NEW" for a in self.state.algo_orders.values())

    def _futures_get_positionRisk(self, params: dict) -> list:
        return self._position_rows(params)

    def _futures_get_account(self, params: dict) -> dict:
        """``GET /fapi/v3/account`` (USDⓈ-M "Account Information V3", single-asset mode)."""
        rows = self._position_rows({})
        upnl = sum((Decimal(r["unRealizedProfit"]) for r in rows), Decimal(0))
        initial = sum((Decimal(r["initialMargin"]) for r in rows), Decimal(0))
        maint = sum((Decimal(r["maintMargin"]) for r in rows), Decimal(0))
        wallet, margin = self.futures_wallet, self.futures_wallet + upnl
        available = max(margin - initial, Decimal(0))
        now = int(time.time() * 1000)
        totals = {"totalInitialMargin": _ds(initial), "totalMaintMargin": _ds(maint), "totalWalletBalance": _ds(wallet),
                  "totalUnrealizedProfit": _ds(upnl), "totalMarginBalance": _ds(margin),
                  "totalPositionInitialMargin": _ds(initial),
                  "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": _ds(wallet),
                  "totalCrossUnPnl": _ds(upnl),
                  "availableBalance": _ds(available), "maxWithdrawAmount": _ds(min(available, wallet))}
        asset = {"asset": "USDT", "walletBalance": _ds(wallet), "unrealizedProfit": _ds(upnl),
                 "marginBalance": _ds(margin),
                 "maintMargin": _ds(maint), "initialMargin": _ds(initial), "positionInitialMargin": _ds(initial),
                 "openOrderInitialMargin": "0", "crossWalletBalance": _ds(wallet), "crossUnPnl": _ds(upnl),
                 "availableBalance": _ds(available), "maxWithdrawAmount": _ds(min(available, wallet)),
                 "updateTime": now}
        positions = [{"symbol": r["symbol"], "positionSide": r["positionSide"], "positionAmt": r["positionAmt"],
                      "unrealizedProfit": r["unRealizedProfit"], "isolatedMargin": r["isolatedMargin"],
                      "notional": r["notional"],
                      "isolatedWallet": r["isolatedWallet"], "initialMargin": r["initialMargin"],
                      "maintMargin": r["maintMargin"], "updateTime": r["updateTime"]} for r in rows]
        return totals | {"assets": [asset], "positions": positions}

    def _futures_get_balance(self, params: dict) -> list:
        """``GET /fapi/v2|v3/balance`` (USDⓈ-M "Futures Account Balance V3"; V2 has the same fields)."""
        account = self._futures_get_account({})
        return [{"accountAlias": "SgsR", "asset": "USDT", "balance": account["totalWalletBalance"],
                 "crossWalletBalance": account["totalCrossWalletBalance"], "crossUnPnl": account["totalCrossUnPnl"],
                 "availableBalance": account["availableBalance"], "maxWithdrawAmount": account["maxWithdrawAmount"],
                 "marginAvailable": True, "updateTime": int(time.time() * 1000)}]

    def _futures_get_income(self, params: dict) -> list:
        """``GET /fapi/v1/income`` (USDⓈ-M "Get Income History (USER_DATA)"): ``startTime`` and ``endTime``
        inclusive; neither sent: the last 7 days; ``limit`` default 100, at most 1000; oldest first."""
        now = self.market_ms()
        start = int(params.get("startTime", now - 7 * 86_400_000 if "endTime" not in params else 0))
        end = int(params.get("endTime", now))
        limit = min(int(params.get("limit", 100)), 1000)
        rows = [dict(r) for r in self.state.income
                if params.get("symbol") in (None, r["symbol"]) and params.get("incomeType") in (None, r["incomeType"])
                and start <= r["time"] <= end]
        return rows[:limit]

    def _futures_get_leverageBracket(self, params: dict) -> list:
        bracket = {"bracket": 1, "initialLeverage": 125, "notionalCap": 1000000, "notionalFloor": 0,
                   "maintMarginRatio": 0.004, "cum": 0}
        return [{"symbol": m.symbol, "brackets": [bracket]} for m in self.markets.values() if m.futures]

    def _futures_get_positionSide_dual(self, params: dict) -> dict:
        return {"dualSidePosition": False}

    def _futures_post_order(self, params: dict) -> dict:
        market = self._market("futures", params)
        coid = params.get("newClientOrderId") or f"srv{next(self._ids)}"
        self._check_duplicate(coid, futures=True)
        order = self._new_order(market, params, coid, futures=True)
        # newOrderRespType (USDⓈ-M "New Order"): ACK (the default) answers the order as accepted,
        # before it executes (a MARKET order: NEW, nothing executed); RESULT its state after.
        accepted = (self._futures_order_response(order, "NEW")
                    if params.get("newOrderRespType", "ACK") == "ACK" else None)
        self._execute_if_marketable(order)
        return accepted or self._futures_order_response(order, "NEW")

    def _futures_get_order(self, params: dict) -> dict:
        return self._futures_order_response(self._find_order("futures", params))

    def _futures_delete_order(self, params: dict) -> dict:
        order = self._find_order("futures", params, missing=(-2011, "Unknown order sent."))
        if order["status"] not in OPEN:
            raise ApiError(-2011, "Unknown order sent.")
        self._cancel(order)
        return self._futures_order_response(order, "CANCEL")

    def _futures_get_openOrders(self, params: dict) -> list:
        symbol = params.get("symbol")
        return [self._futures_order_response(o) for o in self.state.orders.values()
                if o["futures"] and o["status"] in OPEN and (symbol is None or o["symbol"] == symbol)]

    def _futures_order_response(self, order: dict, shape: str = "QUERY") -> dict:
        """A futures order as USDⓈ-M answers it: ``NEW`` (New Order: ``cumQty``, no ``time``), ``QUERY``
        (Query Order, open orders: ``time``, no ``cumQty``) or ``CANCEL`` (Cancel Order: ``cumQty``,
        no ``avgPrice``, no ``time``)."""
        avg = order["cumQuote"] / order["executedQty"] if order["executedQty"] else Decimal(0)
        response = {
            "orderId": order["orderId"], "symbol": order["symbol"], "status": order["status"],
            "clientOrderId": order["clientOrderId"],
            "price": _ds(order["price"]), "avgPrice": _ds(avg), "origQty": _ds(order["origQty"]),
            "executedQty": _ds(order["executedQty"]),
            "cumQty": _ds(order["executedQty"]), "cumQuote": _ds(order["cumQuote"]),
            "timeInForce": order.get("timeInForce") or "GTC",
            "type": order["type"], "reduceOnly": order["reduceOnly"], "closePosition": False, "side": order["side"],
            "positionSide": "BOTH", "stopPrice": _ds(order["stopPrice"]), "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": order["type"], "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0, "time": order["time"], "updateTime": order["updateTime"],
        }
        drop = {"NEW": ("time",), "QUERY": ("cumQty",), "CANCEL": ("avgPrice", "time")}[shape]
        return {k: v for k, v in response.items() if k not in drop}

    def _futures_post_algoOrder(self, params: dict) -> dict:
        market = self._market("futures", params)
        coid = params.get("clientAlgoId") or f"srvalgo{next(self._ids)}"
        if any(a["clientAlgoId"] == coid and a["algoStatus"] == "NEW" for a in self.state.algo_orders.values()):
            raise ApiError(-4116, "ClientOrderId is duplicated.")
        order_type = params["type"].upper()
        if order_type not in ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT"):
            raise ApiError(-1116, "Invalid orderType.")
        quantity = Decimal(params.get("quantity", "0"))
        self._check_lot(market, quantity)
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        if reduce_only and not self._reduces(market.symbol, params["side"].upper(), quantity):
            raise ApiError(-2022, "ReduceOnly Order is rejected.")
        algo_id = next(self._ids)
        now = int(time.time() * 1000)
        self.state.algo_orders[algo_id] = {
            "algoId": algo_id, "clientAlgoId": coid, "algoType": "CONDITIONAL", "orderType": order_type,
            "symbol": market.symbol,
            "side": params["side"].upper(), "positionSide": "BOTH", "timeInForce": "GTC", "quantity": quantity,
            "algoStatus": "NEW", "triggerPrice": Decimal(params["triggerPrice"]),
            "price": Decimal(params.get("price", "0")),
            "reduceOnly": reduce_only, "createTime": now, "updateTime": now, "triggerTime": 0, "actualOrderId": "",
            "actualPrice": "0",
        }
        self._trigger(market.symbol)
        return self._algo_response(self.state.algo_orders[algo_id], query=False)

    def _futures_get_algoOrder(self, params: dict) -> dict:
        return self._algo_response(self._find_algo(params))

    def _futures_delete_algoOrder(self, params: dict) -> dict:
        algo = self._find_algo(params)
        if algo["algoStatus"] != "NEW":
            raise ApiError(-2011, "Unknown order sent.")
        algo["algoStatus"], algo["updateTime"] = "CANCELED", int(time.time() * 1000)
        return {"algoId": algo["algoId"], "clientAlgoId": algo["clientAlgoId"], "code": "200", "msg": "success"}

    def _futures_get_openAlgoOrders(self, params: dict) -> list:
        symbol = params.get("symbol")
        return [self._algo_response(a) for a in self.state.algo_orders.values() if a["algoStatus"] == "NEW"
                and symbol in (None, a["symbol"])]

    def _find_algo(self, params: dict) -> dict:
        matches = [a for a in self.state.algo_orders.values()
                   if str(a["algoId"]) == params.get("algoId") or a["clientAlgoId"] == params.get("clientAlgoId")]
        if not matches:
            raise ApiError(-2013, "Order does not exist.")
        return matches[-1]

    def _algo_response(self, algo: dict, query: bool = True) -> dict:
        """An algo order as USDⓈ-M answers it: the placing answer ("New Algo Order") has no
        ``actualOrderId``/``actualPrice`` (nor the tp/sl keys); the query answers ("Query Algo
        Order", open/all algo orders) have them (``actualOrderId`` "" until triggered)."""
        shown = {k: (_ds(v) if isinstance(v, Decimal) else v) for k, v in algo.items()}
        if not self.actual_order_id:
            shown["actualOrderId"], shown["actualPrice"] = "", "0"
        head = {k: shown[k] for k in ("algoId", "clientAlgoId", "algoType", "orderType", "symbol", "side",
                                      "positionSide", "timeInForce", "quantity", "algoStatus")}
        if query:
            head |= {"actualOrderId": shown["actualOrderId"], "actualPrice": shown["actualPrice"]}
        head |= {"triggerPrice": shown["triggerPrice"], "price": shown["price"], "icebergQuantity": None}
        if query:
            head |= {"tpTriggerPrice": "0.000", "tpPrice": "0.000", "slTriggerPrice": "0.000", "slPrice": "0.000",
                     "tpOrderType": ""}
        return head | {
            "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": "CONTRACT_PRICE", "priceMatch": "NONE",
            "closePosition": False,
            "priceProtect": False, "reduceOnly": shown["reduceOnly"], "createTime": shown["createTime"],
            "updateTime": shown["updateTime"], "triggerTime": shown["triggerTime"], "goodTillDate": 0,
        }

    # -- the matching engine -------------------------------------------------------------------------

    def _check_duplicate(self, coid: str, futures: bool) -> None:
        if any(o["clientOrderId"] == coid and o["status"] in OPEN for o in self.state.orders.values()):
            if futures:
                raise ApiError(-4116, "ClientOrderId is duplicated.")
            raise ApiError(-2010, "Duplicate order sent.")

    def _check_lot(self, market: Market, quantity: Decimal) -> None:
        step = Decimal(market.step)
        if quantity < Decimal(market.min_qty) or quantity > Decimal(market.max_qty) or quantity % step != 0:
            raise ApiError(-1013, "Filter failure: LOT_SIZE")

    def _new_order(self, market: Market, params: dict, coid: str, futures: bool, order_list_id: int = -1) -> dict:
        order_type = params.get("type", "").upper()
        side = params.get("side", "").upper()
        quantity = Decimal(params.get("quantity") or "0")
        price = Decimal(params.get("price") or "0")
        stop = Decimal(params.get("stopPrice") or "0")
        self._check_lot(market, quantity)
        reference = price if price else self._price(market.symbol)
        if quantity * reference < Decimal(market.min_notional):
            raise ApiError(-4164 if futures else -1013, ("Order's notional must be no smaller than the minimum."
                                                         if futures else "Filter failure: NOTIONAL"))
        reduce_only = str(params.get("reduceOnly", "false")).lower() == "true"
        if futures and reduce_only and not self._reduces(market.symbol, side, quantity):
            raise ApiError(-2022, "ReduceOnly Order is rejected.")
        if order_type == "LIMIT_MAKER" and self._crosses(market.symbol, side, price):
            raise ApiError(-2010, "Order would immediately match and take.")
        if not futures and (order_type == "MARKET" or (self.lock_balances and order_list_id < 0)):
            self._check_balance(market, side, quantity, price or stop or self._price(market.symbol))
        now = self.market_ms()
        order = {
            "orderId": next(self._ids), "symbol": market.symbol, "clientOrderId": coid, "side": side,
            "type": order_type,
            "origQty": quantity, "price": price, "stopPrice": stop, "executedQty": Decimal(0), "cumQuote": Decimal(0),
            "status": "NEW", "time": now, "updateTime": now, "futures": futures, "reduceOnly": reduce_only,
            "timeInForce": params.get("timeInForce"), "fills": [], "orderListId": order_list_id, "market": market,
        }
        self.state.orders[order["orderId"]] = order
        return order

    def _check_balance(self, market: Market, side: str, quantity: Decimal, price: Decimal) -> None:
        locked = self._locked()
        free = {asset: self.state.balances.get(asset, Decimal(0)) - locked.get(asset, Decimal(0))
                for asset in (market.base, market.quote)}
        if side == "BUY" and free[market.quote] < quantity * price:
            raise ApiError(-2010, "Account has insufficient balance for requested action.")
        if side == "SELL" and free[market.base] < quantity:
            raise ApiError(-2010, "Account has insufficient balance for requested action.")

    def _crosses(self, symbol: str, side: str, price: Decimal) -> bool:
        last = self._price(symbol)
        return price >= last if side == "BUY" else price <= last

    def _reduces(self, symbol: str, side: str, quantity: Decimal) -> bool:
        amount = self._position(symbol)["amt"]
        return ((amount > 0 and side == "SELL" and quantity <= amount)
                or (amount < 0 and side == "BUY" and quantity <= -amount))

    def _execute_if_marketable(self, order: dict) -> None:
        price = self._price(order["symbol"])
        kind, side = order["type"], order["side"]
        fill_at = None
        triggered = order.get("triggered", False)
        if kind in ("STOP_LOSS", "STOP_LOSS_LIMIT", "STOP", "STOP_MARKET") and not triggered:
            triggered = ((side == "SELL" and price <= order["stopPrice"])
                         or (side == "BUY" and price >= order["stopPrice"]))
        elif kind in ("TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "TAKE_PROFIT_MARKET") and not triggered:
            triggered = ((side == "SELL" and price >= order["stopPrice"])
                         or (side == "BUY" and price <= order["stopPrice"]))
        if triggered and not order.get("triggered", False):
            order["workingTime"] = int(time.time() * 1000)  # a stop order starts working when triggered
        order["triggered"] = triggered
        if kind == "MARKET" and self.hold_market_orders:
            return
        if kind == "MARKET" or (triggered and kind in ("STOP_LOSS", "STOP_MARKET", "TAKE_PROFIT",
                                                       "TAKE_PROFIT_MARKET")):
            worse = self.slippage if side == "BUY" else -self.slippage
            fill_at = (price * (1 + worse)).quantize(Decimal("0.01")) if worse else price
        elif (kind in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT", "STOP")
              and (kind in ("LIMIT", "LIMIT_MAKER") or triggered)):
            # a limit order (or a triggered stop-limit, which rests as a limit at ``price``) trades at its
            # price or better: at the market's price when that is already beyond it
            if self._crosses(order["symbol"], side, order["price"]):
                fill_at = price if kind not in ("LIMIT", "LIMIT_MAKER") or triggered else order["price"]
        if fill_at is not None:
            self._fill(order, fill_at)

    def _fill(self, order: dict, price: Decimal) -> None:
        market: Market = order["market"]
        quantity = order["origQty"] - order["executedQty"]
        partial = order["type"] == "MARKET" and self.fill_ratio < 1
        # a thin book: a market order takes what there is and expires (Binance's EXPIRED with executedQty > 0)
        if partial:
            step = Decimal(market.step)
            quantity = (quantity * self.fill_ratio / step).to_integral_value(rounding="ROUND_FLOOR") * step
            if quantity <= 0:  # nothing to take (``fill_ratio = 0``): EXPIRED, executedQty 0, no fills
                order["status"], order["updateTime"] = "EXPIRED", self.market_ms()
                return
        notional = quantity * price
        now = self.market_ms()
        fill = {"price": _ds(price), "qty": _ds(quantity), "tradeId": next(self._ids), "time": now}
        if order["futures"]:
            if order["reduceOnly"] and not self._reduces(order["symbol"], order["side"], quantity):
                order["status"] = "EXPIRED"
                return
            position = self._position(order["symbol"])
            held, entry = position["amt"], position["entry"]
            delta = quantity if order["side"] == "BUY" else -quantity
            closed = min(abs(held), quantity) if held and (held > 0) != (delta > 0) else Decimal(0)
            realized = closed * (price - entry) * (1 if held > 0 else -1)
            self._move_position(order["symbol"], delta, price)
            fee = notional * FEE_RATE
            self.futures_wallet += realized - fee
            fill |= {"commission": _ds(fee), "commissionAsset": "USDT", "realizedPnl": _ds(realized)}
        else:
            balances = self.state.balances
            if order["side"] == "BUY":
                if balances.get(market.quote, Decimal(0)) < notional:
                    order["status"] = "EXPIRED"
                    return
                fee, fee_asset = quantity * FEE_RATE, market.base  # Binance takes a buyer's fee in the asset bought
                balances[market.quote] -= notional
                balances[market.base] = balances.get(market.base, Decimal(0)) + quantity
            else:
                if balances.get(market.base, Decimal(0)) < quantity:
                    order["status"] = "EXPIRED"
                    return
                fee, fee_asset = notional * FEE_RATE, market.quote
                balances[market.base] -= quantity
                balances[market.quote] = balances.get(market.quote, Decimal(0)) + notional
            if self.commission_asset and self.commission_asset not in (market.base, market.quote):
                # the BNB discount: 75 % of the commission, paid in BNB at BNB's price in the quote
                rate = self._price(f"{self.commission_asset}{market.quote}")
                fee = (notional * FEE_RATE * Decimal("0.75") / rate).quantize(Decimal("0.00000001"))
                fee_asset = self.commission_asset
            if self.commission_zero:
                fee = Decimal(0)
            balances[fee_asset] = balances.get(fee_asset, Decimal(0)) - fee
            fill |= {"commission": _ds(fee), "commissionAsset": fee_asset}
        order["fills"].append(fill)
        order["executedQty"] += quantity
        order["cumQuote"] += notional
        order["status"] = "EXPIRED" if partial else "FILLED"
        order["updateTime"] = now
        if order.get("orderListId", -1) >= 0:  # one leg of an OCO executed: the other expires (Binance's word for it)
            order_list = self.state.order_lists[order["orderListId"]]
            for other_id in order_list["orderIds"]:
                other = self.state.orders[other_id]
                if other is not order and other["status"] in OPEN:
                    other["status"], other["updateTime"] = "EXPIRED", now
            order_list["status"] = "ALL_DONE"

    def _move_position(self, symbol: str, delta: Decimal, price: Decimal) -> None:
        position = self._position(symbol)
        amount = position["amt"]
        new = amount + delta
        if amount == 0 or (amount > 0) == (delta > 0):
            position["entry"] = (position["entry"] * abs(amount) + price * abs(delta)) / abs(new) if new else Decimal(0)
        elif new == 0:
            position["entry"] = Decimal(0)
        position["amt"] = new

    def _cancel(self, order: dict, cascade: bool = True) -> None:
        order["status"], order["updateTime"] = "CANCELED", int(time.time() * 1000)
        if cascade and order.get("orderListId", -1) >= 0:
            order_list = self.state.order_lists[order["orderListId"]]
            for other_id in order_list["orderIds"]:
                other = self.state.orders[other_id]
                if other["status"] in OPEN:
                    other["status"] = "CANCELED"
            order_list["status"] = "ALL_DONE"

    def _trigger(self, symbol: str) -> None:
        for order in list(self.state.orders.values()):
            if order["symbol"] == symbol and order["status"] in OPEN:
                self._execute_if_marketable(order)
        price = self._price(symbol)
        for algo in list(self.state.algo_orders.values()):
            if algo["symbol"] != symbol or algo["algoStatus"] != "NEW":
                continue
            side, trigger = algo["side"], algo["triggerPrice"]
            stop = algo["orderType"] in ("STOP_MARKET", "STOP")
            hit = ((price <= trigger if side == "SELL" else price >= trigger) if stop
                   else (price >= trigger if side == "SELL" else price <= trigger))
            if not hit:
                continue
            if algo["reduceOnly"] and not self._reduces(symbol, side, algo["quantity"]):
                algo["algoStatus"] = "EXPIRED"
                continue
            market = self.markets[symbol + ":F"]
            order = self._new_order(market, {"type": "MARKET", "side": side, "quantity": _ds(algo["quantity"]),
                                             "reduceOnly": "true" if algo["reduceOnly"] else "false"},
                                    f"{algo['clientAlgoId'][:30]}-x", futures=True)
            self._fill(order, price)
            algo["algoStatus"], algo["actualOrderId"] = "FINISHED", str(order["orderId"])
            algo["actualPrice"] = _ds(price)
            algo["triggerTime"] = algo["updateTime"] = int(time.time() * 1000)

    def _find_order(self, api: str, params: dict, missing: tuple[int, str] = (-2013, "Order does not exist.")) -> dict:
        futures = api == "futures"
        coid = params.get("origClientOrderId")
        matches = [o for o in self.state.orders.values() if o["futures"] == futures
                   and o["symbol"] == params.get("symbol")
                   and (str(o["orderId"]) == params.get("orderId")
                        or (coid is not None and o["clientOrderId"] == coid))]
        if not matches:
            raise ApiError(*missing)
        return matches[-1]


# -- helpers ------------------------------------------------------------------------------------------


def default_markets() -> list[Market]:
    return [
        Market("BTCUSDT", "BTC", "USDT", tick="0.01", step="0.00001", min_qty="0.00001", min_notional="5"),
        Market("ETHUSDT", "ETH", "USDT", tick="0.01", step="0.0001", min_qty="0.0001", min_notional="5"),
        Market("BNBUSDT", "BNB", "USDT", tick="0.01", step="0.001", min_qty="0.001", min_notional="5"),
        Market("BTCUSDT", "BTC", "USDT", tick="0.10", step="0.001", min_qty="0.001", min_notional="5", futures=True),
        Market("ETHUSDT", "ETH", "USDT", tick="0.01", step="0.001", min_qty="0.001", min_notional="5", futures=True),
    ]


def _limit(params: dict, *, default: int, most: int) -> int:
    try:
        limit = int(params.get("limit", default))
    except ValueError:
        raise ApiError(-1100, "Illegal characters found in parameter 'limit'.") from None
    if not 1 <= limit <= most:
        raise ApiError(-1130, "Invalid data sent for a parameter.")
    return limit


def _series(values: list[str], n: int) -> list[str]:
    """The last ``n`` values, the first repeated before them when there are fewer."""
    return ([values[0]] * max(0, n - len(values)) + values)[-n:]


def _interval_name(seconds: float) -> str:
    """Binance's header suffix for a window: 60 -> 1M, 10 -> 10S, 86400 -> 1D, 2 -> 2S."""
    seconds = int(seconds)
    for unit, size in (("D", 86400), ("H", 3600), ("M", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}S"


def _rate_limit(kind: str, seconds: float, limit: int) -> dict:
    name = _interval_name(seconds)
    interval = {"S": "SECOND", "M": "MINUTE", "H": "HOUR", "D": "DAY"}[name[-1]]
    return {"rateLimitType": kind, "interval": interval, "intervalNum": int(name[:-1]), "limit": limit}


def _depth_weight(api: str, limit: int) -> int:
    if api == "spot":
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def _precision(step: str) -> int:
    return max(0, -Decimal(step).normalize().as_tuple().exponent)


def _symbol_info(market: Market, refuse_oco: bool) -> dict:
    filters = [
        {"filterType": "PRICE_FILTER", "minPrice": market.tick, "maxPrice": "1000000", "tickSize": market.tick},
        {"filterType": "LOT_SIZE", "minQty": market.min_qty, "maxQty": market.max_qty, "stepSize": market.step},
        {"filterType": "MARKET_LOT_SIZE", "minQty": market.min_qty, "maxQty": market.max_qty, "stepSize": market.step},
    ]
    if market.futures:
        filters += [{"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MIN_NOTIONAL", "notional": market.min_notional},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                     "multiplierDecimal": "4"}]
        return {
            "symbol": market.symbol, "pair": market.symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000", "baseAsset": market.base, "quoteAsset": market.quote,
            "marginAsset": market.quote, "pricePrecision": _precision(market.tick),
            "quantityPrecision": _precision(market.step),
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
            "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
            "filters": filters, "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                                               "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }
    filters.append({"filterType": "NOTIONAL", "minNotional": market.min_notional, "applyMinToMarket": True,
                    "maxNotional": "9000000", "applyMaxToMarket": False, "avgPriceMins": 5})
    return {
        "symbol": market.symbol, "status": "TRADING", "baseAsset": market.base, "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": market.order_types or ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                                             "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": not refuse_oco, "otoAllowed": not refuse_oco,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True, "cancelReplaceAllowed": True, "allowAmend": False, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False, "filters": filters, "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _candle(symbol: str, current_price: float, open_ms: int,
            step_ms: int, current_open_ms: int) -> tuple[float, float, float, float]:
    """A deterministic candle: a gentle wave around today's price; the forming candle ends at the price now."""
    def level(t: int) -> float:
        return current_price * (1 + 0.01 * math.sin((t - current_open_ms) / 3_600_000))

    o = level(open_ms)
    c = current_price if open_ms >= current_open_ms else level(open_ms + step_ms)
    return round(o, 2), round(max(o, c) * 1.0005, 2), round(min(o, c) * 0.9995, 2), round(c, 2)


if __name__ == "__main__":  # run one by hand: python tests/servers/binance.py
    with BinanceTestServer(window_seconds=60) as server:
        print(f"Binance test server at {server.url} (key {API_KEY!r}, secret {API_SECRET!r}); Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
