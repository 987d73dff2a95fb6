"""Real shoppers' photos with coarse garment classes, and how those classes map onto the
catalog's article types and garment groups.

A folder of labelled photos is in the clothing dataset's format (``../shared/clothing-dev``):
``labels.csv`` with the columns ``image`` (file ``images/<image>.jpg``), ``label`` (one of
:data:`CLASS_ARTICLE_TYPES`' classes) and ``kids`` (True for children's clothes). A shop may
add its own folder in the same format. Training learns from the photos outside the held-out
split (:func:`.splits.is_held_out` of the image name); evaluation measures on the held-out
ones only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .splits import is_held_out

TOP, BOTTOM, DRESS, SHOES, HAT = "top", "bottom", "dress", "shoes", "hat"

ARTICLE_TYPE_GROUPS: dict[str, str] = {
    **dict.fromkeys(
        ["Tshirts", "Lounge Tshirts", "Shirts", "Tops", "Tunics", "Kurtas", "Kurtis",
         "Camisoles", "Innerwear Vests", "Sweatshirts", "Sweaters", "Jackets", "Rain Jacket",
         "Blazers", "Nehru Jackets", "Waistcoat", "Shrug"],
        TOP,
    ),
    **dict.fromkeys(
        ["Trousers", "Jeans", "Track Pants", "Lounge Pants", "Leggings", "Jeggings", "Capris",
         "Churidar", "Salwar", "Patiala", "Tracksuits", "Tights", "Stockings", "Shorts",
         "Lounge Shorts", "Skirts"],
        BOTTOM,
    ),
    **dict.fromkeys(
        ["Dresses", "Jumpsuit", "Rompers", "Nightdress", "Baby Dolls", "Sarees",
         "Lehenga Choli"],
        DRESS,
    ),
    **dict.fromkeys(
        ["Casual Shoes", "Sports Shoes", "Formal Shoes", "Heels", "Flats", "Sandals",
         "Sports Sandals", "Flip Flops", "Booties"],
        SHOES,
    ),
    **dict.fromkeys(["Caps", "Hat", "Headband"], HAT),
}  # fmt: skip
"""The garment group of each Fashion Product Images article type a photo's class can be
compared with; any other type (bags, watches, socks, …) is in no group."""

CLASS_ARTICLE_TYPES: dict[str, frozenset[str]] = {
    "T-Shirt": frozenset({"Tshirts", "Lounge Tshirts", "Tops"}),
    "Longsleeve": frozenset({"Tshirts", "Lounge Tshirts", "Tops", "Sweatshirts", "Sweaters"}),
    "Polo": frozenset({"Tshirts"}),
    "Undershirt": frozenset({"Innerwear Vests", "Camisoles", "Tshirts", "Tops"}),
    "Shirt": frozenset({"Shirts"}),
    "Blouse": frozenset({"Tops", "Shirts", "Tunics", "Kurtis"}),
    "Top": frozenset({"Tops", "Tshirts", "Tunics", "Kurtis", "Camisoles"}),
    "Hoodie": frozenset({"Sweatshirts", "Jackets", "Sweaters"}),
    "Outwear": frozenset(
        {
            "Jackets",
            "Rain Jacket",
            "Blazers",
            "Nehru Jackets",
            "Sweaters",
            "Sweatshirts",
            "Waistcoat",
            "Shrug",
        }
    ),
    "Blazer": frozenset({"Blazers", "Jackets", "Waistcoat", "Nehru Jackets"}),
    "Pants": frozenset(
        {
            "Trousers",
            "Jeans",
            "Track Pants",
            "Lounge Pants",
            "Leggings",
            "Jeggings",
            "Capris",
            "Churidar",
            "Salwar",
            "Patiala",
            "Tracksuits",
        }
    ),
    "Shorts": frozenset({"Shorts", "Lounge Shorts"}),
    "Skirt": frozenset({"Skirts"}),
    "Dress": frozenset({"Dresses", "Jumpsuit", "Rompers", "Nightdress"}),
    "Shoes": frozenset(t for t, group in ARTICLE_TYPE_GROUPS.items() if group == SHOES),
    "Hat": frozenset({"Caps", "Hat"}),
}
"""Which catalog article types fit a photo of each class (a shown item of one of them counts
for real-photo type P@5; training teaches the type head to put the photo among them)."""

CLASS_GROUPS: dict[str, str] = {
    label: ARTICLE_TYPE_GROUPS[next(iter(types))] for label, types in CLASS_ARTICLE_TYPES.items()
}
"""The garment group of each class (the group of every article type it fits)."""

KIDS_GENDERS = frozenset({"Boys", "Girls"})
ADULT_GENDERS = frozenset({"Men", "Women", "Unisex"})


class RealPhotosError(ValueError):
    """A folder of labelled photos cannot be read at all."""


@dataclass(frozen=True)
class RealPhoto:
    id: str
    """The image's name in ``labels.csv`` (its file is ``images/<id>.jpg``)."""
    path: Path
    label: str
    kids: bool

    @property
    def article_types(self) -> frozenset[str]:
        return CLASS_ARTICLE_TYPES[self.label]

    @property
    def group(self) -> str:
        return CLASS_GROUPS[self.label]

    @property
    def genders(self) -> frozenset[str]:
        return KIDS_GENDERS if self.kids else ADULT_GENDERS


@dataclass
class RealPhotoSet:
    photos: list[RealPhoto]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """(line, reason) of every row that could not be used."""


def read_real_photos(folder: Path, *, held_out: bool | None = None) -> RealPhotoSet:
    """The labelled photos of ``folder``: only the held-out ones (``held_out=True``), only
    the others (``False``), or all (None). Rows with an unknown class or no image file are
    skipped and listed, never fatal."""
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise RealPhotosError(f"no labels.csv in {folder} (columns: image, label, kids)")
    with labels.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "label"} - set(reader.fieldnames or ())
        if missing:
            raise RealPhotosError(f"{labels} lacks the column(s) {', '.join(sorted(missing))}")
        result = RealPhotoSet([])
        for line, row in enumerate(reader, start=2):
            photo, problem = _photo(folder, row)
            if photo is None:
                result.skipped.append((line, problem))
            elif held_out is None or is_held_out(photo.id) == held_out:
                result.photos.append(photo)
    return result


def _photo(folder: Path, row: dict[str, str]) -> tuple[RealPhoto | None, str]:
    image, label = (row.get("image") or "").strip(), (row.get("label") or "").strip()
    if not image or "/" in image or "\\" in image or image.startswith("."):
        return None, f"bad image name {image!r}"
    if label not in CLASS_ARTICLE_TYPES:
        return None, f"unknown class {label!r}"
    path = folder / "images" / f"{image}.jpg"
    if not path.is_file():
        return None, f"no image {path.name}"
    kids = (row.get("kids") or "").strip().lower() in ("true", "1", "yes")
    return RealPhoto(image, path, label, kids), ""
