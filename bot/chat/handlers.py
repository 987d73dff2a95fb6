"""Shoppers' handlers. Each stays thin: validate the update, call the recommender, reply."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from telegram import CallbackQuery, Message, PhotoSize, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from bot.chat import album, buttons, deep_links, replies
from bot.chat.context import ChatContext
from bot.chat.replies import Texts
from bot.chat.throttle import Verdict
from bot.core.filters import Refinement
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
    """/help and the answer to anything we cannot search with."""
    await update.effective_message.reply_text(texts_of(update).help)


def texts_of(update: object) -> Texts:
    """The texts in the language of the shopper's Telegram app (English if we lack it)."""
    user = update.effective_user if isinstance(update, Update) else None
    return replies.texts_for(user.language_code if user else None)


async def start(update: Update, context: ChatContext) -> None:
    """/start: the help, or, from a web shop's "find similar" link (:mod:`.deep_links`),
    the items like that product."""
    payload = context.args[0] if context.args else ""
    item_id = deep_links.item_id_from(payload)
    if item_id is None:
        await help_command(update, context)
        return
    await _show_search(
        update,
        context,
        lambda chat_id: context.recommender.search_from_item_id(item_id, chat_id),
        texts_of(update).no_matches,
        kind="link",
    )


async def photo(update: Update, context: ChatContext) -> None:
    message = update.effective_message
    size = pick_photo_size(message.photo)
    await _search_file(update, context, size.file_id, size.file_size)


async def image_document(update: Update, context: ChatContext) -> None:
    message = update.effective_message
    document = message.document
    name = (document.file_name or "").lower()
    if document.mime_type not in ACCEPTED_IMAGE_TYPES and not name.endswith(IMAGE_SUFFIXES):
        await message.reply_text(texts_of(update).unsupported_file)
        return
    await _search_file(update, context, document.file_id, document.file_size)


async def _admitted(update: Update, context: ChatContext) -> bool:
    """Whether this search may run: one answer per album, and the user's search limit
    (:mod:`bot.chat.throttle`), told once with how long to wait."""
    message = update.effective_message
    if message is not None and not context.bot_data.albums.first_of(message.media_group_id):
        return False
    user_id = _sender_id(update)
    verdict = context.throttle.check(user_id)
    if verdict is Verdict.GO:
        return True
    log.info("search limit: refused a search of user %s", user_hash(context, user_id))
    if verdict is Verdict.WAIT:
        seconds = max(1, round(context.throttle.retry_in(user_id)))
        await context.bot.send_message(
            update.effective_chat.id, texts_of(update).one_moment.format(seconds=seconds)
        )
    return False


def _sender_id(update: Update) -> int:
    """Who to count a search against: the chat a message was sent on behalf of (anonymous
    group admins all come from one bot account), else the user, else the chat."""
    message = update.effective_message
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id
    user = update.effective_user
    return user.id if user is not None else update.effective_chat.id


def user_hash(context: ChatContext, user_id: int) -> str:
    """A stable pseudonym for logs: keyed with the bot's token, so ids cannot be guessed back
    from it by trying them all."""
    key = context.settings.telegram_bot_token.encode()
    return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()[:12]


def pick_photo_size(sizes: tuple[PhotoSize, ...]) -> PhotoSize:
    """The smallest size whose short side is at least WANTED_SHORT_SIDE, else the largest."""
    by_area = sorted(sizes, key=lambda size: size.width * size.height)
    for size in by_area:
        if min(size.width, size.height) >= WANTED_SHORT_SIDE:
            return size
    return by_area[-1]


