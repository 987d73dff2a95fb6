"""Logging for every process: one format, and no secret in any line at any level.

httpx logs each request's URL at INFO, and Bot API URLs hold the bot token (``…/bot<token>/
getUpdates``); tracebacks of failed requests can too. The handler's formatter replaces the
token and its secret half wherever they appear, and httpx's request lines are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "<redacted>"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A line per request (httpx: with the token in the URL), two per scheduled job (apscheduler).
_CHATTY = ("httpx", "httpcore", "apscheduler")


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then blanks every secret out of the whole text (traceback included)."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        # Longest first: the whole token before its secret half.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def token_secrets(token: str) -> list[str]:
    """The token and the part after ``<bot id>:``, which alone is what must stay secret."""
    if not token:
        return []
    _, _, secret = token.partition(":")
    return [token, secret] if len(secret) >= 8 else [token]


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level``; library warnings go through logging too."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(_FORMAT, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
