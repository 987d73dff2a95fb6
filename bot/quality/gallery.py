"""What an evaluation queries with: the gallery (a split of the catalog source), real
shoppers' photos (never trained on) and simulated phone photos of the gallery's items."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.quality.progress import Progress, tracked
from embeddings import ImageRejected, load_image
from embeddings.training.phone import simulate_phone_photo
from embeddings.training.real_photos import RealPhoto, read_real_photos
from embeddings.training.splits import is_held_out
from storage.models import CatalogItem

PHONE_SIZE = (480, 640)
PHONE_JPEG_QUALITY = 95  # the simulated photo is already compressed; this only carries it
DISTRACTOR_CHANCE = 0.5  # phone photos handed other gallery images as possible backgrounds

FINE_LABELS = Path(__file__).with_name("fine_labels.csv")
"""Our own article type and base colour for some held-out photos of ``../shared/clothing-dev``
(image, article_type, base_colour; how they were made: docs/BENCHMARKS.md)."""


@dataclass(frozen=True)
class RealQuery:
    photo: RealPhoto
    data: bytes
    fine: CatalogItem | None
    """The photo's fine labels (article type, base colour) where :data:`FINE_LABELS` has them."""


def real_photo_queries(folder: Path, fine_labels: Path = FINE_LABELS) -> list[RealQuery]:
    """The held-out photos of a folder of labelled real photos, with their bytes, in name
    order."""
    fine = read_fine_labels(fine_labels) if fine_labels.is_file() else {}
    photos = sorted(read_real_photos(folder, held_out=True).photos, key=lambda photo: photo.id)
    return [RealQuery(photo, photo.path.read_bytes(), fine.get(photo.id)) for photo in photos]


def read_fine_labels(path: Path) -> dict[str, CatalogItem]:
    """image → a catalog-like record holding the photo's article type and base colour."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        row["image"]: CatalogItem(
            id=row["image"],
            name=row["image"],
            image_path="",
            article_type=row.get("article_type") or None,
            base_colour=row.get("base_colour") or None,
        )
        for row in rows
    }


def write_gallery(styles: Path, destination: Path, split: str) -> int:
    """Copy the rows of ``styles`` that belong to ``split`` to ``destination``; row count.

    Rows are copied field for field, so malformed ones reach the ingest as they are (and are
    reported there, as in production).
    """
    with styles.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows or "id" not in rows[0]:
        raise ValueError(f"{styles} has no 'id' column")
    column = rows[0].index("id")
    kept = [
        row
        for row in rows[1:]
        if len(row) > column and (split == "all" or is_held_out(row[column].strip()))
    ]
    with destination.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([rows[0], *kept])
    return len(kept)


def phone_photos(
    items: Sequence[CatalogItem],
    count: int | None,
    seed: int,
    *,
    progress: Progress | None = None,
) -> list[tuple[CatalogItem, bytes]]:
    """Simulated phone photos (JPEG bytes) of ``count`` gallery items sampled with ``seed``.

    Each photo's scene is seeded by (seed, item id) alone, so an item gets the same photo
    whatever else is in the sample. Other gallery images are offered as backgrounds half the
    time. Items whose image cannot be read are skipped.
    """
    ordered = sorted(items, key=lambda item: item.id)
    wanted = len(ordered) if count is None else min(count, len(ordered))
    chosen = random.Random(seed).sample(ordered, wanted)
    photos = []
    for item in tracked(chosen, "phone photos", progress, unit="img"):
        # A string seed: hash() of a str changes between processes, this does not.
        rng = random.Random(f"{seed}:{item.id}")
        other = ordered[rng.randrange(len(ordered))]
        try:
            distractors = (
                [load_image(Path(other.image_path))]
                if other.id != item.id and rng.random() < DISTRACTOR_CHANCE
                else []
            )
            photo = simulate_phone_photo(
                load_image(Path(item.image_path)), rng, distractors=distractors, size=PHONE_SIZE
            )
        except (OSError, ImageRejected):
            continue
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=PHONE_JPEG_QUALITY)
        photos.append((item, buffer.getvalue()))
    return photos
