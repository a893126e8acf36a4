"""``gobot report``: the archive's summary and comparison tables in the terminal, as JSON, or as a
self-contained HTML page with plots. Light at import: click only (this runs for ``gobot --help``).
"""

from __future__ import annotations

import click


def add_report_command(cli: click.Group, load_config) -> None:
    @cli.command(name="report")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                  help="Config file (default: $GOBOT_CONFIG, else ./config.toml, else built-in defaults).")
    @click.option("--run", "run_id", metavar="RUN_ID", default=None,
                  help="Report on this run (default: the latest one).")
    @click.option("--all", "all_runs", is_flag=True, help="Report on every run in the archive together.")
    @click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True), default=None,
                  help="Also write a self-contained HTML report with plots to this file.")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of tables.")
    @click.option("--min-trades", type=click.IntRange(min=2), default=None,
                  help="Fewest trades behind a pattern claim (default: [plugins.archiver] min_pattern_trades).")
    @click.option("--database-url", default=None, metavar="URL",
                  help="Read this archive instead of the configured one (any SQLAlchemy URL).")
    def report(config_path, run_id, all_runs, html_path, as_json, min_trades, database_url):
        """Performance report from the archive: what works, with numbers you can trust.

        \b
        Prints the run's summary (trades, win rate with its 95% interval, profit factor,
        P&L, expectancy, max drawdown, Sharpe, Sortino, holding time), the same metrics per
        strategy version, symbol, side, hour of day (UTC) and confidence band, the strategy
        versions side by side, the patterns found (each with its sample size and interval),
        recent learnings and phase timings. --html writes a page with the run's trades on
        candles (click one for its signal, risk verdicts, sizing and fills), the equity curve,
        drawdown, P&L by hour and by confidence band.
        """
        from .report import run_report

        if run_id and all_runs:
            raise click.UsageError("--run and --all exclude each other")
        view = load_config(config_path)
        run_report(view, run_id=run_id, all_runs=all_runs, html_path=html_path, as_json=as_json,
                   min_trades=min_trades, database_url=database_url)
