"""What the ``wardrobe`` subcommands share: the one-line error, the catalog source options and
the progress bar (imported by the subcommands instead of the dispatcher)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.settings import Settings


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
