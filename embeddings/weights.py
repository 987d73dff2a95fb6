"""Which weights a configuration embeds with, found, checked and named without loading
anything (settings and the ONNX runtime must not import torch): the fine-tuned models that ship
inside the package (what a fresh install searches with before a shop trains its own; how each
was made: docs/BENCHMARKS.md) and :class:`ModelSource`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .backbones import check_weights_path, get_backbone_spec

SHIPPED_DIR = Path(__file__).with_name("models")
SHIPPED_MODELS: dict[str, str] = {"efficientnet_lite0": "wardrobe-efficientnet_lite0.pt"}
"""Backbone → its file in :data:`SHIPPED_DIR`."""


def shipped_model(backbone: str) -> Path | None:
    """The shipped weights for ``backbone``, if this install has them."""
    name = SHIPPED_MODELS.get(backbone)
    path = SHIPPED_DIR / name if name else None
    return path if path is not None and path.is_file() else None


EXPORT_FORMAT = "wardrobe-onnx/1"
"""Part of every export's name: changing how models are exported renames (re-exports) them."""


@dataclass(frozen=True)
class ModelSource:
    """Which weights a configuration embeds with, named the same way in every process."""

    backbone: str
    weights: str | Path | None = None
    """A state dict for the backbone (``EMBEDDING_WEIGHTS``)."""
    trained: str | Path | None = None
    """A ``wardrobe train`` model (it holds all weights)."""

    def __post_init__(self) -> None:
        get_backbone_spec(self.backbone)  # an unknown backbone is a ValueError listing them
        if self.weights is not None:
            object.__setattr__(self, "weights", check_weights_path(self.weights))
        if self.trained is not None:
            object.__setattr__(self, "trained", Path(self.trained))
            if not self.trained.is_file():
                raise ValueError(
                    f"Trained model file {str(self.trained)!r} does not exist or is not a file."
                )
        if self.weights is not None and self.trained is not None:
            raise ValueError(
                f"Trained model {str(self.trained)!r} already holds all weights: "
                "unset EMBEDDING_WEIGHTS or EMBEDDING_TRAINED."
            )

    @property
    def weights_file(self) -> Path | None:
        """The file whose bytes are the model (None: torchvision's hub download)."""
        spec = get_backbone_spec(self.backbone)
        return self.trained or self.weights or spec.imagenet_weights_file()

    def check_trained_from(self, backbone: str) -> None:
        """A trained model runs only on the backbone it was trained from."""
        if backbone != self.backbone:
            raise ValueError(
                f"Trained model {str(self.trained)!r} was trained from {backbone!r}, "
                f"not from the configured backbone {self.backbone!r}."
            )

    @property
    def untrained_model_name(self) -> str:
        """The backbone's name, marked with the weights file's when there is one."""
        return self.backbone if self.weights is None else f"{self.backbone}@{self.weights.stem}"

    def export_stem(self, cache_dir: Path) -> Path:
        """``<cache>/<backbone>-<hash>``: the hash covers the export format, the backbone,
        the kind of weights and the weights file's bytes."""
        file = self.weights_file
        kind = "trained" if self.trained else "weights" if self.weights else "imagenet"
        digest = hashlib.sha256(f"{EXPORT_FORMAT}|{self.backbone}|{kind}|".encode())
        digest.update(file_sha256(file).encode() if file else b"torchvision-default")
        return cache_dir / f"{self.backbone}-{digest.hexdigest()[:16]}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
