"""How long refinements take on a real catalog, and whether a refined page is full whenever the
catalog holds enough items that pass its filters.

Ingests the catalog into a temporary data directory (the bot's default settings), then for
held-out real photos: the photo search, "More like this", and every refinement the first page
offers. Prints median and 95th-percentile milliseconds per step, and every refined page that
has fewer items than the page size although the catalog has more that pass (none expected).

    .venv/bin/python scripts/bench_refine.py --styles ../shared/fashion-dev/styles.csv \\
        --images ../shared/fashion-dev/images --photos ../shared/clothing-dev --queries 60
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bot.core.filters import Filters
from bot.core.recommender import ResultPage
from bot.core.sources import CatalogSource
from bot.quality.gallery import real_photo_queries
from bot.service import opened_recommender
from bot.settings import Settings


async def measure(styles: Path, images: Path, photos: Path, count: int) -> None:
    timings: dict[str, list[float]] = defaultdict(list)
    short: list[str] = []
    sizes: dict[str, list[int]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as data_dir:
        async with opened_recommender(Settings(WARDROBE_DATA_DIR=data_dir)) as recommender:
            await recommender.ingest(CatalogSource.fashion(styles, images))
            items = [stored.item for stored in (await recommender.catalog.all_items()).values()]
            queries = real_photo_queries(photos)[:count]
            for number, query in enumerate(queries):
                chat = number + 1
                search = recommender.search_image(query.data, chat)
                page = await _timed(timings, "photo search", search)
                await _timed(timings, "more like this", recommender.more(page.search_id, chat))
                for refinement in page.refinements:
                    refined = await _timed(
                        timings, f"refine {refinement.name.lower()}",
                        recommender.refine(page.search_id, chat, refinement),
                    )  # fmt: skip
                    sizes[refinement.name.lower()].append(len(refined.matches))
                    if len(refined.matches) < recommender.page_size:
                        passing = _passing(refined.filters, items)
                        if passing > len(refined.matches):
                            shown = len(refined.matches)
                            short.append(f"{query.photo.id} {refinement}: {shown}, {passing} pass")
                    more = recommender.more(refined.search_id, chat)
                    await _timed(timings, "more, refined", more)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"date: {datetime.date.today()}; catalog: {len(items)} items; "
          f"{len(queries)} held-out real photos\n")  # fmt: skip
    print("| step | runs | median ms | p95 ms | items on the page (mean) |")
    print("|---|---|---|---|---|")
    for step, values in timings.items():
        name = step.removeprefix("refine ")
        shown = f"{np.mean(sizes[name]):.2f}" if step.startswith("refine ") else ""
        print(f"| {step} | {len(values)} | {1000 * np.median(values):.1f} | "
              f"{1000 * np.percentile(values, 95):.1f} | {shown} |")  # fmt: skip
    print(f"\nrefined pages short although the catalog has more that pass: {len(short)}")
    for line in short:
        print("  " + line)


async def _timed(timings: dict[str, list[float]], step: str, work) -> ResultPage:
    started = time.perf_counter()
    page = await work
    timings[step].append(time.perf_counter() - started)
    return page


def _passing(filters: Filters, items: list) -> int:
    """Items in stock that pass ``filters`` (a photo search has no item to leave out)."""
    return sum(item.available and filters.admits(item) for item in items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(measure(args.styles, args.images, args.photos, args.queries))


if __name__ == "__main__":
    main()
