"""What a shopper narrowed a search to, and the refinements offered under a page.

A refinement is built from what the search saw (:class:`Seen`: the garment type and colour of
the photo, or of the item it started from) and what the catalog holds in stock
(:class:`storage.models.Facets`): "Only Jeans" is offered only where the shop has jeans, and
"Kids" under "Only Jeans" only where it has children's jeans.
Filters are stored with the search as JSON, so they survive a restart and apply to its next
pages too.
"""

from __future__ import annotations

import statistics
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from storage.feeds.fields import amount
from storage.models import CatalogItem, Facets, Labels

GENDERS: Mapping[str, frozenset[str]] = {
    "Men": frozenset({"Men", "Unisex"}),
    "Women": frozenset({"Women", "Unisex"}),
    "Kids": frozenset({"Boys", "Girls", "Kids"}),
}
"""A gender filter → the catalog genders it shows (unisex items are for men and women)."""


class Refinement(StrEnum):
    """A refinement button; its value is what the callback data carries."""

    SAME_COLOUR = "c"
    OTHER_COLOURS = "o"
    ONLY_TYPE = "t"
    MEN = "gm"
    WOMEN = "gw"
    KIDS = "gk"
    CHEAPER = "p"
    CLEAR = "x"

    @property
    def gender(self) -> str | None:
        return {"gm": "Men", "gw": "Women", "gk": "Kids"}.get(self.value)


GENDER_REFINEMENTS = (Refinement.MEN, Refinement.WOMEN, Refinement.KIDS)


@dataclass(frozen=True)
class Seen:
    """What a search saw in its query, in the catalog's words: what "Same colour" and "Only
    <type>" narrow to. ``looks_like_*``: what the trained model saw in a shopper's photo, when
    it is confident enough to say so ("Looks like: blue jeans"); None otherwise."""

    article_type: str | None = None
    base_colour: str | None = None
    looks_like_type: str | None = None
    looks_like_colour: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> Seen:
        return cls(**{name: stored.get(name) for name in cls.__dataclass_fields__})

    @classmethod
    def of_item(cls, item: CatalogItem) -> Seen:
        return cls(item.article_type, item.base_colour)


@dataclass(frozen=True)
class Filters:
    article_type: str | None = None
    colour: str | None = None
    not_colour: str | None = None
    """Any colour but this one (the "Other colours" refinement)."""
    gender: str | None = None
    """A key of :data:`GENDERS`."""
    max_price: float | None = None
    """Only items whose price is below this."""

    @property
    def active(self) -> bool:
        return self != Filters()

    def admits(self, item: CatalogItem) -> bool:
        if not self.admits_labels((item.article_type, item.base_colour, item.gender)):
            return False
        if self.max_price is not None:
            price = price_of(item)
            return price is not None and price < self.max_price
        return True

    def admits_labels(self, labels: Labels) -> bool:
        """Whether an item with these labels may pass (its price aside)."""
        article_type, colour, gender = labels
        if self.article_type is not None and not _same(article_type, self.article_type):
            return False
        if self.colour is not None and not _same(colour, self.colour):
            return False
        if self.not_colour is not None and _same(colour, self.not_colour):
            return False
        return self.gender is None or gender in GENDERS.get(self.gender, ())

    def to_json(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> Filters:
        values = {name: stored.get(name) for name in cls.__dataclass_fields__}
        if values["gender"] not in (None, *GENDERS):
            values["gender"] = None
        return cls(**values)

    def refined(self, refinement: Refinement, seen: Seen, page: Sequence[CatalogItem]) -> Filters:
        """These filters with ``refinement`` applied (on top of the others)."""
        if refinement is Refinement.CLEAR:
            return Filters()
        if refinement is Refinement.SAME_COLOUR:
            return replace(self, colour=seen.base_colour, not_colour=None)
        if refinement is Refinement.OTHER_COLOURS:
            return replace(
                self, article_type=seen.article_type, colour=None, not_colour=seen.base_colour
            )
        if refinement is Refinement.ONLY_TYPE:
            return replace(self, article_type=seen.article_type)
        if refinement is Refinement.CHEAPER:
            below = cheaper_than(page)
            if below is None:
                return self
            return replace(self, max_price=min(below, self.max_price or below))
        return replace(self, gender=refinement.gender)


NO_FILTERS = Filters()
NOTHING_SEEN = Seen()


def offered(
    seen: Seen, filters: Filters, facets: Facets, page: Sequence[CatalogItem]
) -> list[Refinement]:
    """The refinements worth a button under ``page``: each changes these filters to ones some
    item in stock passes (its price aside), so none leads to an empty page for want of items
    with those labels."""
    colour, kind = seen.base_colour, seen.article_type
    candidates = [
        *([Refinement.SAME_COLOUR] if colour else []),
        *([Refinement.OTHER_COLOURS] if colour and kind else []),
        *([Refinement.ONLY_TYPE] if kind else []),
        *GENDER_REFINEMENTS,
    ]
    found = []
    for refinement in candidates:
        narrowed = filters.refined(refinement, seen, page)
        if narrowed != filters and any(map(narrowed.admits_labels, facets.labels)):
            found.append(refinement)
    if facets.priced and cheaper_than(page) is not None:
        found.append(Refinement.CHEAPER)
    if filters.active:
        found.append(Refinement.CLEAR)
    return found


def price_of(item: CatalogItem) -> float | None:
    """The price an item sells at (the sale price when there is one: it is written first)."""
    value = amount(item.price)
    return None if value is None else float(value)


def cheaper_than(page: Sequence[CatalogItem]) -> float | None:
    """What "Cheaper" keeps below: the page's median price, a price on the page (the lower
    middle one of an even count); None when the page shows no price."""
    prices = [price for item in page if (price := price_of(item)) is not None]
    return statistics.median_low(prices) if prices else None


def most_common(values: Iterable[str | None]) -> str | None:
    """The most frequent label (the first seen on a tie), None when there is none."""
    counts = Counter(value for value in values if value)
    return counts.most_common(1)[0][0] if counts else None


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _same(label: str | None, wanted: str) -> bool:
    """Equal labels, ASCII letters in any case: what SQLite's ``COLLATE NOCASE`` matches, so
    a narrowed search lets the same items through on either path."""
    return label is not None and label.translate(_ASCII_LOWER) == wanted.translate(_ASCII_LOWER)
