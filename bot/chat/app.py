"""Wiring at the edge: settings → the recommender in ``bot_data`` → handlers → PTB Application."""

from __future__ import annotations

import logging

from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import service
from bot.chat import admin, buttons, handlers
from bot.chat.context import CONTEXT_TYPES, BotData
from bot.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)

# Updates handled at once. A search mostly waits (download, the embedder's queue, upload), so
# a small number let 30 waiting searches hold every slot and a /help waited 0.7–1.5 s behind
# them (docs/BENCHMARKS.md); the embedder itself still runs one query at a time.
CONCURRENT_UPDATES = 128

COMMANDS = [
    BotCommand("start", "How to search by photo"),
    BotCommand("help", "How to search by photo"),
]


def build_application(settings: Settings) -> Application:
    if not settings.telegram_bot_token:
        raise ConfigurationError(
            "TELEGRAM_BOT_TOKEN is not set. Get a token from @BotFather and put it in .env "
            "(see .env.example) or the environment."
        )

    async def post_init(application: Application) -> None:
        recommender = await service.open_recommender(settings)
        bot_data: BotData = application.bot_data
        bot_data.recommender = recommender
        application.create_task(recommender.warm_up(), name="warm-up")
        stats = await recommender.stats()
        if stats.items == 0:
            application.create_task(service.load_configured_catalog(recommender, settings))
        await application.bot.set_my_commands(COMMANDS)
        log.info(
            "bot @%s ready: %d items indexed, model %s",
            application.bot.username,
            stats.index_vectors,
            stats.model,
        )

    async def post_shutdown(application: Application) -> None:
        recommender = application.bot_data.recommender
        if recommender is not None:
            await recommender.close()

    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.file_base_url)
        .context_types(CONTEXT_TYPES)
        .concurrent_updates(CONCURRENT_UPDATES)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    application.bot_data.settings = settings
    add_handlers(application)
    return application


def add_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["start", "help"], handlers.help_command))
    application.add_handler(CommandHandler("reindex", admin.reindex))
    application.add_handler(CommandHandler("stats", admin.stats))
    application.add_handler(MessageHandler(filters.PHOTO, handlers.photo))
    application.add_handler(MessageHandler(filters.Document.ALL, handlers.image_document))
    application.add_handler(
        CallbackQueryHandler(handlers.more_like_this, pattern=buttons.MORE_LIKE_THIS)
    )
    application.add_handler(
        CallbackQueryHandler(handlers.search_from_item, pattern=buttons.SEARCH_FROM_ITEM)
    )
    application.add_handler(CallbackQueryHandler(handlers.unknown_button))
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, handlers.help_command))
    application.add_error_handler(handlers.error_handler)


def run(settings: Settings) -> None:
    """Start polling until interrupted (Ctrl-C / SIGTERM)."""
    application = build_application(settings)
    application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
