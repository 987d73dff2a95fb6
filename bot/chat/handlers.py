"""Shoppers' handlers. Each stays thin: validate the update, call the recommender, reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from telegram import Message, PhotoSize, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from bot.chat import album, buttons, replies
from bot.chat.context import ChatContext
from bot.core.recommender import EmptyCatalog, ResultPage, SearchExpired, UnknownItem
from embeddings import ImageRejected

log = logging.getLogger(__name__)

ACCEPTED_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# Smallest photo size worth downloading: our models look at 224-px crops, and the finder of
# the garment in a photo needs some margin around it. Bigger sizes only cost bandwidth.
WANTED_SHORT_SIDE = 640
CHAT_ACTION_EVERY_SECONDS = 4.0  # Telegram shows a chat action for about 5 seconds


async def help_command(update: Update, context: ChatContext) -> None:
    """/start, /help and the answer to anything we cannot search with."""
    await update.effective_message.reply_text(replies.HELP)


async def photo(update: Update, context: ChatContext) -> None:
    message = update.effective_message
    size = pick_photo_size(message.photo)
    await _search_file(message, context, size.file_id, size.file_size)


async def image_document(update: Update, context: ChatContext) -> None:
    message = update.effective_message
    document = message.document
    name = (document.file_name or "").lower()
    if document.mime_type not in ACCEPTED_IMAGE_TYPES and not name.endswith(IMAGE_SUFFIXES):
        await message.reply_text(replies.UNSUPPORTED_FILE)
        return
    await _search_file(message, context, document.file_id, document.file_size)


def pick_photo_size(sizes: tuple[PhotoSize, ...]) -> PhotoSize:
    """The smallest size whose short side is at least WANTED_SHORT_SIDE, else the largest."""
    by_area = sorted(sizes, key=lambda size: size.width * size.height)
    for size in by_area:
        if min(size.width, size.height) >= WANTED_SHORT_SIDE:
            return size
    return by_area[-1]


async def _search_file(
    message: Message, context: ChatContext, file_id: str, file_size: int | None
) -> None:
    limit = context.settings.max_image_bytes
    if file_size and file_size > limit:
        await _say_too_large(message, replies.human_size(file_size), limit)
        return
    async with chat_action(context, message.chat_id):
        data = await _download(context, file_id)
        if data is None or len(data) > limit:
            size = "over 20 MB" if data is None else replies.human_size(len(data))
            await _say_too_large(message, size, limit)
            return
        try:
            page = await context.recommender.search_image(data, message.chat_id)
        except ImageRejected as rejected:
            await message.reply_text(rejected.reason)
            return
        except EmptyCatalog:
            await message.reply_text(replies.CATALOG_EMPTY)
            return
        await _reply_with_page(message.chat_id, context, page, empty_text=replies.NO_MATCHES)


async def _download(context: ChatContext, file_id: str) -> bytes | None:
    """The file's bytes, or None when Telegram refuses it for size (bots get at most 20 MB)."""
    try:
        telegram_file = await context.bot.get_file(file_id)
    except BadRequest as error:
        if "too big" in str(error).lower():
            return None
        raise
    return bytes(await telegram_file.download_as_bytearray())


async def _say_too_large(message: Message, size: str, limit: int) -> None:
    await message.reply_text(replies.TOO_LARGE.format(size=size, limit=replies.human_size(limit)))


async def more_like_this(update: Update, context: ChatContext) -> None:
    """The next page of a search (:data:`buttons.MORE_LIKE_THIS`)."""
    search_id = buttons.number(context)
    if search_id is None:
        await unknown_button(update, context)
        return
    await _page_from_button(
        update, context, lambda _chat_id: context.recommender.more(search_id), replies.NO_MORE
    )


async def search_from_item(update: Update, context: ChatContext) -> None:
    """A new search from a shown item's number (:data:`buttons.SEARCH_FROM_ITEM`)."""
    key = buttons.number(context)
    if key is None:
        await unknown_button(update, context)
        return
    await _page_from_button(
        update,
        context,
        lambda chat_id: context.recommender.search_from_item(key, chat_id),
        replies.NO_MATCHES,
    )


async def unknown_button(update: Update, context: ChatContext) -> None:
    """A button from some older version of the bot: nothing sensible to do but answer it."""
    await update.callback_query.answer()


async def _page_from_button(
    update: Update,
    context: ChatContext,
    search: Callable[[int], Awaitable[ResultPage]],
    empty_text: str,
) -> None:
    await update.callback_query.answer()
    chat_id = update.effective_chat.id
    async with chat_action(context, chat_id):
        try:
            page = await search(chat_id)
        except SearchExpired:
            await context.bot.send_message(chat_id, replies.SEARCH_EXPIRED)
            return
        except UnknownItem:
            await context.bot.send_message(chat_id, replies.ITEM_GONE)
            return
        except EmptyCatalog:
            await context.bot.send_message(chat_id, replies.CATALOG_EMPTY)
            return
        await _reply_with_page(chat_id, context, page, empty_text=empty_text)


async def _reply_with_page(
    chat_id: int, context: ChatContext, page: ResultPage, *, empty_text: str
) -> None:
    if not page.matches:
        await context.bot.send_message(chat_id, empty_text)
        return
    sent = await album.send_album(context.bot, chat_id, page)
    if sent is None:
        return
    await context.recommender.remember_file_ids(sent.new_file_ids)
    await album.send_buttons(context.bot, chat_id, sent.page)


@contextlib.asynccontextmanager
async def chat_action(
    context: ChatContext, chat_id: int, action: str = ChatAction.UPLOAD_PHOTO
) -> AsyncIterator[None]:
    """Keep "sending a photo…" visible while the search runs (Telegram drops it after ~5 s)."""

    async def repeat() -> None:
        while True:
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, action)
            await asyncio.sleep(CHAT_ACTION_EVERY_SECONDS)

    task = asyncio.create_task(repeat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def error_handler(update: object, context: ChatContext) -> None:
    """Log every unexpected error and tell the shopper something went wrong; never crash."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat:
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(update.effective_chat.id, replies.FAILED)
