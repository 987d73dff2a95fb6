"""``wardrobe``: the admins' and benchmarks' command line (run, ingest, search, stats,
feedback, health, bench, evaluate, train).

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

from bot.cli.bench import add_bench_parser
from bot.cli.common import CliError, add_feed_options, ingest_source, staged_progress_bar
from bot.cli.evaluate import add_evaluate_parser
from bot.cli.feedback import add_feedback_parser
from bot.cli.train import add_train_parser
from bot.logs import configure_logging, redact
from bot.settings import ConfigurationError, Settings
from storage.catalog import CatalogUnusable, is_disk_full
from storage.migrations import SchemaTooNew

if TYPE_CHECKING:
    from bot.core.recommender import Match
    from bot.core.sources import CatalogSource

log = logging.getLogger("wardrobe")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(**({"WARDROBE_DATA_DIR": args.data_dir} if args.data_dir else {}))
    except ConfigurationError as error:
        return _fail(error)
    secrets = settings.secrets()
    configure_logging(settings.log_level, secrets)
    for key in Settings.unknown_env_file_keys():
        log.warning("unknown setting in .env, ignored: %s", key)
    try:
        return args.handler(args, settings)
    except (CliError, ConfigurationError, CatalogUnusable, SchemaTooNew) as error:
        return _fail(error, secrets)
    except Exception as error:
        if is_disk_full(error):
            return _fail(
                f"the disk holding {settings.data_dir} is full ({error}); nothing is lost: "
                "free some space and run it again",
                secrets,
            )
        log.critical("stopped by an unexpected error", exc_info=error)  # redacted, unlike stderr
        return 1


def _fail(error: Exception | str, secrets: Sequence[str] = ()) -> int:
    print(f"wardrobe: error: {redact(str(error), secrets)}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wardrobe",
        description="Wardrobe Consultant: the bot, its catalog and its quality, from the shell.",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="data directory (default: $WARDROBE_DATA_DIR or ./data)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the Telegram bot (polling)")
    run.set_defaults(handler=_run)

    ingest = commands.add_parser(
        "ingest", help="load and index a catalog (a product feed, or styles.csv + images)"
    )
    add_feed_options(ingest)
    ingest.add_argument("--reembed", action="store_true", help="re-embed unchanged images too")
    ingest.add_argument(
        "--prune", action="store_true", help="remove items the source no longer lists"
    )
    ingest.add_argument(
        "--force",
        action="store_true",
        help="remove items even when that is more than REINDEX_MAX_SHRINK of the catalog",
    )
    ingest.set_defaults(handler=_ingest)

    search = commands.add_parser("search", help="find catalog items similar to image files")
    search.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    search.add_argument("--top", "-k", type=int, default=5, help="results per image (default 5)")
    search.add_argument("--json", action="store_true", help="one JSON object per line")
    search.add_argument(
        "--sheet",
        type=Path,
        metavar="OUT.png",
        help="also draw a contact sheet: each query with its results, names, types, colours, "
        "scores",
    )
    search.set_defaults(handler=_search)

    stats = commands.add_parser("stats", help="catalog and index summary")
    stats.set_defaults(handler=_stats)

    health = commands.add_parser(
        "health", help="exit 0 when the running bot is healthy (Docker's HEALTHCHECK)"
    )
    health.set_defaults(handler=_health)

    add_feedback_parser(commands)
    add_bench_parser(commands)
    add_evaluate_parser(commands)
    add_train_parser(commands)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.server.run import run

    return run(settings)


def _health(args: argparse.Namespace, settings: Settings) -> int:
    from bot.server.heartbeat import heartbeat_path, problem

    port = settings.webhook_port if settings.webhook_mode else None
    if found := problem(heartbeat_path(settings.data_dir), port):
        raise CliError(found)
    print("ok")
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    source = ingest_source(args, settings)
    max_removed = 1.0 if args.force else settings.reindex_max_shrink
    return asyncio.run(_ingest_async(settings, source, args.reembed, args.prune, max_removed))


async def _ingest_async(
    settings: Settings,
    source: CatalogSource,
    reembed: bool,
    prune: bool,
    max_removed: float,
) -> int:
    from bot.core.indexing import CatalogWouldShrink
    from bot.service import opened_recommender
    from storage.source import CatalogSourceError

    async with opened_recommender(settings) as recommender:
        try:
            with staged_progress_bar() as progress:
                report = await recommender.ingest(
                    source,
                    reembed_all=reembed,
                    prune=prune,
                    progress=progress,
                    max_removed_share=max_removed,
                )
        except CatalogWouldShrink as error:
            raise CliError(f"{error} with --force") from None
        except CatalogSourceError as error:
            raise CliError(str(error)) from None
    print(f"read a {report.format} feed: {report.rows} rows")
    if report.columns:
        print(
            "columns: " + ", ".join(f"{name}={column}" for name, column in report.columns.items())
        )
    print(report.summary())
    if report.embedded:
        print(f"embedding speed: {report.items_per_second:.1f} images/s")
    for item_id, reason in report.warnings:
        print(f"  warning {item_id}: {reason}", file=sys.stderr)
    for item_id, reason in report.failures:
        print(f"  skipped {item_id}: {reason}", file=sys.stderr)
    return 0


def _search(args: argparse.Namespace, settings: Settings) -> int:
    if args.top < 1:
        raise CliError("--top must be at least 1")
    if args.sheet is not None:
        from bot.cli.sheet import check_destination

        check_destination(args.sheet)
    return asyncio.run(_search_async(settings, args.images, args.top, args.json, args.sheet))


async def _search_async(
    settings: Settings, images: list[Path], top: int, as_json: bool, sheet: Path | None
) -> int:
    from bot.cli.sheet import SheetRow, write_contact_sheet
    from bot.core.recommender import EmptyCatalog
    from bot.service import opened_recommender
    from embeddings import ImageRejected

    failed = 0
    rows: list[SheetRow] = []
    async with opened_recommender(settings) as recommender:
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
                rows.append(SheetRow(path, [], reason))
                continue
            _print_search(path, matches, as_json)
            rows.append(SheetRow(path, matches))
    if sheet is not None:
        write_contact_sheet(sheet, rows, top)
        print(f"contact sheet: {sheet} ({len(rows)} queries)", file=sys.stderr)
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
    async def report() -> None:
        from bot.service import opened_recommender

        async with opened_recommender(settings) as recommender:
            summary = await recommender.stats()
        print(f"data dir:       {settings.data_dir}")
        print(f"catalog items:  {summary.items}")
        print(f"index vectors:  {summary.index_vectors}")
        print(f"catalog model:  {summary.catalog_model or '-'}")
        print(f"bot model:      {summary.model}")
        print(f"runtime:        {summary.runtime}")
        print(f"queries served: {summary.queries_served}")
        print(f"feedback:       {summary.feedback()}")

    asyncio.run(report())
    return 0
