"""The cycle: every phase has an owner and leaves a record; replay is deterministic."""

from gobot.run.bot import PHASES


def test_every_phase_leaves_a_non_empty_record(replay_bot, run_bot):
    reports = []

    class Recorder:
        from gobot_hookspecs import hookimpl

        @hookimpl
        def gobot_on_cycle_end(self, report):
            reports.append(report)

    bot = replay_bot(plugins=[("recorder", Recorder())])
    run_bot(bot, 5)
    assert len(reports) == 5
    for report in reports:
        assert [p.name for p in report.phases] == list(PHASES)
        for phase in report.phases:
            assert phase.records, f"phase {phase.name} of cycle {report.iteration} left no record"
            assert phase.duration_ms >= 0
