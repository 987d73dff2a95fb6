"""Admin commands: /reindex (in the background, with progress) and /stats."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from telegram import Message, Update
from telegram.error import TelegramError

from bot.chat import replies
from bot.chat.context import ChatContext
from bot.chat.handlers import user_hash
from bot.core.indexing import CatalogWouldShrink, IngestReport
from bot.core.recommender import Recommender
from bot.settings import Settings
from storage.catalog import is_disk_full
from storage.source import CatalogSourceError

log = logging.getLogger(__name__)

Handler = Callable[[Update, ChatContext], Awaitable[None]]
CANCELLED_EDIT_SECONDS = 3.0


def admin_only(handler: Handler) -> Handler:
    """Refuse politely, and run nothing, unless the caller's id is in ADMIN_IDS."""

    @functools.wraps(handler)
    async def guarded(update: Update, context: ChatContext) -> None:
        user = update.effective_user
        if user is None or user.id not in context.settings.admin_ids:
            who = user_hash(context, user.id) if user else None
            log.info("refused %s to user %s", handler.__name__, who)
            await update.effective_message.reply_text(replies.NOT_ADMIN)
            return
        await handler(update, context)

    return guarded


@admin_only
async def reindex(update: Update, context: ChatContext) -> None:
    """Start re-embedding the catalog source; the old index keeps serving until the swap.

    ``/reindex force`` lets it remove more than ``REINDEX_MAX_SHRINK`` of the catalog.
    """
    settings, recommender = context.settings, context.recommender
    message = update.effective_message
    arguments = [arg.lower() for arg in context.args or []]
    if arguments not in ([], ["force"]):
        await message.reply_text(
            "Usage: /reindex, or /reindex force to allow removing more than "
            f"{settings.reindex_max_shrink:.0%} of the catalog."
        )
        return
    force = arguments == ["force"]
    if settings.catalog_styles_csv is None or settings.catalog_images_dir is None:
        await message.reply_text(
            "No catalog source is configured. Set CATALOG_STYLES_CSV and CATALOG_IMAGES_DIR."
        )
        return
    running = context.bot_data.reindex
    if recommender.reindexing or (running is not None and not running.done()):
        await message.reply_text(
            "A reindex (or the first load of the catalog) is already running. "
            "Its progress message says when it is done; try again after that."
        )
        return
    max_removed = 1.0 if force else settings.reindex_max_shrink
    # Claimed before the first await: two /reindex handled at once must not both start one.
    context.bot_data.reindex = context.bot_data.run_in_background(
        _run_reindex(recommender, settings, message, max_removed), name="reindex"
    )


async def _run_reindex(
    recommender: Recommender, settings: Settings, request: Message, max_removed: float
) -> None:
    status = await request.reply_text("Reindex started…")
    progress = {"done": 0, "total": 0}
    started = time.monotonic()

    def on_progress(done: int, total: int) -> None:
        progress.update(done=done, total=total)

    ingest = asyncio.create_task(
        recommender.ingest(
            settings.catalog_styles_csv,
            settings.catalog_images_dir,
            reembed_all=True,
            prune=True,
            progress=on_progress,
            max_removed_share=max_removed,
        )
    )
    shown = ""
    try:
        while not ingest.done():
            await asyncio.wait({ingest}, timeout=settings.reindex_progress_seconds)
            if ingest.done():
                break
            text = _progress_text(progress["done"], progress["total"], time.monotonic() - started)
            if text != shown:
                shown = text
                await _edit(status, text)
    except asyncio.CancelledError:  # the bot is stopping: the catalog rolls back, untouched
        ingest.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await ingest
        with contextlib.suppress(TimeoutError):  # the bot is stopping: do not hold it up
            await asyncio.wait_for(
                _edit(status, "Reindex cancelled: the bot stopped. The previous index is served."),
                CANCELLED_EDIT_SECONDS,
            )
        raise
    try:
        report = ingest.result()
    except CatalogWouldShrink as error:
        await _edit(
            status,
            f"Reindex refused: {error}. Nothing was changed; /reindex force removes them.",
        )
        return
    except CatalogSourceError as error:
        await _edit(status, f"Reindex failed: {error}. The previous index is still served.")
        return
    except Exception as error:
        log.exception("reindex failed")
        reason = "the disk is full" if is_disk_full(error) else "see the bot's log"
        await _edit(status, f"Reindex failed ({reason}). The previous index is still served.")
        return
    await _edit(status, _summary_text(report))


def _progress_text(done: int, total: int, elapsed: float) -> str:
    if not total:
        return f"Reindexing… reading the catalog ({replies.duration(elapsed)})"
    return (
        f"Reindexing… {done}/{total} images ({100 * done // total}%), {replies.duration(elapsed)}"
    )


def _summary_text(report: IngestReport) -> str:
    lines = [
        "✅ Reindex complete: now serving the new index.",
        f"Items indexed: {report.index_size} ({report.embedded} embedded, "
        f"{report.removed} removed)",
        f"Time: {report.seconds:.1f} s ({report.items_per_second:.0f} images/s)",
        f"Failures: {len(report.failures)}",
    ]
    lines += [f"• {item_id}: {reason}" for item_id, reason in report.failures[:10]]
    if len(report.failures) > 10:
        lines.append(f"… and {len(report.failures) - 10} more")
    return "\n".join(lines)


async def _edit(status: Message, text: str) -> None:
    """Progress edits are best-effort: a failed edit must not stop the reindex."""
    with contextlib.suppress(TelegramError):
        await status.edit_text(text)


@admin_only
async def stats(update: Update, context: ChatContext) -> None:
    summary = await context.recommender.stats()
    reindexing = " (reindex running)" if summary.reindexing else ""
    await update.effective_message.reply_text(
        "\n".join(
            [
                f"Catalog: {summary.items} items",
                f"Index: {summary.index_vectors} vectors{reindexing}",
                f"Model: {summary.model} ({summary.dim}-d, {summary.runtime})",
                f"Uptime: {replies.duration(summary.uptime_seconds)}",
                f"Queries served: {summary.queries_served}",
            ]
        )
    )
