"""The loopback Binance server answers in Binance's shapes (issue 15, "Answer like Binance").

For every endpoint the server implements, the answer is compared with a documented example —
Binance's own API documentation or ccxt's recorded Binance answers (MIT) — kept here as a small
dict with a comment naming its source (``tests/servers/README.md`` has the full table). What is
compared is the shape, never the values: the same keys (less the ones Binance documents as
conditional, plus none it does not send) and the same JSON kinds, where a number Binance sends as
a string must come as a string that parses as a number. Where Binance may leave a field out or
empty, both forms are exercised.

The requests are plain HTTP (httpx), signed like Binance wants (HMAC-SHA256 of the query string),
so nothing of ccxt's parsing hides a wrong shape.

Order answers follow ``newOrderRespType`` (ACK / RESULT / FULL, Binance's defaults when it is not
sent) and differ per endpoint (placing, query, cancel), as Binance's do; each shape is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from servers.binance import API_KEY, API_SECRET, BinanceTestServer

# -- plain signed HTTP -------------------------------------------------------------------------------


def call(server: BinanceTestServer, method: str, path: str, params: dict | None = None, *, signed: bool = False,
         status: int = 200) -> Any:
    params = {k: v for k, v in (params or {}).items() if v is not None}
    headers = {}
    if signed:
        params["timestamp"] = int(time.time() * 1000)
        query = urlencode(params)
        query += "&signature=" + hmac.new(API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
        headers["X-MBX-APIKEY"] = API_KEY
    else:
        query = urlencode(params)
    answer = httpx.request(method, f"{server.url}{path}" + (f"?{query}" if query else ""), headers=headers, timeout=10)
    assert answer.status_code == status, f"{method} {path}: {answer.status_code} {answer.text}"
    return answer.json()


# -- shape comparison ------------------------------------------------------------------------------


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        try:
            return "number-string" if value.strip() and Decimal(value).is_finite() else "string"
        except InvalidOperation:
            return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def fits(actual_kind: str, documented_kind: str) -> bool:
    # an id or enum the doc shows as text may be digits (e.g. actualOrderId "" -> "1234")
    if documented_kind == "string":
        return actual_kind in ("string", "number-string")
    if documented_kind == "float":  # a JSON number: 0.0 and 0 read alike ("cum": 0.0 in the doc)
        return actual_kind in ("float", "int")
    return actual_kind == documented_kind


def assert_shape(actual: Any, documented: Any, *, optional: frozenset | set = frozenset(),
                 nullable: frozenset | set = frozenset(), path: str = "$") -> None:
    """``actual`` has ``documented``'s shape: for objects the same keys (a key in ``optional`` may be
    missing), each value of the documented kind (a key in ``nullable`` may also be null); arrays of
    objects or arrays are checked element by element against the documented first element."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{path}: {kind(actual)}, documented an object"
        missing = set(documented) - set(actual) - set(optional)
        extra = set(actual) - set(documented)
        assert not missing and not extra, f"{path}: missing {sorted(missing)}, not documented {sorted(extra)}"
        for key, value in actual.items():
            if value is None and key in nullable:
                continue
            assert_shape(value, documented[key], optional=optional, nullable=nullable, path=f"{path}.{key}")
    elif isinstance(documented, list):
        assert isinstance(actual, list), f"{path}: {kind(actual)}, documented an array"
        if documented and isinstance(documented[0], (dict, list)):
            for i, item in enumerate(actual):
                assert_shape(item, documented[min(i, len(documented) - 1)], optional=optional, nullable=nullable,
                             path=f"{path}[{i}]")
        elif documented:
            for i, item in enumerate(actual):
                assert fits(kind(item), kind(documented[min(i, len(documented) - 1)])), (
                    f"{path}[{i}]: {item!r} is {kind(item)}")
    else:
        assert fits(kind(actual), kind(documented)), (
            f"{path}: {actual!r} is {kind(actual)}, documented {kind(documented)} ({documented!r})")


def test_the_shape_check_itself():
    doc = {"a": "1.0", "b": 1, "c": [{"d": "x"}], "e": None}
    assert_shape({"a": "2", "b": 3, "c": [{"d": "y"}, {"d": "123"}], "e": None}, doc)
    for wrong in ({"a": 2, "b": 3, "c": [], "e": None}, {"a": "2", "b": "3", "c": [], "e": None},
                  {"a": "2", "b": 3, "c": [], "e": None, "f": 1}, {"a": "2", "c": [], "e": None},
                  {"a": "x", "b": 3, "c": [], "e": None}, {"a": "2", "b": True, "c": [], "e": None}):
        with pytest.raises(AssertionError):
            assert_shape(wrong, doc)


# == documented examples ==============================================================================
# Spot: binance/binance-spot-api-docs rest-api.md (also testnet/rest-api.md, "Last Updated: 2025-04-25").
# USDⓈ-M futures: developers.binance.com/docs/derivatives/usds-margined-futures/... (page named per example).
# ccxt: ccxt/ccxt ts/src/test/static/response/binance.json (MIT); its recordings keep every integer as a
# string ("orderId": "3397148653"), so only their key sets are used, the kinds come from Binance's docs.

