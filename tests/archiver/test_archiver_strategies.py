"""Strategy archival (a parameter change archives the replaced version's metrics), learnings and
pattern discovery in a run, and their toggles — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from gobot_hookspecs import Action, Trade, ValidationResult, hookimpl, metrics


def losing_trades(count, version=1):
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [
        Trade(symbol="BTC/USDT", direction=Action.LONG, amount=0.1, entry_price=100, exit_price=98, opened_at=when,
              closed_at=when, fees=0.02, pnl=-0.22, exit_reason="stop_loss", strategy="sma_rsi",
              strategy_version=version, initial_stop_loss=98)
        for _ in range(count)
    ]


def versions(store):
    return {row["version"]: row for row in store.rows("strategy_versions", order_by=("version",))}


def test_a_parameter_change_archives_the_replaced_versions_metrics(archive_bot, run_bot, open_store, alerts):
    bot = archive_bot(plugins=[("alerts", alerts)])
    bot.state.trades.extend(losing_trades(4))  # the adjuster widens `slow` after this losing streak
    run_bot(bot, 1)
    assert bot.state.strategies["sma_rsi"].version == 2
    rows = versions(open_store())
    old, new = rows[1], rows[2]
    assert old["status"] == "retired" and new["status"] == "active"
    assert old["ended_at"] == new["started_at"] == bot.state.cycles[0].time and old["archived_at"] == old["ended_at"]
    assert json.loads(new["params"])["slow"] == json.loads(old["params"])["slow"] + 2
    assert "won 0 of the last 4" in new["reason"]
    archived = json.loads(old["metrics"])
    expected = metrics.trade_metrics(losing_trades(4), bot.settings.trading.initial_capital_usd).as_dict()
    assert old["trades"] == 4 and archived == json.loads(json.dumps(expected))
    assert archived["win_rate"] == 0.0 and archived["total_pnl"] == -0.88
    [alert] = [a for a in alerts.seen if a.kind == "archiver_strategy_archived"]
    assert alert.title == "Strategy sma_rsi v1 archived; now v2" and "4 trades, win rate 0%, P&L -0.88" in alert.text


def test_a_rejected_proposal_is_archived_as_a_proposal_with_its_verdict(archive_bot, run_bot, open_store):
    class Strict:
        @hookimpl
        def gobot_validate_strategy(self, strategy):
            return ValidationResult(strategy=strategy.name, version=strategy.version, passed=strategy.version == 1,
                                    reason="only v1 is trusted")

    bot = archive_bot(plugins=[("strict", Strict())])
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 2)
    store = open_store()
    rows = versions(store)
    assert list(rows) == [1] and rows[1]["status"] == "active" and rows[1]["ended_at"] is None
    [proposal] = store.rows("strategy_proposals")
    assert (proposal["strategy"], proposal["iteration"], proposal["base_version"]) == ("sma_rsi", 1, 1)
    assert (proposal["verdict"], proposal["version"], proposal["evidence"]) == ("rejected", None, 4)
    assert json.loads(proposal["changes"]) == {"slow": 28} and json.loads(proposal["params"])["slow"] == 28
    assert "strict: only v1 is trusted" in json.loads(proposal["reasons"])
    from gobot_plugins.archiver.report import build_report, render_html

    data = build_report(store)
    assert [v["version"] for v in data["versions"]] == [1], "the side by side shows versions, not proposals"
    [line] = [p for p in data["proposals"]]
    assert (line["verdict"], line["changes"]) == ("rejected", {"slow": 28})
    assert "#1 sma_rsi v1: slow 28 — rejected (strict: only v1 is trusted" in render_html(data)


def test_an_accepted_proposal_is_archived_with_the_version_it_became(archive_bot, run_bot, open_store):
    bot = archive_bot(disable=["validator"])
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 1)
    [proposal] = open_store().rows("strategy_proposals")
    assert (proposal["verdict"], proposal["version"], proposal["plugin"]) == ("accepted", 2, "adjuster")


def test_without_archive_on_strategy_change_versions_are_kept_but_not_archived(archive_bot, run_bot, open_store,
                                                                               alerts):
    bot = archive_bot(archiver={"archive_on_strategy_change": False}, plugins=[("alerts", alerts)])
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 2)
    rows = versions(open_store())
    assert rows[1]["status"] == "retired" and rows[1]["archived_at"] is None and rows[1]["metrics"] is None
    assert "archiver_strategy_archived" not in alerts.kinds()


def test_trades_opened_under_a_version_still_count_for_it_after_it_was_replaced(archive_bot, run_bot, open_store):
    bot = archive_bot()
    bot.state.trades.extend(losing_trades(4))
    run_bot(bot, 30)
    rows = versions(open_store())
    v1_trades = [t for t in bot.state.trades if t.strategy_version == 1]
    assert rows[1]["trades"] == len(v1_trades) and json.loads(rows[1]["metrics"])["trades"] == len(v1_trades)
    v2_trades = [t for t in bot.state.trades if t.strategy_version == 2]
    assert rows[2]["trades"] == len(v2_trades)


def test_patterns_are_discovered_during_a_run_over_the_minimum_sample(archive_bot, run_bot, open_store):
    bot = archive_bot(archiver={"min_pattern_trades": 3, "pattern_fdr": 1.0})  # q = 1: every group tested is kept
    run_bot(bot, 60)
    store = open_store()
    patterns = store.rows("patterns")
    assert len(bot.state.trades) >= 6 and patterns
    assert all(p["trades"] >= 3 and 0 <= p["ci_low"] <= p["win_rate"] <= p["ci_high"] <= 1 for p in patterns)
    assert all(f"over {p['trades']} trades (95% CI" in p["text"] for p in patterns)
    assert all(0 <= p["p_value"] <= p["q_value"] <= 1 and p["groups_tested"] >= len(patterns) for p in patterns)
    assert {p["dimension"] for p in patterns} & {"hour", "symbol", "side", "confidence_band", "confidence"}


def test_the_toggles_switch_off_learnings_and_patterns(archive_bot, run_bot, open_store):
    bot = archive_bot(archiver={"track_learnings": False, "pattern_discovery": False, "min_pattern_trades": 2})
    run_bot(bot, 40)
    store = open_store()
    assert bot.state.learnings and bot.state.trades
    assert store.count("learnings") == 0 and store.count("patterns") == 0
    assert store.count("cycles") == 40
