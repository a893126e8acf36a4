"""``archiver``: every cycle (with its phase timings), signal, risk verdict, order, fill, closed trade,
strategy version and learning in SQL — SQLite in ``state_dir`` by default, any SQLAlchemy URL
(PostgreSQL tested) — plus metrics, pattern discovery, strategy archival and ``gobot report``.

The trading loop never waits on the database: each event is appended to a persisted outbox file
(``archive_outbox.jsonl``; the entries not yet stored ride in the bot's state, whose save is the
cycle's one durable write) and a background thread stores it, retrying until it is stored;
a failing database raises an alert. At start the archive is checked against the bot's own record:
SQLite's ``PRAGMA quick_check``, and every completed cycle of the run in the database or still in
the outbox; unreadable outbox lines are quarantined. Each finding is a CRITICAL alert. See
docs/archiver.md.

This module stays light (``gobot --help`` imports it): SQLAlchemy, sqlmodel, Alembic and
matplotlib are imported only when the bot starts or a report is made.
"""

from __future__ import annotations

import logging
import time as wall
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from gobot_hookspecs import Alert, PluginConfig, Severity, Trade, hookimpl, metrics
from gobot_hookspecs.money import money

from . import records

NAME = "archiver"
OUTBOX_FILE = "archive_outbox.jsonl"
UNSYNCED = "outbox_unsynced"  # key of the plugin state: outbox lines not yet durable, saved with the state
MAX_CARRIED = 200  # more lines than this waiting (a slow or unreachable database): the outbox is fsynced instead
REALERT_SECONDS = 900.0  # while writes keep failing, repeat the alert this often (wall clock)

log = logging.getLogger(__name__)