# rest-api.md "Exchange information" (symbol), "ENUM definitions"/rateLimits, filters.md
SPOT_EXCHANGE_INFO = {"timezone": "UTC", "serverTime": 1565246363776, "rateLimits": [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}], "exchangeFilters": [],
    "symbols": [{
        "symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "baseAssetPrecision": 8, "quoteAsset": "BTC",
        "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                       "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False, "cancelReplaceAllowed": False, "allowAmend": False, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True, "filters": [], "permissions": [], "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "NONE", "allowedSelfTradePreventionModes": ["NONE"]}]}
# binance-spot-api-docs filters.md, one example per filter the server sends
SPOT_FILTERS = {
    "PRICE_FILTER": {"filterType": "PRICE_FILTER", "minPrice": "0.00000100", "maxPrice": "100000.00000000",
                     "tickSize": "0.00000100"},
    "LOT_SIZE": {"filterType": "LOT_SIZE", "minQty": "0.00100000", "maxQty": "100000.00000000",
                 "stepSize": "0.00100000"},
    "MARKET_LOT_SIZE": {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00100000", "maxQty": "100000.00000000",
                        "stepSize": "0.00100000"},
    "NOTIONAL": {"filterType": "NOTIONAL", "minNotional": "10.00000000", "applyMinToMarket": False,
                 "maxNotional": "10000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
}
# USDⓈ-M "Exchange Information" (GET /fapi/v1/exchangeInfo). The page spells the order types key
# "OrderType"; Binance's answers (and ccxt's parser and its fapi example) use "orderTypes".
FUTURES_EXCHANGE_INFO = {"exchangeFilters": [], "rateLimits": [
    {"interval": "MINUTE", "intervalNum": 1, "limit": 2400, "rateLimitType": "REQUEST_WEIGHT"}],
    "serverTime": 1565613908500, "assets": [{"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "-0.10"}],
    "symbols": [{
        "symbol": "BLZUSDT", "pair": "BLZUSDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
        "onboardDate": 1598252400000, "status": "TRADING", "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000", "baseAsset": "BLZ", "quoteAsset": "USDT", "marginAsset": "USDT",
        "pricePrecision": 5, "quantityPrecision": 0, "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "underlyingSubType": ["STORAGE"], "settlePlan": 0, "triggerProtect": "0.15",
        "filters": [],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                       "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"], "liquidationFee": "0.010000", "marketTakeBound": "0.30"}],
    "timezone": "UTC"}
FUTURES_FILTERS = {  # same page
    "PRICE_FILTER": {"filterType": "PRICE_FILTER", "maxPrice": "300", "minPrice": "0.0001", "tickSize": "0.0001"},
    "LOT_SIZE": {"filterType": "LOT_SIZE", "maxQty": "10000000", "minQty": "1", "stepSize": "1"},
    "MARKET_LOT_SIZE": {"filterType": "MARKET_LOT_SIZE", "maxQty": "590119", "minQty": "1", "stepSize": "1"},
    "MAX_NUM_ORDERS": {"filterType": "MAX_NUM_ORDERS", "limit": 200},
    "MIN_NOTIONAL": {"filterType": "MIN_NOTIONAL", "notional": "5.0"},
    "PERCENT_PRICE": {"filterType": "PERCENT_PRICE", "multiplierUp": "1.1500", "multiplierDown": "0.8500",
                      "multiplierDecimal": "4"},
}
# rest-api.md "24hr ticker price change statistics", Response - FULL and Response - MINI
SPOT_TICKER = {"symbol": "BNBBTC", "priceChange": "-94.99999800", "priceChangePercent": "-95.960",
               "weightedAvgPrice": "0.29628482", "prevClosePrice": "0.10002000", "lastPrice": "4.00000200",
               "lastQty": "200.00000000", "bidPrice": "4.00000000", "bidQty": "100.00000000", "askPrice": "4.00000200",
               "askQty": "100.00000000", "openPrice": "99.00000000", "highPrice": "100.00000000",
               "lowPrice": "0.10000000", "volume": "8913.30000000", "quoteVolume": "15.30000000",
               "openTime": 1499783499040, "closeTime": 1499869899040, "firstId": 28385, "lastId": 28460, "count": 76}
SPOT_TICKER_MINI = {"symbol": "BNBBTC", "openPrice": "99.00000000", "highPrice": "100.00000000",
                    "lowPrice": "0.10000000", "lastPrice": "4.00000200", "volume": "8913.30000000",
                    "quoteVolume": "15.30000000", "openTime": 1499783499040, "closeTime": 1499869899040,
                    "firstId": 28385, "lastId": 28460, "count": 76}
# USDⓈ-M "24hr Ticker Price Change Statistics" (no book top, no prevClosePrice)
FUTURES_TICKER = {"symbol": "BTCUSDT", "priceChange": "-94.99999800", "priceChangePercent": "-95.960",
                  "weightedAvgPrice": "0.29628482", "lastPrice": "4.00000200", "lastQty": "200.00000000",
                  "openPrice": "99.00000000", "highPrice": "100.00000000", "lowPrice": "0.10000000",
                  "volume": "8913.30000000", "quoteVolume": "15.30000000", "openTime": 1499783499040,
                  "closeTime": 1499869899040, "firstId": 28385, "lastId": 28460, "count": 76}
# rest-api.md "Order book"; USDⓈ-M "Order Book" adds E (message output time) and T (transaction time)
SPOT_DEPTH = {"lastUpdateId": 1027024, "bids": [["4.00000000", "431.00000000"]],
              "asks": [["4.00000200", "12.00000000"]]}
FUTURES_DEPTH = SPOT_DEPTH | {"E": 1589436922972, "T": 1589436922959}
# rest-api.md "Kline/Candlestick data"; USDⓈ-M "Kline/Candlestick Data" (same 12 columns)
KLINE = [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815", 1499644799999,
         "2434.19055334", 308, "1756.87402397", "28.46694368", "0"]
# USDⓈ-M "Mark Price" (GET /fapi/v1/premiumIndex)
PREMIUM_INDEX = {"symbol": "BTCUSDT", "markPrice": "11793.63104562", "indexPrice": "11781.80495970",
                 "estimatedSettlePrice": "11781.16138815", "lastFundingRate": "0.00038246",
                 "interestRate": "0.00010000", "nextFundingTime": 1597392000000, "time": 1597370495002}
# USDⓈ-M "Open Interest"
OPEN_INTEREST = {"openInterest": "10659.509", "symbol": "BTCUSDT", "time": 1589437530011}
# USDⓈ-M "Get Funding Rate History" (GET /fapi/v1/fundingRate): ascending by fundingTime
FUNDING_RATE_HISTORY = [{"symbol": "BTCUSDT", "fundingRate": "-0.03750000", "fundingTime": 1570608000000,
                         "markPrice": "34287.54619963"}]
# The /futures/data statistics. The USDⓈ-M pages print "timestamp" as a string ("1583127900000"); answers
# Binance gives (the binance_futures Elixir docs' recorded examples) and the COIN-M page send an integer:
# the integer is kept here (tests/servers/README.md), and market_sentiment reads either.
# USDⓈ-M "Open Interest Statistics" (GET /futures/data/openInterestHist)
OPEN_INTEREST_HIST = [{"symbol": "BTCUSDT", "sumOpenInterest": "20403.63700000",
                       "sumOpenInterestValue": "150570784.07809979", "CMCCirculatingSupply": "165880.538",
                       "timestamp": 1583127900000}]
# USDⓈ-M "Long/Short Ratio" (GET /futures/data/globalLongShortAccountRatio)
GLOBAL_LONG_SHORT = [{"symbol": "BTCUSDT", "longShortRatio": "0.1960", "longAccount": "0.6622",
                      "shortAccount": "0.3378", "timestamp": 1583139600000}]
# USDⓈ-M "Taker Buy/Sell Volume" (GET /futures/data/takerlongshortRatio)
TAKER_BUY_SELL = [{"buySellRatio": "1.5586", "buyVol": "387.3300", "sellVol": "248.5030", "timestamp": 1585614900000}]
# rest-api.md "Account information (USER_DATA)"; ccxt fetchBalance "Spot balance" has the same keys
SPOT_ACCOUNT = {"makerCommission": 15, "takerCommission": 15, "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": {"maker": "0.00150000", "taker": "0.00150000", "buyer": "0.00000000",
                                    "seller": "0.00000000"},
                "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False, "updateTime": 123456789,
                "accountType": "SPOT",
                "balances": [{"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"}],
                "permissions": ["SPOT"], "uid": 354937868}
# USDⓈ-M "Account Information V3" (GET /fapi/v3/account, single-asset mode)
FUTURES_ACCOUNT = {"totalInitialMargin": "0.00000000", "totalMaintMargin": "0.00000000",
                   "totalWalletBalance": "103.12345678", "totalUnrealizedProfit": "0.00000000",
                   "totalMarginBalance": "103.12345678", "totalPositionInitialMargin": "0.00000000",
                   "totalOpenOrderInitialMargin": "0.00000000", "totalCrossWalletBalance": "103.12345678",
                   "totalCrossUnPnl": "0.00000000", "availableBalance": "103.12345678",
                   "maxWithdrawAmount": "103.12345678",
                   "assets": [{"asset": "USDT", "walletBalance": "23.72469206", "unrealizedProfit": "0.00000000",
                               "marginBalance": "23.72469206", "maintMargin": "0.00000000",
                               "initialMargin": "0.00000000", "positionInitialMargin": "0.00000000",
                               "openOrderInitialMargin": "0.00000000", "crossWalletBalance": "23.72469206",
                               "crossUnPnl": "0.00000000", "availableBalance": "23.72469206",
                               "maxWithdrawAmount": "23.72469206", "updateTime": 1625474304765}],
                   "positions": [{"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "1.000",
                                  "unrealizedProfit": "0.00000000", "isolatedMargin": "0.00000000", "notional": "0",
                                  "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0", "updateTime": 0}]}
# USDⓈ-M "Futures Account Balance V3" (GET /fapi/v3/balance; V2 has the same fields)
FUTURES_BALANCE = [{"accountAlias": "SgsR", "asset": "USDT", "balance": "122607.35137903",
                    "crossWalletBalance": "23.72469206", "crossUnPnl": "0.00000000", "availableBalance": "23.72469206",
                    "maxWithdrawAmount": "23.72469206", "marginAvailable": True, "updateTime": 1617939110373}]
# USDⓈ-M "Position Information V3" (GET /fapi/v3/positionRisk, one-way mode); ccxt fetchPositions recordings: same keys
POSITION_RISK = [{"symbol": "ADAUSDT", "positionSide": "BOTH", "positionAmt": "30", "entryPrice": "0.385",
                  "breakEvenPrice": "0.385077", "markPrice": "0.41047590", "unRealizedProfit": "0.76427700",
                  "liquidationPrice": "0", "isolatedMargin": "0", "notional": "12.31427700", "marginAsset": "USDT",
                  "isolatedWallet": "0", "initialMargin": "0.61571385", "maintMargin": "0.08004280",
                  "positionInitialMargin": "0.61571385", "openOrderInitialMargin": "0", "adl": 2, "bidNotional": "0",
                  "askNotional": "0", "updateTime": 1720736417660}]
# USDⓈ-M "Change Initial Leverage", "Change Margin Type", "Notional and Leverage Brackets", "Get Current Position Mode"
LEVERAGE = {"leverage": 21, "maxNotionalValue": "1000000", "symbol": "BTCUSDT"}
MARGIN_TYPE = {"code": 200, "msg": "success"}
LEVERAGE_BRACKET = [{"symbol": "ETHUSDT", "notionalCoef": 1.50, "brackets": [
    {"bracket": 1, "initialLeverage": 75, "notionalCap": 10000, "notionalFloor": 0, "maintMarginRatio": 0.0065,
     "cum": 0.0}]}]
POSITION_MODE = {"dualSidePosition": True}

# -- orders --
# rest-api.md "New order (TRADE)" Response - ACK / RESULT / FULL, and "Conditional fields in Order Responses"
SPOT_ACK = {"symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
            "transactTime": 1507725176595}
SPOT_RESULT = SPOT_ACK | {"price": "0.00000000", "origQty": "10.00000000", "executedQty": "10.00000000",
                          "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "10.00000000", "status": "FILLED",
                          "timeInForce": "GTC", "type": "MARKET", "side": "SELL", "workingTime": 1507725176595,
                          "selfTradePreventionMode": "NONE"}
SPOT_FULL = SPOT_RESULT | {"fills": [{"price": "4000.00000000", "qty": "1.00000000", "commission": "4.00000000",
                                      "commissionAsset": "USDT", "tradeId": 56}]}
CONDITIONAL = {"stopPrice", "icebergQty", "preventedMatchId", "preventedQuantity", "strategyId", "strategyType",
               "trailingDelta", "trailingTime", "usedSor", "workingFloor"}  # "Conditional fields in Order Responses"
# appears for STOP_LOSS, TAKE_PROFIT, STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT only
STOP_PRICE = {"stopPrice": "23500.00000000"}
# rest-api.md "Query order (USER_DATA)" (the example shows stopPrice and icebergQty; both are conditional)
SPOT_QUERY = {"symbol": "LTCBTC", "orderId": 1, "orderListId": -1, "clientOrderId": "myOrder1", "price": "0.1",
              "origQty": "1.0", "executedQty": "0.0", "cummulativeQuoteQty": "0.0", "status": "NEW",
              "timeInForce": "GTC", "type": "LIMIT", "side": "BUY", "stopPrice": "0.0", "icebergQty": "0.0",
              "time": 1499827319559, "updateTime": 1499827319559, "isWorking": True, "workingTime": 1499827319559,
              "origQuoteOrderQty": "0.000000", "selfTradePreventionMode": "NONE"}
# rest-api.md "Cancel order (TRADE)"
SPOT_CANCEL = {"symbol": "LTCBTC", "origClientOrderId": "myOrder1", "orderId": 4, "orderListId": -1,
               "clientOrderId": "cancelMyOrder1", "transactTime": 1684804350068, "price": "2.00000000",
               "origQty": "1.00000000", "executedQty": "0.00000000", "origQuoteOrderQty": "0.000000",
               "cummulativeQuoteQty": "0.00000000", "status": "CANCELED", "timeInForce": "GTC", "type": "LIMIT",
               "side": "BUY", "selfTradePreventionMode": "NONE"}
# rest-api.md "Account trade list (USER_DATA)"; ccxt fetchMyTrades "Spot private trade": same keys
SPOT_TRADE = {"symbol": "BNBBTC", "id": 28457, "orderId": 100234, "orderListId": -1, "price": "4.00000100",
              "qty": "12.00000000", "quoteQty": "48.000012", "commission": "10.10000000", "commissionAsset": "BNB",
              "time": 1499865549590, "isBuyer": True, "isMaker": False, "isBestMatch": True}
# rest-api.md "Query Order list (USER_DATA)" / "Query Open Order lists": no orderReports
ORDER_LIST = {"orderListId": 27, "contingencyType": "OCO", "listStatusType": "EXEC_STARTED",
              "listOrderStatus": "EXECUTING", "listClientOrderId": "h2USkA5YQpaXHPIrkd96xE",
              "transactionTime": 1565245656253, "symbol": "LTCBTC",
              "orders": [{"symbol": "LTCBTC", "orderId": 4, "clientOrderId": "qD1gy3kc3Gx0rihm9Y3xwS"}]}
# rest-api.md "New Order list - OCO (TRADE)" (RESULT reports) and "Cancel Order list (TRADE)" (cancel-shaped reports)
OCO_PLACED = ORDER_LIST | {"orderReports": [SPOT_RESULT | STOP_PRICE | {"orderListId": 1}]}
OCO_CANCELED = ORDER_LIST | {"orderReports": [SPOT_CANCEL | STOP_PRICE | {"orderListId": 0}]}

# USDⓈ-M "New Order (TRADE)"; ccxt createOrders "create swap orders" recording: same keys
FUTURES_NEW = {"orderId": 4087922044, "symbol": "BTCUSDT", "status": "NEW",
               "clientOrderId": "x-xcKtGhcu04075babaeb34c55af79ba", "price": "110001.00", "avgPrice": "0.00",
               "origQty": "0.200", "executedQty": "0.000", "cumQty": "0.000", "cumQuote": "0.00000",
               "timeInForce": "GTC", "type": "LIMIT", "reduceOnly": False, "closePosition": False, "side": "SELL",
               "positionSide": "BOTH", "stopPrice": "0.00", "workingType": "CONTRACT_PRICE", "priceProtect": False,
               "origType": "LIMIT", "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
               "updateTime": 1739781831932}
TRAILING = {"activatePrice", "priceRate"}  # "only return with TRAILING_STOP_MARKET order"
# USDⓈ-M "Query Order (USER_DATA)"; ccxt parseOrder "fetchOpenOrder: linear swap" and fetchOpenOrder recording:
# same keys
FUTURES_QUERY = {k: v for k, v in FUTURES_NEW.items() if k != "cumQty"} | {"time": 1707892893502}
# USDⓈ-M "Cancel Order (TRADE)": no avgPrice, no time
FUTURES_CANCEL = {k: v for k, v in FUTURES_NEW.items() if k != "avgPrice"} | {"status": "CANCELED"}
# USDⓈ-M "Account Trade List (USER_DATA)" (GET /fapi/v1/userTrades); ccxt fetchMyTrades "Swap private trade"
# also has marginAsset
FUTURES_TRADE = {"buyer": False, "commission": "-0.07819010", "commissionAsset": "USDT", "id": 698759, "maker": False,
                 "orderId": 25851813, "price": "7819.01", "qty": "0.002", "quoteQty": "15.63802",
                 "realizedPnl": "-0.91539999", "side": "SELL", "positionSide": "SHORT", "symbol": "BTCUSDT",
                 "time": 1569514978020, "marginAsset": "USDT"}
# USDⓈ-M "Get Income History (USER_DATA)" (GET /fapi/v1/income): tranId an integer, tradeId a string ("" when
# no trade caused it)
FUTURES_INCOME = {"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "income": "-0.37500000", "asset": "USDT",
                  "info": "FUNDING_FEE", "time": 1570608000000, "tranId": 9689322392, "tradeId": ""}
# USDⓈ-M "New Algo Order(TRADE)" (activatePrice/callbackRate: "TRAILING_STOP_MARKET order"; ccxt's STOP recording
# has neither)
ALGO_NEW = {"algoId": 2146760, "clientAlgoId": "6B2I9XVcJpCjqPAJ4YoFX7", "algoType": "CONDITIONAL",
            "orderType": "TAKE_PROFIT", "symbol": "BNBUSDT", "side": "SELL", "positionSide": "BOTH",
            "timeInForce": "GTC", "quantity": "0.01", "algoStatus": "NEW", "triggerPrice": "750.000",
            "price": "750.000", "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": "CONTRACT_PRICE", "priceMatch": "NONE", "closePosition": False, "priceProtect": False,
            "reduceOnly": False, "activatePrice": "", "callbackRate": "", "createTime": 1750485492076,
            "updateTime": 1750485492076, "triggerTime": 0, "goodTillDate": 0}
ALGO_TRAILING = {"activatePrice", "callbackRate"}
# USDⓈ-M "Query Algo Order (USER_DATA)", "Query All Algo Orders", "Current All Algo Open Orders"
ALGO_QUERY = {k: v for k, v in ALGO_NEW.items() if k not in ALGO_TRAILING} | {
    "actualOrderId": "", "actualPrice": "0.00000", "tpTriggerPrice": "0.000", "tpPrice": "0.000",
    "slTriggerPrice": "0.000", "slPrice": "0.000", "tpOrderType": ""}
# USDⓈ-M "Cancel Algo Order (TRADE)" ("code" is the string "200")
ALGO_CANCEL = {"algoId": 2146760, "clientAlgoId": "6B2I9XVcJpCjqPAJ4YoFX7", "code": "200", "msg": "success"}


# == helpers to get the server into a state ===========================================================


def spot_buy(server: BinanceTestServer, quantity: str = "0.002", **extra: Any) -> dict:
    return call(server, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                  "quantity": quantity, "newOrderRespType": "FULL"} | extra,
                signed=True)


def futures_open(server: BinanceTestServer, side: str = "BUY", quantity: str = "0.002", **extra: Any) -> dict:
    return call(server, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": side, "type": "MARKET",
                                                   "quantity": quantity, "newOrderRespType": "RESULT"} | extra,
                signed=True)


def place_oco(server: BinanceTestServer, coid: str = "oco1") -> dict:
    """A protective SELL OCO: take profit (LIMIT_MAKER) above the market, stop loss below."""
    spot_buy(server)
    return call(server, "POST", "/api/v3/orderList/oco", {
        "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.001", "listClientOrderId": coid,
        "newOrderRespType": "RESULT", "aboveType": "LIMIT_MAKER", "abovePrice": "52000",
        "aboveClientOrderId": f"{coid}-tp", "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "48000",
        "belowPrice": "47900", "belowTimeInForce": "GTC", "belowClientOrderId": f"{coid}-sl"}, signed=True)


@pytest.fixture
def server():
    with BinanceTestServer(window_seconds=60) as running:
        yield running


# == market data: must match ===========================================================================


@pytest.mark.parametrize("api", ["/api/v3", "/fapi/v1"])
def test_ping_and_time(server, api):
    assert call(server, "GET", f"{api}/ping") == {}  # rest-api.md "Test connectivity"; USDⓈ-M "Test Connectivity"
    assert_shape(call(server, "GET", f"{api}/time"), {"serverTime": 1499827319559})  # "Check server time"


def test_spot_exchange_info(server):
    info = call(server, "GET", "/api/v3/exchangeInfo")
    assert_shape(info, SPOT_EXCHANGE_INFO | {"symbols": [], "rateLimits": []})
    for limit in info["rateLimits"]:
        assert_shape(limit, SPOT_EXCHANGE_INFO["rateLimits"][0])
    assert info["symbols"]
    for symbol in info["symbols"]:
        assert_shape(symbol | {"filters": []}, SPOT_EXCHANGE_INFO["symbols"][0])
        assert {f["filterType"] for f in symbol["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
        for one in symbol["filters"]:
            assert_shape(one, SPOT_FILTERS[one["filterType"]])


def test_futures_exchange_info(server):
    info = call(server, "GET", "/fapi/v1/exchangeInfo")
    # BNB: "autoAssetExchange": null
    assert_shape(info, FUTURES_EXCHANGE_INFO | {"symbols": []}, nullable={"autoAssetExchange"})
    assert info["symbols"]
    for symbol in info["symbols"]:
        assert_shape(symbol | {"filters": []}, FUTURES_EXCHANGE_INFO["symbols"][0])
        assert {f["filterType"] for f in symbol["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "MIN_NOTIONAL"}
        for one in symbol["filters"]:
            assert_shape(one, FUTURES_FILTERS[one["filterType"]])


def test_spot_ticker_full_mini_and_all(server):
    assert_shape(call(server, "GET", "/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}), SPOT_TICKER)
    assert_shape(call(server, "GET", "/api/v3/ticker/24hr", {"symbol": "BTCUSDT", "type": "MINI"}), SPOT_TICKER_MINI)
    every = call(server, "GET", "/api/v3/ticker/24hr")  # no symbol: an array of all
    assert len(every) >= 2
    assert_shape(every, [SPOT_TICKER])


def test_futures_ticker(server):
    assert_shape(call(server, "GET", "/fapi/v1/ticker/24hr", {"symbol": "BTCUSDT"}), FUTURES_TICKER)
    assert_shape(call(server, "GET", "/fapi/v1/ticker/24hr"), [FUTURES_TICKER])


@pytest.mark.parametrize(("path", "documented"), [("/api/v3/depth", SPOT_DEPTH), ("/fapi/v1/depth", FUTURES_DEPTH)])
def test_order_book(server, path, documented):
    book = call(server, "GET", path, {"symbol": "BTCUSDT", "limit": 5})
    assert book["bids"] and book["asks"]
    assert_shape(book, documented)
    assert all(len(level) == 2 for level in book["bids"] + book["asks"])


@pytest.mark.parametrize("api", ["/api/v3", "/fapi/v1"])
def test_klines(server, api):
    rows = call(server, "GET", f"{api}/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 3})
    assert len(rows) == 3
    for row in rows:
        assert len(row) == len(KLINE)
        assert_shape(row, KLINE)
        assert row[6] == row[0] + 60_000 - 1  # close time: the last millisecond of the interval


def test_premium_index_with_and_without_symbol(server):
    assert_shape(call(server, "GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}), PREMIUM_INDEX)
    every = call(server, "GET", "/fapi/v1/premiumIndex")  # "OR (when symbol not sent)": an array
    assert isinstance(every, list) and len(every) >= 2
    assert_shape(every, [PREMIUM_INDEX])


def test_open_interest(server):
    assert_shape(call(server, "GET", "/fapi/v1/openInterest", {"symbol": "BTCUSDT"}), OPEN_INTEREST)


def test_funding_rate_history_ascending_with_the_limit(server):
    server.set_sentiment("BTCUSDT", funding_history=[0.0001, -0.0002, 0.0003])
    rows = call(server, "GET", "/fapi/v1/fundingRate", {"symbol": "BTCUSDT", "limit": 2})
    assert_shape(rows, FUNDING_RATE_HISTORY)
    assert [r["fundingRate"] for r in rows] == ["-0.0002", "0.0003"]  # the most recent, oldest first
    assert rows[1]["fundingTime"] - rows[0]["fundingTime"] == 8 * 3600 * 1000


@pytest.mark.parametrize(("path", "documented"), [
    ("/futures/data/openInterestHist", OPEN_INTEREST_HIST),
    ("/futures/data/globalLongShortAccountRatio", GLOBAL_LONG_SHORT),
    ("/futures/data/takerlongshortRatio", TAKER_BUY_SELL),
])
def test_futures_statistics_one_row_per_period(server, path, documented):
    rows = call(server, "GET", path, {"symbol": "BTCUSDT", "period": "5m", "limit": 3})
    assert len(rows) == 3
    assert_shape(rows, documented)
    assert [b["timestamp"] - a["timestamp"] for a, b in zip(rows, rows[1:])] == [300_000, 300_000]
    assert len(call(server, "GET", path, {"symbol": "BTCUSDT", "period": "1h"})) == 30  # "default 30"
    error = call(server, "GET", path, {"symbol": "BTCUSDT", "period": "1m"}, status=400)  # 5m..1d only
    assert error["code"] == -1130


# == accounts and positions: must match ================================================================


def test_spot_account_with_and_without_zero_balances(server):
    account = call(server, "GET", "/api/v3/account", signed=True)
    assert_shape(account, SPOT_ACCOUNT)
    assert any(b["free"] in ("0", "0.00000000") for b in account["balances"])  # Binance lists empty assets by default
    trimmed = call(server, "GET", "/api/v3/account", {"omitZeroBalances": "true"}, signed=True)
    assert_shape(trimmed, SPOT_ACCOUNT)
    assert trimmed["balances"] and all(Decimal(b["free"]) or Decimal(b["locked"]) for b in trimmed["balances"])


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_futures_balance(server, version):
    assert_shape(call(server, "GET", f"/fapi/{version}/balance", signed=True), FUTURES_BALANCE)


def test_futures_account_and_positions_flat_then_open(server):
    # Binance lists only symbols with a position or open orders ("Position Information V3",
    # "Account Information V3"): an account without either has no position rows.
    assert call(server, "GET", "/fapi/v3/positionRisk", signed=True) == []
    flat = call(server, "GET", "/fapi/v3/account", signed=True)
    assert_shape(flat, FUTURES_ACCOUNT)
    assert flat["positions"] == []

    futures_open(server)
    server.set_price("BTCUSDT", 50500)
    risk = call(server, "GET", "/fapi/v3/positionRisk", signed=True)
    assert [r["symbol"] for r in risk] == ["BTCUSDT"]
    assert_shape(risk, POSITION_RISK)
    assert Decimal(risk[0]["unRealizedProfit"]) > 0
    assert call(server, "GET", "/fapi/v3/positionRisk", {"symbol": "ETHUSDT"}, signed=True) == []
    account = call(server, "GET", "/fapi/v3/account", signed=True)
    assert_shape(account, FUTURES_ACCOUNT)
    assert [p["symbol"] for p in account["positions"]] == ["BTCUSDT"]
    assert Decimal(account["totalUnrealizedProfit"]) == Decimal(risk[0]["unRealizedProfit"])
    assert Decimal(account["totalMarginBalance"]) == (Decimal(account["totalWalletBalance"])
                                                      + Decimal(account["totalUnrealizedProfit"]))


def test_a_resting_order_lists_its_symbol_in_position_risk(server):
    call(server, "POST", "/fapi/v1/order", {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01",
                                            "price": "2000", "timeInForce": "GTC"}, signed=True)
    risk = call(server, "GET", "/fapi/v3/positionRisk", signed=True)
    assert [r["symbol"] for r in risk] == ["ETHUSDT"] and Decimal(risk[0]["positionAmt"]) == 0
    assert_shape(risk, POSITION_RISK)


def test_futures_settings(server):
    assert_shape(call(server, "POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 5}, signed=True), LEVERAGE)
    assert_shape(call(server, "POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "ISOLATED"},
                      signed=True), MARGIN_TYPE)
    assert_shape(call(server, "GET", "/fapi/v1/leverageBracket", signed=True), LEVERAGE_BRACKET,
                 optional={"notionalCoef"})
    assert_shape(call(server, "GET", "/fapi/v1/positionSide/dual", signed=True), POSITION_MODE)


def test_an_isolated_position_has_isolated_margin(server):
    # positionRisk V3 has no marginType: ccxt reads an isolated position from a non-zero isolatedMargin
    call(server, "POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "ISOLATED"}, signed=True)
    futures_open(server)
    [row] = call(server, "GET", "/fapi/v3/positionRisk", signed=True)
    assert Decimal(row["isolatedWallet"]) > 0 and Decimal(row["isolatedMargin"]) > 0


# == orders: spot ===================================================================================


def test_spot_market_order_full(server):
    placed = spot_buy(server)
    assert placed["fills"], "a MARKET order that executed lists its fills"
    assert_shape(placed, SPOT_FULL, optional={"icebergQty"})


def test_spot_resting_limit_order_full_has_empty_fills(server):
    placed = call(server, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                    "timeInForce": "GTC", "quantity": "0.001", "price": "40000",
                                                    "newOrderRespType": "FULL"}, signed=True)
    # ccxt recording "spot +selfTradePrevention +iceberg": "fills": []
    assert placed["status"] == "NEW" and placed["fills"] == []
    assert_shape(placed, SPOT_FULL)


def test_spot_result_answer_has_no_fills(server):
    assert_shape(spot_buy(server, newOrderRespType="RESULT"), SPOT_RESULT)


def test_spot_ack_answer(server):
    assert_shape(spot_buy(server, newOrderRespType="ACK"), SPOT_ACK)


def test_spot_stop_order_default_answer_is_ack(server):
    spot_buy(server)
    placed = call(server, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS_LIMIT",
                                                    "timeInForce": "GTC", "quantity": "0.001", "price": "47900",
                                                    "stopPrice": "48000"}, signed=True)
    assert_shape(placed, SPOT_ACK)


@pytest.mark.parametrize("order_type", ["STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"])
def test_spot_stop_and_take_profit_orders(server, order_type):
    spot_buy(server)
    limit = order_type.endswith("_LIMIT")
    stop = "48000" if order_type.startswith("STOP") else "52000"  # SELL: stop below the market, take profit above
    placed = call(server, "POST", "/api/v3/order", {
        "symbol": "BTCUSDT", "side": "SELL", "type": order_type, "quantity": "0.001", "stopPrice": stop,
        "price": str(Decimal(stop) - 100) if limit else None, "timeInForce": "GTC" if limit else None,
        "newOrderRespType": "RESULT"}, signed=True)
    assert placed["status"] == "NEW" and placed["type"] == order_type
    assert_shape(placed, SPOT_RESULT | STOP_PRICE)
    assert placed["workingTime"] == -1  # not working until triggered (cf. the OCO example's stop leg)


def test_spot_stop_order_query_has_stop_price_and_triggers(server):
    spot_buy(server)
    placed = call(server, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS",
                                                    "quantity": "0.001", "stopPrice": "48000",
                                                    "newClientOrderId": "sl1", "newOrderRespType": "RESULT"},
                  signed=True)
    query = call(server, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}, signed=True)
    assert query["status"] == "NEW" and Decimal(query["stopPrice"]) == 48000
    assert (query["isWorking"], query["workingTime"]) == (False, -1)  # not working until triggered
    server.set_price("BTCUSDT", 47500)
    query = call(server, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "sl1"}, signed=True)
    assert query["status"] == "FILLED" and query["type"] == "STOP_LOSS"  # the type stays STOP_LOSS once triggered
    assert query["isWorking"] is True and query["workingTime"] >= query["time"]  # working since the trigger


def test_spot_query_and_open_orders(server):
    placed = call(server, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                    "timeInForce": "GTC", "quantity": "0.001", "price": "40000"},
                  signed=True)
    query = call(server, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}, signed=True)
    assert_shape(query, SPOT_QUERY, optional={"stopPrice", "icebergQty"})
    assert_shape(call(server, "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, signed=True), [SPOT_QUERY],
                 optional={"stopPrice", "icebergQty"})


def test_spot_cancel(server):
    call(server, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                           "quantity": "0.001", "price": "40000", "newClientOrderId": "mine"},
         signed=True)
    canceled = call(server, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "mine"}, signed=True)
    assert_shape(canceled, SPOT_CANCEL)
    assert canceled["origClientOrderId"] == "mine" and canceled["clientOrderId"] != "mine"


def test_spot_cancel_names_the_cancel_by_new_client_order_id(server):
    call(server, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                           "quantity": "0.001", "price": "40000", "newClientOrderId": "mine"},
         signed=True)
    canceled = call(server, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "mine",
                                                        "newClientOrderId": "undo-mine"},
                    signed=True)
    assert (canceled["origClientOrderId"], canceled["clientOrderId"], canceled["status"]) == (
        "mine", "undo-mine", "CANCELED")


def test_spot_invalid_new_order_resp_type(server):
    assert call(server, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                  "quantity": "0.001", "newOrderRespType": "EVERYTHING"},
                signed=True, status=400)["code"] == -1136
    assert server.open_orders() == [] and server.filled_orders() == []  # refused before anything happened


def test_spot_cancel_unknown_order(server):
    assert call(server, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "nope"}, signed=True,
                status=400) == {"code": -2011, "msg": "Unknown order sent."}


@pytest.mark.parametrize("fees", ["default", "BNB", "zero"])
def test_spot_trades_and_fills_commissions(fees):
    """commissionAsset is the asset received unless the BNB discount is on (then BNB); the spot
    testnet may report a commission of 0 — all three are shapes a client must read."""
    options = {"BNB": {"commission_asset": "BNB"}, "zero": {"commission_zero": True}}.get(fees, {})
    with BinanceTestServer(window_seconds=60, **options) as server:
        placed = spot_buy(server)
        trades = call(server, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}, signed=True)
        by_order = call(server, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": placed["orderId"]},
                        signed=True)
    assert trades == by_order and len(trades) == len(placed["fills"]) >= 1
    assert_shape(trades, [SPOT_TRADE])  # (the fills' own shape: test_spot_market_order_full)
    asset = {"BNB": "BNB"}.get(fees, "BTC")  # a buyer pays in the asset bought
    assert {t["commissionAsset"] for t in trades} == {f["commissionAsset"] for f in placed["fills"]} == {asset}
    assert (Decimal(trades[0]["commission"]) == 0) == (fees == "zero")


# -- OCO order lists --


def test_oco_placing_answer(server):
    placed = place_oco(server)
    assert (placed["listStatusType"], placed["listOrderStatus"]) == ("EXEC_STARTED", "EXECUTING")
    assert_shape(placed, OCO_PLACED, optional={"stopPrice"})
    legs = {r["type"]: r for r in placed["orderReports"]}
    assert "stopPrice" in legs["STOP_LOSS_LIMIT"] and "stopPrice" not in legs["LIMIT_MAKER"]
    assert legs["STOP_LOSS_LIMIT"]["workingTime"] == -1


@pytest.mark.parametrize("resp_type", ["ACK", "FULL", None])
def test_oco_placing_answer_by_new_order_resp_type(server, resp_type):
    """ACK reports only name the legs; FULL (also when not sent, as a live testnet answer shows) adds ``fills``."""
    spot_buy(server)
    placed = call(server, "POST", "/api/v3/orderList/oco", {
        "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.001", "newOrderRespType": resp_type,
        "aboveType": "LIMIT_MAKER", "abovePrice": "52000", "belowType": "STOP_LOSS", "belowStopPrice": "48000"},
        signed=True)
    report = SPOT_ACK if resp_type == "ACK" else SPOT_FULL | STOP_PRICE
    assert_shape(placed, ORDER_LIST | {"orderReports": [report]}, optional={"stopPrice"})
    if resp_type != "ACK":
        assert all(r["fills"] == [] for r in placed["orderReports"])


def test_oco_placing_answer_list_fields(server):
    placed = place_oco(server)
    assert_shape({k: v for k, v in placed.items() if k != "orderReports"}, ORDER_LIST)
    assert sorted(o["clientOrderId"] for o in placed["orders"]) == ["oco1-sl", "oco1-tp"]


def test_oco_query_and_open_order_lists(server):
    placed = place_oco(server)
    assert_shape(call(server, "GET", "/api/v3/orderList", {"orderListId": placed["orderListId"]}, signed=True),
                 ORDER_LIST)
    assert_shape(call(server, "GET", "/api/v3/orderList", {"origClientOrderId": "oco1"}, signed=True), ORDER_LIST)
    assert_shape(call(server, "GET", "/api/v3/openOrderList", signed=True), [ORDER_LIST])


def test_oco_cancel(server):
    placed = place_oco(server)
    canceled = call(server, "DELETE", "/api/v3/orderList", {"symbol": "BTCUSDT", "orderListId": placed["orderListId"]},
                    signed=True)
    assert (canceled["listStatusType"], canceled["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert_shape(canceled, OCO_CANCELED, optional={"stopPrice"})


def test_oco_one_leg_filled_the_other_expired(server):
    """When one leg executes, Binance expires the other (EXPIRED, not CANCELED) and the list is ALL_DONE."""
    place_oco(server)
    server.set_price("BTCUSDT", 52500)  # the take profit (LIMIT_MAKER at 52000) executes
    legs = {coid: call(server, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": coid}, signed=True)
            for coid in ("oco1-tp", "oco1-sl")}
    assert legs["oco1-tp"]["status"] == "FILLED" and legs["oco1-sl"]["status"] == "EXPIRED"
    assert {leg["orderListId"] for leg in legs.values()} != {-1}
    order_list = call(server, "GET", "/api/v3/orderList", {"origClientOrderId": "oco1"}, signed=True)
    assert (order_list["listStatusType"], order_list["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert call(server, "GET", "/api/v3/openOrderList", signed=True) == []
    [trade] = call(server, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": legs["oco1-tp"]["orderId"]},
                   signed=True)
    assert trade["orderListId"] == order_list["orderListId"]  # a leg's trade names its order list


# == orders: futures ================================================================================


def test_futures_new_order(server):
    placed = futures_open(server)
    assert_shape(placed, FUTURES_NEW, optional=TRAILING)


def test_futures_ack_answers_the_order_as_accepted(server):
    """ACK, the futures default: a MARKET order is answered NEW with nothing executed; the query shows the fill."""
    placed = futures_open(server, newOrderRespType=None)
    assert_shape(placed, FUTURES_NEW, optional=TRAILING)
    assert (placed["status"], Decimal(placed["executedQty"]), Decimal(placed["avgPrice"])) == ("NEW", 0, 0)
    query = call(server, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}, signed=True)
    assert query["status"] == "FILLED" and Decimal(query["executedQty"]) == Decimal("0.002")
    result = futures_open(server, side="SELL")  # RESULT: the state after execution
    assert result["status"] == "FILLED" and Decimal(result["avgPrice"]) > 0


def test_futures_query_and_open_orders(server):
    placed = call(server, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                     "quantity": "0.002", "price": "40000", "timeInForce": "GTC",
                                                     "newOrderRespType": "RESULT"}, signed=True)
    assert_shape(call(server, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]},
                      signed=True), FUTURES_QUERY, optional=TRAILING)
    assert_shape(call(server, "GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"}, signed=True), [FUTURES_QUERY],
                 optional=TRAILING)


def test_futures_cancel(server):
    placed = call(server, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                     "quantity": "0.002", "price": "40000", "timeInForce": "GTC"},
                  signed=True)
    canceled = call(server, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]},
                    signed=True)
    assert_shape(canceled, FUTURES_CANCEL, optional=TRAILING)


