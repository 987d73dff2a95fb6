"""A small synthetic catalog in the Fashion Product Images format, drawn with Pillow, and a
look-up of its items once stored.

Garment silhouettes in solid colours on white packshot backgrounds, with a styles.csv, so the
test suite needs no external data and can still check that similar items come out on top.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from embeddings.training.splits import is_held_out
from storage.catalog import Catalog
from storage.models import StoredItem

COLOURS = {
    "Red": (200, 30, 40),
    "Blue": (30, 60, 200),
    "Green": (30, 150, 60),
    "Yellow": (235, 200, 30),
    "Black": (25, 25, 25),
    "Purple": (120, 40, 150),
}
HEADER = [
    "id", "gender", "masterCategory", "subCategory", "articleType", "baseColour", "season",
    "year", "usage", "productDisplayName",
]  # fmt: skip


@dataclass(frozen=True)
class Product:
    id: str
    article_type: str
    colour: str
    name: str


def _tshirt(draw: ImageDraw.ImageDraw, colour: tuple[int, int, int]) -> None:
    draw.polygon([(14, 12), (46, 12), (58, 26), (50, 32), (46, 28), (46, 70), (14, 70),
                  (14, 28), (10, 32), (2, 26)], fill=colour)  # fmt: skip


def _trousers(draw: ImageDraw.ImageDraw, colour: tuple[int, int, int]) -> None:
    draw.polygon([(16, 6), (44, 6), (48, 76), (34, 76), (30, 30), (26, 76), (12, 76)], fill=colour)


def _dress(draw: ImageDraw.ImageDraw, colour: tuple[int, int, int]) -> None:
    draw.polygon([(22, 6), (38, 6), (40, 26), (54, 76), (6, 76), (20, 26)], fill=colour)


def _shoe(draw: ImageDraw.ImageDraw, colour: tuple[int, int, int]) -> None:
    draw.polygon([(4, 44), (20, 40), (30, 48), (56, 52), (56, 62), (4, 62)], fill=colour)
    draw.rectangle((4, 60, 56, 64), fill=(240, 240, 240))


SHAPES = {"Tshirts": _tshirt, "Trousers": _trousers, "Dresses": _dress, "Casual Shoes": _shoe}
CATEGORIES = {
    "Tshirts": ("Apparel", "Topwear"),
    "Trousers": ("Apparel", "Bottomwear"),
    "Dresses": ("Apparel", "Dress"),
    "Casual Shoes": ("Footwear", "Shoes"),
}


def garment_image(article_type: str, colour: str, variant: int = 0) -> Image.Image:
    """A 60x80 packshot like the dataset's: the garment on white, nudged by ``variant``."""
    image = Image.new("RGB", (60, 80), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    SHAPES[article_type](draw, COLOURS[colour])
    if variant:
        image = image.rotate(variant * 3, fillcolor=(255, 255, 255))
    return image


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def write_catalog(root: Path, *, variants: int = 1) -> list[Product]:
    """Write ``root/styles.csv`` and ``root/images/<id>.jpg``; returns the products."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    products = []
    next_id = 1000
    for article_type in SHAPES:
        for colour in COLOURS:
            for variant in range(variants):
                product = Product(
                    str(next_id), article_type, colour, f"{colour} {article_type} no. {next_id}"
                )
                garment_image(article_type, colour, variant).save(
                    images / f"{product.id}.jpg", quality=92
                )
                products.append(product)
                next_id += 1
    write_styles(root / "styles.csv", products)
    return products


def write_styles(path: Path, products: list[Product]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for product in products:
            gender = "Women" if product.article_type == "Dresses" else "Men"
            master, sub = CATEGORIES[product.article_type]
            writer.writerow([product.id, gender, master, sub, product.article_type,
                             product.colour, "Summer", "2012", "Casual", product.name])  # fmt: skip


REAL_PHOTO_CLASSES = {
    "Tshirts": "T-Shirt",
    "Trousers": "Pants",
    "Dresses": "Dress",
    "Casual Shoes": "Shoes",
}
"""The clothing dataset's class of a photo of each generated article type."""


def write_real_photos(root: Path, *, held_out: int = 8, others: int = 8) -> list[dict[str, str]]:
    """A folder of labelled "real" photos in the clothing dataset's format (``labels.csv`` +
    ``images/<image>.jpg``) with ``held_out`` photos in the held-out split and ``others``
    outside it; returns the rows, each with the photo's article type and colour."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    kinds = [(kind, colour) for colour in COLOURS for kind in REAL_PHOTO_CLASSES]
    rows: list[dict[str, str]] = []
    wanted = {True: held_out, False: others}
    number = 0
    while any(wanted.values()):
        name = f"real-{number:04d}"
        number += 1
        if not wanted[is_held_out(name)]:
            continue
        wanted[is_held_out(name)] -= 1
        kind, colour = kinds[len(rows) % len(kinds)]
        photo_of(kind, colour, size=400).save(root / "images" / f"{name}.jpg", quality=85)
        rows.append({"image": name, "label": REAL_PHOTO_CLASSES[kind], "kids": "False",
                     "article_type": kind, "base_colour": colour})  # fmt: skip
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["image", "label", "kids"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def photo_of(article_type: str, colour: str, size: int = 900) -> Image.Image:
    """A shopper-style photo: the garment scaled up on a grey-beige, unevenly lit background."""
    background = Image.new("RGB", (size, size), (190, 180, 165))
    draw = ImageDraw.Draw(background)
    for y in range(0, size, 8):
        shade = 175 + (y * 30) // size
        draw.line([(0, y), (size, y)], fill=(shade, shade - 8, shade - 20), width=8)
    garment = garment_image(article_type, colour).resize((size * 6 // 10, size * 8 // 10))
    mask = garment.convert("L").point(lambda value: 255 if value < 245 else 0)
    background.paste(garment, (size // 5, size // 10), mask)
    return background


async def stored_item(catalog: Catalog, item_id: str) -> StoredItem | None:
    """The catalog's row for the shop's product id ``item_id``."""
    return next((s for s in (await catalog.all_items()).values() if s.item.id == item_id), None)
