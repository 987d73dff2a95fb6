"""Admin commands: /reindex (in the background, with progress), /stats, and the live edits
/add (a photo captioned ``/add name | type | colour | price | link``), /remove and /restore."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable

from telegram import Message, Update
from telegram.error import TelegramError

from bot.chat import deep_links, replies
from bot.chat.context import ChatContext
from bot.chat.handlers import download_image, texts_of, user_hash
from bot.core.indexing import CatalogEdit, CatalogWouldShrink, IngestReport
from bot.core.recommender import Recommender
from bot.core.sources import CatalogSource
from bot.settings import Settings
from embeddings import ImageRejected
from storage.catalog import is_disk_full
from storage.models import CatalogItem
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
            await update.effective_message.reply_text(texts_of(update).not_admin)
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
    source = settings.catalog_source()
    if source is None:
        await message.reply_text(
            "No catalog source is configured. Set CATALOG_FEED (a product feed's path or URL), "
            "or CATALOG_STYLES_CSV and CATALOG_IMAGES_DIR."
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
        _run_reindex(recommender, source, settings, message, max_removed), name="reindex"
    )


async def _run_reindex(
    recommender: Recommender,
    source: CatalogSource,
    settings: Settings,
    request: Message,
    max_removed: float,
) -> None:
    status = await request.reply_text("Reindex started…")
    progress: dict = {"done": 0, "total": 0, "stage": ""}
    started = time.monotonic()

    def on_progress(done: int, total: int, stage: str) -> None:
        progress.update(done=done, total=total, stage=stage)

    ingest = asyncio.create_task(
        recommender.ingest(
            source,
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
            text = _progress_text(**progress, elapsed=time.monotonic() - started)
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


def _progress_text(done: int, total: int, stage: str, elapsed: float) -> str:
    if not total:
        return f"Reindexing… reading the catalog ({replies.duration(elapsed)})"
    return (
        f"Reindexing… {stage} {done}/{total} ({100 * done // total}%), {replies.duration(elapsed)}"
    )


def _summary_text(report: IngestReport) -> str:
    lines = [
        "✅ Reindex complete: now serving the new index.",
        f"Items indexed: {report.index_size} ({report.embedded} embedded, "
        f"{report.removed} removed)",
        f"Time: {report.seconds:.1f} s ({report.items_per_second:.0f} images/s)",
        f"Failures: {len(report.failures)}",
    ]
    if report.downloaded or report.revalidated:
        lines.append(
            f"Images: {report.downloaded} downloaded, {report.revalidated} unchanged on the server"
        )
    if report.out_of_stock:
        lines.append(f"Out of stock (kept, not shown): {report.out_of_stock}")
    if report.kept_out:
        lines.append(f"Kept out (removed with /remove): {report.kept_out}")
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
                f"Feedback: {summary.feedback()}",
            ]
        )
    )


ADD_USAGE = (
    "To add an item, send its photo with the caption\n"
    "/add name | type | colour | price | link\n"
    "Every part is optional, from the end: /add Linen shirt | Shirts | White works too."
)
_CAPTION_FIELDS = ("name", "article_type", "base_colour", "price", "url")
_ADD_COMMAND = re.compile(r"^/add(@\w+)?")


class CaptionError(ValueError):
    """An /add caption that cannot be read; the message says what to fix."""


def parse_add_caption(caption: str) -> dict[str, str]:
    """``/add name | type | colour | price | link`` → the item's fields that were given."""
    text = _ADD_COMMAND.sub("", caption, count=1)
    parts = [" ".join(part.split()) for part in text.split("|")] if text.strip() else []
    if len(parts) > len(_CAPTION_FIELDS):
        raise CaptionError(f"a caption has at most {len(_CAPTION_FIELDS)} parts")
    fields = {name: part for name, part in zip(_CAPTION_FIELDS, parts, strict=False) if part}
    url = fields.get("url")
    if url and not url.startswith(("https://", "http://")):
        raise CaptionError(f"the link must start with https:// (got {url[:40]!r})")
    if len(fields.get("name", "")) > 200:
        raise CaptionError("the name is longer than 200 characters")
    return fields


@admin_only
async def add_usage(update: Update, context: ChatContext) -> None:
    """/add as text, without a photo: how to add an item."""
    await update.effective_message.reply_text(ADD_USAGE)


@admin_only
async def add(update: Update, context: ChatContext) -> None:
    """A photo captioned /add: the item goes into the catalog and the served index now."""
    message = update.effective_message
    try:
        fields = parse_add_caption(message.caption or "")
    except CaptionError as error:
        await message.reply_text(f"Not added: {error}.\n\n{ADD_USAGE}")
        return
    image = await download_image(context, message)
    if image is None:
        await message.reply_text("Not added: that image is too large for me to download.")
        return
    recommender = context.recommender
    item_id = f"chat-{await recommender.catalog.increment_counter('items_added')}"
    item = CatalogItem(id=item_id, name=fields.pop("name", f"Item {item_id}"), image_path="",
                       **fields)  # fmt: skip
    try:
        stored = await recommender.add_item(item, image)
    except ImageRejected as rejected:
        await message.reply_text(f"Not added: {rejected.reason}")
        return
    except CatalogEdit as error:
        await message.reply_text(f"Not added: {error}.")
        return
    link = deep_links.item_link(context.bot.username, stored.item.id)
    await message.reply_text(
        "\n".join(
            [
                f"✅ Added {stored.item.id}: {stored.item.name}. Shoppers can find it now.",
                f"/remove {stored.item.id} takes it out; a /reindex of the feed keeps it.",
                *([f"Find-similar link: {link}"] if link else []),
            ]
        )
    )


@admin_only
async def remove(update: Update, context: ChatContext) -> None:
    """/remove ID: out of the catalog and the served index now; a feed item stays out."""
    message = update.effective_message
    if len(context.args or []) != 1:
        await message.reply_text("Usage: /remove ID (the item's id, as /add or the feed gave it)")
        return
    (item_id,) = context.args
    try:
        removed = await context.recommender.remove_item(item_id)
    except CatalogEdit as error:
        await message.reply_text(f"Not removed: {error}.")
        return
    if removed is None:
        await message.reply_text(f"There is no item {item_id} in the catalog.")
        return
    if removed.item.origin == "feed":
        after = f"A /reindex of the feed keeps it out; /restore {item_id} lets it back in."
    else:
        after = "Its photo is deleted too."
    await message.reply_text(f"🗑 Removed {item_id}: {removed.item.name}. {after}")


@admin_only
async def restore(update: Update, context: ChatContext) -> None:
    """/restore ID: a feed item taken out with /remove comes back with the next reindex."""
    message = update.effective_message
    if len(context.args or []) != 1:
        await message.reply_text("Usage: /restore ID (an item you took out with /remove)")
        return
    (item_id,) = context.args
    if await context.recommender.catalog.restore_removed(item_id):
        await message.reply_text(
            f"{item_id} comes back with the next /reindex, if the feed still lists it."
        )
    else:
        await message.reply_text(f"{item_id} was not removed with /remove.")
