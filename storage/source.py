"""Reading a catalog in the Fashion Product Images format: ``styles.csv`` + ``images/<id>.jpg``."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from storage.models import CatalogItem

# styles.csv column → CatalogItem field. Optional extras (price, link) are read when present.
_COLUMNS = {
    "id": "id",
    "productDisplayName": "name",
    "gender": "gender",
    "masterCategory": "master_category",
    "subCategory": "sub_category",
    "articleType": "article_type",
    "baseColour": "base_colour",
    "season": "season",
    "year": "year",
    "usage": "usage",
    "price": "price",
    "link": "url",
    "url": "url",
}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class CatalogSourceError(ValueError):
    """The catalog source cannot be read at all (missing file, wrong columns)."""


@dataclass(frozen=True)
class SourceRow:
    item: CatalogItem | None
    line: int
    problem: str | None = None


def read_styles(styles_csv: Path, images_dir: Path) -> Iterator[SourceRow]:
    """Yield one row per CSV line; bad lines come back with ``problem`` set instead of raising.

    The public Kaggle ``styles.csv`` has unquoted commas inside ``productDisplayName`` (the last
    column), so surplus fields are joined back into the name instead of dropping the row.
    """
    if not styles_csv.is_file():
        raise CatalogSourceError(f"styles file not found: {styles_csv}")
    if not images_dir.is_dir():
        raise CatalogSourceError(f"images folder not found: {images_dir}")
    with styles_csv.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or "id" not in header:
            raise CatalogSourceError(f"{styles_csv} has no 'id' column (header: {header})")
        width = len(header)
        for line, fields in enumerate(reader, start=2):
            if not any(field.strip() for field in fields):
                continue
            if len(fields) > width:
                fields = [*fields[: width - 1], ",".join(fields[width - 1 :])]
            yield _parse_row(dict(zip(header, fields, strict=False)), images_dir, line)


def _parse_row(raw: dict[str, str], images_dir: Path, line: int) -> SourceRow:
    values: dict[str, str | int | None] = {}
    for column, field in _COLUMNS.items():
        value = (raw.get(column) or "").strip()
        if value:
            values[field] = value
    item_id = values.get("id")
    if not item_id:
        return SourceRow(None, line, "missing id")
    if not _SAFE_ID.fullmatch(str(item_id)):
        return SourceRow(None, line, f"id {item_id!r} has characters not allowed in a file name")
    year = values.get("year")
    values["year"] = int(year) if isinstance(year, str) and year.isdigit() else None
    image = _find_image(images_dir, str(item_id))
    if image is None:
        return SourceRow(None, line, f"no image for id {item_id}")
    values["name"] = values.get("name") or f"Item {item_id}"
    return SourceRow(CatalogItem(image_path=str(image), **values), line)  # type: ignore[arg-type]


def _find_image(images_dir: Path, item_id: str) -> Path | None:
    for suffix in _IMAGE_SUFFIXES:
        candidate = images_dir / f"{item_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None
