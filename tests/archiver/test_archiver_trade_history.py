"""The archive is the sizer's longer memory: ``ctx.trade_history`` answers from it, across runs."""

from gobot_hookspecs import hookimpl


def test_on_a_simulated_clock_only_this_runs_trades_count(archive_bot, run_bot):
    """Another replay of the same data traded this run's future: it must not leak into sizing."""
    run_bot(archive_bot(), 40)
    seen = {}

    class Reader:
        @hookimpl
        async def gobot_generate_ideas(self, ctx):
            seen[ctx.iteration] = await ctx.trade_history(1000)

    second = archive_bot(plugins=[("reader", Reader())])
    run_bot(second, 30)
    assert seen[1] == []
    assert len(seen[30]) <= len(second.state.trades) and all(t.closed_at <= second.clock.now() for t in seen[30])


def test_on_a_wall_clock_every_archived_run_counts(archive_bot, run_bot):
    import asyncio

    from gobot.run.clock import WallClock

    first = archive_bot()
    run_bot(first, 40)
    assert first.state.trades, "the first run should close trades"

    second = archive_bot()
    second.clock = WallClock()  # as in paper-on-exchange or live runs

    async def history():
        await second.startup()
        try:
            return await second.ctx.trade_history(1000)
        finally:
            await second.shutdown("test done")

    trades = asyncio.run(history())
    assert len(trades) >= len(first.state.trades)
    closes = [t.closed_at for t in trades]
    assert closes == sorted(closes), "oldest first"
    assert {round(t.pnl, 6) for t in first.state.trades} <= {round(t.pnl, 6) for t in trades}
