"""``wardrobe feedback --csv [FILE]``: shoppers' 👍/👎 with what they were shown, for
measuring search quality from real use (one row per voted page, oldest first).

Columns: voted_at (ISO 8601, UTC), search_id, page (0: the search's first page), vote (1 or
-1), model, items (the shop's ids shown, best first, ``;``-separated), filters and seen (JSON),
query_vector (the query's float32 vector, base64). Only the catalog database is read: no
model is loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.cli.common import CliError
from bot.settings import Settings
from storage.catalog import Catalog
from storage.models import Vote

COLUMNS = (
    "voted_at", "search_id", "page", "vote", "model", "items", "filters", "seen", "query_vector",
)  # fmt: skip


def add_feedback_parser(commands: argparse._SubParsersAction) -> None:
    feedback = commands.add_parser(
        "feedback", help="export shoppers' 👍/👎 votes with what they were shown"
    )
    feedback.add_argument(
        "--csv",
        nargs="?",
        const="-",
        required=True,
        metavar="FILE",
        help="write CSV to FILE (default: standard output)",
    )
    feedback.set_defaults(handler=_feedback)


def _feedback(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.database_path.is_file():
        raise CliError(f"there is no catalog in {settings.data_dir}: nothing was voted on yet")
    votes = asyncio.run(_votes(settings.database_path))
    if args.csv == "-":
        write_csv(votes, sys.stdout)
    else:
        path = Path(args.csv)
        if not path.parent.is_dir():
            raise CliError(f"{path.parent} is not a folder")
        with path.open("w", newline="", encoding="utf-8") as handle:
            write_csv(votes, handle)
        up = sum(vote.vote > 0 for vote in votes)
        print(f"{len(votes)} votes ({up} 👍) written to {path}", file=sys.stderr)
    return 0


async def _votes(path: Path) -> list[Vote]:
    catalog = await Catalog.open(path)
    try:
        return await catalog.votes()
    finally:
        await catalog.close()


def write_csv(votes: list[Vote], out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for vote in votes:
        writer.writerow(
            [
                datetime.fromtimestamp(vote.voted_at, UTC).isoformat(timespec="seconds"),
                vote.search_id,
                vote.page,
                vote.vote,
                vote.model,
                ";".join(vote.items),
                json.dumps(vote.filters, sort_keys=True),
                json.dumps(vote.seen, sort_keys=True),
                base64.b64encode(vote.vector).decode(),
            ]
        )
