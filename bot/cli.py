"""``wardrobe``: the admins' and benchmarks' command line (run, ingest, search, stats, bench,
evaluate, train).

``wardrobe search --json`` prints one JSON object per query image per line:
``{"query": "<path>", "results": [{"id": "<product id>", "score": <float>, "name": ...}]}``,
results best first. Other tools depend on that shape: keep it stable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.recommender import Match


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings()
    if args.data_dir:
        settings = settings.model_copy(update={"data_dir": args.data_dir})
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args, settings)
    except CliError as error:
        print(f"wardrobe: error: {error}", file=sys.stderr)
        return 2


class CliError(Exception):
    """A problem the admin can fix, reported as one line without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wardrobe", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, help="data directory (default: $WARDROBE_DATA_DIR or ./data)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the Telegram bot (polling)")
    run.set_defaults(handler=_run)

    ingest = commands.add_parser("ingest", help="load and index a catalog")
    ingest.add_argument("--styles", type=Path, help="styles.csv (default: $CATALOG_STYLES_CSV)")
    ingest.add_argument("--images", type=Path, help="image folder (default: $CATALOG_IMAGES_DIR)")
    ingest.add_argument("--reembed", action="store_true", help="re-embed unchanged images too")
    ingest.add_argument("--prune", action="store_true", help="remove items not in this file")
    ingest.set_defaults(handler=_ingest)

    search = commands.add_parser("search", help="find catalog items similar to image files")
    search.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    search.add_argument("--top", "-k", type=int, default=5, help="results per image (default 5)")
    search.add_argument("--json", action="store_true", help="one JSON object per line")
    search.set_defaults(handler=_search)

    stats = commands.add_parser("stats", help="catalog and index summary")
    stats.set_defaults(handler=_stats)

    from bot.bench import add_bench_parser
    from bot.evaluate import add_evaluate_parser
    from bot.train import add_train_parser

    add_bench_parser(commands)
    add_evaluate_parser(commands)
    add_train_parser(commands)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import ConfigurationError, run

    try:
        run(settings)
    except ConfigurationError as error:
        raise CliError(str(error)) from None
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    styles = args.styles or settings.catalog_styles_csv
    images = args.images or settings.catalog_images_dir
    if styles is None or images is None:
        raise CliError("give --styles and --images (or set CATALOG_STYLES_CSV/CATALOG_IMAGES_DIR)")
    return asyncio.run(_ingest_async(settings, styles, images, args.reembed, args.prune))


async def _ingest_async(
    settings: Settings, styles: Path, images: Path, reembed: bool, prune: bool
) -> int:
    from tqdm import tqdm

    from bot.app import close_recommender, open_recommender
    from storage.source import CatalogSourceError

    recommender = await open_recommender(settings)
    bar = tqdm(desc="embedding", unit="img", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        report = await recommender.ingest(
            styles, images, reembed_all=reembed, prune=prune, progress=progress
        )
    except CatalogSourceError as error:
        raise CliError(str(error)) from None
    finally:
        bar.close()
        await close_recommender(recommender)
    print(report.summary())
    if report.embedded:
        print(f"embedding speed: {report.items_per_second:.1f} images/s")
    for item_id, reason in report.failures:
        print(f"  skipped {item_id}: {reason}", file=sys.stderr)
    return 0


def _search(args: argparse.Namespace, settings: Settings) -> int:
    if args.top < 1:
        raise CliError("--top must be at least 1")
    return asyncio.run(_search_async(settings, args.images, args.top, args.json))


async def _search_async(settings: Settings, images: list[Path], top: int, as_json: bool) -> int:
    from bot.app import close_recommender, open_recommender
    from bot.recommender import EmptyCatalog
    from embeddings import ImageRejected

    recommender = await open_recommender(settings)
    failed = 0
    try:
        for path in images:
            try:
                matches = await recommender.find_similar(path.read_bytes(), top)
            except EmptyCatalog:
                raise CliError(
                    f"the catalog in {settings.data_dir} is empty: run `wardrobe ingest` first"
                ) from None
            except (OSError, ImageRejected) as error:
                failed += 1
                reason = error.reason if isinstance(error, ImageRejected) else error.strerror
                _print_search(path, [], as_json, error=reason)
                continue
            _print_search(path, matches, as_json)
    finally:
        await close_recommender(recommender)
    return 1 if failed else 0


def _print_search(
    path: Path, matches: list[Match], as_json: bool, error: str | None = None
) -> None:
    if as_json:
        record: dict = {"query": str(path), "results": [_result(match) for match in matches]}
        if error:
            record["error"] = error
        print(json.dumps(record, ensure_ascii=False), flush=True)
        return
    print(f"{path}: {error}" if error else f"{path}:")
    for rank, match in enumerate(matches, start=1):
        item = match.item.item
        details = ", ".join(v for v in (item.article_type, item.base_colour, item.gender) if v)
        print(f"  {rank}. [{item.id}] {match.score:.3f}  {item.name} ({details})")


def _result(match: Match) -> dict:
    fields = {key: value for key, value in asdict(match.item.item).items() if value is not None}
    fields.pop("image_path", None)
    return {"id": match.item.item.id, "score": round(match.score, 6), **fields}


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    async def stats() -> None:
        from bot.app import close_recommender, open_recommender

        recommender = await open_recommender(settings)
        try:
            catalog = recommender.catalog
            print(f"data dir:       {settings.data_dir}")
            print(f"catalog items:  {await catalog.count_items()}")
            print(f"index vectors:  {len(recommender.index)}")
            print(f"catalog model:  {await catalog.get_meta('model') or '-'}")
            print(f"bot model:      {recommender.embedder.model_name}")
            print(f"queries served: {await catalog.get_meta('queries_served') or 0}")
        finally:
            await close_recommender(recommender)

    asyncio.run(stats())
    return 0


if __name__ == "__main__":
    sys.exit(main())
