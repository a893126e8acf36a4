"""The hook specifications: the plugin author's manual.

Implement a hook by defining a function of the same name decorated with ``@hookimpl`` in a
module (or object) registered under the ``gobot`` entry-point group. An implementation may
take any subset of the arguments, by name. Runtime hooks may be ``async def``: the core
awaits them. ``docs/plugins.md`` has a section per hook with examples.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

from .markers import hookspec

if TYPE_CHECKING:  # pragma: no cover - type names only
    import click
    from pydantic import BaseModel

    from .components import BotContext, Clock, ConfigView, RateLimitPolicy, Strategy
    from .models import (
        AdjustmentDecision,
        Alert,
        CandleDownload,
        Candles,
        ChartImage,
        CycleReport,
        DriftMeasurement,
        ExecutionError,
        Fill,
        Funding,
        Learning,
        MarketSnapshot,
        Order,
        OrderIntent,
        PluginStatus,
        RiskStatus,
        RiskVerdict,
        Sentiment,
        Signal,
        StrategyVersion,
        Trade,
        TradeStory,
        ValidationResult,
    )


# ---------------------------------------------------------------------------
# Registration: called once, when a bot is built (or by the CLI)
# ---------------------------------------------------------------------------


@hookspec
def gobot_config_model() -> type[BaseModel] | None:
    """Declare the pydantic model of this plugin's ``[plugins.<name>]`` config section.

    Called once at start-up and by ``gobot config check``, for every enabled plugin. The
    section is validated against the model before the bot starts; errors are reported as
    ``config.toml:plugins.<name>.<key>: message``. Give every field a default, so the plugin
    works with no section at all. Read the validated values at runtime with
    ``ctx.plugin_config("<name>")``.

    :return: a ``pydantic.BaseModel`` subclass, or None if the plugin has no settings.
    """


@hookspec
def gobot_register_commands(cli: click.Group, load_config: Callable[[str | None], ConfigView]) -> None:
    """Add commands to the ``gobot`` command line.

    Called when the CLI lists or runs a command that is not built in.

    :param cli: the ``gobot`` click group; use ``@cli.command()`` to add to it.
    :param load_config: call ``load_config(config_path)`` inside your command (``None`` = the
        usual precedence: ``$GOBOT_CONFIG``, then ``./config.toml``, then the defaults) to get the
        validated configuration as a ``ConfigView``: ``.config`` (like ``ctx.config``) and
        ``.plugin_config(name)`` (like ``ctx.plugin_config``). A bad file raises an error the CLI
        prints as one ``file:key: message`` line.
    """


@hookspec
def gobot_register_strategies(register: Callable[[Strategy], None]) -> None:
    """Hand over backtestable strategy components.

    Called once at start-up. Each component must satisfy ``gobot_hookspecs.Strategy``: a
    ``name``, a ``parameters`` dict of ``ParamSpec`` (the space the adjuster and optimizer
    may move in) and ``signal(symbol, candles, params) -> Signal``. The backtester calls the
    component directly, so the same code runs in backtest, replay, paper and live.

    :param register: call ``register(component)`` once per strategy.
    """


@hookspec(firstresult=True)
def gobot_clock(ctx: BotContext) -> Clock | None:
    """Provide the bot's clock. First non-None answer wins.

    Called once at start-up, before ``gobot_startup`` (so ``ctx.now()`` is not usable yet;
    ``ctx.config`` and ``ctx.plugin_config`` are). The replay plugin answers with a simulated
    clock that the orchestrator advances by ``loop_interval`` each cycle (50 cycles of 15
    minutes run in seconds); on a restart the core moves it to where the run stopped. With no
    answer the core uses the wall clock and APScheduler runs a cycle every ``loop_interval``
    seconds.

    :return: an object satisfying ``gobot_hookspecs.Clock``, or None.
    """


@hookspec(firstresult=True)
def gobot_rate_limit_policy(ctx: BotContext) -> RateLimitPolicy | None:
    """Provide the policy that paces requests to the exchange. First non-None answer wins.

    Called once at start-up, before ``gobot_startup``. The answer is ``ctx.rate_limiter``:
    executors and market-data plugins call its ``acquire(weight, priority)`` before every
    request and ``on_response(status, headers)`` after. With no answer the core uses a policy
    that never waits.

    :return: an object satisfying ``gobot_hookspecs.RateLimitPolicy``, or None.
    """


@hookspec(firstresult=True)
def gobot_environment(ctx: BotContext) -> str | None:
    """Name the environment the bot's orders go to, e.g. ``"testnet"``. First non-None answer wins.

    Called once at start-up in every mode, after the clock and the rate-limit policy, by the
    exchange plugin that knows (its config says whether it trades on the exchange's test network).
    The answer is the mode ``gobot start`` prints, the ``run_started`` alert names and the audit
    log's ``run_started`` event records: ``gobot validate`` counts days and trades of ``testnet``
    runs, and the go-live gate of ``gobot start --live`` is not applied to them. With no answer the
    mode is ``live`` with ``--live`` and ``paper`` without; without ``--live`` an answer of
    ``"live"`` counts as ``paper`` (a plugin that would send real orders refuses to start then).

    :return: ``"testnet"`` (or another name of a non-production environment), ``"live"``, or None
        (also when the ``paper`` simulator fills the orders).
    """


# ---------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------


@hookspec
def gobot_startup(ctx: BotContext) -> None:
    """The bot is starting (or resuming); open connections, browsers, files here.

    Called once before the first cycle, for every plugin, in isolation: an exception is
    logged with the plugin's name and stops the start-up (the bot never runs half-configured).
    """


@hookspec
def gobot_shutdown(ctx: BotContext) -> None:
    """The bot is stopping (run finished, kill switch, SIGINT/SIGTERM); release resources.

    Called once, for every plugin, in isolation: one failing plugin does not stop the others.
    """


# ---------------------------------------------------------------------------
# The six phases of a cycle (scan, ideas, adjust, validate, execute, report), in the order a
# cycle calls them; execute has no hook of its own: it calls gobot_execute_order
# ---------------------------------------------------------------------------


@hookspec
def gobot_scan_market(ctx: BotContext) -> list[MarketSnapshot] | None:
    """Phase 1, market scan: report what the market looks like now.

    Called once per cycle for every plugin; all answers are collected (a failing plugin is
    logged and skipped). Return one ``MarketSnapshot`` per symbol in ``ctx.config.trading.symbols``
    you cover, with candles that end at or before ``ctx.now()`` (never later: no lookahead).

    :return: a list of snapshots, or None.
    """


@hookspec
def gobot_scan_sentiment(ctx: BotContext, snapshots: list[MarketSnapshot]) -> list[Sentiment] | None:
    """Phase 1, market scan: sentiment readings for this cycle's snapshots (contract 1.4).

    Called once per cycle for every plugin, right after ``gobot_scan_market`` (``snapshots`` is
    its merged answer); all answers are collected (a failing plugin is logged and skipped). Return
    ``Sentiment`` readings, each for one symbol or market-wide (``symbol=None``), measured at or
    before ``ctx.now()``. The core attaches each to its snapshots as ``snapshot.sentiment[source]``
    (the first answer for a source and symbol wins; a symbol's own reading beats a market-wide one)
    and marks a reading past its ``valid_until`` as stale. On a simulated clock (replay, backtest)
    answer only from recorded readings (``gobot_hookspecs.sentiment``), never from a live source:
    that would be lookahead. A source that cannot be reached returns its last reading marked
    ``stale`` with a ``note`` (or nothing): missing sentiment never blocks trading unless a check
    that needs it is enabled, and that check fails closed with the reason.

    :return: a list of readings, or None.
    """


@hookspec(firstresult=True)
def gobot_fetch_candles(ctx: BotContext, symbol: str, timeframe: str, limit: int) -> Candles | None:
    """Provide candle history beyond this cycle's snapshot (e.g. 7 days of 1h for correlation).

    Called whenever a plugin awaits ``ctx.candles(symbol, timeframe, limit)``; first non-None
    answer wins. Return at most ``limit`` candles, oldest first, every one closed at
    ``ctx.now()`` (no lookahead). The ``replay`` plugin answers from its files, resampling a finer
    timeframe when needed; an exchange plugin answers from the exchange (through its cache).

    :return: ``Candles``, or None if this plugin has no data for the symbol or timeframe.
    """


@hookspec(firstresult=True)
def gobot_render_chart(ctx: BotContext, symbol: str, timeframe: str, limit: int) -> ChartImage | None:
    """Draw a chart of ``symbol`` at ``timeframe`` as a PNG image, for plugins that look at charts.

    Called whenever a plugin awaits ``ctx.chart(symbol, timeframe, limit)`` (the ``vision``
    plugin does, once per symbol and timeframe per cycle); first non-None answer wins. A chart
    drawn from candles shows at most ``limit`` candles, all closed at ``ctx.now()`` (get them with
    ``await ctx.candles(...)``: no lookahead). The built-in ``charts`` plugin renders candlesticks,
    volume and its configured indicators in headless Chromium, or screenshots a configured URL.

    :param symbol: e.g. ``"BTC/USDT"``.
    :param timeframe: e.g. ``"15m"``.
    :param limit: the most candles to draw.
    :return: a ``ChartImage``, or None if this plugin cannot draw it (e.g. no candles of that
        timeframe). Raise for a real failure (browser gone, page timed out).
    """


@hookspec(firstresult=True)
def gobot_download_candles(
    ctx: BotContext,
    exchange: str,
    symbol: str,
    timeframe: str,
    since: datetime,
    until: datetime,
    progress: Callable[[int, int], None],
) -> CandleDownload | None:
    """Download candle history from an exchange, for ``gobot data download``. First non-None answer wins.

    Called by the CLI, outside any run: ``ctx`` is a reduced context (``config``,
    ``plugin_config``, ``rate_limiter``, ``now``, ``alert`` and ``report_execution_error`` work;
    state is not persisted). Answer only when ``exchange`` is your plugin's name. Fetch the
    closed candles with open times in ``[since, until)``, oldest first, paced by
    ``ctx.rate_limiter``, and call ``progress(done_ms, total_ms)`` as you go (milliseconds of the
    range covered so far, and in all) so the CLI can draw a progress bar.

    :param exchange: the plugin the user asked for (``--exchange``, default ``binance``).
    :param since: first candle's open time (UTC); ``until``: end of the range, exclusive.
    :return: ``CandleDownload`` (candles and the market's precision and limits), or None.
    """


@hookspec
def gobot_sync_executions(
    ctx: BotContext, snapshots: list[MarketSnapshot]
) -> list[Fill | Order | Funding] | None:
    """End of phase 1: report fills that happened since the last cycle, and orders that ended unfilled.

    Called once per cycle, after the scan, for every plugin; answers are collected. Executors
    report fills of earlier orders here (a paper executor fills at the next candle's open and
    checks stop-loss/take-profit inside later candles; an exchange executor polls its orders).
    The core applies the fills to the portfolio and emits ``gobot_on_fill``.

    An order the core is still waiting for that ended without a fill — cancelled or expired on
    the exchange, or, after a send of unknown outcome, never placed — is reported as its
    ``Order`` with status ``canceled`` or ``rejected`` and a ``reason``: the core stops waiting
    for it (the symbol may trade again) and emits ``gobot_on_order``.

    A funding payment the exchange booked on a perpetual futures position is reported as a
    ``Funding`` (contract 1.3): the core books each ``id`` once, also across restarts (report one
    again freely): cash moves by its amount, the open position's ``funding`` grows by it and the
    trade that closes it carries it in ``funding`` and ``pnl``; a payment for a symbol with no open
    position is booked to cash alone. An executor of spot or simulated markets never reports one.

    :return: a list of fills, ended orders and funding payments, or None.
    """


@hookspec
def gobot_generate_ideas(
    ctx: BotContext, snapshots: list[MarketSnapshot], learnings: list[Learning]
) -> list[Signal] | None:
    """Phase 2, idea generation: propose LONG, SHORT or HOLD per symbol, with a confidence.

    Called once per cycle for every plugin; all signals are collected (a failing plugin is
    logged and skipped; it never trades). HOLD is a real answer and is recorded.

    :param snapshots: this cycle's market scan.
    :param learnings: recent learnings from earlier cycles (persisted across restarts);
        list the ids you used in ``Signal.learnings_used``.
    :return: a list of signals, or None.
    """


@hookspec
def gobot_adjust_strategy(ctx: BotContext, strategy: StrategyVersion) -> AdjustmentDecision | None:
    """Phase 3, strategy adjustment: decide whether a strategy's parameters should change.

    Called once per cycle per registered strategy, for every plugin. A decision with
    ``changes`` becomes a ``StrategyProposal`` that the validation phase judges: accepted by every
    validator, it becomes the next strategy version; rejected, it is kept with its reasons, and
    the same parameters are refused until ``[strategy_versions] new_evidence_trades`` more trades
    of the strategy closed. A decision with no changes is recorded as the reason to keep the
    version. Changes must stay inside the strategy's declared ``ParamSpec`` ranges.

    :param strategy: the strategy's current version.
    :return: an ``AdjustmentDecision``, or None for no opinion.
    """


@hookspec
def gobot_validate_strategy(ctx: BotContext, strategy: StrategyVersion) -> ValidationResult | None:
    """Phase 4, validation: judge a strategy version, e.g. by a backtest over recent candles.

    Called for every plugin (all results are collected) when a version needs a judgement, not
    every cycle: for a proposal (``strategy`` is the candidate, numbered as it would be, while
    ``ctx.strategy(name)`` is still the active version; any failure rejects it), and for the
    active version when it is new to the run, when ``[strategy_versions] new_evidence_trades`` more
    trades of the strategy closed since its last judgement, or ``recheck_failed_cycles`` cycles after
    it failed (a failure applies ``on_active_failure``: keep with an alert, revert to the last
    version that passed, or stop opening positions with it).
    Risk checks of order intents run in the same phase (see ``gobot_risk_check``).

    :param strategy: the version to judge.
    :return: a ``ValidationResult``, or None for no opinion.
    """


@hookspec
def gobot_report(ctx: BotContext, report: CycleReport) -> None:
    """Phase 6, report: the cycle is complete; show or store it.

    Called once per cycle for every plugin, in isolation (one failing reporter does not stop
    the others). ``report`` holds the timing and records of the five phases before this one
    (market scan, ideas, strategy adjustment, validation, execution).
    """


# ---------------------------------------------------------------------------
# Risk and sizing
# ---------------------------------------------------------------------------


@hookspec
def gobot_risk_check(ctx: BotContext, intent: OrderIntent) -> RiskVerdict | None:
    """Approve or veto an order intent that opens exposure.

    Called for every intent with ``purpose == "open"``, for every risk plugin; all verdicts are
    collected and any veto blocks the trade. Fails closed: an exception counts as a veto whose
    reason names the plugin and the error. Exits (``purpose == "close"``) are not risk-checked.
    Every verdict is written to the audit log; vetoes also go to the alert channels.

    :return: ``RiskVerdict(approved=..., reason=...)``, or None to abstain.
    """


@hookspec(firstresult=True)
def gobot_size_position(ctx: BotContext, signal: Signal) -> float | None:
    """Decide the notional (portfolio currency, ``ctx.currency``) of a new position for this signal.

    First non-None answer wins; the built-in ``fixed_size`` sizer answers last
    (``[trading].max_position_usd``). Return 0 to skip the trade.

    :return: notional in the portfolio currency, or None to let the next sizer answer.
    """


@hookspec(firstresult=True)
def gobot_trade_history(ctx: BotContext, limit: int) -> list[Trade] | None:
    """Provide closed trades from a trade archive, across runs: the longer memory of sizers and risk plugins.

    Called whenever a plugin awaits ``ctx.trade_history(limit)`` (the ``kelly_size`` sizer does,
    to estimate win rate and payoff); first non-None answer wins. A plugin that archives trades
    (e.g. in SQL) answers with at most ``limit`` closed trades of every run it holds, the running
    one included, oldest first; on a simulated clock (``ctx.simulated``) only the running one's, since
    other replays of the same data traded this run's future.

    :return: a list of ``Trade``, or None if this plugin keeps no trade archive.
    """


@hookspec(firstresult=True)
def gobot_trade_stories(
    config: ConfigView,
    run_id: str | None,
    symbol: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[TradeStory] | None:
    """Tell the story of archived trades: signal, risk verdicts, sizing, fills, vision images and answer.

    Called by the charts' drill-down (the dashboard, ``gobot plot --run``, ``gobot report --html``);
    first non-None answer wins. A plugin that archives trades answers with the trades of ``run_id``
    (None: the newest run it holds) on ``symbol`` (None: every symbol) that were open at any time
    between ``start`` and ``end`` (None: unbounded), at most ``limit``, oldest first. Positions still
    open are stories too (``exit_time`` None). Works outside a running bot: ``config`` is a
    ``ConfigView`` (a running bot passes its context, which is one).

    :return: a list of ``TradeStory``, or None if this plugin keeps no archive (or not that run).
    """


@hookspec(firstresult=True)
def gobot_render_page(config: ConfigView, html: str, width: int, height: int) -> bytes | None:
    """Render a self-contained HTML page to a PNG image (``gobot plot --png``, ``make docs-images``).

    First non-None answer wins; the built-in ``charts`` plugin renders it in headless Chromium,
    with every request that would leave the page refused (the page must carry everything inline).
    The page may set ``window.gobotReady = true`` when it has finished drawing; the renderer waits
    for it (or for the load event when the page never sets it).

    :return: PNG bytes, or None if this plugin cannot render pages. Raise for a real failure.
    """


@hookspec
def gobot_risk_status(ctx: BotContext) -> RiskStatus | None:
    """Report this risk plugin's state for ``gobot risk status``: counters against limits, and
    whether it would let a new position through now.

    Called by ``gobot risk status`` on a bot built from the persisted state (no cycle runs;
    ``ctx.now()`` is the clock where the run stopped), for every plugin; answers are collected
    and shown in call order. Read what you need from ``ctx.plugin_state(name)`` and ``ctx``;
    change nothing. An exception is shown as that plugin's status being unknown.

    :return: a ``RiskStatus`` (``allows_trading``, ``reason``, ``state``, ``counters``), or None
        if this plugin has nothing to report.
    """


@hookspec
def gobot_risk_reset(ctx: BotContext, reason: str) -> str | None:
    """Clear this plugin's latched risk state after an operator's ``gobot risk reset``.

    Called once per reset, for every plugin in isolation: by a running bot at the start of its
    next cycle (the command leaves a request in the state folder), or by the command itself on
    the persisted state when no bot runs. Clear what needs a human to clear (a hard stop, a
    circuit breaker's counters, a blocked day); keep facts (trades made today still count). The
    reset, the reason and every answer are written to the audit log and sent as an alert.

    :param reason: why the operator reset it (``gobot risk reset --reason``).
    :return: one line saying what was reset, or None if there was nothing to reset.
    """


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def gobot_execute_order(ctx: BotContext, intent: OrderIntent) -> Order | None:
    """Place an order for an approved intent. First non-None answer wins.

    The built-in ``paper`` executor answers last. Use ``intent.client_order_id`` as the
    exchange's client order id so a retry can never place the order twice. Raise to report a
    failure: the core turns it into an ``ExecutionError`` event and an alert (kind ``error``, or the
    kind of the ``ExecutionError`` an ``ExecutionFailed`` carries: network, timeout, rejected,
    rate_limited, banned). ``network`` and ``timeout`` mean the outcome is unknown — the order may
    have been placed — so the core keeps waiting for it: report its fill, or its end, from
    ``gobot_sync_executions`` once you know.

    :return: the placed ``Order`` (status ``new`` until filled, or ``filled``; ``canceled`` or
        ``rejected``, with a ``reason``, when it ended as it was placed: the core stops waiting), or None.
    """


@hookspec(firstresult=True)
def gobot_confirm_order(ctx: BotContext, intent: OrderIntent) -> bool | None:
    """Confirm-first: ask a human whether an order may be sent. First non-None answer wins.

    Called in the execute phase only when ``[trading].auto_execute`` is false, for every intent
    that would otherwise be sent (not while killed; opens not while paused). The core asks for all
    of a cycle's intents at once and awaits the answers, so wait (asynchronously, up to your own
    timeout) for the human. True sends the order, after checking the kill switch and the pause
    again; False rejects it; with no answer it is only proposed (an ``order_proposed`` alert), as
    without this hook. An exception counts as a rejection (fails closed) and names the plugin.

    :param intent: the ``OrderIntent`` (symbol, side, notional, stop-loss, take-profit, signal).
    :return: True to send, False to reject, None to let the next plugin answer.
    """


# ---------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------


@hookspec
def gobot_send_alert(ctx: BotContext, alert: Alert) -> None:
    """Deliver an alert to a channel (console, Telegram, webhook, ...).

    Called for every alert, for every channel, in isolation: a failing channel is logged with
    its name and the others still deliver. Never block for long: queue and retry instead.
    Alert texts never contain secrets (the core redacts them); channels must not add any.
    ``gobot_hookspecs.ALERT_KINDS`` lists every ``alert.kind``.

    Also called without a running bot, by ``gobot alerts test`` and ``gobot watchdog``: then
    ``gobot_startup`` is not called (start senders lazily), ``ctx`` offers ``config``,
    ``plugin_config``, ``now``, ``audit`` and an unpersisted ``plugin_state``, and
    ``gobot_shutdown`` follows: deliver what is queued before returning from it (bounded).
    Report each delivery's outcome with ``ctx.audit("alert_delivery", channel=<name>,
    kind=alert.kind, title=alert.title, delivered=<bool>, detail=<why>)``: the audit log then says
    whether a human was told, and ``gobot alerts test`` shows it per channel.
    """


# ---------------------------------------------------------------------------
# Events: notifications, called for every plugin in isolation
# ---------------------------------------------------------------------------


@hookspec
def gobot_on_scan_end(ctx: BotContext, snapshots: list[MarketSnapshot]) -> None:
    """End of phase 1: the market was scanned, fills applied, the portfolio marked to the new prices.

    Called once per cycle, for every plugin in isolation, before idea generation. A risk plugin
    watches equity here (drawdown, day and week boundaries); a ``ctx.close_positions`` asked for
    here goes out in this same cycle's execute phase.

    :param snapshots: this cycle's market scan.
    """


@hookspec
def gobot_on_order(ctx: BotContext, order: Order) -> None:
    """An order was placed (or proposed, when ``[trading].auto_execute`` is false).

    Called in the execute phase, for every plugin in isolation, after the executor answered
    (``order.executor`` is its name), or with ``status == "proposed"`` when only proposed.
    """


@hookspec
def gobot_on_fill(ctx: BotContext, fill: Fill) -> None:
    """An order was (partly) filled; the portfolio already reflects it.

    Called in the scan phase for each fill ``gobot_sync_executions`` reported, oldest first,
    for every plugin in isolation.
    """


@hookspec
def gobot_on_trade_closed(ctx: BotContext, trade: Trade) -> None:
    """A position was closed; ``trade.pnl`` is its result net of fees.

    Called right after the closing fill's ``gobot_on_fill``, for every plugin in isolation.
    The circuit breaker counts losing streaks here.
    """


@hookspec
def gobot_on_execution_error(ctx: BotContext, error: ExecutionError) -> None:
    """An order could not be placed or confirmed (network, rejection, rate limit, ban).

    Called when an executor raised or none answered (``error.plugin`` names the executor,
    ``core`` if none), and for failures plugins report with ``ctx.report_execution_error``;
    for every plugin in isolation. The circuit breaker counts failures here.
    """


@hookspec
def gobot_on_drift(ctx: BotContext, measurement: DriftMeasurement) -> None:
    """Notification: a trade was measured against its paper twin (``ctx.record_drift``).

    Called for every plugin, each in isolation, when a drift plugin (the built-in ``drift``) reports a
    measurement: delivered with the next alerts (``gobot.run.alerting.drain``), so in the cycle it was
    made. ``measurement.gap`` is the live P&L minus the twin's, in the portfolio currency, split into
    parts that add up to it (``DRIFT_PARTS``); ``gap_r`` is the gap in R. The archiver stores it in its
    ``drift`` table for ``gobot report``. A measurement may come again after a crash: key it by
    ``client_order_id``.

    :param measurement: the ``DriftMeasurement``.
    """


@hookspec
def gobot_on_cycle_end(ctx: BotContext, report: CycleReport) -> None:
    """A cycle ended and the state was persisted; ``report`` is the cycle's full record.

    Called once per cycle, for every plugin in isolation, with all six phases in
    ``report.phases``; ``ctx.iteration`` and ``ctx.now()`` are still those of this cycle.
    """


# ---------------------------------------------------------------------------
# The operator's view: called by the health and dashboard server
# ---------------------------------------------------------------------------


@hookspec
def gobot_status(ctx: BotContext) -> PluginStatus | None:
    """Report this plugin's live status to the operator: health, Prometheus samples, a few facts.

    Called by the HTTP server of ``gobot start --serve`` (``[server] enabled = true``) on every
    request to ``/health``, ``/metrics``, ``/api/status`` and the dashboard, between or during
    cycles, at the end of every cycle (``progress.json``) and by ``gobot risk status``, for every
    plugin; answers are collected. Answer from memory, fast, and change nothing
    (no I/O, no exchange request): a rate limiter reports the weight used and its queue depth by
    priority, an exchange plugin whether the exchange answered lately, a circuit breaker its state
    with ``breaker=True`` (the core knows the bot's breaker only by that answer: its ``state`` is
    the ``breaker`` of /health, the dashboard, /metrics, ``progress.json`` and ``gobot risk status``).
    ``healthy=False`` turns ``GET /health`` unhealthy (HTTP 503) with ``reason``. Each sample is
    exported with a ``plugin`` label added; name them ``gobot_<what>_<unit>``. An exception is
    logged and shown as this plugin's status being unknown; it does not make the bot unhealthy.

    :return: a ``PluginStatus`` (``healthy``, ``reason``, ``state``, ``metrics``, ``data``), or None.
    """


@hookspec
def gobot_daily_summary(ctx: BotContext, day: str) -> str | None:
    """Add a line to the ``daily_summary`` alert of ``day`` (``YYYY-MM-DD``, UTC, the bot's clock).

    Called once a UTC day of the bot's clock ended, right before the core sends the day's
    ``daily_summary`` alert, for every plugin; answers are collected. Each non-empty answer becomes
    a line of the alert's text, in plugin order, and is kept in ``data["lines"]`` as
    ``{"plugin": name, "text": line}``. Answer in one short line, with its currency (``ctx.currency``);
    an exception is that plugin's failure and the summary goes out without its line.

    :return: one line of text, or None for nothing to add.
    """
