"""The vision plugin against a loopback OpenAI-compatible server, through the real openai SDK.

The server checks that it receives real PNG charts and answers as each test scripts: valid
LONG/SHORT/HOLD, broken JSON, missing fields, a confidence of 1.7, a refusal, a cut-off answer,
429, 500, or too slowly. Whatever it answers, a cycle never fails and a bad answer never trades.
Most tests serve charts rendered once per module by the real renderer (``FixedCharts``); the
cache and end-to-end tests use the real ``charts`` plugin.
"""

from __future__ import annotations

import json
import re
import socket

import pytest
from click.testing import CliRunner

from chart_support import BrowserSession, FixedCharts, Recorder, requires_chromium
from gobot.cli import cli
from gobot.errors import ConfigError
from gobot.testing.loopback_openai import Reply
from gobot_hookspecs import Action, hookimpl
from gobot_plugins.vision.answer import ANSWER_SCHEMA, VisionAnswer, read_answer

pytestmark = requires_chromium

KEY = "sk-test-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture(scope="module")
def charts():
    """Real 5m and 15m charts, rendered once for the module (the browser is closed right after)."""
    session = BrowserSession()
    try:
        return {tf: session.render("BTC/USDT", tf, limit=120) for tf in ("5m", "15m")}
    finally:
        session.close()


def answer(action="LONG", confidence=0.9, views=("5m", "15m"), view=None, **levels):
    return {
        "action": action, "confidence": confidence, "entry": None, "stop_loss": None, "take_profit": None,
        "timeframes": [{"timeframe": tf, "action": view or action} for tf in views],
        "rationale": "higher highs on both", **levels,
    }


@pytest.fixture
def vision_bot(replay_bot, loopback_openai, charts):
    """A replay bot with vision on (asking the loopback server) and sma_rsi off; returns (bot, recorder)."""

    def make(vision=None, config=None, symbols=("BTC/USDT",), images=None, real_charts=False, **kwargs):
        recorder = Recorder()
        settings = {
            "trading": {"symbols": list(symbols)},
            "plugins": {"enable": ["vision"], "disable": ["sma_rsi"],
                        "vision": {"base_url": loopback_openai.base_url, **(vision or {})}},
        }
        for key, value in (config or {}).items():
            settings[key] = {**settings.get(key, {}), **value}
        plugins = [("recorder", recorder)] + ([] if real_charts else [("fixed_charts", FixedCharts(images or charts))])
        return replay_bot(config=settings, plugins=plugins, **kwargs), recorder

    return make


# -- the answer, read without a server ------------------------------------------------------------


def test_the_schema_and_the_pydantic_model_ask_for_the_same_keys():
    assert set(ANSWER_SCHEMA["required"]) == set(VisionAnswer.model_fields)


def test_a_fenced_json_answer_from_a_local_model_is_read():
    content = "```json\n" + json.dumps(answer()) + "\n```"
    reading = read_answer(content, None, "stop", price=100.0, shown=["5m", "15m"], min_agreeing=2)
    assert reading.problem is None and reading.action == "LONG" and reading.agreeing == ["5m", "15m"]


def test_views_of_charts_not_shown_do_not_count():
    content = json.dumps(answer(views=("5m", "1h")))
    reading = read_answer(content, None, "stop", price=100.0, shown=["5m", "15m"], min_agreeing=2)
    assert reading.agreeing == ["5m"] and "1 of 2 timeframes read LONG" in reading.problem


# -- what the server receives, what the bot makes of the answer ------------------------------------


def test_a_long_answer_becomes_a_long_signal_carrying_the_models_confidence(vision_bot, run_bot, loopback_openai):
    loopback_openai.default = Reply.answer(answer("LONG", 0.9))
    bot, recorder = vision_bot()
    run_bot(bot, 1)
    [request] = loopback_openai.received
    assert [(image.width, image.height) for image in request.images] == [(1024, 640), (1024, 640)]  # real PNGs
    assert request.model == "gpt-4o"
    assert request.body["response_format"]["json_schema"]["strict"] is True
    assert any("Market: BTC/USDT" in text and "Not available: 1m" in text for text in request.texts)
    [signal] = recorder.of("vision")
    assert (signal.action, signal.confidence, signal.timeframe) == (Action.LONG, 0.9, "5m,15m")
    assert "2/2 timeframes agree" in signal.rationale and "higher highs" in signal.rationale