def test_futures_user_trades(server):
    futures_open(server)
    server.set_price("BTCUSDT", 51000)
    futures_open(server, side="SELL")  # closes the long: a realized profit
    trades = call(server, "GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"}, signed=True)
    assert len(trades) == 2
    assert_shape(trades, [FUTURES_TRADE], optional={"marginAsset"})
    opening, closing = trades
    assert Decimal(opening["realizedPnl"]) == 0 and Decimal(closing["realizedPnl"]) > 0
    assert all(t["commissionAsset"] == "USDT" and Decimal(t["commission"]) > 0 for t in trades)


def test_futures_income_lists_funding_payments_in_time_order_within_the_inclusive_range(server):
    futures_open(server)
    paid = server.pay_funding("BTCUSDT", 0.0001)
    server.market_offset_ms += 8 * 3_600_000
    received = server.pay_funding("BTCUSDT", -0.0002)
    rows = call(server, "GET", "/fapi/v1/income", {"incomeType": "FUNDING_FEE"}, signed=True)
    assert_shape(rows, [FUTURES_INCOME])
    assert [Decimal(r["income"]) for r in rows] == [paid, received] and paid < 0 < received
    later = call(server, "GET", "/fapi/v1/income", {"startTime": rows[1]["time"]}, signed=True)
    assert [r["tranId"] for r in later] == [rows[1]["tranId"]]  # startTime is inclusive


