"""Logging for every process: one format, and no secret in any line at any level.

httpx logs each request's URL at INFO, and Bot API URLs hold the bot token (``…/bot<token>/
getUpdates``); tracebacks of failed requests can too, and python-telegram-bot logs
``setWebhook``'s secret token at DEBUG. The handler's formatter replaces every secret
(:meth:`bot.settings.Settings.secrets`) wherever it appears; httpx's request lines are off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "<redacted>"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A line per request (httpx: with the token in the URL; tornado.access: each webhook post), two
# per scheduled job (apscheduler).
_CHATTY = ("httpx", "httpcore", "apscheduler", "tornado.access")
# python-telegram-bot logs the raw batch (shoppers' messages) when it cannot parse one; the
# bot logs the update's id instead (bot/server/telegram_client.py).
_RAW_UPDATES = "Error while parsing updates!"


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then blanks every secret out of the whole text (traceback included)."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = _longest_first(secrets)  # once, not per record

    def format(self, record: logging.LogRecord) -> str:
        return _blank(super().format(record), self._secrets)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret blanked out."""
    return _blank(text, _longest_first(secrets))


def _longest_first(secrets: Iterable[str]) -> list[str]:
    return sorted({secret for secret in secrets if secret}, key=len, reverse=True)


def _blank(text: str, ordered: list[str]) -> str:
    for secret in ordered:  # a token before its secret half
        text = text.replace(secret, REDACTED)
    return text


def _not_raw_updates(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_RAW_UPDATES)


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level``; library warnings go through logging too."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(_FORMAT, secrets))
    handler.addFilter(_not_raw_updates)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