@pytest.mark.parametrize("action", ["SHORT", "HOLD"])
def test_short_and_hold_answers_are_passed_on(vision_bot, run_bot, loopback_openai, action):
    loopback_openai.default = Reply.answer(answer(action, 0.8))
    bot, recorder = vision_bot()
    run_bot(bot, 1)
    [signal] = recorder.of("vision")
    assert signal.action is Action(action) and signal.confidence == 0.8


@pytest.mark.parametrize(
    "reply, reason",
    [
        (Reply.answer('{"action": "LONG", "confidence": 0.9'), "invalid JSON"),
        (Reply.answer({"action": "LONG", "rationale": "trust me"}), "confidence: missing"),
        (Reply.answer(answer("LONG", 1.7)), "confidence: Input should be less than or equal to 1"),
        (Reply.refused("I can't provide trading advice."), "the model refused: I can't provide trading advice."),
        (Reply.answer('{"action": "LONG", "confid', finish_reason="length"), "cut off"),
        (Reply.answer(answer("LONG", 0.9, stop_loss=10_000_000.0)),
         "out of range: LONG stop_loss 1e+07 is not below the price"),
        (Reply.answer(answer("SHORT", 0.9, views=("5m", "15m"), view="HOLD")), "0 of 2 timeframes read SHORT"),
    ],
    ids=["invalid-json", "missing-fields", "confidence-1.7", "refusal", "truncated", "stop-on-wrong-side",
         "timeframes-disagree"],
)
def test_an_answer_that_cannot_be_trusted_is_hold_with_the_reason(vision_bot, run_bot, loopback_openai, reply, reason):
    loopback_openai.default = reply
    bot, recorder = vision_bot()
    run_bot(bot, 1)
    [signal] = recorder.of("vision")
    assert signal.action is Action.HOLD and signal.confidence == 0.0
    assert reason in signal.rationale
    assert not bot.state.positions and not bot.state.intents  # never trades


def test_a_429_is_retried_by_the_sdk_then_hold_and_one_alert(vision_bot, run_bot, loopback_openai):
    loopback_openai.default = Reply.error(429, "slow down")
    bot, recorder = vision_bot(vision={"max_retries": 1})
    run_bot(bot, 2)
    assert len(loopback_openai.received) == 4  # per cycle: the request and the SDK's one retry
    assert all(s.action is Action.HOLD and "rate limited" in s.rationale for s in recorder.of("vision"))
    [alert] = recorder.alerts_of("vision_error")
    assert "rate_limited" in alert.title


def test_a_500_then_an_answer_is_the_answer(vision_bot, run_bot, loopback_openai):
    loopback_openai.queue(Reply.error(500))
    loopback_openai.default = Reply.answer(answer("LONG", 0.85))
    bot, recorder = vision_bot(vision={"max_retries": 2})
    run_bot(bot, 1)
    assert len(loopback_openai.received) == 2
    assert recorder.of("vision")[0].action is Action.LONG


def test_repeated_500s_are_retried_max_retries_times_and_no_more(vision_bot, run_bot, loopback_openai):
    loopback_openai.default = Reply.error(500, "upstream broke")
    bot, recorder = vision_bot(vision={"max_retries": 2})
    run_bot(bot, 1)
    assert len(loopback_openai.received) == 3  # the SDK's own retries; no second loop stacked on top
    [signal] = recorder.of("vision")
    assert signal.action is Action.HOLD and "HTTP 500" in signal.rationale and "upstream broke" in signal.rationale


def test_an_answer_slower_than_the_timeout_is_hold(vision_bot, run_bot, loopback_openai):
    loopback_openai.default = Reply.slow(30, answer("LONG"))
    bot, recorder = vision_bot(vision={"timeout_seconds": 0.5, "max_retries": 0})
    outcome = run_bot(bot, 1)
    assert outcome.cycles_run == 1
    [signal] = recorder.of("vision")
    assert signal.action is Action.HOLD and "within timeout_seconds 0.5" in signal.rationale


