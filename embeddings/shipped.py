"""The fine-tuned models that ship inside the package, per backbone: what a fresh install
searches with before a shop trains its own (how each was made: docs/BENCHMARKS.md).

Kept free of torch, so settings can find the file without loading it.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).with_name("models")
SHIPPED_MODELS: dict[str, str] = {"efficientnet_lite0": "wardrobe-efficientnet_lite0.pt"}
"""Backbone → its file in :data:`SHIPPED_DIR`."""


def shipped_model(backbone: str) -> Path | None:
    """The shipped weights for ``backbone``, if this install has them."""
    name = SHIPPED_MODELS.get(backbone)
    path = SHIPPED_DIR / name if name else None
    return path if path is not None and path.is_file() else None
