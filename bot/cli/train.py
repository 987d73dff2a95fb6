"""``wardrobe train``: fine-tune the embedding on the catalog's own images and labels.

The catalog source is read here (``storage`` is off limits to ``embeddings``); the training
itself is :func:`embeddings.training.run.train`. The weights land in the data directory, where
the bot and ``wardrobe ingest`` pick them up (``EMBEDDING_TRAINED=auto``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.common import CliError, add_source_options, catalog_source
from bot.settings import Settings
from embeddings.weights import ModelSource

if TYPE_CHECKING:
    from embeddings.training.config import TrainConfig, TrainItem


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    # Options left out keep embeddings.training.config.TrainConfig's defaults (the measured recipe);
    # importing it here would load torch for every `wardrobe` command.
    train = commands.add_parser(
        "train", help="fine-tune the embedding model on the catalog (train split only)"
    )
    add_source_options(train)
    train.add_argument("--epochs", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--resume", action="store_true", help="continue from the last epoch's checkpoint"
    )
    train.add_argument(
        "--device", help="auto (GPU when present), cpu, cuda … (default: $EMBEDDING_DEVICE)"
    )
    train.add_argument(
        "--unfreeze-blocks",
        type=int,
        help="trailing MBConv blocks fine-tuned together with the head conv",
    )
    train.add_argument("--dim", type=int, help="embedding size")
    train.add_argument("--batch-size", type=int, help="items per step (two views each)")
    train.add_argument(
        "--phone-views",
        type=int,
        help="simulated phone photos per item, computed once and reused across epochs",
    )
    train.add_argument(
        "--no-colour-tap",
        dest="colour_tap",
        action="store_false",
        default=None,
        help="pool only the last feature map (no early-layer colour features)",
    )
    train.add_argument(
        "--threads", type=int, help="CPU threads for torch (1 is faster on a busy machine)"
    )
    train.add_argument(
        "--real-photos",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of labelled real photos (labels.csv + images/, the clothing dataset's "
        "format) to learn from besides the catalog, repeatable (default: TRAIN_REAL_PHOTOS); their "
        "held-out part is never used",
    )
    train.add_argument(
        "--no-real-photos",
        action="store_true",
        help="train on the catalog alone, ignoring --real-photos and TRAIN_REAL_PHOTOS",
    )
    train.add_argument("--real-views", type=int, help="views cached per real photo")
    train.add_argument("--real-batch-size", type=int, help="real photos per step")
    train.add_argument(
        "--real-weight", type=float, help="weight of the real photos' losses next to the catalog's"
    )
    train.add_argument(
        "--start-from",
        metavar="auto|shipped|imagenet|WEIGHTS",
        default="auto",
        help="where the network starts: a weights file of the same architecture, the model "
        "shipped with the package, or ImageNet (default: the shipped model when there is one "
        "for the backbone and the architecture matches, else ImageNet)",
    )
    train.add_argument("--held-out-fraction", type=float, help="catalog share never trained on")
    train.add_argument("--lr", type=float, help="learning rate of the new layers")
    train.add_argument("--backbone-lr", type=float, help="learning rate of the unfrozen blocks")
    train.set_defaults(handler=_train)


NO_REAL_PHOTOS_WARNING = (
    "warning: training without real photos (--real-photos DIR or TRAIN_REAL_PHOTOS): the model "
    "learns packshots only and gets worse on the photos shoppers send (docs/BENCHMARKS.md, "
    '"A shop\'s own training")'
)

_CONFIG_OPTIONS = (
    "epochs", "seed", "batch_size", "unfreeze_blocks", "dim", "phone_views", "colour_tap", "lr",
    "backbone_lr", "held_out_fraction", "real_views", "real_batch_size", "real_weight",
)  # fmt: skip


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from embeddings.training.config import CACHE_DIR, TrainConfig, TrainingError
    from embeddings.training.real_photos import RealPhotosError, read_real_photos
    from embeddings.training.run import train

    styles, images = catalog_source(args, settings)
    if args.threads is not None and args.threads < 1:
        raise CliError("--threads must be at least 1")
    try:
        given = {name: getattr(args, name) for name in _CONFIG_OPTIONS}
        config = TrainConfig(
            backbone=settings.embedding_backbone,
            garment_crop=settings.garment_crop,  # train on the views search will embed
            **{name: value for name, value in given.items() if value is not None},
        )
        items, skipped = _read_items(styles, images)
        from_settings = not (args.no_real_photos or args.real_photos)
        if args.no_real_photos:
            folders = []
        elif args.real_photos:
            folders = args.real_photos
        else:
            folders = [settings.train_real_photos] if settings.train_real_photos else []
        if not folders:
            print(NO_REAL_PHOTOS_WARNING, file=sys.stderr)
        photos = []
        for folder in folders:
            try:
                found = read_real_photos(folder, held_out=False)
            except RealPhotosError as error:
                message = f"TRAIN_REAL_PHOTOS: {error}" if from_settings else str(error)
                raise CliError(message) from None
            photos += found.photos
            for line, problem in found.skipped:
                print(f"  skipped {folder / 'labels.csv'} line {line}: {problem}", file=sys.stderr)
        result = train(
            items,
            settings.data_dir,
            config,
            real_photos=photos,
            start_from=_start_from(args.start_from, config),
            resume=args.resume,
            device=args.device or settings.embedding_device,
            threads=args.threads,
            log=lambda line: print(line, file=sys.stderr),
        )
    except (TrainingError, RealPhotosError, ValueError) as error:
        raise CliError(str(error)) from None
    info = result.info
    print(
        f"trained {info.model_name} ({info.dim}-d) on {result.train_items} items "
        f"({skipped} catalog rows unusable) and {result.real_photos} real photos "
        f"for {result.epochs} epochs: "
        f"{result.cache_seconds:.0f} s caching features + {result.train_seconds:.0f} s training"
    )
    print(f"wrote {info.path}")
    if settings.embedding_runtime == "onnx":
        onnx = _export_onnx(ModelSource(config.backbone, trained=info.path), settings)
        print(f"exported it for ONNX Runtime: {onnx}")
    cache = settings.data_dir / CACHE_DIR
    size = sum(path.stat().st_size for path in cache.glob("*.pt")) / 2**20
    print(f"feature cache: {cache} ({size:.0f} MB; reused by runs with the same images and view "
          "settings, safe to delete)")  # fmt: skip
    print("re-embed the catalog with it: wardrobe ingest (or /reindex in the bot)")
    return 0


def _export_onnx(source: ModelSource, settings: Settings) -> Path:
    """Export now, while torch is loaded anyway, so the bot's next start need not."""
    from embeddings.onnx_runtime.export import export

    try:
        return export(source, source.export_stem(settings.model_cache_dir))
    except ValueError as error:
        raise CliError(str(error)) from None