@pytest.mark.parametrize("mode, expected", [("json_object", {"type": "json_object"}), ("none", None)])
def test_endpoints_without_json_schema_get_what_they_support(vision_bot, run_bot, loopback_openai, mode, expected):
    loopback_openai.default = Reply.answer(answer())
    bot, _ = vision_bot(vision={"structured_output": mode})
    run_bot(bot, 1)
    assert loopback_openai.received[0].body.get("response_format") == expected
    assert "matching this JSON schema" in loopback_openai.received[0].texts[0]  # the schema is in the prompt anyway


# -- timeframes and their gate ------------------------------------------------------------------------


def test_missing_timeframes_are_said_once_and_a_gate_that_cannot_pass_asks_nothing(vision_bot, run_bot,
                                                                                   loopback_openai):
    bot, recorder = vision_bot(vision={"timeframes": ["1m", "5m", "15m"], "min_agreeing_timeframes": 3})
    run_bot(bot, 2)
    assert loopback_openai.received == []  # no money spent on a question whose answer could not trade
    signals = recorder.of("vision")
    assert len(signals) == 2 and all(s.action is Action.HOLD for s in signals)
    assert "2 chart(s) for min_agreeing_timeframes 3" in signals[0].rationale
    [alert] = recorder.alerts_of("vision_timeframes")
    assert "no 1m candles for BTC/USDT" in alert.text


class BrokenCharts(FixedCharts):
    @hookimpl
    def gobot_render_chart(self, symbol, timeframe):
        if timeframe == "15m":
            raise RuntimeError("page crashed")
        return super().gobot_render_chart(symbol, timeframe)


def test_a_chart_that_fails_is_hold_with_the_reason_and_asks_nothing(vision_bot, run_bot, loopback_openai, charts):
    bot, recorder = vision_bot(images=charts)
    bot.plugin_set.pm.unregister(name="fixed_charts")
    bot.plugin_set.pm.register(BrokenCharts(charts), name="broken_charts")
    run_bot(bot, 1)
    [signal] = recorder.of("vision")
    assert (signal.action is Action.HOLD and "15m: chart failed" in signal.rationale
            and "page crashed" in signal.rationale)
    assert loopback_openai.received == []


def test_an_image_that_is_not_a_png_is_refused_by_the_server_and_vision_holds(vision_bot, run_bot, loopback_openai,
                                                                              charts):
    broken = {**charts, "15m": charts["15m"].model_copy(update={"png": b"not a png"})}
    loopback_openai.default = Reply.answer(answer())
    bot, recorder = vision_bot(images=broken)
    run_bot(bot, 1)
    [signal] = recorder.of("vision")
    assert signal.action is Action.HOLD and "HTTP 400" in signal.rationale and "bad image" in signal.rationale
    assert loopback_openai.rejected and loopback_openai.received == []


def test_the_confidence_goes_to_risk_which_applies_its_own_threshold(vision_bot, run_bot, loopback_openai):
    loopback_openai.default = Reply.answer(answer("LONG", 0.6))
    bot, recorder = vision_bot()
    run_bot(bot, 1)
    [intent] = recorder.intents
    assert intent.signal.source == "vision" and intent.signal.confidence == 0.6
    assert any("confidence 0.60 below min_confidence_threshold 0.75" in veto["reasons"] for veto in bot.state.vetoes)


# -- spend: the cap and the cache ---------------------------------------------------------------------


def test_past_the_token_cap_it_holds_and_alerts_once(vision_bot, run_bot, loopback_openai):
    loopback_openai.default = Reply.answer(answer("HOLD", 0.5))
    bot, recorder = vision_bot(vision={"max_tokens_per_day": 1}, symbols=("BTC/USDT", "ETH/USDT"))
    run_bot(bot, 3)
    assert len(loopback_openai.received) == 2  # cycle 1 (both symbols at once), then nothing
    later = [s for s in recorder.of("vision")][2:]
    assert len(later) == 4 and all(s.action is Action.HOLD and "daily spend cap reached" in s.rationale for s in later)
    [alert] = recorder.alerts_of("vision_spend_cap")
    assert "max_tokens_per_day 1" in alert.text
    ledger = json.loads((bot.settings.state_path / "vision" / "spend.json").read_text())
    [today] = ledger.values()
    assert today["tokens"] == 2 * (1200 + 80) and today["requests"] == 2


