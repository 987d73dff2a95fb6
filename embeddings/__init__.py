"""Image embeddings for the wardrobe consultant: safe decoding, CNN backbones, embedders.

Self-contained on purpose: nothing here imports ``bot`` or ``storage``.

The torch/torchvision side is imported on first use (PEP 562 ``__getattr__``): importing
torchvision takes several seconds on a small CPU box, and code that only needs
:func:`load_image` / :class:`ImageRejected` should not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .images import ACCEPTED_FORMATS, DEFAULT_MAX_PIXELS, ImageRejected, flatten_to_rgb, load_image

if TYPE_CHECKING:
    from .backbones import (
        BACKBONES,
        DEFAULT_BACKBONE,
        BackboneSpec,
        Preprocessing,
        get_backbone_spec,
        load_backbone,
    )
    from .embedder import AsyncEmbedder, Embedder
    from .finetuned import LabelHeads

_LAZY_MODULES = {
    "BACKBONES": "backbones",
    "DEFAULT_BACKBONE": "backbones",
    "BackboneSpec": "backbones",
    "Preprocessing": "backbones",
    "get_backbone_spec": "backbones",
    "load_backbone": "backbones",
    "AsyncEmbedder": "embedder",
    "Embedder": "embedder",
    "LabelHeads": "finetuned",
}

__all__ = [
    "ACCEPTED_FORMATS",
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "DEFAULT_MAX_PIXELS",
    "AsyncEmbedder",
    "BackboneSpec",
    "Embedder",
    "ImageRejected",
    "LabelHeads",
    "Preprocessing",
    "flatten_to_rgb",
    "get_backbone_spec",
    "load_backbone",
    "load_image",
]


def __getattr__(name: str) -> object:
    module = _LAZY_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