@pytest.mark.parametrize(("prefix", "expected"), [
    ("autoclose-", "autoclose-"),  # liquidation: "starts with autoclose-"
    ("adl_autoclose", "adl_autoclose"),  # ADL: exactly "adl_autoclose"
])
def test_futures_liquidation_and_adl_orders(server, prefix, expected):
    """Orders Binance places on the account (USDⓈ-M "User's Force Orders" example, ORDER_TRADE_UPDATE
    "special client order id"): their trades are the account's like any other."""
    futures_open(server)
    closed = server.close_outside("BTCUSDT", futures=True, prefix=prefix)
    query = call(server, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": closed["orderId"]}, signed=True)
    trades = call(server, "GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT", "orderId": closed["orderId"]},
                  signed=True)
    assert query["status"] == "FILLED" and len(trades) == 1
    assert_shape(trades, [FUTURES_TRADE], optional={"marginAsset"})
    assert call(server, "GET", "/fapi/v3/positionRisk", signed=True) == []
    if expected.endswith("-"):
        assert query["clientOrderId"].startswith(expected)
    else:
        assert query["clientOrderId"] == expected


# -- algo (conditional) orders --


def place_algo(server: BinanceTestServer, coid: str = "stop1") -> dict:
    futures_open(server)
    return call(server, "POST", "/fapi/v1/algoOrder", {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "quantity": "0.002",
        "triggerPrice": "48000", "reduceOnly": "true", "clientAlgoId": coid, "newOrderRespType": "RESULT"}, signed=True)


