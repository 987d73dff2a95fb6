"""``wardrobe bench``: ingest speed, query latency split by stage, memory and catalog P@5, for
each embedding runtime in the same run (ONNX Runtime against torch, as a ratio).

Every runtime is measured in a child process of its own (``--one-runtime``), so that one's
imports and memory never count against the other, in a scratch data directory so the shop's
real catalog is never touched. Results are printed as a Markdown table to paste into
docs/BENCHMARKS.md. ``--synthetic N`` measures the vector index alone at a catalog size no
image folder has (:mod:`.bench_synthetic`).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.common import CliError
from bot.core.sources import CatalogSource
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.core.recommender import Recommender

QUERY_SIZE = (480, 640)
"""Shoppers' photos arrive from Telegram at about this size (portrait)."""
FULL_CATALOG_ITEMS = 44_441
"""Items in the whole Fashion Product Images dataset, for the ingest-time estimate."""
RUNTIMES = ("onnx", "torch")


def add_bench_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="measure ingest speed, query latency, memory, P@5")
    bench.add_argument("--styles", type=Path, help="styles.csv of the catalog")
    bench.add_argument("--images", type=Path, help="its image folder")
    bench.add_argument(
        "--photos", type=Path, help="query photos (any folder of images, e.g. real phone photos; "
        "default: the catalog's own images), each sent as a 480x640 JPEG"
    )  # fmt: skip
    bench.add_argument(
        "--queries", type=int, help="timed queries (default 200; 1000 with --synthetic)"
    )
    bench.add_argument(
        "--runtimes", default=",".join(RUNTIMES), help="comma-separated (default onnx,torch)"
    )
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--one-runtime", choices=RUNTIMES, help=argparse.SUPPRESS)
    bench.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help="instead of a catalog: index N synthetic vectors and measure the index alone",
    )
    bench.add_argument(
        "--dim", type=int, help="with --synthetic: vector dimension (default: the model's)"
    )
    bench.add_argument(
        "--dtypes",
        default="f32,f16",
        help="with --synthetic: scalar types to compare, of f32,f16,i8 (default f32,f16)",
    )
    bench.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.synthetic is not None:
        from bot.cli.bench_synthetic import run_synthetic

        return run_synthetic(args, settings)
    if args.styles is None or args.images is None:
        raise CliError("give --styles and --images, or --synthetic N")
    args.queries = args.queries or 200
    if args.one_runtime:
        return _measure_one(args, settings)
    runtimes = [name.strip() for name in args.runtimes.split(",") if name.strip()]
    if not runtimes or not set(runtimes) <= set(RUNTIMES):
        raise CliError(f"--runtimes takes {', '.join(RUNTIMES)}, not {args.runtimes!r}")
    if "onnx" in runtimes:
        from bot.service import make_embedder

        make_embedder(settings).close()  # export first: start-up is measured, not exporting
    results = {runtime: _run_child(runtime, args, settings) for runtime in runtimes}
    print(f"\n`wardrobe bench` on {platform.node()} ({os.cpu_count()} CPU cores), "
          f"{date.today().isoformat()}\n")  # fmt: skip
    _print_table(results)
    return 0


