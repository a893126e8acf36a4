"""The ccxt client for Binance spot (``ccxt.binance``) or USDT-M futures (``ccxt.binanceusdm``), paced by gobot.

``make_exchange`` builds an async ccxt exchange whose every request goes through the bot's
rate-limit policy (``ctx.rate_limiter``): ``acquire(weight, priority, orders=...)`` before, with the
weight taken from ccxt's own cost table, and ``on_response(status, headers)`` after. ccxt's own
``enableRateLimit`` is off, so nothing throttles twice.

What it sets on ccxt (docs/exchanges.md lists the same):

- ``options['fetchMarkets'] = {'types': ['spot']}`` (or ``['linear']``), ``options['fetchCurrencies']
  = False`` and ``options['fetchMargins'] = False``: ``load_markets`` makes one request
  (exchangeInfo) instead of also asking for futures, inverse (dapi) and margin markets and currencies.
- testnet: ``set_sandbox_mode(True)``, which replaces ``urls['api']`` wholesale; ``api_url`` is
  applied after it.
- ``api_url``: every entry of ``urls['api']`` keeps its path and gets the new scheme and host
  (``https://fapi.binance.com/fapi/v1`` -> ``<api_url>/fapi/v1``). ccxt picks Binance's futures
  error table by hostname, so responses from the other host are mapped as if they came from the
  Binance URL they replace (-2022 reduce-only rejected and -4116 duplicate client order id stay
  ``InvalidOrder`` instead of a plain ``ExchangeError``).
- ``options['recvWindow'] = recv_window_ms``: a lost order request can only execute within it, which
  is what the look-before-retry waits out.
- the rateLimits of exchangeInfo go to the policy's ``set_limits`` (when it has one).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from typing import Any, Iterator
from urllib.parse import urlsplit

from gobot_hookspecs import ExecutionError, ExecutionFailed, Priority, RateLimit
from gobot_hookspecs.redact import mask_credentials

#: ccxt's Binance costs are in units of its 50 ms rateLimit: one unit of weight costs this much.
COST_PER_WEIGHT = {"public": 0.2, "private": 0.2, "v1": 0.2, "papi": 0.2, "papiV2": 0.2}
SAPI_COST_PER_WEIGHT = 0.1
#: Endpoints that place new orders (charged to the ORDERS budgets).
ORDER_ENDPOINTS = {"order", "orderList/oco", "order/oco", "algoOrder", "batchOrders", "sor/order"}
INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
KIND = {"REQUEST_WEIGHT": "weight", "ORDERS": "orders", "RAW_REQUESTS": "requests"}

#: Priority of the requests made inside ``with priority(...)``; by default from the endpoint.
_priority: contextvars.ContextVar[Priority | None] = contextvars.ContextVar("gobot_binance_priority", default=None)


@contextlib.contextmanager
def priority(value: Priority) -> Iterator[None]:
    """Every request made inside runs at this priority (a close is CRITICAL, an entry HIGH)."""
    token = _priority.set(value)
    try:
        yield
    finally:
        _priority.reset(token)


def request_weight(api: Any, cost: float) -> float:
    """Binance request weight of a ccxt call, from ccxt's cost and the api section it goes to."""
    name = api[0] if isinstance(api, (list, tuple)) else str(api)
    if name.startswith("sapi"):
        return cost / SAPI_COST_PER_WEIGHT
    return cost / COST_PER_WEIGHT.get(name, 1.0)  # fapi, dapi, eapi: cost = weight


def default_priority(api: Any, method: str, path: str) -> Priority:
    name = api[0] if isinstance(api, (list, tuple)) else str(api)
    if method == "DELETE":
        return Priority.CRITICAL
    if method == "POST" and path in ORDER_ENDPOINTS:
        return Priority.HIGH
    if "Public" in name or name in ("public", "v1"):
        return Priority.LOW
    return Priority.NORMAL


def rate_limits(exchange_info: dict) -> list[RateLimit]:
    """exchangeInfo ``rateLimits`` -> the policy's neutral ``RateLimit`` list."""
    limits = []
    for item in exchange_info.get("rateLimits") or []:
        kind = KIND.get(item.get("rateLimitType", ""))
        seconds = INTERVAL_SECONDS.get(item.get("interval", ""))
        if kind is None or seconds is None:
            continue
        limits.append(RateLimit(kind=kind, limit=int(item["limit"]),
                                window_seconds=seconds * int(item.get("intervalNum", 1))))
    return limits


def rewrite_urls(urls: dict[str, Any], api_url: str) -> dict[str, str]:
    """Point every entry of ccxt's ``urls['api']`` at ``api_url``, keeping its path.

    Returns {new base URL: the Binance base URL it replaces}, for mapping errors as Binance's.
    """
    base = api_url.rstrip("/")
    originals = {}
    for key, value in list(urls.items()):
        if not isinstance(value, str):
            continue
        parts = urlsplit(value)
        new = base + parts.path
        urls[key] = new
        originals[new] = value
    return originals


_ACCEPTS_ORDERS: dict[type, bool] = {}


def _accepts_orders(policy: Any) -> bool:
    """Whether the policy's ``acquire`` takes ``orders`` (older policies take weight and priority only)."""
    kind = type(policy)
    if kind not in _ACCEPTS_ORDERS:
        try:
            _ACCEPTS_ORDERS[kind] = "orders" in inspect.signature(policy.acquire).parameters
        except (TypeError, ValueError):
            _ACCEPTS_ORDERS[kind] = False
    return _ACCEPTS_ORDERS[kind]


