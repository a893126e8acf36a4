"""The archive is the sizer's longer memory: ``ctx.trade_history`` answers from it, across runs."""

from gobot_hookspecs import hookimpl


def test_trade_history_comes_from_the_archive_across_runs(archive_bot, run_bot):
    first = archive_bot()
    run_bot(first, 40)
    assert first.state.trades, "the first run should close trades"

    seen = {}

    class Reader:
        @hookimpl
        async def gobot_generate_ideas(self, ctx):
            if ctx.iteration == 1:
                seen["history"] = await ctx.trade_history(1000)

    second = archive_bot(plugins=[("reader", Reader())])
    run_bot(second, 1)
    history = seen["history"]
    assert len(history) >= len(first.state.trades)
    closes = [t.closed_at for t in history]
    assert closes == sorted(closes), "oldest first"
    assert {round(t.pnl, 6) for t in first.state.trades} <= {round(t.pnl, 6) for t in history}
