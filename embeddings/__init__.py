"""Image embeddings for the wardrobe consultant: safe decoding, CNN backbones, embedders.

Self-contained on purpose: nothing here imports ``bot`` or ``storage``.

Names are imported on first use (PEP 562 ``__getattr__``): importing torch takes seconds and
hundreds of megabytes, and a process serving with ONNX Runtime must never pay for it. Only
:class:`Embedder` (the torch runtime), :func:`load_backbone` and the training code need torch.
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
    )
    from .embedder import Embedder
    from .networks import load_backbone
    from .onnx_runtime.embedder import OnnxEmbedder
    from .serving import AsyncEmbedder, ImageEmbedder, LabelHeads
    from .weights import ModelSource

_LAZY_MODULES = {
    "BACKBONES": "backbones",
    "DEFAULT_BACKBONE": "backbones",
    "BackboneSpec": "backbones",
    "Preprocessing": "backbones",
    "get_backbone_spec": "backbones",
    "load_backbone": "networks",
    "AsyncEmbedder": "serving",
    "ImageEmbedder": "serving",
    "Embedder": "embedder",
    "OnnxEmbedder": "onnx_runtime.embedder",
    "ModelSource": "weights",
    "LabelHeads": "serving",
}

__all__ = [
    "ACCEPTED_FORMATS",
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "DEFAULT_MAX_PIXELS",
    "AsyncEmbedder",
    "BackboneSpec",
    "Embedder",
    "ImageEmbedder",
    "ImageRejected",
    "LabelHeads",
    "ModelSource",
    "OnnxEmbedder",
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
