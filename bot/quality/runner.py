"""The evaluation engine: every configuration ingests the same gallery and answers the same
queries through the product's own search path.

For every configuration it opens a Recommender on a scratch data directory exactly as the CLI
does, ingests the gallery and sends image bytes to ``Recommender.find_similar`` like ``wardrobe
search``. So whatever the product does at query time (trained weights, re-ranking, diversity)
is what gets measured, and nothing else.

- Gallery: the catalog's held-out items (``embeddings.training.splits``, never trained on), or all.
- Catalog → catalog: each gallery item's own image file queries the gallery; the item itself is
  dropped from the results; P@5 by articleType, baseColour, both, and gender.
- Phone → catalog: :func:`embeddings.training.phone.simulate_phone_photo` of gallery items (the same
  photos for every configuration); exact-item R@1 and R@5, articleType P@5, and the median
  latency of one query.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from bot.quality.configs import Configuration, configure
from bot.quality.gallery import phone_photos, write_gallery
from bot.quality.metrics import Means, label_precision, recall_at
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


@dataclass
class Evaluation:
    split: str
    gallery: int
    phone_queries: int
    seed: int
    results: list[ConfigResult]


async def evaluate(
    settings: Settings,
    styles: Path,
    images: Path,
    *,
    split: str = "heldout",
    phone_queries: int | None = None,
    seed: int = 0,
    configurations: Sequence[Configuration] = (Configuration("baseline"), Configuration("current")),
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate every configuration on the same gallery and the same phone photos.

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
                await _evaluate_one(name, configured, gallery_csv, images, photos, progress)
            )
    return Evaluation(split, len(gallery), len(photos), seed, results)


async def _evaluate_one(
    name: str,
    settings: Settings,
    gallery_csv: Path,
    images: Path,
    photos: Sequence[tuple[CatalogItem, bytes]],
    progress: Progress | None,
) -> ConfigResult:
    async with opened_recommender(settings) as recommender:
        await recommender.warm_up()
        with progress(f"{name}: ingest") if progress else nullcontext() as advance:
            await recommender.ingest(gallery_csv, images, progress=advance)
        stored = await recommender.catalog.all_items()
        indexed = sorted((entry.item for entry in stored.values()), key=lambda item: item.id)

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
        **{
            f"catalog {label}": catalog.mean(label)
            for label in ("type", "colour", "type+colour", "gender")
        },
        "phone R@1": phone.mean("R@1"),
        "phone R@5": phone.mean("R@5"),
        "phone type": phone.mean("type"),
        "query ms": 1000 * statistics.median(seconds) if seconds else None,
    }
    return ConfigResult(name, model, len(indexed), metrics)