async def _search_file(
    update: Update, context: ChatContext, file_id: str, file_size: int | None
) -> None:
    if not await _admitted(update, context):
        return
    message = update.effective_message
    texts = texts_of(update)
    limit = context.settings.max_image_bytes
    if file_size and file_size > limit:
        await _say_too_large(message, file_size, limit, texts)
        return
    with SearchTiming(context, update, "photo") as timing:
        async with chat_action(context, message.chat_id):
            data = await _download(context, file_id)
            if data is None or len(data) > limit:
                size = None if data is None else len(data)
                timing.outcome = f"too large ({replies.ENGLISH.size(size)})"
                await _say_too_large(message, size, limit, texts)
                return
            timing.lap("download")
            try:
                page = await context.recommender.search_image(data, message.chat_id)
            except ImageRejected as rejected:
                timing.outcome = f"rejected ({rejected.reason})"
                await message.reply_text(texts.image_rejected or rejected.reason)
                return
            except EmptyCatalog:
                timing.outcome = "empty catalog"
                await message.reply_text(texts.catalog_empty)
                return
            timing.lap("search")
            await _reply_with_page(message.chat_id, context, page, texts, texts.no_matches, timing)


class SearchTiming:
    """One log line per search, however it ends: who (pseudonymous), how long each stage
    took, and what was shown (``outcome``). Never the photo."""

    def __init__(self, context: ChatContext, update: Update, kind: str) -> None:
        self._who = user_hash(context, _sender_id(update))
        self._kind = kind
        self._started = self._last = time.perf_counter()
        self._laps: list[str] = []
        self.outcome = "no answer"

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self._laps.append(f"{stage}={1000 * (now - self._last):.0f}ms")
        self._last = now

    def __enter__(self) -> SearchTiming:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: object, trace: object) -> None:
        outcome = self.outcome if kind is None else f"failed ({kind.__name__})"
        total = 1000 * (time.perf_counter() - self._started)
        log.info(
            "search %s user=%s %s total=%.0fms: %s",
            self._kind, self._who, " ".join(self._laps), total, outcome,
        )  # fmt: skip


async def download_image(context: ChatContext, message: Message) -> bytes | None:
    """A message's photo (its largest size: it goes into the catalog) or image file; None
    when it is over ``MAX_IMAGE_BYTES``."""
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        file_id, size = largest.file_id, largest.file_size
    else:
        file_id, size = message.document.file_id, message.document.file_size
    limit = context.settings.max_image_bytes
    if size and size > limit:
        return None
    data = await _download(context, file_id)
    return None if data is None or len(data) > limit else data


async def _download(context: ChatContext, file_id: str) -> bytes | None:
    """The file's bytes, or None when Telegram refuses it for size (bots get at most 20 MB)."""
    try:
        telegram_file = await context.bot.get_file(file_id)
    except BadRequest as error:
        if "too big" in str(error).lower():
            return None
        raise
    return bytes(await telegram_file.download_as_bytearray())


async def _say_too_large(message: Message, size: int | None, limit: int, texts: Texts) -> None:
    """``size``: None when the Bot API would not hand the file over (over 20 MB)."""
    await message.reply_text(texts.too_large.format(size=texts.size(size), limit=texts.size(limit)))


async def more_like_this(update: Update, context: ChatContext) -> None:
    """The next page of a search (:data:`buttons.MORE_LIKE_THIS`), in the chat it was made in."""
    no_more = texts_of(update).no_more
    await _page_from_number(update, context, context.recommender.more, no_more, "more")


async def search_from_item(update: Update, context: ChatContext) -> None:
    """A new search from a shown item's number (:data:`buttons.SEARCH_FROM_ITEM`)."""
    search = context.recommender.search_from_item
    await _page_from_number(update, context, search, texts_of(update).no_matches, "item")


async def colours_of(update: Update, context: ChatContext) -> None:
    """The other colours of a shown item's product (:data:`buttons.COLOURS_OF`)."""
    search = context.recommender.colours_of
    await _page_from_number(update, context, search, texts_of(update).no_other_colours, "colours")


async def refine(update: Update, context: ChatContext) -> None:
    """A refinement button (:data:`buttons.REFINE`): the search again, narrowed."""
    found = buttons.groups(context)
    if found is None:
        await unknown_button(update, context)
        return
    search_id, page, refinement = int(found[0]), int(found[1]), Refinement(found[2])
    await _page_from_button(
        update,
        context,
        lambda chat_id: context.recommender.refine(search_id, chat_id, refinement, page),
        texts_of(update).nothing_matches_filters,
        kind="refine",
    )