def paced_class(base: type) -> type:
    """A subclass of a ccxt Binance class that asks the rate-limit policy before every request."""

    class Paced(base):  # type: ignore[misc, valid-type]
        gobot_policy: Any = None
        gobot_originals: dict[str, str] = {}
        gobot_scope: str = "binance"

        async def fetch2(self, path, api=["public"], method="GET", params={}, config={}):  # noqa: B006 - ccxt's signature
            policy = self.gobot_policy
            if policy is not None:
                cost = self.calculate_rate_limiter_cost(api, method, path, params, config)
                weight = request_weight(api, cost)
                wanted = _priority.get()  # (CRITICAL is 0: test for None, not for truth)
                if wanted is None:
                    wanted = default_priority(api, method, path)
                if _accepts_orders(policy):
                    orders = 1 if method == "POST" and path in ORDER_ENDPOINTS else 0
                    await policy.acquire(weight, wanted, orders=orders)
                else:
                    await policy.acquire(weight, wanted)
            response = await super().fetch2(path, api, method, params, config)
            if (path == "exchangeInfo" and isinstance(response, dict) and policy is not None
                    and hasattr(policy, "set_limits")):
                limits = rate_limits(response)
                if limits:
                    policy.set_limits(limits, self.gobot_scope)
            return response

        def handle_errors(self, code, reason, url, method, headers, body, response, request_headers, request_body):
            if self.gobot_policy is not None and code is not None:
                self.gobot_policy.on_response(int(code), dict(headers or {}))
            for new, original in self.gobot_originals.items():  # keep Binance's error tables on another host
                if url and url.startswith(new):
                    url = original + url[len(new):]
                    break
            return super().handle_errors(code, reason, url, method, headers, body, response, request_headers,
                                         request_body)

    Paced.__name__ = f"Paced{base.__name__}"
    return Paced


def make_exchange(config: Any, *, market: str, policy: Any, api_key: str | None = None,
                  secret: str | None = None) -> Any:
    """The async ccxt exchange for ``config`` (the ``[plugins.binance]`` settings); see the module docstring."""
    import ccxt.async_support as ccxt

    base = ccxt.binance if market == "spot" else ccxt.binanceusdm
    options: dict[str, Any] = {
        "fetchMarkets": {"types": ["spot" if market == "spot" else "linear"], "loadAllOptions": False},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "adjustForTimeDifference": False,
        "recvWindow": int(getattr(config, "recv_window_ms", 5000)),  # look-before-retry waits out exactly this
    }
    settings: dict[str, Any] = {"enableRateLimit": False, "timeout": int(config.request_timeout * 1000),
                                "options": options}
    if api_key and secret:
        settings |= {"apiKey": api_key, "secret": secret}
    exchange = paced_class(base)(settings)
    if config.mode == "testnet" or config.testnet:
        exchange.set_sandbox_mode(True)
    if config.api_url:
        exchange.gobot_originals = rewrite_urls(exchange.urls["api"], config.api_url)
    exchange.gobot_policy = policy
    exchange.gobot_scope = f"binance:{market}" + (":testnet" if (config.mode == "testnet" or config.testnet) else "")
    return exchange


# -- what an exception means for an order --------------------------------------------------------------


class GarbledAnswer(Exception):
    """The exchange answered, but not with something the plugin may act on (see ``execution.readable``)."""


def classify(exc: BaseException) -> str:
    """``ambiguous`` (the order may or may not exist: look before retrying), ``rejected``, ``banned``,
    ``rate_limited``, ``not_found`` or ``error``."""
    import ccxt

    if isinstance(exc, ExecutionFailed):
        return exc.error.kind
    if isinstance(exc, ccxt.DDoSProtection):  # 429 and 418 (ccxt does not tell them apart by class)
        return "banned" if " 418 " in str(exc) else "rate_limited"
    if isinstance(exc, ccxt.OrderNotFound):
        return "not_found"
    if isinstance(exc, (GarbledAnswer, ccxt.BadResponse)):
        return "ambiguous"  # a garbled answer tells nothing: the order may exist
    if isinstance(exc, (ccxt.RequestTimeout, ccxt.ExchangeNotAvailable, ccxt.OperationFailed, ccxt.NetworkError)):
        return "ambiguous"  # timeout, dropped connection, 5xx (JSON -> OperationFailed, text -> ExchangeNotAvailable)
    if isinstance(exc, (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.AuthenticationError,
                        ccxt.PermissionDenied)):
        return "rejected"
    return "error"


def failure(exc: BaseException, kind: str, *, symbol: str | None = None,
            intent_id: str | None = None) -> ExecutionFailed:
    """The ``ExecutionFailed`` the core turns into an execution-error event of this kind."""
    import ccxt

    names = {"ambiguous": "timeout" if isinstance(exc, ccxt.RequestTimeout) else "network", "not_found": "rejected"}
    kind = names.get(kind, kind)
    return ExecutionFailed(ExecutionError(
        message=f"{type(exc).__name__}: {redact(str(exc))}", kind=kind, symbol=symbol, intent_id=intent_id,
        retryable=kind in ("network", "timeout", "rate_limited"), plugin="binance",
    ))


def redact(text: str) -> str:
    """Exception texts may carry signed query strings and request headers: the contract's rule masks
    their signatures and API keys (``gobot_hookspecs.redact``); the text is cut to 500 characters."""
    return mask_credentials(text)[:500]


def floor_to_step(value: float, step: float | None) -> float:
    """``value`` rounded down to a multiple of the market's ``step`` (0 when below one step)."""
    from decimal import ROUND_FLOOR, Decimal

    if not step:
        return float(value)
    units = (Decimal(str(value)) / Decimal(str(step))).to_integral_value(rounding=ROUND_FLOOR)
    return float(units * Decimal(str(step)))