def _run_child(
    runtime: str, args: argparse.Namespace, settings: Settings
) -> dict[str, str | float]:
    print(f"measuring the {runtime} runtime …", file=sys.stderr)
    command = [sys.executable, "-m", "bot.cli", "bench", "--one-runtime", runtime,
               "--styles", str(args.styles), "--images", str(args.images),
               "--queries", str(args.queries), "--seed", str(args.seed)]  # fmt: skip
    if args.photos:
        command += ["--photos", str(args.photos)]
    # The shop's ONNX exports are reused: exporting is not what is being measured.
    cache = str(settings.model_cache_dir.resolve())
    env = {**os.environ, "EMBEDDING_RUNTIME": runtime, "EMBEDDING_CACHE_DIR": cache}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no output)"]
        raise CliError(f"the {runtime} measurement failed: {lines[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print_table(results: dict[str, dict[str, str | float]]) -> None:
    runtimes = list(results)
    ratio = len(runtimes) == 2
    header = "| metric | " + " | ".join(runtimes) + (" | ratio |" if ratio else " |")
    print(header)
    print("|---" * (len(runtimes) + 1 + ratio) + "|")
    for name in results[runtimes[0]]:
        values = [results[runtime].get(name, "-") for runtime in runtimes]
        cells = [_cell(value) for value in values]
        row = f"| {name} | " + " | ".join(cells)
        if ratio:
            a, b = values
            both = isinstance(a, float) and isinstance(b, float) and a and b
            row += f" | {_ratio(name, a, b)}" if both else " | "
        print(row + " |")


def _cell(value: str | float) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _ratio(name: str, first: float, second: float) -> str:
    """How many times better the first runtime is (higher is better for speeds)."""
    better = first / second if "items/s" in name else second / first
    return f"{better:.2f}×"


def _measure_one(args: argparse.Namespace, settings: Settings) -> int:
    with tempfile.TemporaryDirectory(prefix="wardrobe-bench-") as scratch:
        scratch_settings = settings.model_copy(update={"data_dir": Path(scratch)})
        rows = asyncio.run(_measure(scratch_settings, args))
    print(json.dumps(rows))
    return 0


async def _measure(settings: Settings, args: argparse.Namespace) -> dict[str, str | float]:
    from bot.quality.metrics import leave_one_out_precision
    from bot.service import opened_recommender

    started = time.perf_counter()
    async with opened_recommender(settings) as recommender:
        await recommender.warm_up()
        ready = time.perf_counter() - started
        report = await recommender.ingest(CatalogSource.fashion(args.styles, args.images))
        stored = await recommender.catalog.all_items()
        rng = random.Random(args.seed)
        photos = _query_photos(args, [s.item.image_path for s in stored.values()], rng)
        end_to_end = []
        for data in photos:
            begin = time.perf_counter()
            await recommender.find_similar(data, 5)
            end_to_end.append(time.perf_counter() - begin)
        stages = await _stage_times(recommender, photos)
        precision = leave_one_out_precision(
            recommender.index, {key: s.item for key, s in stored.items()}
        )
        model = (await recommender.stats()).model
    items_per_second = report.index_size / report.seconds
    rows: dict[str, str | float] = {
        "model": model,
        "torch imported": "yes" if "torch" in sys.modules else "no",
        "start-up to model loaded (s)": ready,
        "catalog items indexed": f"{report.index_size} ({len(report.failures)} failed)",
        "ingest, cold (s)": report.seconds,
        "ingest items/s": items_per_second,
        f"full catalog ({FULL_CATALOG_ITEMS:,} items) would take (min)": (
            FULL_CATALOG_ITEMS / items_per_second / 60
        ),
        "query p50 (ms)": _percentile(end_to_end, 50),
        "query p95 (ms)": _percentile(end_to_end, 95),
        "query p99 (ms)": _percentile(end_to_end, 99),
    }
    rows.update({f"  {stage} p50 (ms)": _percentile(times, 50) for stage, times in stages.items()})
    rows.update({f"catalog leave-one-out P@5 by {k}": f"{v:.3f}" for k, v in precision.items()})
    rows["RSS after the queries (MB)"] = _rss_mb()
    rows["peak RSS (MB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return rows


async def _stage_times(recommender: Recommender, photos: list[bytes]) -> dict[str, list[float]]:
    """The query path's stages timed one by one, as :meth:`Recommender.find_similar` runs
    them (there all but the SQLite read run in the embedder's worker thread)."""
    from embeddings import load_image
    from embeddings.features import view_and_colour

    embedder = recommender.embedder.embedder
    crop = recommender.embedder.garment_crop
    pool = recommender.ranking.pool
    names = ("decode", "garment crop + colour", "preprocess", "embed", "search", "SQLite")
    stages: dict[str, list[float]] = {name: [] for name in names}
    for data in photos:
        marks = [time.perf_counter()]
        image = load_image(data)
        marks.append(time.perf_counter())
        view, _ = view_and_colour(image, crop=crop)
        marks.append(time.perf_counter())
        inputs = embedder.preprocess(view)[None]
        marks.append(time.perf_counter())
        vector = embedder.embed_inputs(inputs)[0]
        marks.append(time.perf_counter())
        hits = recommender.index.search(vector, pool)
        marks.append(time.perf_counter())
        await recommender.catalog.get_items_with_colours([key for key, _ in hits])
        marks.append(time.perf_counter())
        for name, begin, end in zip(stages, marks, marks[1:], strict=False):
            stages[name].append(end - begin)
    return stages


def _query_photos(args: argparse.Namespace, catalog: list[str], rng: random.Random) -> list[bytes]:
    """``--queries`` photos as shoppers send them: 480x640 JPEG bytes."""
    from PIL import Image, ImageOps

    from embeddings import load_image

    if args.photos:
        suffixes = {".jpg", ".jpeg", ".png", ".webp"}
        paths = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in suffixes)
    else:
        paths = sorted(Path(path) for path in catalog)
    if not paths:
        raise CliError(f"no images to query with in {args.photos or args.images}")
    picked = [paths[rng.randrange(len(paths))] for _ in range(args.queries)]
    photos = []
    for path in picked:
        image = ImageOps.fit(load_image(path), QUERY_SIZE, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        photos.append(buffer.getvalue())
    return photos


def _percentile(seconds: list[float], percent: float) -> float:
    if not seconds:
        return float("nan")
    ms = sorted(s * 1000 for s in seconds)
    return ms[min(len(ms) - 1, round(percent / 100 * (len(ms) - 1)))]


def _rss_mb() -> float:
    """Resident memory now (Linux), else the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
