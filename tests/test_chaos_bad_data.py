"""Bad data never trades and never crashes: fuzzed vision model answers (any JSON, NaN, infinities,
wrong types, missing keys) and fuzzed exchange prices (NaN, negative, zero, infinite) through the
risk checks; hostile strings (symbols, rationales, alert texts) through alert formatting and the
dashboard page. Cases: ``count(...)`` (``make chaos`` runs the full counts)."""

from __future__ import annotations

import asyncio
import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos_support import count, record_figures
from gobot_hookspecs import Action
from gobot_plugins.vision import to_signal
from gobot_plugins.vision.answer import read_answer

PRICE = 50000.0
SHOWN = ["1h", "4h"]

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6), st.none(),
                    st.text(max_size=5), st.booleans(), st.sampled_from([PRICE * 0.98, PRICE * 1.04, PRICE, 0, -1]))
views = st.lists(st.fixed_dictionaries({"timeframe": st.sampled_from(SHOWN + ["1d", ""]),
                                        "action": st.sampled_from(["LONG", "SHORT", "HOLD", "long", "BUY", 1])}),
                 max_size=3)
answers = st.fixed_dictionaries({}, optional={
    "action": st.sampled_from(["LONG", "SHORT", "HOLD", "SELL", "", None, 1]),
    "confidence": numbers, "entry": numbers, "stop_loss": numbers, "take_profit": numbers,
    "timeframes": st.one_of(views, numbers), "rationale": st.one_of(st.text(max_size=40), numbers),
})
levels = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(PRICE * 0.5, PRICE * 1.5), st.none())
plausible = st.fixed_dictionaries({  # well-formed but for the levels: the answers that could trade
    "action": st.sampled_from(["LONG", "SHORT"]), "confidence": st.floats(0, 1), "entry": levels, "stop_loss": levels,
    "take_profit": levels,
    "timeframes": st.just([{"timeframe": "1h", "action": "LONG"}, {"timeframe": "4h", "action": "SHORT"}]),
    "rationale": st.text(max_size=40),
})
contents = st.one_of(
    plausible.map(lambda a: json.dumps(a)),
    answers.map(lambda a: json.dumps(a)),  # json.dumps writes NaN and Infinity, which json.loads accepts
    answers.map(lambda a: "```json\n" + json.dumps(a) + "\n```"),
    st.text(max_size=60), st.sampled_from(["", "null", "[]", "42", '{"action": "LONG"', "{}"]),
)


def test_a_vision_answer_trades_only_on_sane_levels():
    figures = {"answers": 0, "trades": 0}

    @settings(max_examples=count(300, 3000), deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(contents, st.sampled_from([None, "I can't"]), st.sampled_from(["stop", "length", None]))
    def case(content, refusal, finish):
        figures["answers"] += 1
        reading = read_answer(content, refusal, finish, price=PRICE, shown=SHOWN, min_agreeing=1)
        signal = to_signal("BTC/USDT", reading, model="m", cached=False, shown=SHOWN, missing={})
        if signal.action is Action.HOLD:
            return
        figures["trades"] += 1
        assert refusal is None and finish not in ("length", "content_filter")
        assert math.isfinite(signal.confidence) and 0 <= signal.confidence <= 1
        for level in (signal.entry, signal.stop_loss, signal.take_profit):
            assert level is None or (math.isfinite(level) and level > 0), signal
        long = signal.action is Action.LONG
        if signal.stop_loss is not None:
            assert signal.stop_loss < PRICE if long else signal.stop_loss > PRICE
        if signal.take_profit is not None:
            assert signal.take_profit > PRICE if long else signal.take_profit < PRICE

    case()
    print(f"vision answers fuzzed: {figures['answers']}, of which traded on sane levels: {figures['trades']}")
    record_figures("vision answer fuzz", cases=figures["answers"], traded_on_sane_levels=figures["trades"],
                   trades_on_bad_data=0)
    assert figures["trades"] > 0  # the well-formed answers did trade: the fuzzing reached the trading path


# -- exchange answers with bad prices ----------------------------------------------------------------

BAD_PRICES = ["NaN", "-50000", "0", "Infinity", "1E-30"]


@pytest.mark.parametrize("price", BAD_PRICES)
def test_a_bad_price_from_the_exchange_never_trades_and_never_stops_the_loop(tmp_path, monkeypatch, price):
    from decimal import Decimal

    from servers.binance import BinanceTestServer
    from servers.bots import Ideas, Recorder, binance_bot, keys

    keys(monkeypatch)
    with BinanceTestServer() as server:
        recorder = Recorder()
        bot = binance_bot(tmp_path / "state", server, ideas=Ideas({"BTC/USDT": Action.LONG}), recorder=recorder)
        with server.lock:
            server.prices["BTCUSDT"] = Decimal(price)

        async def go():
            await bot.startup()
            try:
                return [await bot.run_cycle() for _ in range(2)]
            finally:
                await bot.shutdown("bad data over")

        reports = asyncio.run(go())
        assert len(reports) == 2  # the loop kept running
        assert server.count("POST", "/api/v3/order") == 0, f"traded on price {price}"
        assert not bot.state.positions
    record_figures("bad exchange prices", cases=1, trades_on_bad_data=0)


# -- hostile strings -------------------------------------------------------------------------------

hostile = st.one_of(st.text(max_size=300), st.sampled_from([
    "<script>alert(1)</script>", "</b><i>", "&amp;&lt;", "<b>unclosed", "a" * 5000, "\u202e\u0000\ud7ff", "😀" * 3000,
    "<a href='javascript:alert(1)'>x</a>", "${jndi:ldap://x}", "%s%n", "\r\n\r\nHTTP/1.1 200",
]))


def test_hostile_alert_strings_stay_text_in_telegram_messages():
    from gobot_plugins.telegram.text import MESSAGE_LIMIT, alert_parts, units

    tried = []

    @settings(max_examples=count(200, 2000), deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(title=hostile, text=hostile, kind=hostile)
    def case(title, text, kind):
        tried.append(1)
        parts = alert_parts({"title": title, "text": text, "kind": kind, "severity": "CRITICAL"})
        for part in parts:
            assert units(part.plain) <= MESSAGE_LIMIT
            markup = re.sub(r"</?[bi]>", "", part.html)  # the only tags alert_parts writes
            assert "<" not in markup and ">" not in markup, part.html  # every < > of the input is escaped
            assert part.html.count("<b>") == part.html.count("</b>") == 1

    case()
    record_figures("hostile strings (Telegram)", cases=len(tried), broken=0)


def test_the_dashboard_inserts_data_only_as_text():
    """Hostile symbols or rationales reach the page only through textContent: no HTML sink in its script."""
    from pathlib import Path

    import gobot

    web = Path(gobot.__file__).parent / "ops" / "web"
    script = (web / "dashboard.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "textContent" in script


def test_an_alert_kind_longer_than_a_message_still_formats():
    """Found by the fuzzing above: a footer wider than the message left no room and split_text looped forever."""
    from gobot_plugins.telegram.text import MESSAGE_LIMIT, alert_parts, split_text, units

    [part] = alert_parts({"title": "t", "text": "hello world", "kind": "k" * 5000, "severity": "INFO"})
    assert units(part.plain) <= MESSAGE_LIMIT and "hello world" in part.plain
    assert "".join(split_text("😀😀", 1)) == "😀😀"  # a character wider than the limit still progresses
