"""The inline buttons under an album and their callback data, encoded and matched in one place.

Callback data stays far below Telegram's 64-byte limit: a prefix and integers (at most
``refine:`` + 18 + 1 + 6 + 1 + 2 = 35 bytes). Each kind has a pattern the application routes by
(``CallbackQueryHandler(pattern=...)``); a handler reads the numbers with :func:`number` and
:func:`groups`, which are None for a press the pattern did not match (python-telegram-bot
routes a press without data to every pattern).
"""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import CallbackContext

from bot.chat.replies import Texts, shop_link
from bot.core.filters import GENDER_REFINEMENTS, Refinement, Seen
from bot.core.recommender import ResultPage

# At most 18 digits: anything longer is forged, and would not fit SQLite's 64-bit integers.
MORE_LIKE_THIS = re.compile(r"more:([0-9]{1,18})\Z")
"""More like this: the next page of search ``<search id>``."""
SEARCH_FROM_ITEM = re.compile(r"item:([0-9]{1,18})\Z")
"""An item's number: a new search from catalog item ``<item key>``."""
COLOURS_OF = re.compile(r"colours:([0-9]{1,18})\Z")
"""🎨 and an item's number: the other colours (variants) of catalog item ``<item key>``."""
REFINE = re.compile(
    r"refine:([0-9]{1,18}):([0-9]{1,6}):("
    + "|".join(refinement.value for refinement in Refinement)
    + r")\Z"
)
"""A refinement under page ``<page>``: search ``<search id>`` again, narrowed by
``<refinement>`` ("Cheaper" is below that page's median price)."""
VOTE = re.compile(r"vote:([0-9]{1,18}):([0-9]{1,6}):([ud])\Z")
"""👍 (``u``) or 👎 (``d``) on page ``<page>`` of search ``<search id>``."""

MAX_PER_ROW = 8
"""Telegram takes at most 8 buttons in a row."""


def more_like_this(search_id: int) -> str:
    return f"more:{search_id}"


def search_from_item(item_key: int) -> str:
    return f"item:{item_key}"


def colours_of(item_key: int) -> str:
    return f"colours:{item_key}"


def refine(search_id: int, page: int, refinement: Refinement) -> str:
    return f"refine:{search_id}:{page}:{refinement.value}"


def vote(search_id: int, page: int, up: bool) -> str:
    return f"vote:{search_id}:{page}:{'u' if up else 'd'}"


def number(context: CallbackContext) -> int | None:
    """The integer in the callback data the handler's pattern matched, if it matched."""
    found = groups(context)
    return int(found[0]) if found else None


def groups(context: CallbackContext) -> tuple[str, ...] | None:
    """What the handler's pattern captured from the callback data, if it matched."""
    match = context.match
    return match.groups() if isinstance(match, re.Match) else None


def results_keyboard(page: ResultPage, texts: Texts) -> InlineKeyboardMarkup:
    """Under an album: one button per shown item (a new search from it), 🛒 n for each item
    with a shop link, 🎨 n for each item with other colours in stock, the page's refinements,
    then More like this and 👍 / 👎."""
    keys = [match.item.key for match in page.matches]
    numbers = [
        InlineKeyboardButton(str(position), callback_data=search_from_item(key))
        for position, key in enumerate(keys, start=1)
    ]
    links = [
        InlineKeyboardButton(f"🛒 {position}", url=link)
        for position, match in enumerate(page.matches, start=1)
        if (link := shop_link(match.item.item.url))
    ]
    colours = [
        InlineKeyboardButton(f"🎨 {position}", callback_data=colours_of(match.item.key))
        for position, match in enumerate(page.matches, start=1)
        if match.variants
    ]
    last = [
        InlineKeyboardButton(texts.more_like_this, callback_data=more_like_this(page.search_id)),
        InlineKeyboardButton("👍", callback_data=vote(page.search_id, page.page, True)),
        InlineKeyboardButton("👎", callback_data=vote(page.search_id, page.page, False)),
    ]
    rows = [*_even_rows(numbers), *_even_rows(links), *_even_rows(colours)]
    rows += [*_refinement_rows(page, texts), last]
    return InlineKeyboardMarkup([row for row in rows if row])


def _even_rows(row: list[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    """``row`` split into rows of equal length within :data:`MAX_PER_ROW` (10 → 5 + 5)."""
    count = -(-len(row) // MAX_PER_ROW)
    if count <= 1:
        return [row]
    size = -(-len(row) // count)
    return [row[start : start + size] for start in range(0, len(row), size)]


def _refinement_rows(page: ResultPage, texts: Texts) -> list[list[InlineKeyboardButton]]:
    def button(refinement: Refinement) -> InlineKeyboardButton:
        label = refinement_label(refinement, page.seen, texts)
        data = refine(page.search_id, page.page, refinement)
        return InlineKeyboardButton(label, callback_data=data)

    offered = page.refinements
    look = (Refinement.SAME_COLOUR, Refinement.OTHER_COLOURS, Refinement.ONLY_TYPE)
    who = (*GENDER_REFINEMENTS, Refinement.CHEAPER)
    return [
        [button(refinement) for refinement in offered if refinement in group]
        for group in (look, who, (Refinement.CLEAR,))
    ]


def refinement_label(refinement: Refinement, seen: Seen, texts: Texts) -> str:
    labels = {
        Refinement.SAME_COLOUR: texts.same_colour.format(colour=seen.base_colour),
        Refinement.OTHER_COLOURS: texts.other_colours,
        Refinement.ONLY_TYPE: texts.only_type.format(type=seen.article_type),
        **{gender: texts.gender(gender.gender) for gender in GENDER_REFINEMENTS},
        Refinement.CHEAPER: texts.cheaper,
        Refinement.CLEAR: texts.clear_filters,
    }
    return labels[refinement]
