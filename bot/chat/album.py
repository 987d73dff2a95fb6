"""Sending a page of results: an album of catalog photos, then a message with the buttons.

Telegram albums cannot carry inline buttons, hence the follow-up message. Uploaded photos get a
Telegram file id; the album sender hands the new ones back so the caller keeps them (through
the recommender) before the buttons go out, and the next album re-sends them instead of
uploading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from telegram import Bot, InputMediaPhoto, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.chat import buttons, replies
from bot.chat.replies import Texts
from bot.core.filters import GENDERS, Filters
from bot.core.recommender import Match, ResultPage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentAlbum:
    page: ResultPage
    """The matches that were sent (those whose photo is still there), in order."""
    new_file_ids: dict[int, str]
    """File ids Telegram gave the photos uploaded now: item key → file id."""


async def send_album(bot: Bot, chat_id: int, page: ResultPage, texts: Texts) -> SentAlbum | None:
    """Send ``page`` as an album, after what the search saw in the photo and whether
    anything is close (:func:`preamble`); items whose photo went missing from disk are left
    out. None when none is left: the shopper has been told nothing was found.
    """
    matches = [match for match in page.matches if _sendable(match)]
    if not matches:
        await bot.send_message(chat_id, texts.no_matches)
        return None
    page = replace(page, matches=matches)
    if said := preamble(page, texts):
        await bot.send_message(chat_id, said)
    try:
        sent = await _send_album(bot, chat_id, page, texts, use_cached_files=True)
    except BadRequest as error:
        # A cached file id can stop working (e.g. the bot token changed): upload instead.
        log.warning("album with cached file ids refused (%s); uploading the photos", error)
        sent = await _send_album(bot, chat_id, page, texts, use_cached_files=False)
    return SentAlbum(page, _new_file_ids(page, sent))


def preamble(page: ResultPage, texts: Texts) -> str | None:
    """Above a search's first page: "Looks like: blue jeans" (what the model saw in a
    shopper's photo, when it is confident), and that nothing is very close when so."""
    if page.page != 0:
        return None
    lines = []
    seen = page.seen
    if page.from_photo and (look := texts.look_of(seen.looks_like_type, seen.looks_like_colour)):
        lines.append(texts.looks_like.format(what=look))
    if not page.close:
        lines.append(texts.not_close)
    return "\n".join(lines) or None


async def send_buttons(bot: Bot, chat_id: int, page: ResultPage, texts: Texts) -> None:
    """The message under an album with its buttons (albums cannot carry any)."""
    lines = []
    if page.filters.active:
        lines.append(texts.filtered_by.format(filters=describe(page.filters, texts)))
    lines.append(texts.results_header)
    if any(match.variants for match in page.matches):
        lines.append(texts.colours_hint)
    await bot.send_message(
        chat_id, "\n".join(lines), reply_markup=buttons.results_keyboard(page, texts)
    )


def describe(filters: Filters, texts: Texts) -> str:
    """The active filters in a few words: Jeans · not Blue · Women · under 25."""
    parts = [filters.article_type, filters.colour]
    if filters.not_colour:
        parts.append(texts.not_colour.format(colour=filters.not_colour))
    if filters.gender in GENDERS:
        parts.append(texts.gender(filters.gender))
    if filters.max_price is not None:
        parts.append(texts.under_price.format(price=texts.price(filters.max_price)))
    return " · ".join(part for part in parts if part)


def _sendable(match: Match) -> bool:
    if match.item.telegram_file_id or Path(match.item.item.image_path).is_file():
        return True
    log.warning("catalog image missing: %s", match.item.item.image_path)
    return False


async def _send_album(
    bot: Bot, chat_id: int, page: ResultPage, texts: Texts, *, use_cached_files: bool
) -> list[Message]:
    media = []
    for position, match in enumerate(page.matches, start=1):
        stored = match.item
        photo = stored.telegram_file_id if use_cached_files else None
        media.append(
            InputMediaPhoto(
                photo or Path(stored.item.image_path).read_bytes(),
                caption=replies.caption(position, stored.item, texts),
                parse_mode=ParseMode.HTML,
            )
        )
    if len(media) == 1:  # an album needs at least two photos
        only = media[0]
        return [
            await bot.send_photo(
                chat_id, only.media, caption=only.caption, parse_mode=ParseMode.HTML
            )
        ]
    return list(await bot.send_media_group(chat_id, media))


def _new_file_ids(page: ResultPage, sent: list[Message]) -> dict[int, str]:
    new_ids = {}
    for match, message in zip(page.matches, sent, strict=False):
        if message.photo:
            file_id = message.photo[-1].file_id
            if file_id != match.item.telegram_file_id:
                new_ids[match.item.key] = file_id
    return new_ids
