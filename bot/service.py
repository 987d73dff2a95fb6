"""Building and closing a recommender from :class:`~bot.settings.Settings`: what the chat and
every ``wardrobe`` command share, free of Telegram."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator

from bot.core.recommender import Recommender
from bot.settings import ConfigurationError, Settings
from embeddings import AsyncEmbedder, ModelSource, OnnxEmbedder
from storage.catalog import Catalog, CatalogUnusable
from storage.source import CatalogSourceError

log = logging.getLogger(__name__)


def check_data_dir(settings: Settings) -> None:
    """The data directory exists (or is created) and this user may write in it: otherwise one
    :class:`ConfigurationError` that names it, before anything is opened there."""
    data_dir = settings.data_dir
    setting = f"WARDROBE_DATA_DIR={data_dir}"
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigurationError(f"{setting} is not a directory")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigurationError(f"{setting} cannot be created: {error.strerror}") from None
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"{setting} is not writable by this user (uid {os.getuid()}): "
            "give it to that user (chown) or choose another directory"
        )


def make_embedder(settings: Settings) -> AsyncEmbedder:
    """The configured embedder. It checks the configuration and loads no model; with ONNX
    Runtime it exports the model first if this is the model's first use (once, in a child
    process: this one never imports torch). A wrong model setting or file is a
    :class:`ConfigurationError`."""
    try:
        return _make_embedder(settings)
    except (ValueError, OSError) as error:
        raise ConfigurationError(f"the embedding model cannot be used: {error}") from None


def _make_embedder(settings: Settings) -> AsyncEmbedder:
    source = ModelSource(
        settings.embedding_backbone, settings.embedding_weights, settings.trained_model_path()
    )
    if settings.embedding_runtime == "torch":
        from embeddings.embedder import Embedder

        embedder = Embedder(
            source.backbone,
            source.weights,
            trained=source.trained,
            device=settings.embedding_device,
            batch_size=settings.embedding_batch_size,
        )
        return AsyncEmbedder(embedder, garment_crop=settings.garment_crop)
    if settings.embedding_device not in ("auto", "cpu"):
        raise ValueError(
            f"EMBEDDING_DEVICE={settings.embedding_device} needs EMBEDDING_RUNTIME=torch "
            "(ONNX Runtime runs on the CPU here)."
        )
    queries = OnnxEmbedder(
        source, settings.model_cache_dir, batch_size=settings.embedding_batch_size
    )
    # A reindex embeds on one thread of its own, at a lower priority (AsyncEmbedder).
    return AsyncEmbedder(
        queries, garment_crop=settings.garment_crop, background=queries.with_threads(1)
    )


async def open_recommender(settings: Settings) -> Recommender:
    """Open the catalog and index in ``settings.data_dir``; the model loads lazily.

    The data directory and the embedder's configuration are checked before the catalog is
    opened, and the catalog is closed again if anything after that fails, so a bad setting
    cannot leave a connection thread behind that keeps the process from exiting. A damaged
    catalog is one :class:`CatalogUnusable`.
    """
    check_data_dir(settings)
    # In a thread: a model's first use exports it in a child process (~15 s), and the event
    # loop must stay free for a SIGTERM meanwhile.
    embedder = await asyncio.to_thread(make_embedder, settings)
    try:
        catalog = await Catalog.open(settings.database_path)
    except BaseException:
        embedder.close()
        raise
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
            downloads=settings.downloads,
            close_similarity=settings.close_match_similarity,
        )
    except sqlite3.DatabaseError as error:
        embedder.close()
        await catalog.close()
        raise CatalogUnusable(
            f"the catalog database {settings.database_path} cannot be used: {error}"
        ) from None
    except BaseException:
        embedder.close()
        await catalog.close()
        raise


@contextlib.asynccontextmanager
async def opened_recommender(settings: Settings) -> AsyncIterator[Recommender]:
    """:func:`open_recommender` … ``Recommender.close``, for commands that run and exit."""
    recommender = await open_recommender(settings)
    try:
        yield recommender
    finally:
        await recommender.close()


async def load_configured_catalog(recommender: Recommender, settings: Settings) -> None:
    """First start with an empty catalog: ingest the configured source while already polling."""
    source = settings.catalog_source()
    if source is None:
        log.warning(
            "the catalog is empty and no CATALOG_FEED or CATALOG_STYLES_CSV is set: "
            "use wardrobe ingest"
        )
        return
    log.info("empty catalog: loading %s in the background", source)
    try:
        report = await recommender.ingest(source)
    except CatalogSourceError as error:
        log.error("could not load the catalog: %s", error)
        return
    log.info("catalog loaded: %s", report.summary())
