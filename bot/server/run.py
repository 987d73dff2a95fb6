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
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application

from bot import service
from bot.chat import replies
from bot.chat.app import build_application, commands
from bot.chat.context import BotData
from bot.server import heartbeat, housekeeping
from bot.server.telegram_client import make_bot, wrong_base_url
from bot.server.webhook import WebhookServer
from bot.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

STOP_SECONDS = 10.0
"""How long searches in flight may take to finish once the bot is told to stop."""
CANCEL_SECONDS = 5.0
"""How long cancelled background work (a reindex telling its admin) may take to wind up."""
POLL_TIMEOUT_SECONDS = 10
POLL_HEALTHY_SECONDS = 3 * POLL_TIMEOUT_SECONDS
UPDATES = ("message", "callback_query")
"""What the bot handles; Telegram keeps the rest (edits, channel posts) from it."""


def run(settings: Settings) -> int:
    """Serve until stopped; the exit status: 0 when told to stop, 1 when it had to."""
    return asyncio.run(serve(settings))


async def serve(settings: Settings) -> int:
    """Run the bot until SIGTERM/SIGINT (status 0) or a refused token (status 1). Start-up
    mistakes raise :class:`ConfigurationError`; a signal during start-up stops it too."""
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
    webhook: WebhookServer | None = None

    def healthy() -> bool:
        """Updates come in (a long poll answered lately, or the webhook server up) and the
        catalog is open: the heartbeat's and ``/healthz``'s one rule."""
        if webhook is not None:
            receiving = webhook.running
        else:
            receiving = bot.seconds_since_poll() < POLL_HEALTHY_SECONDS
        return receiving and application.running and application.bot_data.recommender is not None

    if settings.webhook_mode:
        webhook = WebhookServer(application, settings, healthy, UPDATES)
    try:
        started = _start(application, settings, webhook, healthy)
        if await _unless_set(started, stop, bot.token_revoked):
            await _unless_set(asyncio.Event().wait(), stop, bot.token_revoked)
        if bot.token_revoked.is_set():
            log.error(
                "Telegram refused the bot token (401 Unauthorized): it was revoked or "
                "changed. Put the new token from @BotFather in TELEGRAM_BOT_TOKEN. Stopping."
            )
            return 1
        return 0
    finally:
        await _stop(application, webhook)


async def _unless_set(work: Coroutine[Any, Any, None], *events: asyncio.Event) -> bool:
    """Run ``work`` until it ends (True; its exception raised) or one of ``events`` is set
    first (False; ``work`` cancelled)."""
    task = asyncio.create_task(work)
    waiters = [asyncio.create_task(event.wait()) for event in events]
    await asyncio.wait([task, *waiters], return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    if task.done():
        task.result()
        return True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False


async def _start(
    application: Application,
    settings: Settings,
    webhook: WebhookServer | None,
    healthy: Callable[[], bool],
) -> None:
    await _initialize(application, settings)
    await _open_catalog(application, settings)
    try:
        if webhook is not None:
            await webhook.start()
        else:
            await application.updater.start_polling(
                timeout=POLL_TIMEOUT_SECONDS, allowed_updates=list(UPDATES)
            )
    except TelegramError as error:
        raise ConfigurationError(f"Telegram refused to send updates: {error}") from None
    await application.start()
    housekeeping.schedule(application, healthy)


def _stop_on(stop: asyncio.Event, name: str) -> None:
    log.info("%s: stopping", name)
    stop.set()


async def _initialize(application: Application, settings: Settings) -> None:
    try:
        await application.initialize()  # getMe
    except InvalidToken as error:
        if wrong_base_url(error):
            raise ConfigurationError(
                f"TELEGRAM_BASE_URL={settings.telegram_base_url} answered 404 Not Found: it "
                "should end in /bot (python-telegram-bot adds the token after it)"
            ) from None
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
    try:
        await application.bot.set_my_commands(commands(replies.ENGLISH))
        for code, texts in replies.LANGUAGES.items():
            await application.bot.set_my_commands(commands(texts), language_code=code)
    except TelegramError as error:  # only the command menu is missing: not worth stopping
        log.warning("could not set the command menu: %s", error)
    log.info(
        "bot @%s ready: %d items indexed, model %s",
        application.bot.username, stats.index_vectors, stats.model,
    )  # fmt: skip


async def _stop(application: Application, webhook: WebhookServer | None) -> None:
    """Stop receiving, cancel background work (a reindex rolls back: the old index is served on
    the next start), let searches in flight finish (for a while), close the catalog. Every
    step runs even when one before failed: an open catalog would keep the process alive."""
    started = time.monotonic()
    bot_data: BotData = application.bot_data
    bot_data.stopping = True  # nothing new starts in the background from here on
    if webhook is not None and webhook.running:
        await _step("stopping the webhook server", webhook.stop())
    if application.updater.running:
        # Re-raises what ended polling (a 401, say): already handled by the caller.
        await _step("stopping polling", application.updater.stop())
    await _step("cancelling background work",
                asyncio.wait_for(bot_data.cancel_background(), CANCEL_SECONDS))  # fmt: skip
    if application.running:
        await _step("finishing the searches in flight",
                    asyncio.wait_for(application.stop(), STOP_SECONDS))  # fmt: skip
    jobs = application.job_queue
    if jobs is not None and jobs.scheduler.running:  # application.stop() timed out
        await _step("stopping scheduled jobs", jobs.stop(wait=False))
    if bot_data.recommender is not None:
        await _step("closing the catalog", bot_data.recommender.close())
        bot_data.recommender = None
    await _step("shutting down", application.shutdown())
    with contextlib.suppress(OSError):  # e.g. the data dir was never usable
        heartbeat.heartbeat_path(bot_data.settings.data_dir).unlink(missing_ok=True)
    log.info("stopped in %.1f s", time.monotonic() - started)


async def _step(what: str, step: Awaitable[object]) -> None:
    try:
        await step
    except TimeoutError:
        log.warning("%s took too long; going on", what)
    except Exception as error:
        log.warning("%s: %r", what, error)
