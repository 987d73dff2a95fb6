"""Sending a page of results: an album of catalog photos, then a message with the buttons.

Telegram albums cannot carry inline buttons, hence the follow-up message. Uploaded photos get a
Telegram file id; the album sender hands the new ones back so the caller keeps them (through
the recommender) before the buttons go out, and the next album re-sends them instead of
uploading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from telegram import Bot, InputMediaPhoto, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.chat import buttons, replies
from bot.core.recommender import Match, ResultPage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentAlbum:
    page: ResultPage
    """The matches that were sent (those whose photo is still there), in order."""
    new_file_ids: dict[int, str]
    """File ids Telegram gave the photos uploaded now: item key → file id."""


async def send_album(bot: Bot, chat_id: int, page: ResultPage) -> SentAlbum | None:
    """Send ``page`` as an album; items whose photo went missing from disk are left out.

    None when none is left: the shopper has been told nothing was found.
    """
    matches = [match for match in page.matches if _sendable(match)]
    if not matches:
        await bot.send_message(chat_id, replies.NO_MATCHES)
        return None
    page = ResultPage(page.search_id, matches)
    try:
        sent = await _send_album(bot, chat_id, page, use_cached_files=True)
    except BadRequest as error:
        # A cached file id can stop working (e.g. the bot token changed): upload instead.
        log.warning("album with cached file ids refused (%s); uploading the photos", error)
        sent = await _send_album(bot, chat_id, page, use_cached_files=False)
    return SentAlbum(page, _new_file_ids(page, sent))


async def send_buttons(bot: Bot, chat_id: int, page: ResultPage) -> None:
    """The message under an album with its buttons (albums cannot carry any)."""
    with_colours = [match.variants > 0 for match in page.matches]
    text = replies.RESULTS_HEADER
    if any(with_colours):
        text += "\n" + replies.COLOURS_HINT
    await bot.send_message(
        chat_id,
        text,
        reply_markup=buttons.results_keyboard(
            page.search_id, [match.item.key for match in page.matches], with_colours
        ),
    )


def _sendable(match: Match) -> bool:
    if match.item.telegram_file_id or Path(match.item.item.image_path).is_file():
        return True
    log.warning("catalog image missing: %s", match.item.item.image_path)
    return False


async def _send_album(
    bot: Bot, chat_id: int, page: ResultPage, *, use_cached_files: bool
) -> list[Message]:
    media = []
    for position, match in enumerate(page.matches, start=1):
        stored = match.item
        photo = stored.telegram_file_id if use_cached_files else None
        media.append(
            InputMediaPhoto(
                photo or Path(stored.item.image_path).read_bytes(),
                caption=replies.caption(position, stored.item),
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
