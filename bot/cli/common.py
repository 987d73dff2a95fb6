"""What the ``wardrobe`` subcommands share: the one-line error, the catalog source options and
the progress bars (imported by the subcommands instead of the dispatcher)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.core.sources import CatalogSource, load_mapping
from bot.settings import Settings
from storage.source import CatalogSourceError

FEED_FORMATS = ("auto", "merchant", "shopify", "csv", "fashion")


class CliError(Exception):
    """A problem the admin can fix, reported as one line without a traceback."""


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """``--styles`` and ``--images``, defaulting to the configured catalog source."""
    parser.add_argument("--styles", type=Path, help="styles.csv (default: $CATALOG_STYLES_CSV)")
    parser.add_argument("--images", type=Path, help="image folder (default: $CATALOG_IMAGES_DIR)")


def catalog_source(args: argparse.Namespace, settings: Settings) -> tuple[Path, Path]:
    """The styles file and image folder given on the command line, else configured."""
    styles = args.styles or settings.catalog_styles_csv
    images = args.images or settings.catalog_images_dir
    if styles is None or images is None:
        raise CliError("give --styles and --images (or set CATALOG_STYLES_CSV/CATALOG_IMAGES_DIR)")
    return styles, images


def add_feed_options(parser: argparse.ArgumentParser) -> None:
    """``--feed`` (with ``--format``, ``--map``, ``--shop-url``) beside ``--styles/--images``."""
    add_source_options(parser)
    parser.add_argument(
        "--feed",
        metavar="PATH_OR_URL",
        help="a product feed: Google Merchant (TSV or XML), a Shopify export, any CSV/TSV "
        "(default: $CATALOG_FEED)",
    )
    parser.add_argument(
        "--format", choices=FEED_FORMATS, help="the feed's format (default: auto, detected)"
    )
    parser.add_argument(
        "--map",
        metavar="FIELD=COLUMN,...|FILE",
        help="which column holds which field, e.g. title=name,image=image_url (or a file of "
        "such lines); unmapped fields are guessed from the header",
    )
    parser.add_argument(
        "--shop-url", help="the shop's address, for Shopify product links ($CATALOG_SHOP_URL)"
    )


def ingest_source(args: argparse.Namespace, settings: Settings) -> CatalogSource:
    """The source ``wardrobe ingest`` reads: ``--feed``, else ``--styles/--images``, else the
    configured one (:meth:`Settings.catalog_source`)."""
    if args.feed and args.styles:
        raise CliError("give --feed or --styles, not both")
    if args.feed:
        try:
            mapping = load_mapping(args.map or "")
        except CatalogSourceError as error:
            raise CliError(f"--map: {error}") from None
        return CatalogSource(
            args.feed,
            args.format or "auto",
            mapping,
            images_dir=args.images,
            shop_url=args.shop_url or settings.catalog_shop_url or None,
        )
    if args.styles or args.images:
        return CatalogSource.fashion(*catalog_source(args, settings))
    source = settings.catalog_source()
    if source is None:
        raise CliError(
            "give --feed (or --styles and --images), or set CATALOG_FEED "
            "(or CATALOG_STYLES_CSV and CATALOG_IMAGES_DIR)"
        )
    return source


@contextmanager
def staged_progress_bar(
    *, enabled: bool | None = None
) -> Iterator[Callable[[int, int, str], None]]:
    """Progress bars on stderr for ``(done, total, stage)`` callbacks: a bar per stage (for an
    ingest: downloading images, then embedding images), each with its rate and ETA; a new
    stage closes the bar before it."""
    with contextlib.ExitStack() as stages:
        current: dict[str, Callable[[int, int], None]] = {}

        def advance(done: int, total: int, stage: str) -> None:
            if stage not in current:
                stages.close()
                current.clear()
                current[stage] = stages.enter_context(progress_bar(stage, enabled=enabled))
            current[stage](done, total)

        yield advance


@contextmanager
def progress_bar(
    desc: str, *, unit: str = "img", enabled: bool | None = None
) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, driven by ``(done, total)`` callbacks as ingests report them.

    ``enabled=None`` shows it only on a terminal. Redraws are rate-limited as tqdm's own.
    """
    from tqdm import tqdm

    bar = tqdm(
        desc=desc, unit=unit, file=sys.stderr, disable=None if enabled is None else not enabled
    )

    def advance(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    try:
        yield advance
    finally:
        bar.close()
