"""``wardrobe evaluate``: retrieval quality and latency per configuration (the engine is
:mod:`bot.quality`)."""

from __future__ import annotations

import argparse
import asyncio
import functools
import platform
from datetime import date
from pathlib import Path

from bot.cli.common import CliError, progress_bar
from bot.quality.configs import Configuration, settings_keys
from bot.settings import Settings


def add_evaluate_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="retrieval quality (real photos, catalog and simulated phone photos) per "
        "configuration",
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
        "--real-photos",
        type=Path,
        metavar="DIR",
        help="labelled real photos (labels.csv + images/, e.g. ../shared/clothing-dev): "
        "their held-out part queries the gallery",
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
    fields = settings_keys()
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


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from bot.quality.report import format_class_table, format_table
    from bot.quality.runner import evaluate
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
                real_photos=args.real_photos,
                configurations=configurations,
                progress=functools.partial(progress_bar, enabled=True),
            )
        )
    except (ValidationError, CatalogSourceError, ValueError, OSError) as error:
        raise CliError(str(error)) from None
    print(
        f"\n`wardrobe evaluate` on {platform.node()}, {date.today().isoformat()}: "
        f"split {evaluation.split}, {evaluation.gallery} gallery items, "
        f"{evaluation.real_queries} real photos, {evaluation.phone_queries} phone photos, "
        f"seed {evaluation.seed}\n"
    )
    print(format_table(evaluation, markdown=args.markdown))
    if evaluation.real_classes:
        print("\nReal photos per class: type P@5 / group P@5\n")
        print(format_class_table(evaluation, markdown=args.markdown))
    return 0
