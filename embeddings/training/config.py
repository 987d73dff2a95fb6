"""What a training run takes and gives: the catalog items and the labels they are classified
by, the settings that determine the weights, the result, and the files a run writes in the
data directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..backbones import DEFAULT_BACKBONE
from .splits import DEFAULT_HELD_OUT_FRACTION, DEFAULT_SALT, is_held_out

if TYPE_CHECKING:
    from ..finetuned import TrainedModelInfo

LABEL_FIELDS = ("article_type", "base_colour", "gender")
"""The catalog fields training reads."""
ARCHITECTURE_FIELDS = ("backbone", "unfreeze_blocks", "dim", "colour_tap")
"""The :class:`TrainConfig` fields a weights file must share to be trained further."""
TYPE_COLOUR = "article_type+base_colour"
LABELS = (*LABEL_FIELDS, TYPE_COLOUR)
"""What the embedding can be classified by: each field, and type and colour together (the
pair is what "similar" means to a shopper: neighbours should agree on both, not either)."""
TRAINED_MODEL_FILE = "trained-model.pt"
CHECKPOINT_FILE = "trained-model.checkpoint.pt"
CACHE_DIR = "train-cache"


class TrainingError(ValueError):
    """Training cannot start or continue (bad input, nothing to train on, checkpoint mismatch)."""


@dataclass(frozen=True)
class TrainItem:
    """One catalog item as training sees it: its image and the labels it is classified by."""

    id: str
    image_path: Path
    labels: Mapping[str, str | None]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (a checkpoint only resumes the same)."""

    backbone: str = DEFAULT_BACKBONE
    epochs: int = 10
    seed: int = 0
    batch_size: int = 64
    unfreeze_blocks: int = 4
    dim: int = 256
    colour_tap: bool = True
    garment_crop: bool = True
    """Crop both views to the garment first, as search does with ``GARMENT_CROP`` on."""
    phone_views: int = 3
    real_views: int = 2
    """Views per real photo (labelled shoppers' photos): as search sees it, then flipped and
    reframed ones."""
    real_batch_size: int = 32
    """Real photos per step, beside ``batch_size`` catalog items."""
    real_weight: float = 2.0
    """Weight of the real photos' label losses next to the catalog's."""
    lr: float = 2e-3
    backbone_lr: float = 2e-4
    weight_decay: float = 1e-4
    cosface_scale: float = 20.0
    cosface_margin: float = 0.2
    temperature: float = 0.07
    label_weights: tuple[tuple[str, float], ...] = (
        ("article_type", 1.0),
        ("base_colour", 1.0),
        ("gender", 0.3),
    )
    instance_weight: float = 1.0
    held_out_fraction: float = DEFAULT_HELD_OUT_FRACTION
    split_salt: str = DEFAULT_SALT
    max_steps_per_epoch: int | None = None
    """Cut epochs short (smoke tests); None = every training item once per epoch."""

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "dim", "phone_views", "real_views", "real_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise TrainingError("batch_size must be at least 2 (InfoNCE needs negatives)")
        unknown = {name for name, _ in self.label_weights} - set(LABELS)
        if unknown:
            raise TrainingError(f"unknown labels {sorted(unknown)}; known: {LABELS}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise TrainingError("max_steps_per_epoch must be at least 1")

    def architecture_differences(self, meta: Mapping[str, object]) -> dict[str, tuple]:
        """``{field: (theirs, ours)}`` for each :data:`ARCHITECTURE_FIELDS` entry where the
        weights file described by ``meta`` differs from this config; empty when it fits."""
        ours = {key: getattr(self, key) for key in ARCHITECTURE_FIELDS}
        return {
            key: (meta.get(key), value) for key, value in ours.items() if meta.get(key) != value
        }


@dataclass
class TrainResult:
    """What :func:`~.run.train` returns: the weights file it wrote and how the run went."""

    info: TrainedModelInfo
    train_items: int
    real_photos: int
    epochs: int
    cache_seconds: float
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    """Mean losses per epoch (``total`` and one per loss term)."""


def training_items(
    items: Sequence[TrainItem],
    fraction: float = DEFAULT_HELD_OUT_FRACTION,
    salt: str = DEFAULT_SALT,
) -> list[TrainItem]:
    """The items training may see: every held-out one is dropped, duplicates keep the last."""
    unique = {item.id: item for item in items}
    return [item for item in unique.values() if not is_held_out(item.id, fraction, salt)]
