"""Google Merchant Center feeds: TSV/CSV with Merchant column names, RSS 2.0 and Atom."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from storage.feeds import fields
from storage.feeds.rows import FeedRow, ListedItem
from storage.feeds.text import column_list, local_name, parse_xml, read_table, surplus
from storage.models import CatalogItem
from storage.source import CatalogSourceError

GOOGLE = "{http://base.google.com/ns/1.0}"
ATOM = "{http://www.w3.org/2005/Atom}"
_FALLBACKS = ("id", "title", "link")
"""Fields that plain RSS elements and Atom's own ``<id>``, ``<title>``, ``<link href>`` give
when the ``g:`` element is absent."""

Values = dict[str, list[str]]


def merchant_key(column: str) -> str:
    """``image link``, ``Image_Link`` and ``g:image_link`` all name ``image_link``."""
    key = re.sub(r"[\s_]+", "_", column.strip().lower())
    return key.removeprefix("g:")


def read_merchant(path: Path, text: str) -> list[FeedRow]:
    if text.lstrip().startswith("<"):
        return _read_xml(path, text)
    return _read_table(path, text)


def _read_table(path: Path, text: str) -> list[FeedRow]:
    header, records = read_table(path, text)
    keys = [merchant_key(column) for column in header]
    for required in ("id", "image_link"):
        if required not in keys:
            raise CatalogSourceError(
                f"{path}: no '{required}' column for a Merchant feed"
                f" (columns: {column_list(header)})"
            )
    base = path.absolute().parent
    rows = []
    for line, record in records:
        where = f"line {line}"
        if problem := surplus(header, record):
            rows.append(FeedRow(None, where, problem))
            continue
        values: Values = {}
        for key, value in zip(keys, record, strict=False):
            value = value.strip()
            if not value:
                continue
            if key == "additional_image_link":
                values.setdefault(key, []).extend(fields.split_list(value))
            else:
                values.setdefault(key, []).append(value)
        rows.append(merchant_row(values, where, base))
    return rows


def _read_xml(path: Path, text: str) -> list[FeedRow]:
    root = parse_xml(path, text)
    if root.tag == "rss":
        entries = root.findall("channel/item")
    elif root.tag in (f"{ATOM}feed", "feed"):
        entries = root.findall(f"{ATOM}entry") + root.findall("entry")
    else:
        raise CatalogSourceError(
            f"{path}: not a Merchant RSS or Atom feed (root element <{local_name(root.tag)}>)"
        )
    base = path.absolute().parent
    return [
        merchant_row(_entry_values(entry), f"item {number}", base)
        for number, entry in enumerate(entries, start=1)
    ]


def _entry_values(entry: ElementTree.Element) -> Values:
    values: Values = {}
    fallback: Values = {}
    for child in entry:
        if child.tag.startswith(GOOGLE):
            key, target = child.tag[len(GOOGLE) :], values
        elif child.tag.startswith(ATOM) or not child.tag.startswith("{"):
            key, target = local_name(child.tag), fallback
        else:
            continue
        if key == "link" and "href" in child.attrib:
            if child.get("rel", "alternate") != "alternate":
                continue
            value = child.get("href", "")
        else:
            value = "".join(child.itertext())
        value = value.strip()
        if value:
            target.setdefault(key, []).append(value)
    for key in _FALLBACKS:
        if key not in values and key in fallback:
            values[key] = fallback[key]
    return values


def merchant_row(values: Values, where: str, base: Path) -> FeedRow:
    """One Merchant item (from any of the three syntaxes) as a feed row."""

    def first(key: str) -> str | None:
        return next(iter(values.get(key, ())), None)

    try:
        item_id = fields.item_id(first("id"))
    except fields.RowProblem as problem:
        return FeedRow(None, where, str(problem))
    try:
        main = first("image_link")
        if main is None:
            raise fields.RowProblem("missing image_link")
        images = fields.images([main, *values.get("additional_image_link", [])], base)
        master, sub, article = fields.category(first("product_type"))
        if article is None:
            master, sub, article = fields.category(first("google_product_category"))
        item = CatalogItem(
            id=item_id,
            name=first("title") or f"Item {item_id}",
            image_path="",
            gender=fields.gender(first("gender"), first("age_group")),
            master_category=master,
            sub_category=sub,
            article_type=article,
            base_colour=fields.colour(first("color")),
            price=fields.price_text(first("price"), first("sale_price")),
            url=fields.link(first("link")),
            brand=first("brand"),
            group_id=first("item_group_id"),
            available=fields.available(first("availability")),
        )
    except fields.RowProblem as problem:
        return FeedRow(None, where, f"id {item_id}: {problem}")
    return FeedRow(ListedItem(item, images), where)
