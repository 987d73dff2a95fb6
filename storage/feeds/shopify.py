"""Shopify's product CSV export: rows sharing a Handle are one product (its first row, the
variants, extra image rows); each colour of a product becomes one catalog item."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from storage.feeds import fields
from storage.feeds.rows import FeedRow, ListedItem
from storage.feeds.text import column_list, read_table, surplus
from storage.models import CatalogItem
from storage.source import CatalogSourceError

_COLOUR_OPTIONS = {"color", "colour"}
_VARIANT_COLUMNS = (
    "option1 value",
    "option2 value",
    "option3 value",
    "variant sku",
    "variant price",
    "variant compare at price",
    "variant inventory qty",
    "variant image",
)
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
_TAG_WORDS = {
    "men": ("male", None),
    "mens": ("male", None),
    "man": ("male", None),
    "male": ("male", None),
    "women": ("female", None),
    "womens": ("female", None),
    "woman": ("female", None),
    "female": ("female", None),
    "unisex": ("unisex", None),
    "kids": (None, "kids"),
    "kid": (None, "kids"),
    "children": (None, "kids"),
    "boys": ("male", "kids"),
    "girls": ("female", "kids"),
}

Row = dict[str, str]
Found = list[tuple[int, FeedRow]]
"""Rows with the file line they start on, for putting them in file order."""
ProductValue = Callable[[str], "str | None"]


@dataclass
class _Line:
    number: int
    values: Row

    def get(self, column: str) -> str | None:
        return fields.clean(self.values.get(column))


def read_shopify(path: Path, text: str, shop_url: str | None) -> list[FeedRow]:
    header, records = read_table(path, text)
    index: dict[str, int] = {}
    for position, column in enumerate(header):
        index.setdefault(column.strip().lower(), position)
    if "handle" not in index:
        raise CatalogSourceError(
            f"{path}: no 'Handle' column for a Shopify export (columns: {column_list(header)})"
        )
    base = path.absolute().parent
    found: Found = []
    products: dict[str, list[_Line]] = {}
    for number, record in records:
        if problem := surplus(header, record):
            found.append((number, FeedRow(None, f"line {number}", problem)))
            continue
        line = _Line(
            number, {name: record[i] if i < len(record) else "" for name, i in index.items()}
        )
        handle = line.get("handle")
        if handle is None:
            found.append((number, FeedRow(None, f"line {number}", "missing Handle")))
            continue
        products.setdefault(handle, []).append(line)
    for handle, lines in products.items():
        found.extend(_product(handle, lines, base, shop_url))
    return [row for _, row in sorted(found, key=lambda pair: pair[0])]


def _product(handle: str, lines: list[_Line], base: Path, shop_url: str | None) -> Found:
    def product(column: str) -> str | None:
        return next((value for line in lines if (value := line.get(column))), None)

    first = lines[0].number
    if (product("gift card") or "").lower() in _TRUE:
        return []
    variants = [line for line in lines if any(line.get(column) for column in _VARIANT_COLUMNS)]
    pictures = sorted(
        (line for line in lines if line.get("image src")),
        key=lambda line: (_position(line.get("image position")), line.number),
    )
    gallery = list(dict.fromkeys(line.get("image src") or "" for line in pictures))
    if not gallery and not any(line.get("variant image") for line in variants):
        return [(first, FeedRow(None, f"line {first}", f"Handle {handle}: no image"))]

    colour_option = next(
        (
            number
            for number in (1, 2, 3)
            if (product(f"option{number} name") or "").lower() in _COLOUR_OPTIONS
        ),
        None,
    )
    found: Found = []
    groups: dict[str | None, list[_Line]] = {}
    if colour_option is None:
        groups[None] = variants
    else:
        for line in variants:
            value = line.get(f"option{colour_option} value")
            if value is None:
                problem = f"Handle {handle}: variant without a colour value"
                found.append((line.number, FeedRow(None, f"line {line.number}", problem)))
            else:
                groups.setdefault(value, []).append(line)
    variant_images = {
        colour: list(dict.fromkeys(v for line in group if (v := line.get("variant image"))))
        for colour, group in groups.items()
    }

    for colour, group in groups.items():
        number = group[0].number if group else first
        where = f"line {number}"
        own = variant_images[colour]
        others = {
            image for key, shown in variant_images.items() if key != colour for image in shown
        }
        # Another colour's variant image would show (and embed) the wrong colour.
        rest = [image for image in gallery if image not in others or image in own]
        try:
            item_id = fields.item_id(handle if colour is None else f"{handle}:{colour}")
        except fields.RowProblem as problem:
            found.append((number, FeedRow(None, where, f"Handle {handle}: {problem}")))
            continue
        try:
            images = fields.images([*own, *rest], base)
            if not images:
                raise fields.RowProblem("no image of this colour (the others have their own)")
            item = _item(product, item_id, handle, colour, group, shop_url)
        except fields.RowProblem as problem:
            found.append((number, FeedRow(None, where, f"id {item_id}: {problem}")))
            continue
        found.append((number, FeedRow(ListedItem(item, images), where)))
    return found


def _item(
    product: ProductValue,
    item_id: str,
    handle: str,
    colour: str | None,
    group: list[_Line],
    shop_url: str | None,
) -> CatalogItem:
    master, sub, article = fields.category(product("product category"))
    gender_value, age = product("google shopping / gender"), product("google shopping / age group")
    if gender_value is None:
        gender_value, tag_age = _tag_gender(product("tags"))
        age = age or tag_age
    status = (product("status") or "").lower()
    published = (product("published") or "").lower()
    listed = status not in ("draft", "archived") and published not in _FALSE
    return CatalogItem(
        id=item_id,
        name=product("title") or handle,
        image_path="",
        gender=fields.gender(gender_value, age),
        master_category=master,
        sub_category=sub,
        article_type=product("type") or article,
        base_colour=fields.colour(colour or product("google shopping / color")),
        price=_price(group),
        url=f"{shop_url.rstrip('/')}/products/{handle}" if shop_url else None,
        brand=product("vendor"),
        group_id=handle,
        available=listed and (not group or any(_in_stock(line) for line in group)),
    )


def _price(group: list[_Line]) -> str | None:
    """The lowest variant price; ``X (was Y)`` when its compare-at price is higher."""
    priced = [
        (number, line)
        for line in group
        if (number := fields.amount(line.get("variant price"))) is not None
    ]
    if not priced:
        return next((text for line in group if (text := line.get("variant price"))), None)
    lowest, line = min(priced, key=lambda pair: pair[0])
    price = line.get("variant price")
    compare = line.get("variant compare at price")
    was = fields.amount(compare)
    return f"{price} (was {compare})" if was is not None and was > lowest else price


def _in_stock(line: _Line) -> bool:
    if (line.get("variant inventory policy") or "").lower() == "continue":
        return True
    quantity = line.get("variant inventory qty")
    if quantity is None:
        return True  # not tracked
    try:
        return Decimal(quantity) > 0
    except ArithmeticError:
        return False


def _position(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 1 << 30


def _tag_gender(tags: str | None) -> tuple[str | None, str | None]:
    """(gender, age group) from tags such as ``men, shirts`` or ``Girls``: whole words only."""
    genders, ages = set(), set()
    for word in re.findall(r"[a-z]+", (tags or "").lower()):
        gender, age = _TAG_WORDS.get(word, (None, None))
        if gender:
            genders.add(gender)
        if age:
            ages.add(age)
    if len(genders) > 1:
        genders = {"unisex"}
    return next(iter(genders), None), next(iter(ages), None)
