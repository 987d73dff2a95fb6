"""A catalog by URL: ``wardrobe ingest --feed`` against a local shop server (a benchmark, not a
test).

    .venv/bin/python scripts/bench_feed.py --styles ../shared/fashion-dev/styles.csv \
        --images ../shared/fashion-dev/images

The catalog is written as a Google Merchant TSV whose ``image_link``s point at a web server on
127.0.0.1 (ETag and Last-Modified, 304 on a match: ``tests/support/shop_server.py``), then:

1. the baseline, same run: ``wardrobe ingest --styles --images`` from local files;
2. ``wardrobe ingest --feed URL`` into an empty data directory (downloads, embeds);
3. the same again (revalidates each image, downloads and embeds nothing).

Each run is the real command in a child process: wall time, its peak RSS, and how many image
bodies the server sent.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage.source import read_styles  # noqa: E402
from tests.support.shop_server import shop_server  # noqa: E402


def _merchant_feed(path: Path, rows: list, image_url) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["id", "title", "image_link", "color", "gender", "product_type"])
        for item in rows:
            writer.writerow([item.id, item.name, image_url(item.id), item.base_colour or "",
                             item.gender or "", item.article_type or ""])  # fmt: skip


def _ingest(data: Path, *args: str) -> tuple[float, float, str]:
    """Seconds, the child's own peak RSS in MB, and its summary line."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "--data-dir", str(data), "ingest", *args],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"ingest {args} failed with status {child.returncode}")
    summary = next(line for line in out.splitlines() if "items indexed" in line)
    return seconds, usage.ru_maxrss / 1024, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    args = parser.parse_args()
    rows = [row.item for row in read_styles(args.styles, args.images) if row.item is not None]
    with tempfile.TemporaryDirectory() as scratch, shop_server() as shop:
        root = Path(scratch)
        for item in rows:
            shop.serve(f"/images/{item.id}.jpg", Path(item.image_path).read_bytes(), "image/jpeg")
        feed = root / "feed.tsv"
        _merchant_feed(feed, rows, lambda item_id: shop.url(f"/images/{item_id}.jpg"))
        feed_url = shop.serve("/feed.tsv", feed.read_bytes(), "text/tab-separated-values")

        print(f"{len(rows)} items; images served from {shop.base_url}\n")
        print("| run | wall s | peak RSS MB | image bodies sent | summary |")
        print("|---|---|---|---|---|")
        runs = [
            ("styles.csv + images/ (baseline)", root / "local",
             ["--styles", str(args.styles), "--images", str(args.images)]),
            ("--feed URL, first", root / "feed", ["--feed", feed_url]),
            ("--feed URL, again (unchanged)", root / "feed", ["--feed", feed_url]),
        ]  # fmt: skip
        for name, data, ingest_args in runs:
            shop.reset_counts()
            seconds, peak, summary = _ingest(data, *ingest_args)
            bodies = shop.downloaded() - shop.bodies_sent["/feed.tsv"]
            print(f"| {name} | {seconds:.1f} | {peak:.0f} | {bodies} | {summary} |", flush=True)


if __name__ == "__main__":
    main()
