"""Image embeddings for the wardrobe consultant: safe decoding, CNN backbones, embedders.

Self-contained on purpose: nothing here imports ``bot`` or ``storage``.
"""

from .images import ACCEPTED_FORMATS, DEFAULT_MAX_PIXELS, ImageRejected, flatten_to_rgb, load_image

__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "ImageRejected",
    "flatten_to_rgb",
    "load_image",
]
