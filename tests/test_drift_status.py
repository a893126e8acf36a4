"""The drift plugin on the operator's view: `/api/status` and `/api/dashboard` (the dashboard's risk panel
lists each plugin's state and reason) show the live - twin gap, each strategy version's CUSUM against its
threshold h, and a breach (issue 21)."""

from __future__ import annotations

import asyncio

from server_support import auth, served

# A CUSUM that breaches within a short replay (the paper trades twinned with watch_paper).
HAIR_TRIGGER = {"watch_paper": True, "on_breach": "alert", "false_alarm_rate": 0.99, "allowance": 0.0,
                "horizon_trades": 10, "min_band_trades": 5}


def test_the_status_api_and_the_dashboard_show_the_cusum_against_its_threshold_and_the_breach(replay_bot):
    bot = replay_bot(config={"plugins": {"drift": HAIR_TRIGGER}}, enable=["drift"], disable=["adjuster"])

    async def scenario():
        async with served(bot, max_iterations=120) as (server, runner, task, client):
            await asyncio.wait_for(asyncio.shield(task), 60)
            status = (await client.get("/api/status")).json()
            dashboard = (await client.get("/api/dashboard", headers=auth())).json()
            return status, dashboard

    status, dashboard = asyncio.run(scenario())
    state = bot.state.plugin_state["drift"]
    assert state["breach"], "the hair-trigger CUSUM breached in the replay"
    key, watch = next(iter(state["cusum"].items()))
    h = state["bands"][key]["calibration"]["h"]
    shown = status["plugin_status"]["drift"]
    assert shown["state"] == "BREACH" and shown["healthy"] is None
    assert f"CUSUM {key} {watch['s']:.2f} of {h:.2f}" in shown["reason"]
    assert f"BREACH (alert): {state['breach']['reason']}" in shown["reason"]
    band = shown["data"]["bands"][key]
    assert (band["cusum"], band["h"]) == (round(watch["s"], 3), round(h, 3))
    assert shown["data"]["breach"]["action"] == "alert"
    assert dashboard["status"]["plugin_status"]["drift"] == shown  # what renderRisk lists, state — reason