async def vote(update: Update, context: ChatContext) -> None:
    """👍 / 👎 under a page (:data:`buttons.VOTE`): stored, thanked in the button's answer
    (a toast, never a chat message)."""
    query = update.callback_query
    found = buttons.groups(context)
    if found is None or update.effective_chat is None:
        await _answer(query)
        return
    texts = texts_of(update)
    search_id, page, up = int(found[0]), int(found[1]), found[2] == "u"
    try:
        first = await context.recommender.vote(search_id, update.effective_chat.id, page, up)
    except SearchExpired:
        await _answer(query, texts.search_expired)
        return
    thanks = texts.thanks_up if up else texts.thanks_down
    await _answer(query, thanks if first else texts.vote_changed)


async def _page_from_number(
    update: Update,
    context: ChatContext,
    search: Callable[[int, int], Awaitable[ResultPage]],
    empty_text: str,
    kind: str,
) -> None:
    """A button whose data carries a number (a search id, an item key): ``search(number,
    chat_id)``'s page, or just the answer for data its pattern did not match."""
    number = buttons.number(context)
    if number is None:
        await unknown_button(update, context)
        return
    await _page_from_button(
        update, context, lambda chat_id: search(number, chat_id), empty_text, kind=kind
    )


async def unknown_button(update: Update, context: ChatContext) -> None:
    """A button from some older version of the bot, or forged: nothing to do but answer it."""
    await _answer(update.callback_query)


async def _answer(query: CallbackQuery, text: str | None = None) -> None:
    """Stop the button's spinner (showing ``text`` briefly, if any). Best-effort: after
    downtime Telegram refuses the answer ("query is too old"), and the shopper still wants
    the page they asked for."""
    try:
        await query.answer(text)
    except TelegramError as error:
        log.info("could not answer a button press: %s", error)


async def _page_from_button(
    update: Update,
    context: ChatContext,
    search: Callable[[int], Awaitable[ResultPage]],
    empty_text: str,
    *,
    kind: str,
) -> None:
    await _answer(update.callback_query)
    if update.effective_chat is None:  # a button of an inline message: this bot sends none
        return
    await _show_search(update, context, search, empty_text, kind=kind)


async def _show_search(
    update: Update,
    context: ChatContext,
    search: Callable[[int], Awaitable[ResultPage]],
    empty_text: str,
    *,
    kind: str,
) -> None:
    """Run a search that needs no photo (a button, a link) and show its page in the chat."""
    if not await _admitted(update, context):
        return
    chat_id = update.effective_chat.id
    texts = texts_of(update)
    with SearchTiming(context, update, kind) as timing:
        async with chat_action(context, chat_id):
            try:
                page = await search(chat_id)
            except (SearchExpired, UnknownItem, EmptyCatalog) as refused:
                timing.outcome = type(refused).__name__
                text = {
                    SearchExpired: texts.search_expired,
                    UnknownItem: texts.item_gone,
                    EmptyCatalog: texts.catalog_empty,
                }[type(refused)]
                await context.bot.send_message(chat_id, text)
                return
            timing.lap("search")
            await _reply_with_page(chat_id, context, page, texts, empty_text, timing)


async def _reply_with_page(
    chat_id: int,
    context: ChatContext,
    page: ResultPage,
    texts: Texts,
    empty_text: str,
    timing: SearchTiming,
) -> None:
    if not page.matches:
        timing.outcome = "nothing found"
        await context.bot.send_message(chat_id, empty_text)
        return
    sent = await album.send_album(context.bot, chat_id, page, texts)
    timing.lap("album")
    if sent is None:
        timing.outcome = "no catalog photo left to send"
        return
    await context.recommender.remember_file_ids(sent.new_file_ids)
    await context.recommender.record_sent(page, sent.page)
    await album.send_buttons(context.bot, chat_id, sent.page, texts)
    timing.outcome = "shown " + ",".join(match.item.item.id for match in sent.page.matches)


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
            await context.bot.send_message(update.effective_chat.id, texts_of(update).failed)