def _start_from(choice: str, config: TrainConfig) -> Path | None:
    from embeddings.finetuned import read_trained_info
    from embeddings.weights import shipped_model

    if choice == "imagenet":
        return None
    if choice not in ("auto", "shipped"):
        return Path(choice)
    shipped = shipped_model(config.backbone)
    if shipped is None:
        if choice == "shipped":
            raise CliError(f"no model ships for backbone {config.backbone!r}")
        return None
    if choice == "auto" and config.architecture_differences(read_trained_info(shipped).meta):
        print("starting from ImageNet: the shipped model has another architecture", file=sys.stderr)
        return None
    return shipped


def _read_items(styles: Path, images: Path) -> tuple[list[TrainItem], int]:
    """Catalog rows as training items, and how many rows could not be used."""
    from embeddings.training.config import LABEL_FIELDS, TrainItem
    from storage.source import CatalogSourceError, read_styles

    items, skipped = [], 0
    try:
        for row in read_styles(styles, images):
            if row.item is None:
                skipped += 1
                continue
            labels = {name: getattr(row.item, name) for name in LABEL_FIELDS}
            items.append(TrainItem(row.item.id, Path(row.item.image_path), labels))
    except CatalogSourceError as error:
        raise ValueError(str(error)) from None
    return items, skipped
