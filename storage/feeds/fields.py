"""Field rules every feed format shares: ids, gender, colour, category paths, prices, stock,
image references and links. A value that makes the row unusable raises :class:`RowProblem`."""

from __future__ import annotations

import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

MAX_ID_LENGTH = 100

_MALE = {"male", "men", "man", "m", "mens", "men's"}
_FEMALE = {"female", "women", "woman", "f", "womens", "women's"}
_UNISEX = {"unisex"}
_CHILD_AGES = {"kids", "toddler", "infant", "newborn"}

_AVAILABLE = {"in_stock", "preorder", "backorder"}
_UNAVAILABLE = {"out_of_stock"}
_YES = {"yes", "y", "true", "available"}
_NO = {"no", "n", "false", "sold_out", "unavailable"}

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_NUMBER = re.compile(
    r"(?P<minus>-?)(?:"
    r"(?P<head>\d{1,3})(?P<groups>(?P<sep>[.,'\u00a0\u2009\u202f ])\d{3}(?!\d)"
    r"(?:(?P=sep)\d{3}(?!\d))*)(?:(?!(?P=sep))[.,](?P<tail>\d+))?"
    r"|(?P<plain>\d+(?:[.,]\d+)?))"
)
"""A number as shops write prices: digits grouped in threes by spaces (``1 299 ₽``),
apostrophes (``1'299 CHF``), dots or commas (``1.299,00 €``, ``$1,299.00``), or plain."""
_THREE_DECIMALS = re.compile(r"\b(?:BHD|IQD|JOD|KWD|LYD|OMR|TND)\b", re.IGNORECASE)
"""Currencies written with three decimals: ``12.500 KWD`` is twelve and a half."""


class RowProblem(ValueError):
    """The row cannot become a catalog item; the message says why (one line)."""


def clean(value: str | None) -> str | None:
    """Surrounding whitespace stripped; an empty value is None."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def item_id(value: str | None) -> str:
    """The shop's product id: printable text of at most 100 characters."""
    value = clean(value)
    if value is None:
        raise RowProblem("missing id")
    if len(value) > MAX_ID_LENGTH:
        raise RowProblem(f"id {value[:20]!r}… is longer than {MAX_ID_LENGTH} characters")
    if not value.isprintable():
        raise RowProblem(f"id {value!r} has control characters")
    return value


def gender(value: str | None, age_group: str | None = None) -> str | None:
    """The Fashion Product Images vocabulary: Men, Women, Unisex, Boys, Girls, Kids."""
    value, age = clean(value), clean(age_group)
    child = age is not None and age.lower() in _CHILD_AGES
    key = value.lower() if value else None
    if key in _MALE:
        return "Boys" if child else "Men"
    if key in _FEMALE:
        return "Girls" if child else "Women"
    if key is None or key in _UNISEX:
        if child:
            return "Kids"
        return "Unisex" if key else None
    return value.title() if value else None


def colour(value: str | None) -> str | None:
    """The first colour of ``Blue/White`` or ``Blue, White``, title-cased."""
    value = clean(value)
    if value is None:
        return None
    return clean(re.split(r"[/,]", value, maxsplit=1)[0].title())


def category(path: str | None) -> tuple[str | None, str | None, str | None]:
    """(master_category, sub_category, article_type) from ``A > B > C``; a numeric category
    id alone (Google's) gives nothing."""
    path = clean(path)
    if path is None or path.isdigit():
        return None, None, None
    segments = [segment.strip() for segment in path.split(">") if segment.strip()]
    if not segments:
        return None, None, None
    if len(segments) == 1:
        return None, None, segments[0]
    return segments[0], segments[-2], segments[-1]


def amount(text: str | None) -> Decimal | None:
    """The number in a price text (``19.99 USD``, ``$1,299.00``, ``19,99 EUR``,
    ``1 299 ₽``, ``1.299,00 EUR``), if any.

    One dot or comma before three digits groups thousands (``$1,299``, ``1.299 EUR``) unless
    the whole part is 0 or the currency has three decimals (``0.999``, ``12.500 KWD``).
    """
    text = text or ""
    match = _NUMBER.search(text)
    if match is None:
        return None
    if match["plain"] is not None:
        number = match["plain"].replace(",", ".")
    else:
        head, groups, sep, tail = match["head"], match["groups"], match["sep"], match["tail"]
        decimal = (
            sep in ".," and groups.count(sep) == 1 and tail is None
            and (head == "0" or _THREE_DECIMALS.search(text) is not None)
        )  # fmt: skip
        if decimal:
            number = f"{head}.{groups[1:]}"
        else:
            number = head + groups.replace(sep, "") + (f".{tail}" if tail else "")
    return Decimal(match["minus"] + number)


def price_text(price: str | None, sale_price: str | None = None) -> str | None:
    """``19.99 USD``, or ``14.99 USD (was 19.99 USD)`` with a sale price below the price."""
    price, sale_price = clean(price), clean(sale_price)
    if sale_price is None or sale_price == price:
        return price
    if price is None:
        return sale_price
    regular, sale = amount(price), amount(sale_price)
    if regular is not None and sale is not None and sale >= regular:
        return price
    return f"{sale_price} (was {price})"


def available(value: str | None, *, generic: bool = False) -> bool:
    """Merchant availability (in_stock, out_of_stock, preorder, backorder; absent: in stock).
    ``generic`` also takes yes/no/true/false and a stock quantity (> 0: available)."""
    value = clean(value)
    if value is None:
        return True
    key = re.sub(r"[\s-]+", "_", value.lower())
    if key in _AVAILABLE:
        return True
    if key in _UNAVAILABLE:
        return False
    if generic:
        if key in _YES:
            return True
        if key in _NO:
            return False
        try:
            return Decimal(value) > 0
        except InvalidOperation:
            pass
    expected = "in_stock, out_of_stock, preorder, backorder"
    if generic:
        expected += ", yes/no or a stock quantity"
    raise RowProblem(f"availability {value!r} not understood (expected {expected})")


def image(value: str, base_dir: Path) -> str:
    """An http(s) URL as given, or a local path made absolute (relative to the feed's folder)."""
    value = value.strip()
    if _SCHEME.match(value):
        parts = urlsplit(value)
        if parts.scheme.lower() in ("http", "https") and parts.netloc:
            return value
        if parts.scheme.lower() == "file":
            raise RowProblem(f"image {value!r}: file:// is not accepted, give a plain path")
        raise RowProblem(f"image {value!r} is neither an http(s) URL nor a file path")
    if value.startswith("//"):
        raise RowProblem(f"image {value!r} has no scheme: give an http(s) URL")
    if not value or not value.isprintable():
        raise RowProblem(f"image {value!r} is neither an http(s) URL nor a file path")
    return os.path.normpath(base_dir / value)


def images(values: list[str], base_dir: Path) -> tuple[str, ...]:
    """Each reference checked by :func:`image`, duplicates dropped, order kept."""
    return tuple(dict.fromkeys(image(value, base_dir) for value in values if value.strip()))


def link(value: str | None) -> str | None:
    """The product page: kept only when it is an http(s) URL (a shopper's button opens it)."""
    value = clean(value)
    if value is None:
        return None
    parts = urlsplit(value)
    return value if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def split_list(value: str | None) -> list[str]:
    """A comma-separated list of values, blanks dropped."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]
