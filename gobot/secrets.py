"""Keep secrets out of everything gobot writes: logs, alerts, state, the audit log."""

from __future__ import annotations

import logging
import os

from .config import SECRET_ENV_VARS

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary text


def secret_values() -> list[str]:
    """The secret values set in this process's environment, longest first."""
    values = {os.environ.get(name, "") for name in SECRET_ENV_VARS}
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every secret value from the environment replaced by ``***``."""
    for value in secret_values():
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if redact(str(exc)) != str(exc):
                record.exc_info = None
                record.msg = f"{record.msg} [{type(exc).__name__}: {redact(str(exc))}]"
        return True
