"""Plain records shared by the catalog store, the index and their callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class CatalogItem:
    """One product as the shop describes it. ``id`` is the shop's own product id (a string)."""

    id: str
    name: str
    image_path: str
    gender: str | None = None
    master_category: str | None = None
    sub_category: str | None = None
    article_type: str | None = None
    base_colour: str | None = None
    season: str | None = None
    year: int | None = None
    usage: str | None = None
    price: str | None = None
    url: str | None = None
    brand: str | None = None
    group_id: str | None = None
    """Variants of one product (colours of one shirt) share it: a page shows one of them."""
    available: bool = True
    """False for an out-of-stock item: kept in the catalog (and its vector), never shown."""
    origin: str = "feed"
    """``feed`` for items the catalog source lists, ``chat`` for those an admin added with
    /add: a reindex of the source neither removes nor overwrites the latter."""


@dataclass(frozen=True)
class StoredItem:
    """A catalog item as stored: ``key`` is the integer the vector index knows it by."""

    key: int
    item: CatalogItem
    image_sha256: str | None
    telegram_file_id: str | None


@dataclass(frozen=True)
class SearchSession:
    """A shopper's query, kept in SQLite so "More like this" survives a restart."""

    id: int
    chat_id: int
    model: str
    vector: bytes
    shown: tuple[int, ...]
    colour: bytes | None = None
    """The query's colour descriptor (float32); None for searches stored before colours."""
    filters: dict[str, Any] = field(default_factory=dict)
    """What the shopper narrowed the search to (the recommender's ``Filters``, as JSON)."""
    seen: dict[str, Any] = field(default_factory=dict)
    """What the search saw in its query (garment type, colour), which its refinements use."""
    pages: tuple[tuple[int, ...], ...] = ()
    """The item keys of each page shown, in order; ``shown`` also holds the item a search
    from an item started with."""


@dataclass(frozen=True)
class Vote:
    """A shopper's 👍 (+1) or 👎 (-1) on one page of a search, with what they were shown."""

    search_id: int
    page: int
    vote: int
    model: str
    vector: bytes
    items: tuple[str, ...]
    """The shop's ids of the page's items, in the order shown."""
    filters: dict[str, Any]
    seen: dict[str, Any]
    voted_at: float


Labels = tuple[str | None, str | None, str | None]
"""An item's (article type, base colour, gender)."""


@dataclass(frozen=True)
class Facets:
    """What the items in stock are labelled with: what a search can be narrowed to."""

    labels: frozenset[Labels] = frozenset()
    """Every combination of labels some item in stock has."""
    priced: bool = False
    """Whether any item has a price."""

    @cached_property
    def article_types(self) -> frozenset[str]:
        return self._present(0)

    @cached_property
    def base_colours(self) -> frozenset[str]:
        return self._present(1)

    @cached_property
    def genders(self) -> frozenset[str]:
        return self._present(2)

    def _present(self, position: int) -> frozenset[str]:
        return frozenset(value for labels in self.labels if (value := labels[position]))