class ArchiverConfig(PluginConfig):
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the archive; empty = SQLite file archive.db in state_dir. "
        "No password here: PostgreSQL takes PGPASSWORD from the environment",
    )
    archive_on_strategy_change: bool = Field(
        True, description="when a strategy version is replaced, archive its metrics (and alert)"
    )
    pattern_discovery: bool = Field(
        True, description="look for hours, confidence bands, symbols, sides and versions that win more or less"
    )
    track_learnings: bool = Field(True, description="archive the orchestrator's learnings with their evidence")
    min_pattern_trades: int = Field(20, ge=2, description="fewest trades behind a pattern claim")
    pattern_fdr: float = Field(0.10, gt=0, le=1, description="false discovery rate of pattern discovery "
                               "(Benjamini–Hochberg q over all the groups tested)")
    confidence_bands: list[float] = Field(
        default_factory=lambda: list(metrics.DEFAULT_CONFIDENCE_BANDS),
        min_length=2,
        description="edges of the confidence bands, ascending within 0-1",
    )
    write_timeout_seconds: float = Field(
        10.0, gt=0, description="a database write or connection attempt that takes longer fails and is retried, seconds"
    )
    retry_max_seconds: float = Field(60.0, gt=0, description="longest wait between retries of a failed write, seconds")
    flush_timeout_seconds: float = Field(
        10.0, ge=0, description="at shutdown, wait this long for pending writes (the rest stay in the outbox), seconds"
    )
    fsync: bool = Field(True, description="make every event durable with its cycle's state save (the cycle's one "
                        "fsync): a power cut loses nothing")
    group: str = Field("", description="the sleeve group this run belongs to; set by `gobot start --profile A "
                       "--profile B` for each sleeve (gobot report compares a group's profiles), not by hand")
    profile: str = Field("", description="the strategy profile this run's sleeve runs; set with group")

    @field_validator("database_url")
    @classmethod
    def _no_password(cls, url: str) -> str:
        try:
            password = urlsplit(url).password if "://" in url else None
        except ValueError:
            password = None
        if password:
            raise ValueError(
                "the URL contains a password; secrets never go in config.toml: remove it and set PGPASSWORD "
                "(or your database's equivalent) in the environment"
            )
        return url

    @field_validator("confidence_bands")
    @classmethod
    def _ascending(cls, edges: list[float]) -> list[float]:
        if any(not 0.0 <= edge <= 1.0 for edge in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError("edges must be strictly ascending numbers within 0-1, "
                             "e.g. [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]")
        return edges


class Archiver:
    """One per bot: its outbox, its writer thread, and the strategy versions it has seen."""

    def __init__(self) -> None:
        self.outbox: Any = None
        self.writer: Any = None
        self.redact = records.Redactor()
        self.url = ""
        self._alerted_failure = False
        self._last_alert = 0.0
        self._rejected_alerted = 0
        self.integrity: dict[str, Any] = {}  # what the start-up check found (tests and diagnostics)
        self._history: tuple[Any, list[Trade]] = (None, [])  # (question, answer) of gobot_trade_history

    # -- registration -------------------------------------------------------------------------

    @hookimpl
    def gobot_config_model(self):
        return ArchiverConfig

    @hookimpl
    def gobot_register_commands(self, cli, load_config):
        from .cli import add_report_command

        add_report_command(cli, load_config)

    # -- lifecycle ----------------------------------------------------------------------------

    @hookimpl
    def gobot_startup(self, ctx):
        from .store import ArchiveStore, default_url, is_transient, safe_url
        from .writer import ArchiveWriter, Outbox

        config = self._config(ctx)
        self.redact = records.Redactor()
        self.url = config.database_url or default_url(ctx.config.state_path)
        _check_driver(self.url)
        self.outbox = Outbox(ctx.config.state_path / OUTBOX_FILE, fsync=config.fsync, redact=self.redact)
        restored = self.outbox.restore(ctx.plugin_state(NAME).get(UNSYNCED, []))
        if restored:  # a power cut took them off the file after the state that carried them was saved
            log.warning("archiver: %d outbox entries put back from the state (%s had lost them)", restored, OUTBOX_FILE)

        def open_store() -> ArchiveStore:
            store = ArchiveStore(self.url, write_timeout=config.write_timeout_seconds)
            try:
                store.migrate()
            except Exception:
                store.close()
                raise
            return store

        self.writer = ArchiveWriter(open_store, self.outbox, config.retry_max_seconds, redact=self.redact)
        try:  # connect and migrate now, so a wrong URL or schema stops the start with a clear error
            self.writer.store = open_store()
        except Exception as exc:
            if not is_transient(exc):
                raise RuntimeError(f"archive {safe_url(self.url)}: {self.redact(str(exc).splitlines()[0])}") from None
            self.writer.record_failure(exc)  # unreachable now: the writer retries; the outbox keeps everything
        if self.outbox.quarantined:
            lines = self.outbox.quarantined
            ctx.alert(Alert(
                kind="archiver_outbox_damaged", severity=Severity.CRITICAL,
                title=(f"Archive outbox: {len(lines)} unreadable line(s) quarantined in "
                       f"{self.outbox.rejected_path.name}"),
                text="; ".join(lines[:5]) + ("; ..." if len(lines) > 5 else "")
                     + ". The entries around them are stored; a quarantined line is kept as it was, for a human",
                data={"lines": lines[:20], "rejected_file": str(self.outbox.rejected_path)},
            ))
        self.integrity = self._check_integrity(ctx)
        state = ctx.plugin_state(NAME)
        started = state.setdefault("started_at", records.iso(ctx.now()))
        self._add("run", records.run_row(ctx.run_id, "live" if ctx.live else "paper", datetime.fromisoformat(started),
                                         ctx.config.trading.initial_capital_usd, ctx.config.trading.symbols,
                                         config.group, config.profile))
        self._sync_versions(ctx, ctx.now(), config)
        self.writer.start()
        if self.outbox.torn_lines:
            ctx.alert(Alert(kind="archiver_outbox_torn", severity=Severity.WARNING,
                            title=f"Archive outbox: {self.outbox.torn_lines} incomplete line(s) skipped",
                            text="written when the process died; the interrupted cycle re-runs and emits them again"))
        self._check_health(ctx)
        self._carry(ctx)

    @hookimpl
    def gobot_trade_history(self, ctx, limit):
        """Closed trades of every archived run (the sizer's longer memory); None while the archive is unreachable.

        On a simulated clock only this run's trades count: other replays of the same data traded the
        same market, some of it in this run's future, and would leak it into the sizing. A sleeve of a
        side-by-side profiles run (``group`` set) counts only its own too: the other sleeves trade other rules.
        """
        store = self.writer.store if self.writer is not None else None
        if store is None:
            return None
        # A replay's history is its own run's, which only this writer adds to: the answer holds until it
        # writes another trade (the sizer asks at every entry decision; a query costs about a millisecond).
        own = ctx.simulated or bool(self._config(ctx).group)
        key = (limit, ctx.run_id, self.writer.health.trade_writes) if own else None
        if key is not None and self._history[0] == key:
            return list(self._history[1])
        try:
            rows = store.latest_trades(limit, run_id=ctx.run_id if own else None)
        except Exception as exc:  # an archive that can't answer now: the caller falls back to its own ledger
            log.warning("archiver: trade history unavailable: %s", self.redact(str(exc).splitlines()[0]))
            return None
        fields = Trade.model_fields
        trades = [Trade(**{k: v for k, v in row.items() if k in fields}) for row in rows]
        if key is not None:
            self._history = (key, trades)
        return list(trades)

    @hookimpl
    def gobot_trade_stories(self, config, run_id, symbol, start, end, limit):
        """Each archived trade of a run with its signal, verdicts, sizing, fills and vision charts
        (``stories.py``); in a running bot from its own connection, else from the configured archive."""
        from .store import default_url
        from .stories import stories_of

        url = ArchiverConfig.of(config, NAME).database_url or default_url(config.config.state_path)
        running = self.writer.store if self.writer is not None and self.url == url else None
        return stories_of(config, url, run_id, symbol, start, end, limit, store=running)

    @hookimpl
    def gobot_shutdown(self, ctx):
        if self.writer is None:
            return
        config = self._config(ctx)
        left = self.writer.close(config.flush_timeout_seconds)
        if left:
            if config.fsync:  # the next start may be a new run, whose state carries none of them: fsync the file
                self.outbox.sync()
            log.warning("archiver: %d entries not yet stored; kept in %s for the next start", left, self.outbox.path)

    # -- events -------------------------------------------------------------------------------

    @hookimpl
    def gobot_on_order(self, ctx, order):
        self._add("order", records.order_row(ctx.run_id, ctx.iteration, order))

    @hookimpl
    def gobot_on_fill(self, ctx, fill):
        self._add("fill", records.fill_row(ctx.run_id, ctx.iteration, fill))

    @hookimpl
    def gobot_on_trade_closed(self, ctx, trade):
        self._add("trade", records.trade_row(ctx.run_id, ctx.iteration, trade, ctx.currency))

    @hookimpl
    def gobot_on_execution_error(self, ctx, error):
        self._add("execution_error", records.execution_error_row(ctx.run_id, ctx.iteration, ctx.now(), error))

    @hookimpl
    def gobot_on_drift(self, ctx, measurement):
        self._add("drift", records.drift_row(ctx.run_id, ctx.iteration, measurement, ctx.currency))

    @hookimpl
    def gobot_report(self, ctx, report):
        # Written before the core persists the cycle: a crash after this point loses nothing, and
        # a re-run of the cycle replaces this record.
        self._add("cycle", records.cycle_entry(report, self._config(ctx).track_learnings))
        self._carry(ctx)  # the last hook before the core's save

    @hookimpl
    def gobot_on_cycle_end(self, ctx, report):
        config = self._config(ctx)
        self._add("cycle_timing", {
            "run_id": report.run_id, "iteration": report.iteration,
            "report_ms": _phase_ms(report, "report"), "total_ms": sum(p.duration_ms for p in report.phases),
        })
        self._sync_versions(ctx, report.time, config)
        for name in sorted(ctx.strategies()):  # this cycle's proposals, with their verdicts
            for proposal in ctx.strategy_proposals(name):
                if proposal.iteration == report.iteration:
                    self._add("strategy_proposal", records.strategy_proposal_row(ctx.run_id, proposal))
        touched = {(t.strategy, t.strategy_version) for t in report.trades_closed
                   if t.strategy and t.strategy_version is not None}
        for name, version in sorted(touched):
            self._version_metrics(ctx, name, version)
        if config.pattern_discovery and report.trades_closed:
            self._patterns(ctx, report.time, config)
        self._check_health(ctx)
        self._carry(ctx)  # saved with the next state (the next cycle's, or the one that finishes the run)
        if self.writer is not None:
            self.writer.wake()  # once a cycle, with the cycle's entries: one batch, not one wake-up per event

    # -- helpers ------------------------------------------------------------------------------

    def _check_integrity(self, ctx) -> dict[str, Any]:
        """Compare the archive with the bot's own record, at start: the database file is sound
        (SQLite ``PRAGMA quick_check``), and every cycle the run completed since the archiver first
        saw it is in the database or still in the outbox. A finding is a CRITICAL alert."""
        store = self.writer.store
        state = ctx.plugin_state(NAME)
        completed = ctx.iteration - 1  # the cycles this run persisted
        ledger = state.get("ledger") or {}
        if ledger.get("run_id") != ctx.run_id or ledger.get("archive") != records.key(self.url):
            # A new run, or another archive: it is expected to hold this run's cycles from here on.
            ledger = state["ledger"] = {"run_id": ctx.run_id, "archive": records.key(self.url), "from": completed + 1}
        found: dict[str, Any] = {"checked": store is not None, "problems": [], "missing": []}
        if store is None:
            return found  # unreachable now: checked at the next start
        try:
            damage = store.quick_check()
            present = store.cycle_iterations(ctx.run_id)
        except Exception as exc:
            damage, present = [f"{type(exc).__name__}: "
                               f"{self.redact(str(exc).splitlines()[0] if str(exc) else '')}"], None
        if damage:
            found["problems"].append(f"integrity check: {'; '.join(damage[:3])}")
        if present is not None:
            pending = {e["data"]["cycle"]["iteration"] for e in self.outbox.peek(len(self.outbox))
                       if e.get("kind") == "cycle" and e["data"].get("cycle", {}).get("run_id") == ctx.run_id}
            expected = range(int(ledger.get("from", 1)), completed + 1)
            missing = [i for i in expected if i not in present and i not in pending]
            found["missing"] = missing
            if missing:
                found["problems"].append(f"{len(missing)} of the run's {len(expected)} cycles are missing from the "
                                         f"archive (cycle {_ranges(missing)}); the state has {completed}")
        if found["problems"]:
            text = "; ".join(found["problems"])
            log.error("archiver: %s: %s", safe_archive(self.url), text)
            ctx.alert(Alert(
                kind="archiver_integrity", severity=Severity.CRITICAL,
                title=f"Archive damaged: {text[:150]}",
                text=f"{safe_archive(self.url)}: {text}. Rows the database lost are not in the outbox any more: "
                     "restore the archive from a backup, or keep it knowing reports miss them (the state still has "
                     "the run)",
                data={"missing_cycles": len(found["missing"]), "problems": found["problems"]},
            ))
        return found

    def _carry(self, ctx) -> None:
        """Hand the outbox lines not yet durable to the state, whose save at the end of the cycle is the
        cycle's one durable write; too many (the database lags): fsync the outbox instead."""
        if self.outbox is None or not self.outbox.fsync:
            return
        lines = self.outbox.unsynced_lines()
        if len(lines) > MAX_CARRIED:
            self.outbox.sync()
            lines = []
        state = ctx.plugin_state(NAME)
        if lines:
            state[UNSYNCED] = lines
        else:
            state.pop(UNSYNCED, None)

    def _config(self, ctx) -> ArchiverConfig:
        return ArchiverConfig.of(ctx, NAME)

    def _add(self, kind: str, data: dict[str, Any]) -> None:
        if self.outbox is None:
            return
        self.outbox.add(kind, data)

    def _sync_versions(self, ctx, at: datetime, config: ArchiverConfig) -> None:
        """Record new strategy versions; when the active one changed, archive the one it replaced."""
        state = ctx.plugin_state(NAME).setdefault("strategies", {})
        when = records.iso(at)
        for name in sorted(ctx.strategies()):
            current = ctx.strategy(name)
            history = ctx.strategy_history(name)
            seen = state.setdefault(name, {"active": None, "known": 0, "started": {}, "ended": {}, "archived": {}})
            previous = seen["active"]
            if previous == current.version and seen["known"] == len(history):
                continue
            if previous != current.version:
                if previous is not None:
                    seen["ended"][str(previous)] = when
                seen["ended"].pop(str(current.version), None)
                seen["started"].setdefault(str(current.version), when)
                seen["active"] = current.version
            seen["known"] = len(history)
            for version in history:
                key = str(version.version)
                status = ("active" if version.version == current.version
                          else "retired" if key in seen["started"] else "rejected")
                self._add("strategy_version", records.strategy_version_row(
                    ctx.run_id, version, status, seen["started"].get(key), seen["ended"].get(key)))
            if previous is not None and previous != current.version and config.archive_on_strategy_change:
                seen["archived"][str(previous)] = when
                summary = self._version_metrics(ctx, name, previous)
                ctx.alert(Alert(
                    kind="archiver_strategy_archived",
                    title=f"Strategy {name} v{previous} archived; now v{current.version}",
                    text=f"v{previous}: {_summary_text(summary, ctx.currency)}; v{current.version}: {current.reason}",
                    data={"strategy": name, "archived_version": previous, "version": current.version,
                          "metrics": summary.as_dict()},
                ))

    def _version_metrics(self, ctx, name: str, version: int) -> metrics.TradeMetrics:
        trades = [t for t in ctx.closed_trades() if t.strategy == name and t.strategy_version == version]
        result = metrics.trade_metrics(trades, ctx.config.trading.initial_capital_usd, currency=ctx.currency)
        archived = ctx.plugin_state(NAME).get("strategies", {}).get(name, {}).get("archived", {}).get(str(version))
        self._add("strategy_metrics", {"run_id": ctx.run_id, "name": name, "version": version, "trades": len(trades),
                                       "metrics": records.dumps(result.as_dict()), "archived_at": archived})
        return result

    def _patterns(self, ctx, at: datetime, config: ArchiverConfig) -> None:
        from .patterns import discover

        found = discover(ctx.closed_trades(), config.min_pattern_trades, config.confidence_bands, config.pattern_fdr,
                         ctx.currency)
        rows = [{**p.as_dict(), "run_id": ctx.run_id, "discovered_at": records.iso(at)} for p in found]
        self._add("patterns", {"run_id": ctx.run_id, "patterns": rows})

    def _check_health(self, ctx) -> None:
        """Turn the writer's state into alerts: failing (then every 15 minutes), recovered, rejected."""
        if self.writer is None:
            return
        health = self.writer.health
        now = wall.monotonic()
        if health.failing and (not self._alerted_failure or now - self._last_alert >= REALERT_SECONDS):
            self._alerted_failure, self._last_alert = True, now
            ctx.alert(Alert(
                kind="archiver_write_failed", severity=Severity.WARNING,
                title=f"Archive writes failing ({health.attempts} attempts); retrying",
                text=f"{health.last_error}; {len(self.outbox)} entries kept in {self.outbox.path.name}, none lost",
                data={"attempts": health.attempts, "pending": len(self.outbox)},
            ))
        elif not health.failing and self._alerted_failure:
            self._alerted_failure = False
            ctx.alert(Alert(kind="archiver_recovered", title="Archive writes recovered",
                            text=f"{len(self.outbox)} entries still pending", data={"pending": len(self.outbox)}))
        if health.rejected > self._rejected_alerted:
            count, self._rejected_alerted = health.rejected - self._rejected_alerted, health.rejected
            ctx.alert(Alert(
                kind="archiver_rejected", severity=Severity.CRITICAL,
                title=f"Archive: {count} entries the database refused; kept in {self.outbox.rejected_path.name}",
                text=health.last_reject_reason,
            ))


def _ranges(numbers: list[int]) -> str:
    """``[4, 5, 6, 9]`` -> ``"4-6, 9"``."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts[:10]) + (", ..." if len(parts) > 10 else "")


def safe_archive(url: str) -> str:
    from .store import safe_url

    return safe_url(url)


def _phase_ms(report, name: str) -> float | None:
    try:
        return report.phase(name).duration_ms
    except KeyError:
        return None


def _summary_text(m: metrics.TradeMetrics, currency: str = "") -> str:
    if not m.trades:
        return "no closed trades"
    pf = "inf" if m.profit_factor == float("inf") else f"{m.profit_factor:.2f}" if m.profit_factor is not None else "-"
    return f"{m.trades} trades, win rate {m.win_rate:.0%}, P&L {money(m.total_pnl, currency, True)}, profit factor {pf}"


def _check_driver(url: str) -> None:
    """A URL for a missing database driver is a clear start-up error, not a retry loop."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.get_dialect().import_dbapi()
    except ArgumentError:
        raise ValueError("[plugins.archiver] database_url is not a database URL, e.g. sqlite:///archive.db") from None
    except (NoSuchModuleError, ImportError) as exc:
        hint = " (pip install 'gobot-trading[postgres]')" if url.startswith("postgres") else ""
        raise ValueError(f"[plugins.archiver] database_url needs a driver that is not installed{hint}: {exc}") from None
