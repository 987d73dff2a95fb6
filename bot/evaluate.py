"""``wardrobe evaluate``: retrieval quality and latency per configuration, through the
product's own search path.

For every configuration (a name plus Settings overrides) it opens a Recommender on a scratch
data directory exactly as the CLI does, ingests the gallery and sends image bytes to
``Recommender.find_similar`` like ``wardrobe search``. So whatever the product does at query
time (trained weights, re-ranking, diversity) is what gets measured, and nothing else.

- Gallery: the catalog's held-out items (``embeddings.splits``, never trained on), or all.
- Catalog → catalog: each gallery item's own image file queries the gallery; the item itself is
  dropped from the results; P@5 by articleType, baseColour, both, and gender.
- Phone → catalog: :func:`embeddings.phone.simulate_phone_photo` of gallery items (the same
  photos for every configuration); exact-item R@1 and R@5, articleType P@5, and the median
  latency of one query.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bot.evaluation import Means, label_precision, recall_at
from bot.settings import Settings
from storage.models import CatalogItem

K = 5
PHONE_SIZE = (480, 640)
PHONE_JPEG_QUALITY = 95  # the simulated photo is already compressed; this only carries it
DISTRACTOR_CHANCE = 0.5  # phone photos handed other gallery images as possible backgrounds

# Settings that make "a plain frozen ImageNet backbone and nothing else": every feature that
# changes what a query returns is switched off. Fields this checkout's Settings lacks are
# skipped (the feature isn't there to switch off).
BASELINE: dict[str, object] = {
    "embedding_backbone": "efficientnet_lite0",
    "embedding_weights": None,
    "embedding_trained": "none",  # no `wardrobe train` weights
    "garment_crop": False,  # embed the whole photo, not the localised garment
    "colour_weight": 0.0,  # rank by CNN similarity alone
    "label_weight": 0.0,  # no label heads (the frozen model has none anyway)
    "diversity": 0.0,  # no MMR
    "near_duplicate_similarity": 1.0,  # defer no near-duplicates
}

# The table's columns: (heading, key in ConfigResult.metrics, digits).
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("type P@5", "catalog type", 3),
    ("colour P@5", "catalog colour", 3),
    ("type+colour P@5", "catalog type+colour", 3),
    ("gender P@5", "catalog gender", 3),
    ("phone R@1", "phone R@1", 3),
    ("phone R@5", "phone R@5", 3),
    ("phone type P@5", "phone type", 3),
    ("query ms", "query ms", 1),
)


@dataclass(frozen=True)
class Configuration:
    """A named set of Settings overrides (field names, values as given or typed)."""

    name: str
    overrides: Mapping[str, object] = field(default_factory=dict)


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


def add_evaluate_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="retrieval quality (catalog and phone-photo queries) per configuration"
    )
    evaluate.add_argument("--styles", type=Path, required=True, help="styles.csv of the catalog")
    evaluate.add_argument("--images", type=Path, required=True, help="its image folder")
    evaluate.add_argument(
        "--split",
        choices=("heldout", "all"),
        default="heldout",
        help="gallery and queries: the held-out items only (default) or every item",
    )
    evaluate.add_argument(
        "--phone-queries", type=int, help="simulated phone photos (default: one per item)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="phone photo sample and scenes")
    evaluate.add_argument(
        "--config",
        dest="configs",
        action="append",
        type=parse_configuration,
        metavar="NAME[:KEY=VALUE,...]",
        help="a configuration to evaluate, repeatable (default: baseline and current). "
        "'baseline' is the frozen ImageNet backbone with every extra off, 'current' the "
        "settings as configured; KEY is a Settings field or its env name, applied on top "
        "of baseline when NAME starts with 'baseline' (baseline+crop:GARMENT_CROP=true), "
        "else on top of current",
    )
    evaluate.add_argument("--markdown", action="store_true", help="print a Markdown table")
    evaluate.set_defaults(handler=_evaluate)


def parse_configuration(text: str) -> Configuration:
    """``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE`` (KEY: field name or env alias, any case)."""
    name, _, assignments = text.partition(":")
    name = name.strip()
    if not name:
        raise argparse.ArgumentTypeError(f"{text!r}: a configuration needs a name")
    fields = _settings_keys()
    overrides: dict[str, object] = {}
    for assignment in filter(None, (part.strip() for part in assignments.split(","))):
        key, equals, value = assignment.partition("=")
        if not equals:
            raise argparse.ArgumentTypeError(f"{assignment!r} is not KEY=VALUE")
        field_name = fields.get(key.strip().lower())
        if field_name is None:
            known = ", ".join(sorted(Settings.model_fields))
            raise argparse.ArgumentTypeError(f"unknown setting {key!r}; settings: {known}")
        overrides[field_name] = value.strip()
    return Configuration(name, overrides)


def _settings_keys() -> dict[str, str]:
    """Lower-cased field names and env aliases → field name, read from Settings now, so
    settings added later can be overridden without touching this module."""
    keys = {}
    for name, info in Settings.model_fields.items():
        keys[name.lower()] = name
        if info.alias:
            keys[info.alias.lower()] = name
    return keys


def configure(settings: Settings, configuration: Configuration, data_dir: Path) -> Settings:
    """``settings`` with the configuration's overrides, validated, serving from ``data_dir``.

    A name starting with ``baseline`` starts from :data:`BASELINE` (so ``baseline+crop`` can
    show what one feature adds), any other from ``settings``. Settings resolved relative to
    the data directory (trained weights found there) are pinned first, so moving to the
    scratch directory doesn't silently drop them.
    """
    values = settings.model_dump()
    trained = settings.trained_model_path()
    values["embedding_trained"] = str(trained) if trained is not None else "none"
    base = BASELINE if configuration.name.startswith("baseline") else {}
    values.update({key: value for key, value in base.items() if key in values})
    values.update(configuration.overrides)
    values["data_dir"] = data_dir
    return Settings.model_validate(values)


def write_gallery(styles: Path, destination: Path, split: str) -> int:
    """Copy the rows of ``styles`` that belong to ``split`` to ``destination``; row count.

    Rows are copied field for field, so malformed ones reach the ingest as they are (and are
    reported there, as in production).
    """
    from embeddings.training.splits import is_held_out

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
    items: Sequence[CatalogItem], count: int | None, seed: int, *, progress: bool = False
) -> list[tuple[CatalogItem, bytes]]:
    """Simulated phone photos (JPEG bytes) of ``count`` gallery items sampled with ``seed``.

    Each photo's scene is seeded by (seed, item id) alone, so an item gets the same photo
    whatever else is in the sample. Other gallery images are offered as backgrounds half the
    time. Items whose image cannot be read are skipped.
    """
    from tqdm import tqdm

    from embeddings import ImageRejected, load_image
    from embeddings.training.phone import simulate_phone_photo

    ordered = sorted(items, key=lambda item: item.id)
    wanted = len(ordered) if count is None else min(count, len(ordered))
    chosen = random.Random(seed).sample(ordered, wanted)
    photos = []
    for item in tqdm(
        chosen, desc="phone photos", unit="img", file=sys.stderr, disable=not progress
    ):
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


async def evaluate(
    settings: Settings,
    styles: Path,
    images: Path,
    *,
    split: str = "heldout",
    phone_queries: int | None = None,
    seed: int = 0,
    configurations: Sequence[Configuration] = (Configuration("baseline"), Configuration("current")),
    progress: bool = False,
) -> Evaluation:
    """Evaluate every configuration on the same gallery and the same phone photos.

    Every configuration is checked (settings, backbone, weights files) before any work starts,
    so a typo in the last one doesn't surface after an hour of the first.
    """
    from bot.app import make_embedder
    from storage.source import read_styles

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
    progress: bool,
) -> ConfigResult:
    from tqdm import tqdm

    from bot.app import close_recommender, open_recommender

    recommender = await open_recommender(settings)
    try:
        await recommender.embedder.load()
        bar = tqdm(desc=f"{name}: ingest", unit="img", file=sys.stderr, disable=not progress)

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            await recommender.ingest(gallery_csv, images, progress=advance)
        finally:
            bar.close()
        stored = await recommender.catalog.all_items()
        indexed = sorted((entry.item for entry in stored.values()), key=lambda item: item.id)

        catalog = Means()
        for item in _bar(indexed, f"{name}: catalog queries", progress):
            data = await asyncio.to_thread(Path(item.image_path).read_bytes)
            matches = await recommender.find_similar(data, K + 1)
            others = [match.item.item for match in matches if match.item.item.id != item.id]
            catalog.add(label_precision(item, others[:K], K))

        indexed_ids = {item.id for item in indexed}
        phone = Means()
        seconds = []
        for item, data in _bar(photos, f"{name}: phone queries", progress):
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
    finally:
        await close_recommender(recommender)
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
    return ConfigResult(name, recommender.embedder.model_name, len(indexed), metrics)


def _bar(items: Sequence, desc: str, progress: bool) -> Iterable:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="q", file=sys.stderr, disable=not progress)


def format_table(evaluation: Evaluation, *, markdown: bool = False) -> str:
    """One row per configuration; Markdown for docs/BENCHMARKS.md, else aligned text."""
    headings = ["config", "model", *(heading for heading, _, _ in COLUMNS)]
    rows = [
        [
            result.name,
            result.model,
            *(_number(result.metrics.get(key), digits) for _, key, digits in COLUMNS),
        ]
        for result in evaluation.results
    ]
    if markdown:
        lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [headings, *rows]
    )


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from bot.cli import CliError
    from storage.source import CatalogSourceError

    if args.phone_queries is not None and args.phone_queries < 0:
        raise CliError("--phone-queries must be 0 or more")
    configurations = args.configs or [Configuration("baseline"), Configuration("current")]
    names = [configuration.name for configuration in configurations]
    if len(set(names)) != len(names):
        raise CliError(f"configuration names must differ: {', '.join(names)}")
    try:
        evaluation = asyncio.run(
            evaluate(
                settings,
                args.styles,
                args.images,
                split=args.split,
                phone_queries=args.phone_queries,
                seed=args.seed,
                configurations=configurations,
                progress=True,
            )
        )
    except (ValidationError, CatalogSourceError, ValueError, OSError) as error:
        raise CliError(str(error)) from None
    print(
        f"\n`wardrobe evaluate` on {platform.node()}, {date.today().isoformat()}: "
        f"split {evaluation.split}, {evaluation.gallery} gallery items, "
        f"{evaluation.phone_queries} phone photos, seed {evaluation.seed}\n"
    )
    print(format_table(evaluation, markdown=args.markdown))
    return 0
