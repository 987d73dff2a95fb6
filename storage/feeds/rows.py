"""The records a feed reader hands to the ingest."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.models import CatalogItem


@dataclass(frozen=True)
class ListedItem:
    """One product as the feed lists it, before its image is fetched."""

    item: CatalogItem
    """``image_path`` is "" here: the ingest fills it once the image is fetched."""
    images: tuple[str, ...]
    """Main image first, then additional ones: http(s) URLs or absolute local paths."""


@dataclass(frozen=True)
class FeedRow:
    listed: ListedItem | None
    where: str
    """``line 12`` (CSV/TSV: the 1-based file line the record starts on) or ``item 3`` (XML)."""
    problem: str | None = None
    """Why this row is unusable (``listed`` is None then)."""


@dataclass(frozen=True)
class Feed:
    format: str
    """The concrete format read: never ``auto``."""
    rows: list[FeedRow]
    columns: dict[str, str] = field(default_factory=dict)
    """For the ``csv`` format: our field → the file's column it was read from."""
