"""An image → the normalised (3, crop, crop) float32 array a backbone's weights expect, with
Pillow and numpy only (serving with ONNX Runtime never imports torch).

Step for step torchvision's eval transform on a PIL image (``Resize(resize)`` of the shorter
side, ``CenterCrop(crop)``, ``ToTensor``, ``Normalize``): a test holds the two equal.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .backbones import Preprocessing
from .images import flatten_to_rgb

_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def preprocess(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """(3, crop, crop) float32, channels first."""
    if image.mode != "RGB":
        image = flatten_to_rgb(image)
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = prep.resize, int(prep.resize * long / short)
    size = (new_short, new_long) if width <= height else (new_long, new_short)
    if size != image.size:
        image = image.resize(size, _RESAMPLING[prep.interpolation])
    width, height = size
    top = round((height - prep.crop) / 2.0)
    left = round((width - prep.crop) / 2.0)
    image = image.crop((left, top, left + prep.crop, top + prep.crop))
    # (x / 255 - mean) / std as one multiply and one subtract, channels first.
    scale, offset = _affine(prep)
    pixels = np.asarray(image).transpose(2, 0, 1)
    out = np.multiply(pixels, scale, dtype=np.float32)
    out -= offset
    return out


@functools.cache
def _affine(prep: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    std = np.asarray(prep.std, dtype=np.float64)
    scale = (1 / (255 * std)).astype(np.float32).reshape(3, 1, 1)
    offset = (np.asarray(prep.mean) / std).astype(np.float32).reshape(3, 1, 1)
    return scale, offset


def batch(images: Sequence[Image.Image], prep: Preprocessing) -> np.ndarray:
    """(n, 3, crop, crop) float32."""
    if not images:
        return np.empty((0, 3, prep.crop, prep.crop), dtype=np.float32)
    return np.stack([preprocess(image, prep) for image in images])
