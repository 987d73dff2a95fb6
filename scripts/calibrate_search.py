"""Calibrate what the bot says about a photo, on held-out real shoppers' photos:

1. ``CLOSE_MATCH_SIMILARITY``: the best match's CNN similarity when the catalog has the
   photo's kind of garment, against when it lacks the photo's whole garment group (tops,
   bottoms, dresses, shoes, hats: every such item taken out). A threshold flags "nothing
   close"; we want few false alarms on the first and many catches on the second.
2. ``LOOKS_LIKE_CONFIDENCE``: how often the label heads' top article type and colour are
   right at each confidence, on the photos with fine labels (bot/quality/fine_labels.csv).

    .venv/bin/python scripts/calibrate_search.py --styles ../shared/fashion-dev/styles.csv \\
        --images ../shared/fashion-dev/images --photos ../shared/clothing-dev

The catalog is embedded into a temporary data directory with the bot's default settings.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bot.core.seeing import CLOSE_SIMILARITY, catalog_lacks, seen_in_photo
from bot.core.sources import CatalogSource
from bot.quality.gallery import real_photo_queries
from bot.service import opened_recommender
from bot.settings import Settings
from embeddings import LabelHeads
from embeddings.training.real_photos import ARTICLE_TYPE_GROUPS, RealPhoto
from storage.models import Facets

THRESHOLDS = np.round(np.arange(0.20, 0.81, 0.05), 2)
CUT_OFFS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


async def measure(styles: Path, images: Path, photos: Path) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(WARDROBE_DATA_DIR=data_dir)
        async with opened_recommender(settings) as recommender:
            await recommender.ingest(CatalogSource.fashion(styles, images))
            keys, vectors = await recommender.catalog.all_vectors(recommender.embedder.dim)
            items = await recommender.catalog.all_items()
            types = np.array([items[int(key)].item.article_type or "" for key in keys])
            groups = np.array([ARTICLE_TYPE_GROUPS.get(kind, "") for kind in types])
            heads = recommender.embedder.label_heads
            queries = real_photo_queries(photos)
            colours = np.array([items[int(key)].item.base_colour or "" for key in keys])
            whole = _facets(types, colours)
            has, lacks, looks, rule = [], [], [], {"has": [], "lacks": []}
            for query in queries:
                features = await recommender.embedder.features_bytes(query.data)
                vector = features.vectors[0]
                similarity = vectors @ vector
                fits = np.isin(types, list(query.photo.article_types))
                if fits.any():
                    has.append(float(similarity.max()))
                    rule["has"].append(_flagged(heads, vector, similarity.max(), whole))
                others = groups != query.photo.group
                if others.any() and not others.all():
                    lacks.append((query.photo.label, float(similarity[others].max())))
                    rest = _facets(types[others], colours[others])
                    rule["lacks"].append(_flagged(heads, vector, similarity[others].max(), rest))
                if heads is not None:
                    probabilities = heads.probabilities(vector[None, :])
                    looks.append((query.fine, query.photo, heads.vocabularies, probabilities))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"date: {datetime.date.today()}; model: {recommender.embedder.model_name}")
    print(f"catalog: {len(keys)} items; held-out real photos: {len(queries)}\n")
    _close_match(np.array(has), lacks)
    print(f"\nthe bot's rule (best similarity under {CLOSE_SIMILARITY}, or a type the model is "
          f"confident of that the catalog lacks): false alarms {100 * np.mean(rule['has']):.1f}%, "
          f"caught {100 * np.mean(rule['lacks']):.1f}%")  # fmt: skip
    _looks_like(looks)


def _facets(types: np.ndarray, colours: np.ndarray) -> Facets:
    """What the catalog of these items offers (genders aside: the rule does not use them)."""
    pairs = zip(types.tolist(), colours.tolist(), strict=True)
    return Facets(frozenset((kind or None, colour or None, None) for kind, colour in pairs))


def _flagged(heads: LabelHeads | None, vector: np.ndarray, best: float, facets: Facets) -> bool:
    seen = seen_in_photo(heads, vector, facets, [])
    return best < CLOSE_SIMILARITY or catalog_lacks(heads, seen, facets)


def _close_match(has: np.ndarray, lacks: Sequence[tuple[str, float]]) -> None:
    lacking = np.array([value for _, value in lacks])
    print("Best match's CNN similarity (percentiles 5/10/25/50/75/90):")
    for name, values in (("catalog has its kind", has), ("catalog lacks its group", lacking)):
        cells = " / ".join(f"{np.percentile(values, q):.3f}" for q in (5, 10, 25, 50, 75, 90))
        print(f"  {name} ({len(values)} photos): {cells}")
    print("\n| threshold | false alarms (has its kind) | caught (lacks its group) |")
    print("|---|---|---|")
    for threshold in THRESHOLDS:
        false_alarms, caught = (has < threshold).mean(), (lacking < threshold).mean()
        print(f"| {threshold:.2f} | {100 * false_alarms:.1f}% | {100 * caught:.1f}% |")
    fine = np.round(np.arange(0.20, 0.80, 0.01), 2)
    youden = max(fine, key=lambda t: (lacking < t).mean() - (has < t).mean())
    safe = max((t for t in fine if (has < t).mean() <= 0.05), default=fine[0])
    print(f"\nat most 5% false alarms: {safe:.2f} (catches {100 * (lacking < safe).mean():.1f}%)")
    print(f"Youden-optimal: {youden:.2f} (false alarms {100 * (has < youden).mean():.1f}%, "
          f"catches {100 * (lacking < youden).mean():.1f}%)")  # fmt: skip
    print("\ncaught at that 5% threshold, per class of the photo (catalog lacks its group):")
    for label in sorted({label for label, _ in lacks}):
        values = np.array([value for name, value in lacks if name == label])
        print(f"  {label}: {100 * (values < safe).mean():.0f}% of {len(values)}")


def _looks_like(looks: Sequence) -> None:
    if not looks:
        print("\n(no label heads: nothing to say about 'Looks like')")
        return
    fine = sum(entry[0] is not None for entry in looks)
    print(f"\n'Looks like' on {len(looks)} held-out photos ({fine} with fine labels):")
    print("type right: the top article type fits the photo's coarse class (all photos);")
    print("exact: it is the fine label; colour: the top colour is the fine label.\n")
    print("| label | cut-off | coverage | right among those said |")
    print("|---|---|---|---|")
    checks = {
        "article_type (fits the class)": ("article_type", _fits_class),
        "article_type (exact)": ("article_type", _exact("article_type")),
        "base_colour (exact)": ("base_colour", _exact("base_colour")),
    }
    for title, (name, right) in checks.items():
        tops = []
        for fine_labels, photo, vocabularies, probabilities in looks:
            if fine_labels is None and "exact" in title:
                continue
            row = probabilities[name][0]
            best = int(np.argmax(row))
            tops.append((float(row[best]), right(vocabularies[name][best], fine_labels, photo)))
        for cut_off in CUT_OFFS:
            said = [correct for confidence, correct in tops if confidence >= cut_off]
            coverage = len(said) / len(tops)
            accuracy = sum(said) / len(said) if said else float("nan")
            print(f"| {title} | {cut_off} | {100 * coverage:.0f}% | {100 * accuracy:.0f}% |")
    for name in ("article_type", "base_colour"):
        misses = Counter(
            (getattr(fine_labels, name), vocabularies[name][int(np.argmax(probabilities[name][0]))])
            for fine_labels, _, vocabularies, probabilities in looks
            if fine_labels is not None and getattr(fine_labels, name)
        )
        wrong = [(pair, n) for pair, n in misses.most_common() if pair[0] != pair[1]][:8]
        print(f"\ncommonest {name} misses (fine label → said, photos): "
              + ", ".join(f"{a} → {b} ({n})" for (a, b), n in wrong))  # fmt: skip


def _fits_class(said: str, fine: object, photo: RealPhoto) -> bool:
    return said in photo.article_types


def _exact(name: str) -> Callable[[str, object, RealPhoto], bool]:
    return lambda said, fine, photo: said == getattr(fine, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(measure(args.styles, args.images, args.photos))


if __name__ == "__main__":
    main()
