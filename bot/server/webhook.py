"""Webhook mode: Telegram posts updates to our HTTPS address (behind a reverse proxy that
terminates TLS) instead of the bot polling for them. Only the wiring changes: updates go into
the same ``update_queue`` polling fills (python-telegram-bot's ``customwebhookbot`` example).

Every request must carry the secret token Telegram was given with ``setWebhook``; anything
else is refused with 403. ``GET /healthz`` answers 200 while the bot is healthy.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import tornado.httpserver
import tornado.web
from telegram.error import TelegramError
from telegram.ext import Application

from bot.server.heartbeat import HEALTH_PATH
from bot.server.telegram_client import read_update
from bot.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # updates are a few kB; anything bigger is not Telegram
IDLE_SECONDS = 30


class _Updates(tornado.web.RequestHandler):
    def initialize(self, bot_application: Application, secret: str) -> None:
        self._application = bot_application
        self._secret = secret

    async def post(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            _refusals.count()
            self.set_status(403)
            return
        try:
            raw = json.loads(self.request.body)
        except ValueError:
            raw = None
        update = read_update(raw, self._application.bot)
        if update is not None:  # an unreadable one is confirmed too: Telegram would resend it
            await self._application.update_queue.put(update)

    def check_xsrf_cookie(self) -> None:
        """Telegram sends no cookies; the secret token is the check."""


class _Refusals:
    """Requests without the secret, logged at most once a minute: anyone who finds the port
    could otherwise fill the log."""

    def __init__(self) -> None:
        self._since_logged = 0
        self._logged_at = float("-inf")

    def count(self) -> None:
        self._since_logged += 1
        now = time.monotonic()
        if now - self._logged_at >= 60:
            log.warning("refused %d webhook requests without the secret token",
                        self._since_logged)  # fmt: skip
            self._since_logged, self._logged_at = 0, now


_refusals = _Refusals()


class _Health(tornado.web.RequestHandler):
    def initialize(self, healthy: Callable[[], bool]) -> None:
        self._healthy = healthy

    def get(self) -> None:
        ok = self._healthy()
        self.set_status(200 if ok else 503)
        self.write("ok\n" if ok else "unhealthy\n")


class WebhookServer:
    """Listens on ``WEBHOOK_LISTEN:WEBHOOK_PORT`` at the path of ``TELEGRAM_WEBHOOK_URL``."""

    def __init__(
        self,
        application: Application,
        settings: Settings,
        healthy: Callable[[], bool],
        allowed_updates: Sequence[str],
    ) -> None:
        self._application = application
        self._allowed_updates = allowed_updates
        self._settings = settings
        path = urlsplit(settings.telegram_webhook_url).path or "/"
        routes = [
            (HEALTH_PATH, _Health, {"healthy": healthy}),
            (re.escape(path), _Updates, {"bot_application": application,
                              "secret": settings.webhook_secret_token}),
        ]  # fmt: skip
        self._server = tornado.httpserver.HTTPServer(
            tornado.web.Application(routes),
            max_body_size=MAX_UPDATE_BYTES,
            idle_connection_timeout=IDLE_SECONDS,  # slow clients cannot hold connections
            body_timeout=IDLE_SECONDS,
        )
        self.running = False

    async def start(self) -> None:
        """Listen, then tell Telegram where to post; either failing is a
        :class:`ConfigurationError` naming the setting."""
        settings = self._settings
        try:
            self._server.listen(settings.webhook_port, settings.webhook_listen)
        except OSError as error:
            raise ConfigurationError(
                f"cannot listen on WEBHOOK_LISTEN={settings.webhook_listen} "
                f"WEBHOOK_PORT={settings.webhook_port}: {error.strerror}"
            ) from None
        self.running = True
        try:
            await self._application.bot.set_webhook(
                settings.telegram_webhook_url,
                secret_token=settings.webhook_secret_token,
                allowed_updates=list(self._allowed_updates),
            )
        except TelegramError as error:
            raise ConfigurationError(
                f"Telegram refused TELEGRAM_WEBHOOK_URL={settings.telegram_webhook_url}: {error}"
            ) from None
        log.info("webhook mode: listening on %s:%d", settings.webhook_listen,
                 settings.webhook_port)  # fmt: skip

    async def stop(self) -> None:
        """Stop listening; the webhook stays set, so Telegram keeps the updates until the next
        start."""
        self.running = False
        self._server.stop()
        await self._server.close_all_connections()
