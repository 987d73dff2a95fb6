"""Wiring at the edge: settings → services in ``bot_data`` → handlers → PTB Application."""

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

from bot import admin, handlers
from bot.recommender import Recommender
from bot.settings import Settings
from embeddings import AsyncEmbedder, Embedder
from storage.catalog import Catalog
from storage.source import CatalogSourceError

log = logging.getLogger(__name__)

# Shoppers' searches overlap (downloads, uploads); the embedder itself runs one job at a time.
CONCURRENT_UPDATES = 8

COMMANDS = [
    BotCommand("start", "How to search by photo"),
    BotCommand("help", "How to search by photo"),
]


class ConfigurationError(RuntimeError):
    """A setting the bot cannot start without is missing or wrong."""


def make_embedder(settings: Settings) -> AsyncEmbedder:
    return AsyncEmbedder(
        Embedder(
            settings.embedding_backbone,
            settings.embedding_weights,
            trained=settings.trained_model_path(),
            device=settings.device(),
            batch_size=settings.embedding_batch_size,
        ),
        garment_crop=settings.garment_crop,
    )


async def open_recommender(settings: Settings) -> Recommender:
    """Open the catalog and index in ``settings.data_dir``; the model loads lazily.

    The embedder is built (and its configuration checked) before the catalog is opened, and
    the catalog is closed again if anything after that fails, so a bad setting cannot leave a
    connection thread behind that keeps the process from exiting.
    """
    embedder = make_embedder(settings)
    catalog = await Catalog.open(settings.database_path)
    try:
        await catalog.prune_searches(settings.search_retention_days * 86400)
        stored_model = await catalog.get_meta("model")
        if stored_model and stored_model != embedder.model_name:
            log.warning(
                "the catalog was embedded with %s but the bot is set to %s: run /reindex",
                stored_model,
                embedder.model_name,
            )
        return await Recommender.open(
            catalog,
            embedder,
            settings.data_dir,
            page_size=settings.results_per_page,
            ranking=settings.ranking,
        )
    except BaseException:
        embedder.close()
        await catalog.close()
        raise


async def load_configured_catalog(recommender: Recommender, settings: Settings) -> None:
    """First start with an empty catalog: ingest the configured source while already polling."""
    if settings.catalog_styles_csv is None or settings.catalog_images_dir is None:
        log.warning("the catalog is empty and no CATALOG_STYLES_CSV is set: use wardrobe ingest")
        return
    log.info("empty catalog: loading %s in the background", settings.catalog_styles_csv)
    try:
        report = await recommender.ingest(settings.catalog_styles_csv, settings.catalog_images_dir)
    except CatalogSourceError as error:
        log.error("could not load the catalog: %s", error)
        return
    log.info("catalog loaded: %s", report.summary())


async def close_recommender(recommender: Recommender) -> None:
    recommender.embedder.close()
    await recommender.catalog.close()


def build_application(settings: Settings) -> Application:
    if not settings.telegram_bot_token:
        raise ConfigurationError(
            "TELEGRAM_BOT_TOKEN is not set. Get a token from @BotFather and put it in .env "
            "(see .env.example) or the environment."
        )

    async def post_init(application: Application) -> None:
        recommender = await open_recommender(settings)
        application.bot_data["recommender"] = recommender
        application.create_task(recommender.embedder.load(), name="warm-up")
        if await recommender.catalog.count_items() == 0:
            application.create_task(load_configured_catalog(recommender, settings))
        await application.bot.set_my_commands(COMMANDS)
        log.info(
            "bot @%s ready: %d items indexed, model %s",
            application.bot.username,
            len(recommender.index),
            recommender.embedder.model_name,
        )

    async def post_shutdown(application: Application) -> None:
        recommender = application.bot_data.get("recommender")
        if recommender is not None:
            await close_recommender(recommender)

    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.file_base_url)
        .concurrent_updates(CONCURRENT_UPDATES)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    application.bot_data["settings"] = settings
    add_handlers(application)
    return application


def add_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["start", "help"], handlers.help_command))
    application.add_handler(CommandHandler("reindex", admin.reindex))
    application.add_handler(CommandHandler("stats", admin.stats))
    application.add_handler(MessageHandler(filters.PHOTO, handlers.photo))
    application.add_handler(MessageHandler(filters.Document.ALL, handlers.image_document))
    application.add_handler(CallbackQueryHandler(handlers.results_button))
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, handlers.help_command))
    application.add_error_handler(handlers.error_handler)


def run(settings: Settings) -> None:
    """Start polling until interrupted (Ctrl-C / SIGTERM)."""
    application = build_application(settings)
    application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
