"""The bot as a service: open the catalog, receive updates (long polling, or a webhook), stop
cleanly on SIGTERM/SIGINT or a revoked token.

python-telegram-bot's ``run_polling`` waits for every background task before it exits (a
SIGTERM during a reindex waited for the whole reindex) and keeps running after a 401 stops
polling for good. Here the steps are python-telegram-bot's own, in our order:
``initialize`` (a wrong token fails at once), start receiving, wait for a reason to stop,
then stop receiving, cancel the background work and close the catalog.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable

from telegram.error import InvalidToken, NetworkError
from telegram.ext import Application

from bot import service
from bot.chat.app import COMMANDS, build_application
from bot.chat.context import BotData
from bot.server import housekeeping
from bot.server.telegram_client import make_bot
from bot.server.webhook import WebhookServer
from bot.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

STOP_SECONDS = 10.0
"""How long searches in flight may take to finish once the bot is told to stop."""
POLL_TIMEOUT_SECONDS = 10
POLL_HEALTHY_SECONDS = 3 * POLL_TIMEOUT_SECONDS
UPDATES = ("message", "callback_query")
"""What the bot handles; Telegram keeps the rest (edits, channel posts) from it."""


def run(settings: Settings) -> int:
    """Serve until stopped; the exit status: 0 when told to stop, 1 when it had to."""
    return asyncio.run(serve(settings))


async def serve(settings: Settings) -> int:
    if not settings.telegram_bot_token:
        raise ConfigurationError(
            "TELEGRAM_BOT_TOKEN is not set. Get a token from @BotFather and put it in .env "
            "(see .env.example) or the environment."
        )
    bot = make_bot(settings.telegram_bot_token, settings.telegram_base_url, settings.file_base_url)
    application = build_application(settings, bot)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, _stop_on, stop, signal.Signals(number).name)
    await _initialize(application, settings)
    webhook = (
        WebhookServer(application, settings, lambda: _open(application), UPDATES)
        if settings.webhook_mode
        else None
    )
    try:
        await _open_catalog(application, settings)
        if webhook is not None:
            await webhook.start()
        else:
            await application.updater.start_polling(
                timeout=POLL_TIMEOUT_SECONDS, allowed_updates=list(UPDATES)
            )
        await application.start()
        housekeeping.schedule(
            application,
            (lambda: webhook.running) if webhook is not None
            else (lambda: bot.seconds_since_poll() < POLL_HEALTHY_SECONDS),
        )  # fmt: skip
        revoked = asyncio.ensure_future(bot.token_revoked.wait())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({revoked, stopped}, return_when=asyncio.FIRST_COMPLETED)
        revoked.cancel()
        stopped.cancel()
        if bot.token_revoked.is_set():
            log.error(
                "Telegram refused the bot token (401 Unauthorized): it was revoked or "
                "changed. Put the new token from @BotFather in TELEGRAM_BOT_TOKEN. Stopping."
            )
            return 1
        return 0
    finally:
        await _stop(application, webhook)


def _stop_on(stop: asyncio.Event, name: str) -> None:
    log.info("%s: stopping", name)
    stop.set()


async def _initialize(application: Application, settings: Settings) -> None:
    try:
        await application.initialize()  # getMe
    except InvalidToken:
        raise ConfigurationError(
            "Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): copy the token from "
            "@BotFather again"
        ) from None
    except NetworkError as error:
        raise ConfigurationError(
            f"cannot reach the Bot API at TELEGRAM_BASE_URL={settings.telegram_base_url}: {error}"
        ) from None


async def _open_catalog(application: Application, settings: Settings) -> None:
    """Open the recommender (a bad data dir or catalog is one clear error), load the model
    and, with an empty catalog, the configured source in the background."""
    bot_data: BotData = application.bot_data
    recommender = await service.open_recommender(settings)
    bot_data.recommender = recommender
    bot_data.run_in_background(recommender.warm_up(), name="warm-up")
    stats = await recommender.stats()
    if stats.items == 0:
        bot_data.run_in_background(
            service.load_configured_catalog(recommender, settings), name="first catalog load"
        )
    await application.bot.set_my_commands(COMMANDS)
    log.info(
        "bot @%s ready: %d items indexed, model %s",
        application.bot.username, stats.index_vectors, stats.model,
    )  # fmt: skip


def _open(application: Application) -> bool:
    return application.running and application.bot_data.recommender is not None


async def _stop(application: Application, webhook: WebhookServer | None) -> None:
    """Stop receiving, let searches in flight finish (for a while), cancel background work
    (a reindex rolls back: the old index is served on the next start), close the catalog.
    Every step runs even when one before failed: an open catalog would keep the process
    alive."""
    started = time.monotonic()
    bot_data: BotData = application.bot_data
    if webhook is not None and webhook.running:
        await _step("stopping the webhook server", webhook.stop())
    if application.updater.running:
        # Re-raises what ended polling (a 401, say): already handled by the caller.
        await _step("stopping polling", application.updater.stop())
    await _step("cancelling background work", bot_data.cancel_background())
    if application.running:
        await _step("finishing the searches in flight",
                    asyncio.wait_for(application.stop(), STOP_SECONDS))  # fmt: skip
    if bot_data.recommender is not None:
        await _step("closing the catalog", bot_data.recommender.close())
        bot_data.recommender = None
    await _step("shutting down", application.shutdown())
    log.info("stopped in %.1f s", time.monotonic() - started)


async def _step(what: str, step: Awaitable[object]) -> None:
    try:
        await step
    except TimeoutError:
        log.warning("%s took too long; going on", what)
    except Exception as error:
        log.warning("%s: %r", what, error)
