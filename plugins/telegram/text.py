"""Alert texts for Telegram: HTML parse mode, escaped, split below Telegram's length limits.

Everything that comes from outside the plugin (titles, rationales, symbol names, reasons) is
escaped with ``escape``; only the tags written here are markup. Limits are counted on the visible
text in UTF-16 code units (an emoji counts two), which is at least what Telegram counts.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MESSAGE_LIMIT = 4096  # visible characters of a message, after entity parsing
CAPTION_LIMIT = 1024  # of a photo's caption
TITLE_LIMIT = 300
KIND_LIMIT = 100  # an alert kind is a short name; a longer one is cut (it would leave no room for the text)
ICONS = {"INFO": "ℹ️", "WARNING": "⚠️", "CRITICAL": "🚨"}


def escape(text: Any) -> str:
    """``text`` safe inside Telegram HTML: only ``&``, ``<`` and ``>`` are special there."""
    return html.escape(str(text), quote=False)


def units(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Part:
    """One message to send: ``html`` with parse_mode HTML, ``plain`` the same text without markup."""

    html: str
    plain: str


def _shorten(text: str, limit: int) -> str:
    if units(text) <= limit:
        return text
    while units(text) > limit - 1:
        text = text[:-1]
    return text + "…"


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-16 units, cut at a line break or space when possible."""
    pieces: list[str] = []
    while units(text) > limit:
        cut, size = 0, 0
        for index, char in enumerate(text):
            size += units(char)
            if size > limit:
                break
            cut = index + 1
        cut = max(cut, 1)  # always progress, even when one character is wider than the limit
        window = text[:cut]
        for separator in ("\n", " "):
            at = window.rfind(separator)
            if at > cut // 2:
                cut = at + 1
                break
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return pieces


def alert_parts(alert: dict[str, Any], count: int = 1, window: float = 0.0, delayed: bool = False,
                limit: int = MESSAGE_LIMIT) -> list[Part]:
    """The messages for one alert: a bold title, the text, a footer with kind and time; split if long.

    ``count`` > 1 marks a folded repeat: the same alert came ``count`` more times within ``window`` s.
    """
    icon = ICONS.get(str(alert.get("severity", "INFO")), "")
    title = _shorten(str(alert.get("title", "")), TITLE_LIMIT)
    lead = f"🔁 ×{count} more in the last {_duration(window)}: " if count > 1 else ""
    when = _when(alert.get("time"))
    footer = (_shorten(str(alert.get("kind", "alert")), KIND_LIMIT) + (f" · {when}" if when else "")
              + (" · delayed" if delayed else ""))
    body = str(alert.get("text", "") or "")
    head_plain = f"{icon} {lead}{title}".strip()

    def build(chunk: str, number: str) -> Part:
        head_html = f"{icon} {escape(lead)}<b>{escape(title)}</b>{number}".strip()
        lines_html = [head_html] + ([escape(chunk)] if chunk else []) + [f"<i>{escape(footer)}</i>"]
        lines_plain = [f"{head_plain}{number}"] + ([chunk] if chunk else []) + [footer]
        return Part("\n".join(lines_html), "\n".join(lines_plain))

    room = limit - units(head_plain) - units(footer) - units(" (99/99)") - 2
    chunks = split_text(body, room) if body else [""]
    if len(chunks) == 1:
        return [build(chunks[0], "")]
    return [build(chunk, f" ({i}/{len(chunks)})") for i, chunk in enumerate(chunks, start=1)]


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return ""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"


def table(rows: list[tuple[str, str]]) -> str:
    """Label/value lines as HTML (labels bold), values escaped."""
    return "\n".join(f"<b>{escape(label)}</b> {escape(value)}" for label, value in rows)
