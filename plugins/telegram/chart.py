"""Line charts as PNG (equity curve of a day, cumulative P&L of closed trades) for ``sendPhoto``.

matplotlib's object API (no pyplot, no global state) is imported on first use, in a worker
thread: drawing never blocks the bot's event loop.
"""

from __future__ import annotations

import io
from datetime import datetime


def line_chart_png(points: list[tuple[datetime, float]], title: str, ylabel: str,
                   baseline: float | None = None) -> bytes:
    """A 900x450 PNG of ``points`` (time, value), with a dashed ``baseline`` if given."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    times = [time for time, _ in points]
    values = [value for _, value in points]
    axes.plot(times, values, color="#1f77b4", linewidth=2)
    if baseline is not None:
        axes.axhline(baseline, color="#888888", linestyle="--", linewidth=1)
        axes.fill_between(times, values, baseline, where=[v >= baseline for v in values], color="#2ca02c", alpha=0.15)
        axes.fill_between(times, values, baseline, where=[v < baseline for v in values], color="#d62728", alpha=0.15)
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def parse_curve(raw: list) -> list[tuple[datetime, float]]:
    """``[[iso time, value], ...]`` (as in a daily_summary's data) -> points; bad rows are skipped."""
    points = []
    for row in raw or []:
        try:
            points.append((datetime.fromisoformat(str(row[0])), float(row[1])))
        except (TypeError, ValueError, IndexError):
            continue
    return points