def test_algo_order_placing_answer(server):
    assert_shape(place_algo(server), ALGO_NEW, optional=ALGO_TRAILING)


def test_algo_order_query_and_open_algo_orders(server):
    placed = place_algo(server)
    query = call(server, "GET", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]}, signed=True)
    assert_shape(query, ALGO_QUERY, nullable={"icebergQuantity"})
    assert query["actualOrderId"] == ""  # not triggered yet
    assert_shape(call(server, "GET", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"}, signed=True), [ALGO_QUERY],
                 nullable={"icebergQuantity"})


def test_algo_order_query_essentials(server):
    """What a client reads from the query: the keys the doc names, their kinds, actualOrderId "" until triggered."""
    placed = place_algo(server)
    query = call(server, "GET", "/fapi/v1/algoOrder", {"clientAlgoId": "stop1"}, signed=True)
    shared = {k: v for k, v in ALGO_QUERY.items() if k in query}
    assert set(ALGO_QUERY) - set(query) <= {"tpTriggerPrice", "tpPrice", "slTriggerPrice", "slPrice", "tpOrderType"}
    assert_shape(query, shared, nullable={"icebergQuantity"})
    assert (query["algoId"], query["algoStatus"], query["actualOrderId"]) == (placed["algoId"], "NEW", "")
    assert isinstance(query["actualOrderId"], str) and isinstance(query["algoId"], int)


@pytest.mark.parametrize("names_order", [True, False])
def test_a_triggered_algo_order(names_order):
    """Triggered, the algo order names the order it created in ``actualOrderId`` (a string), which a
    client then queries; ``actualOrderId`` may still be "" (TRIGGERING, or as Binance-compatible
    servers answer): a client must then find the fill another way."""
    with BinanceTestServer(window_seconds=60, actual_order_id=names_order) as server:
        placed = place_algo(server)
        server.set_price("BTCUSDT", 47500)
        query = call(server, "GET", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]}, signed=True)
        assert query["algoStatus"] in ("TRIGGERING", "TRIGGERED", "FINISHED")
        assert isinstance(query["actualOrderId"], str) and kind(query["actualPrice"]) == "number-string"
        assert call(server, "GET", "/fapi/v1/openAlgoOrders", signed=True) == []
        if names_order:
            assert query["actualOrderId"].isdigit() and Decimal(query["actualPrice"]) > 0
            order = call(server, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": query["actualOrderId"]},
                         signed=True)
            assert order["status"] == "FILLED" and order["type"] == "MARKET"
        else:
            assert query["actualOrderId"] == ""
        trades = call(server, "GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"}, signed=True)
        assert len(trades) == 2 and Decimal(trades[-1]["realizedPnl"]) < 0  # the stop closed the long at a loss


def test_algo_order_cancel(server):
    placed = place_algo(server)
    canceled = call(server, "DELETE", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]}, signed=True)
    assert_shape(canceled, ALGO_CANCEL)
    assert call(server, "GET", "/fapi/v1/algoOrder", {"algoId": placed["algoId"]},
                signed=True)["algoStatus"] == "CANCELED"