def test_the_usd_estimate_comes_from_the_price_table_and_caps_too(vision_bot, run_bot, loopback_openai):
    loopback_openai.default = Reply.answer(answer("HOLD", 0.5), usage=(1200, 80))
    bot, recorder = vision_bot(vision={"max_usd_per_day": 0.005, "max_tokens_per_day": 0})
    run_bot(bot, 3)
    # gpt-4o at [2.5, 10] USD per million: 1200 * 2.5e-6 + 80 * 1e-5 = 0.0038 USD a request.
    assert len(loopback_openai.received) == 2  # 0.0038 < 0.005, 0.0076 >= 0.005
    ledger = json.loads((bot.settings.state_path / "vision" / "spend.json").read_text())
    assert list(ledger.values())[0]["usd"] == pytest.approx(0.0076)
    assert len(recorder.alerts_of("vision_spend_cap")) == 1


@requires_chromium
def test_a_second_run_over_the_same_charts_is_answered_from_the_cache(vision_bot, run_bot, loopback_openai, tmp_path):
    loopback_openai.default = Reply.answer(answer("LONG", 0.9))
    first, first_recorder = vision_bot(real_charts=True, config={"plugins": {"enable": ["charts", "vision"]}},
                                       state_dir=tmp_path / "state")
    run_bot(first, 1)
    sent = len(loopback_openai.received)
    assert sent == 1
    again, again_recorder = vision_bot(real_charts=True, config={"plugins": {"enable": ["charts", "vision"]}},
                                       state_dir=tmp_path / "state", fresh=True)
    run_bot(again, 1)
    assert len(loopback_openai.received) == sent  # freshly rendered charts, same bytes, same key: nothing sent
    before, after = first_recorder.of("vision"), again_recorder.of("vision")
    assert [(s.action, s.confidence) for s in after] == [(s.action, s.confidence) for s in before]
    assert all("(cached)" in s.rationale for s in after)


# -- switched off, keys, secrets ----------------------------------------------------------------------


def test_with_no_key_and_no_base_url_it_switches_itself_off_and_the_bot_trades_on(replay_bot, run_bot):
    recorder = Recorder()
    bot = replay_bot(config={"plugins": {"enable": ["vision"]}}, plugins=[("recorder", recorder)])
    outcome = run_bot(bot, 3)
    assert outcome.finished and outcome.cycles_run == 3
    [alert] = recorder.alerts_of("vision_disabled")
    assert "OPENAI_API_KEY" in alert.text and "base_url" in alert.text
    assert recorder.of("vision") == [] and recorder.of("sma_rsi")


