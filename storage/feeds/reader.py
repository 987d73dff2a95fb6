"""Which reader a feed file needs, and reading it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from storage.feeds.fashion import read_fashion
from storage.feeds.generic import read_generic
from storage.feeds.merchant import merchant_key, read_merchant
from storage.feeds.rows import Feed
from storage.feeds.shopify import read_shopify
from storage.feeds.text import header_line, read_text
from storage.source import CatalogSourceError

FORMATS = ("auto", "merchant", "shopify", "csv", "fashion")


def read_feed(
    path: Path,
    format: str = "auto",
    mapping: Mapping[str, str] | None = None,
    *,
    images_dir: Path | None = None,
    shop_url: str | None = None,
) -> Feed:
    """Every record of a feed file on disk as a row; CatalogSourceError (one line) for a feed
    that cannot be read at all. ``mapping`` (our field → column) is for the ``csv`` format,
    ``images_dir`` for ``fashion`` (default: ``images`` beside the file), ``shop_url`` for
    ``shopify`` (items get ``<shop_url>/products/<handle>`` as their link)."""
    path = Path(path)
    if format not in FORMATS:
        raise CatalogSourceError(f"unknown feed format {format!r}; known: {', '.join(FORMATS)}")
    text = read_text(path)
    concrete = _detect(text) if format == "auto" else format
    if mapping and concrete != "csv":
        raise CatalogSourceError(
            f"{path} reads as the {concrete} format, which takes no column mapping"
            " (use format csv to map its columns)"
        )
    if concrete == "merchant":
        return Feed(concrete, read_merchant(path, text))
    if concrete == "shopify":
        return Feed(concrete, read_shopify(path, text, shop_url))
    if concrete == "fashion":
        return Feed(concrete, read_fashion(path, images_dir))
    rows, columns = read_generic(path, text, mapping)
    return Feed(concrete, rows, columns)


def detect_format(path: Path) -> str:
    """``merchant`` (XML, or Merchant column names), ``shopify``, ``fashion`` or ``csv``."""
    return _detect(read_text(Path(path)))


def _detect(text: str) -> str:
    if text.lstrip().startswith("<"):
        return "merchant"
    header = header_line(text)
    names = {column.strip().lower() for column in header}
    if {"handle", "title"} <= names and names & {"variant price", "image src"}:
        return "shopify"
    if {"id", "image_link"} <= {merchant_key(column) for column in header}:
        return "merchant"
    if "id" in names and names & {"productdisplayname", "articletype"}:
        return "fashion"
    return "csv"
