"""What the bot says: message texts and album captions (no I/O here; buttons: :mod:`.buttons`)."""

from __future__ import annotations

import html

from storage.models import CatalogItem

HELP = (
    "👗 Send me a photo of a piece of clothing (or anything whose look you like) and I'll "
    "show you the five most similar items from our shop.\n"
    "Tap a number under the results to search from that item, or “More like this” for the next "
    "five. A photo or an image file (JPEG, PNG, WebP) both work."
)
TOO_LARGE = "That image is too large for me ({size}). Please send one under {limit}."
UNSUPPORTED_FILE = (
    "I can't read that kind of file. Please send a photo, or an image file (JPEG, PNG or WebP)."
)
CATALOG_EMPTY = (
    "The shop's catalog isn't loaded yet, so I have nothing to compare with. "
    "Please try again later."
)
NO_MATCHES = "I couldn't find anything similar in the catalog."
NO_MORE = "That's everything similar I have for this search."
NO_OTHER_COLOURS = "That item has no other colours in stock right now."
SEARCH_EXPIRED = "This search has expired (the catalog was updated). Please send the photo again."
ITEM_GONE = "That item is no longer in the catalog. Please send a photo to search again."
ONE_MOMENT = (
    "One moment, please: that's a lot of searches at once. Send your next photo in about "
    "{seconds} s."
)
FAILED = "Sorry, something went wrong on my side. Please try again in a moment."
NOT_ADMIN = "Sorry, that command is only for the shop's admins."
RESULTS_HEADER = "Tap a number to see items like it, or ask for more."
COLOURS_HINT = "🎨 and a number: the same item in its other colours."


def caption(position: int, item: CatalogItem) -> str:
    """An album caption (HTML): name, article type, colour, and price/link when known."""
    lines = [f"<b>{position}. {html.escape(item.name)}</b>"]
    details = [
        value for value in (item.brand, item.article_type, item.base_colour, item.gender) if value
    ]
    if details:
        lines.append(html.escape(" · ".join(details)))
    shop = []
    if item.price:
        shop.append(html.escape(item.price))
    if item.url and item.url.startswith(("https://", "http://")):
        shop.append(f'<a href="{html.escape(item.url, quote=True)}">View in shop</a>')
    if shop:
        lines.append(" · ".join(shop))
    return "\n".join(lines)[:1024]


def human_size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"
