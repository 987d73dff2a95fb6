"""The inline buttons under an album and their callback data, encoded and matched in one place.

Callback data stays far below Telegram's 64-byte limit: a prefix and an integer. Each kind
has a pattern the application routes by (``CallbackQueryHandler(pattern=...)``); a handler
reads the number with :func:`number`, which is None for a press the pattern did not match
(python-telegram-bot routes a press without data to every pattern).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import CallbackContext

# At most 18 digits: anything longer is forged, and would not fit SQLite's 64-bit integers.
MORE_LIKE_THIS = re.compile(r"more:([0-9]{1,18})\Z")
"""More like this: the next page of search ``<search id>``."""
SEARCH_FROM_ITEM = re.compile(r"item:([0-9]{1,18})\Z")
"""An item's number: a new search from catalog item ``<item key>``."""
COLOURS_OF = re.compile(r"colours:([0-9]{1,18})\Z")
"""🎨 and an item's number: the other colours (variants) of catalog item ``<item key>``."""


def more_like_this(search_id: int) -> str:
    return f"more:{search_id}"


def search_from_item(item_key: int) -> str:
    return f"item:{item_key}"


def colours_of(item_key: int) -> str:
    return f"colours:{item_key}"


def number(context: CallbackContext) -> int | None:
    """The integer in the callback data the handler's pattern matched, if it matched."""
    match = context.match
    return int(match.group(1)) if isinstance(match, re.Match) else None


def results_keyboard(
    search_id: int, item_keys: Sequence[int], with_colours: Sequence[bool] = ()
) -> InlineKeyboardMarkup:
    """One button per shown item (new search from it), "🎨 n" for each shown item that has
    other colours in stock (``with_colours``, by position), and "More like this"."""
    numbers = [
        InlineKeyboardButton(str(position), callback_data=search_from_item(key))
        for position, key in enumerate(item_keys, start=1)
    ]
    colours = [
        InlineKeyboardButton(f"🎨 {position}", callback_data=colours_of(key))
        for position, (key, has) in enumerate(zip(item_keys, with_colours, strict=False), start=1)
        if has
    ]
    more = InlineKeyboardButton("More like this", callback_data=more_like_this(search_id))
    return InlineKeyboardMarkup([numbers, *([colours] if colours else []), [more]])