def test_the_key_is_sent_to_the_endpoint_and_written_nowhere(vision_bot, run_bot, loopback_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    loopback_openai.default = Reply.answer(answer("LONG", 0.9))
    bot, _ = vision_bot()
    run_bot(bot, 2)
    assert loopback_openai.received[0].authorization == f"Bearer {KEY}"
    for path in bot.settings.state_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the key is in {path}"
    for path in (bot.settings.state_path / "vision").rglob("*"):  # answers, charts, ledger: owner-only
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


def test_credentials_in_the_base_url_never_reach_the_record(vision_bot, run_bot):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bot, recorder = vision_bot(vision={"base_url": f"http://user:s3cr3t@127.0.0.1:{port}/v1", "max_retries": 0})
    run_bot(bot, 1)
    [signal] = recorder.of("vision")
    assert signal.action is Action.HOLD and f"cannot reach http://127.0.0.1:{port}/v1" in signal.rationale
    assert "s3cr3t" not in (bot.settings.state_path / "audit.jsonl").read_text()


def test_the_vision_section_gobot_init_would_write_is_valid_toml_meaning_the_defaults():
    import tomllib

    from gobot.config import commented_toml
    from gobot_plugins.vision.config import VisionConfig

    text = commented_toml(VisionConfig, "plugins.vision")
    assert 'prices = { gpt-4o = [2.5, 10], gpt-4o-mini = [0.15, 0.6], "gpt-4.1" = [2, 8]' in text
    assert VisionConfig.model_validate(tomllib.loads(text)["plugins"]["vision"]) == VisionConfig()


def test_config_mistakes_name_the_key(replay_bot):
    with pytest.raises(ConfigError) as error:
        replay_bot(config={"plugins": {"enable": ["vision"],
                                       "vision": {"timeframes": ["5m"], "min_agreeing_timeframes": 2}}})
    assert ("plugins.vision" in str(error.value)
            and "min_agreeing_timeframes 2 is more than the 1 timeframes" in str(error.value))
    with pytest.raises(ConfigError) as error:
        replay_bot(config={"plugins": {"enable": ["vision"], "vision": {"api_key": "sk-x"}}})
    assert "environment" in str(error.value)


# -- end to end: real charts, the model's LONG, risk, a paper order ----------------------------------


def levels_from_the_prompt(received):
    """A LONG with a 1 % stop and a 3 % target around the price the prompt states."""
    price = float(re.search(r"Current price: ([0-9.]+)", " ".join(received.texts)).group(1))
    return Reply.answer(answer("LONG", 0.9, entry=price, stop_loss=round(price * 0.99, 2),
                               take_profit=round(price * 1.03, 2)))


@requires_chromium
def test_end_to_end_a_vision_long_passes_risk_and_becomes_a_paper_position(vision_bot, run_bot, loopback_openai):
    loopback_openai.replier = levels_from_the_prompt
    bot, recorder = vision_bot(
        real_charts=True,
        config={"plugins": {"enable": ["charts", "vision"], "replay": {"start": "2026-01-02T12:00:00Z"}}},
    )
    run_bot(bot, 2)
    first = loopback_openai.received[0]
    assert len(first.images) == 2 and all((i.width, i.height) == (1024, 640) for i in first.images)
    [order, *_] = recorder.orders
    assert order.symbol == "BTC/USDT" and order.side.value == "buy" and order.executor == "paper"
    position = bot.state.positions["BTC/USDT"]  # filled by paper at the next candle's open
    assert position.direction is Action.LONG and position.confidence == 0.9
    signal = recorder.intents[0].signal
    assert (signal.source == "vision" and position.stop_loss == signal.stop_loss
            and position.take_profit == signal.take_profit)


# -- gobot vision replay -------------------------------------------------------------------------------


def test_vision_replay_rereads_a_past_cycle_from_the_cache_or_asks_again(vision_bot, run_bot, loopback_openai, tmp_path,
                                                                         monkeypatch, synthetic_data_dir):
    loopback_openai.default = Reply.answer(answer("LONG", 0.9))
    bot, _ = vision_bot(state_dir=tmp_path / "state")
    run_bot(bot, 2)
    config = tmp_path / "config.toml"
    config.write_text(
        'state_dir = "state"\n[plugins]\nenable = ["vision"]\n'
        f'[plugins.vision]\nbase_url = "{loopback_openai.base_url}"\n[plugins.replay]\ndata_dir = '
        f'"{synthetic_data_dir}"\n', encoding="utf-8",
    )
    monkeypatch.setenv("GOBOT_CONFIG", str(config))
    monkeypatch.setenv("COLUMNS", "200")
    sent = len(loopback_openai.received)

    listed = CliRunner().invoke(cli, ["vision", "replay", "--list"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("BTC/USDT") == 2

    cached = CliRunner().invoke(cli, ["vision", "replay", "1"])
    assert cached.exit_code == 0, cached.output
    assert "cycle 1" in cached.output and "LONG" in cached.output and "cache" in cached.output
    assert len(loopback_openai.received) == sent  # read from the cache: nothing sent

    loopback_openai.default = Reply.answer(answer("SHORT", 0.8))
    fresh = CliRunner().invoke(cli, ["vision", "replay", "1", "--no-cache"])
    assert fresh.exit_code == 0, fresh.output
    assert len(loopback_openai.received) == sent + 1 and "SHORT" in fresh.output
    assert len(loopback_openai.received[-1].images) == 2  # the same charts, from the kept images
    assert loopback_openai.received[-1].images[0].width == 1024
