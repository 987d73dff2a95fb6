"""The evaluation engine: every configuration ingests the same gallery and answers the same
queries through the product's own search path.

For every configuration it opens a Recommender on a scratch data directory exactly as the CLI
does, ingests the gallery and sends image bytes to ``Recommender.find_similar`` like ``wardrobe
search``. So whatever the product does at query time (trained weights, re-ranking, diversity)
is what gets measured, and nothing else.

- Gallery: the catalog's held-out items (``embeddings.training.splits``, never trained on), or all.
- Catalog → catalog: each gallery item's own image file queries the gallery; the item itself is
  dropped from the results; P@5 by articleType, baseColour, both, and gender.
- Real photos → catalog: the held-out part of a folder of real shoppers' photos with coarse
  classes (:mod:`embeddings.training.real_photos`); P@5 of article types that fit the class
  and of the garment group, overall and per class, and on the photos we labelled finely
  (:data:`~bot.quality.gallery.FINE_LABELS`) exact articleType and baseColour P@5; the
  median latency of one query.
- Phone → catalog: :func:`embeddings.training.phone.simulate_phone_photo` of gallery items (the
  same photos for every configuration); exact-item R@1 and R@5, articleType P@5, and the
  median latency of one query.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.sources import CatalogSource
from bot.quality.configs import Configuration, configure
from bot.quality.gallery import (
    FINE_LABELS,
    RealQuery,
    phone_photos,
    real_photo_queries,
    write_gallery,
)
from bot.quality.metrics import Means, class_precision, label_precision, recall_at
from bot.quality.progress import Progress, tracked
from bot.service import make_embedder, opened_recommender
from bot.settings import Settings
from storage.models import CatalogItem
from storage.source import read_styles

K = 5


@dataclass
class ConfigResult:
    name: str
    model: str
    gallery: int
    metrics: dict[str, float | None]
    per_class: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """Real-photo class → its ``type`` and ``group`` P@5."""


@dataclass
class Evaluation:
    split: str
    gallery: int
    phone_queries: int
    seed: int
    results: list[ConfigResult]
    real_queries: int = 0
    real_classes: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Real-photo class → (held-out photos, gallery items whose type fits it)."""


async def evaluate(
    settings: Settings,
    styles: Path,
    images: Path,
    *,
    split: str = "heldout",
    phone_queries: int | None = None,
    seed: int = 0,
    real_photos: Path | None = None,
    fine_labels: Path = FINE_LABELS,
    configurations: Sequence[Configuration] = (Configuration("baseline"), Configuration("current")),
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate every configuration on the same gallery, the same real photos (the held-out
    part of ``real_photos``, when given) and the same simulated phone photos.

    Every configuration is checked (settings, backbone, weights files) before any work starts,
    so a typo in the last one doesn't surface after an hour of the first.
    """
    with tempfile.TemporaryDirectory(prefix="wardrobe-evaluate-") as scratch:
        root = Path(scratch)
        runs = []
        for number, configuration in enumerate(configurations):
            configured = configure(settings, configuration, root / f"data-{number}")
            make_embedder(configured).close()  # cheap: validates, loads no model
            runs.append((configuration.name, configured))
        real = (
            []
            if real_photos is None
            else await asyncio.to_thread(real_photo_queries, real_photos, fine_labels)
        )
        gallery_csv = root / "styles.csv"
        await asyncio.to_thread(write_gallery, styles, gallery_csv, split)
        gallery = [row.item for row in read_styles(gallery_csv, images) if row.item is not None]
        photos = await asyncio.to_thread(
            phone_photos, gallery, phone_queries, seed, progress=progress
        )
        results = []
        for name, configured in runs:
            configured.data_dir.mkdir()
            results.append(
                await _evaluate_one(name, configured, gallery_csv, images, real, photos, progress)
            )
    return Evaluation(
        split, len(gallery), len(photos), seed, results, len(real), _real_classes(real, gallery)
    )


def _real_classes(
    real: Sequence[RealQuery], gallery: Sequence[CatalogItem]
) -> dict[str, tuple[int, int]]:
    classes: dict[str, tuple[int, int]] = {}
    for query in real:
        label = query.photo.label
        count, _ = classes.get(label, (0, 0))
        fitting = sum(item.article_type in query.photo.article_types for item in gallery)
        classes[label] = (count + 1, fitting)
    return dict(sorted(classes.items(), key=lambda entry: (-entry[1][0], entry[0])))


async def _evaluate_one(
    name: str,
    settings: Settings,
    gallery_csv: Path,
    images: Path,
    real: Sequence[RealQuery],
    photos: Sequence[tuple[CatalogItem, bytes]],
    progress: Progress | None,
) -> ConfigResult:
    async with opened_recommender(settings) as recommender:
        await recommender.warm_up()
        with progress(f"{name}: ingest") if progress else nullcontext() as advance:
            await recommender.ingest(
                CatalogSource.fashion(gallery_csv, images),
                progress=advance and (lambda done, total, _stage: advance(done, total)),
            )
        stored = await recommender.catalog.all_items()
        indexed = sorted((entry.item for entry in stored.values()), key=lambda item: item.id)

        real_means, fine, by_class = Means(), Means(), defaultdict(Means)
        real_seconds = []
        for query in tracked(real, f"{name}: real photos", progress):
            started = time.perf_counter()
            matches = await recommender.find_similar(query.data, K)
            real_seconds.append(time.perf_counter() - started)
            shown = [match.item.item for match in matches]
            scores = class_precision(query.photo.label, shown, K)
            real_means.add(scores)
            by_class[query.photo.label].add(scores)
            if query.fine is not None:
                fine.add(label_precision(query.fine, shown, K))

        catalog = Means()
        for item in tracked(indexed, f"{name}: catalog queries", progress):
            data = await asyncio.to_thread(Path(item.image_path).read_bytes)
            matches = await recommender.find_similar(data, K + 1)
            others = [match.item.item for match in matches if match.item.item.id != item.id]
            catalog.add(label_precision(item, others[:K], K))

        indexed_ids = {item.id for item in indexed}
        phone = Means()
        seconds = []
        for item, data in tracked(photos, f"{name}: phone queries", progress):
            if item.id not in indexed_ids:
                continue
            started = time.perf_counter()
            matches = await recommender.find_similar(data, K)
            seconds.append(time.perf_counter() - started)
            ids = [match.item.item.id for match in matches]
            phone.add(
                {
                    "R@1": recall_at(item.id, ids, 1),
                    "R@5": recall_at(item.id, ids, K),
                    **label_precision(item, [match.item.item for match in matches], K),
                }
            )
        model = (await recommender.stats()).model
    metrics: dict[str, float | None] = {
        "real type": real_means.mean("type"),
        "real group": real_means.mean("group"),
        "real exact type": fine.mean("type"),
        "real colour": fine.mean("colour"),
        "real ms": _median_ms(real_seconds),
        **{
            f"catalog {label}": catalog.mean(label)
            for label in ("type", "colour", "type+colour", "gender")
        },
        "phone R@1": phone.mean("R@1"),
        "phone R@5": phone.mean("R@5"),
        "phone type": phone.mean("type"),
        "phone ms": _median_ms(seconds),
    }
    per_class = {
        label: {"type": means.mean("type"), "group": means.mean("group")}
        for label, means in by_class.items()
    }
    return ConfigResult(name, model, len(indexed), metrics, per_class)


def _median_ms(seconds: Sequence[float]) -> float | None:
    return 1000 * statistics.median(seconds) if seconds else None
