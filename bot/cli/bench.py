"""``wardrobe bench``: ingest speed, single-query latency, memory and catalog P@5 in one run.

It works in a scratch data directory so the shop's real catalog is never touched. Results are
printed as a Markdown table to paste into docs/BENCHMARKS.md. ``--synthetic N`` measures the
vector index alone at a catalog size no image folder has (:mod:`.bench_synthetic`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import resource
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from bot.cli.common import CliError
from bot.settings import Settings


def add_bench_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="measure ingest speed, query latency, P@5")
    bench.add_argument("--styles", type=Path, help="styles.csv of the catalog")
    bench.add_argument("--images", type=Path, help="its image folder")
    bench.add_argument(
        "--queries", type=int, help="timed queries (default 200; 1000 with --synthetic)"
    )
    bench.add_argument("--seed", type=int, default=0)
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
    with tempfile.TemporaryDirectory(prefix="wardrobe-bench-") as scratch:
        bench_settings = settings.model_copy(update={"data_dir": Path(scratch)})
        rows = asyncio.run(_measure(bench_settings, args))
    print(f"\n`wardrobe bench` on {platform.node()} ({_machine()}), {date.today().isoformat()}\n")
    print("| metric | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


async def _measure(settings: Settings, args: argparse.Namespace) -> list[tuple[str, str]]:
    from bot.quality.metrics import leave_one_out_precision
    from bot.service import opened_recommender

    async with opened_recommender(settings) as recommender:
        await recommender.warm_up()
        report = await recommender.ingest(args.styles, args.images)
        stored = await recommender.catalog.all_items()
        sample = random.Random(args.seed).sample(
            sorted(stored.values(), key=lambda s: s.key), min(args.queries or 200, len(stored))
        )
        end_to_end, index_only = [], []
        for entry in sample:
            data = Path(entry.item.image_path).read_bytes()
            started = time.perf_counter()
            await recommender.find_similar(data, 5)
            end_to_end.append(time.perf_counter() - started)
            vector = recommender.index.get(entry.key)
            started = time.perf_counter()
            recommender.index.search(vector, 5)
            index_only.append(time.perf_counter() - started)
        precision = leave_one_out_precision(
            recommender.index, {key: s.item for key, s in stored.items()}
        )
        model = (await recommender.stats()).model
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [
        ("model", model),
        ("catalog items indexed", f"{report.index_size} ({len(report.failures)} failed)"),
        ("ingest (cold, incl. reading + SQLite + HNSW)", f"{report.seconds:.1f} s"),
        ("ingest speed", f"{report.index_size / report.seconds:.1f} items/s"),
        ("single query p50 / p95 (decode+embed+search+SQLite)", _p50_p95(end_to_end)),
        ("index search only p50 / p95", _p50_p95(index_only)),
        *[
            (f"catalog leave-one-out P@5 by {name}", f"{value:.3f}")
            for name, value in precision.items()
        ],
        ("peak RSS", f"{peak_mb:.0f} MB"),
    ]


def _p50_p95(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{statistics.median(ms):.1f} ms / {p95:.1f} ms"


def _machine() -> str:
    import torch

    return (
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
