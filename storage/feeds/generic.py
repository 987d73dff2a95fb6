"""Any CSV/TSV: columns named by a mapping (our field → the file's column) or guessed from
common header names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from storage.feeds import fields
from storage.feeds.rows import FeedRow, ListedItem
from storage.feeds.text import column_list, read_table, surplus
from storage.models import CatalogItem
from storage.source import CatalogSourceError

SYNONYMS: dict[str, tuple[str, ...]] = {
    "id": ("sku",),
    "title": ("name",),
    "image": ("image_url", "picture"),
    "additional_images": (),
    "link": ("url",),
    "price": (),
    "sale_price": (),
    "colour": ("color",),
    "type": ("article_type", "category"),
    "gender": (),
    "age_group": (),
    "brand": (),
    "group": ("group_id", "item_group_id"),
    "availability": ("stock", "in_stock"),
}
"""Our fields, in the order ``Feed.columns`` lists them, and the other names a mapping may use."""

_GUESSES: dict[str, tuple[str, ...]] = {
    "id": ("id", "sku", "productid", "itemid", "offerid", "articleid", "code"),
    "title": ("title", "name", "productname", "producttitle", "productdisplayname", "itemname"),
    "image": (
        "image",
        "imageurl",
        "imagelink",
        "picture",
        "pictureurl",
        "imagesrc",
        "mainimage",
        "photo",
        "img",
    ),
    "additional_images": (
        "additionalimages",
        "additionalimagelink",
        "additionalimagelinks",
        "additionalimageurls",
        "extraimages",
        "moreimages",
    ),
    "link": ("link", "url", "producturl", "productlink", "pageurl", "productpage"),
    "price": ("price", "regularprice", "listprice"),
    "sale_price": ("saleprice", "specialprice", "discountprice", "offerprice"),
    "colour": ("colour", "color", "basecolour", "basecolor", "colourname", "colorname"),
    "type": (
        "type",
        "articletype",
        "producttype",
        "category",
        "productcategory",
        "googleproductcategory",
    ),
    "gender": ("gender", "sex"),
    "age_group": ("agegroup", "age"),
    "brand": ("brand", "vendor", "manufacturer"),
    "group": ("group", "groupid", "itemgroupid", "parentid", "parentsku"),
    "availability": (
        "availability",
        "stock",
        "instock",
        "stockstatus",
        "stockquantity",
        "quantity",
        "qty",
        "inventory",
    ),
}


def _field_key(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().lower())


_FIELD_NAMES = {
    _field_key(name): field for field, synonyms in SYNONYMS.items() for name in (field, *synonyms)
}


def field_name(name: str) -> str:
    """Our field a mapping names (``color`` → ``colour``); CatalogSourceError if none."""
    field = _FIELD_NAMES.get(_field_key(name))
    if field is None:
        raise CatalogSourceError(
            f"mapping: unknown field {name.strip()!r}; known fields: {', '.join(SYNONYMS)}"
        )
    return field


def parse_mapping(text: str) -> dict[str, str]:
    """``title=name,image=image_url`` or a mapping file's text (``field = column`` a line,
    whole-line ``#`` comments, blank lines) → {our field: column}. A column name may hold
    spaces, and commas too when no ``=`` follows them on its line."""
    mapping: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs: list[str] = []
        for piece in line.split(","):
            if "=" not in piece and pairs:
                pairs[-1] += "," + piece
            else:
                pairs.append(piece)
        for pair in pairs:
            name, equals, column = pair.partition("=")
            if not equals or not name.strip() or not column.strip():
                raise CatalogSourceError(
                    f"mapping: {pair.strip()!r} is not 'field=column' (e.g. title=Product Name)"
                )
            field = field_name(name)
            if field in mapping:
                raise CatalogSourceError(f"mapping: {field} is mapped twice")
            mapping[field] = column.strip()
    return mapping


def _guess_key(column: str) -> str:
    return re.sub(r"[\s_-]+", "", column.lower())


def _columns(path: Path, header: list[str], mapping: Mapping[str, str] | None) -> dict[str, int]:
    by_name: dict[str, int] = {}
    by_guess: dict[str, int] = {}
    for position, column in enumerate(header):
        by_name.setdefault(column.strip().lower(), position)
        by_guess.setdefault(_guess_key(column), position)
    chosen: dict[str, int] = {}
    for name, column in (mapping or {}).items():
        field = field_name(name)
        position = by_name.get(column.strip().lower())
        if position is None:
            raise CatalogSourceError(
                f"{path}: mapping {field}={column.strip()}: no such column"
                f" (columns: {column_list(header)})"
            )
        chosen[field] = position
    for field, guesses in _GUESSES.items():
        if field in chosen:
            continue
        taken = set(chosen.values())
        position = next(
            (by_guess[g] for g in guesses if g in by_guess and by_guess[g] not in taken), None
        )
        if position is not None:
            chosen[field] = position
    for required in ("id", "image"):
        if required not in chosen:
            raise CatalogSourceError(
                f"{path}: no {required} column found; map one with --map {required}=COLUMN"
                f" (columns: {column_list(header)})"
            )
    return {field: chosen[field] for field in SYNONYMS if field in chosen}


def read_generic(
    path: Path, text: str, mapping: Mapping[str, str] | None
) -> tuple[list[FeedRow], dict[str, str]]:
    """The rows, and which column each field was read from (field → column as in the file)."""
    header, records = read_table(path, text)
    columns = _columns(path, header, mapping)
    base = path.absolute().parent
    rows = []
    for line, record in records:
        where = f"line {line}"
        if problem := surplus(header, record):
            rows.append(FeedRow(None, where, problem))
            continue
        values = {
            field: fields.clean(record[position]) if position < len(record) else None
            for field, position in columns.items()
        }
        rows.append(_row(values, where, base))
    return rows, {field: header[position].strip() for field, position in columns.items()}


def _row(values: dict[str, str | None], where: str, base: Path) -> FeedRow:
    try:
        item_id = fields.item_id(values.get("id"))
    except fields.RowProblem as problem:
        return FeedRow(None, where, str(problem))
    try:
        main = values.get("image")
        if main is None:
            raise fields.RowProblem("missing image")
        extra = fields.split_list(values.get("additional_images"))
        images = fields.images([main, *extra], base)
        master, sub, article = fields.category(values.get("type"))
        item = CatalogItem(
            id=item_id,
            name=values.get("title") or f"Item {item_id}",
            image_path="",
            gender=fields.gender(values.get("gender"), values.get("age_group")),
            master_category=master,
            sub_category=sub,
            article_type=article,
            base_colour=fields.colour(values.get("colour")),
            price=fields.price_text(values.get("price"), values.get("sale_price")),
            url=fields.link(values.get("link")),
            brand=values.get("brand"),
            group_id=values.get("group"),
            available=fields.available(values.get("availability"), generic=True),
        )
    except fields.RowProblem as problem:
        return FeedRow(None, where, f"id {item_id}: {problem}")
    return FeedRow(ListedItem(item, images), where)
