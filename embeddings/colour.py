"""A small colour descriptor of the garment, compared by a dot product.

The CNN vector knows garment types well and colours poorly (ImageNet features are trained to
ignore them), so the shopper who sends a red dress gets dresses of every colour. This
descriptor is a soft histogram of the garment's pixels over a palette of the colours shops
name, computed on the foreground only and after a white-balance correction estimated from the
background, so a bed sheet or a yellowish room light does not leak into it.

Descriptors are square roots of histograms with unit L2 norm: the dot product of two of them
is their Bhattacharyya coefficient, 1 for the same colour distribution and 0 for disjoint ones.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

# Named shop colours in sRGB; their Lab values are the palette the histogram is built over.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (22, 22, 24),
    "charcoal": (64, 64, 68),
    "grey": (128, 128, 130),
    "light grey": (192, 192, 194),
    "white": (246, 246, 244),
    "beige": (226, 208, 176),
    "tan": (184, 148, 104),
    "brown": (104, 66, 40),
    "navy": (30, 36, 82),
    "blue": (40, 84, 188),
    "light blue": (140, 184, 228),
    "teal": (0, 140, 140),
    "green": (40, 140, 64),
    "olive": (112, 112, 52),
    "yellow": (240, 212, 44),
    "orange": (238, 122, 34),
    "red": (200, 32, 42),
    "maroon": (112, 22, 38),
    "pink": (240, 156, 184),
    "magenta": (208, 42, 140),
    "purple": (104, 48, 136),
    "lavender": (184, 164, 212),
}
DIM = len(PALETTE)
"""Length of a colour descriptor."""

_WORK_SIDE = 64  # pixels on the longer side the histogram is computed at
_LIGHTNESS_WEIGHT = 0.5  # exposure mostly moves lightness: count it half in colour distances
_SOFTNESS = 14.0  # ΔE-like width of a palette colour's soft assignment
_CENTRE_SIGMA = 0.35  # pixel weight falls off with distance from the garment's centre
_NEUTRAL_CHROMA = 22.0  # a background less colourful than this is taken as neutral (grey/white)
_MAX_GAIN = 1.35  # the white-balance correction never scales a channel by more than this

_SCALE = np.array([_LIGHTNESS_WEIGHT, 1.0, 1.0], dtype=np.float32)
_PALETTE_SCALED = (
    cv2.cvtColor(np.array([list(PALETTE.values())], dtype=np.float32) / 255.0, cv2.COLOR_RGB2Lab)[0]
    * _SCALE
)


def colour_descriptor(image: Image.Image, mask: Image.Image | None = None) -> np.ndarray:
    """float32 (DIM,) unit vector: the colours of ``image`` under ``mask`` (all of it if None).

    An empty or missing mask falls back to the whole image, weighted towards its centre.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = min(1.0, _WORK_SIDE / max(rgb.size))
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    small = rgb if size == rgb.size else rgb.resize(size, Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float32) / 255.0
    inside = None
    if mask is not None:
        inside = np.asarray(mask.resize(size, Image.Resampling.NEAREST)) > 127
        if not inside.any() or inside.all():
            inside = None
    pixels = _white_balance(pixels, None if inside is None else ~inside)
    weights = _centre_weights(np.ones(pixels.shape[:2], bool) if inside is None else inside)
    lab = cv2.cvtColor(pixels, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    counted = weights.ravel() > 0
    histogram = weights.ravel()[counted] @ _soft_assignment(lab[counted])
    root = np.sqrt(histogram)
    norm = float(np.linalg.norm(root))
    return (root / norm if norm > 0 else np.full(DIM, DIM**-0.5)).astype(np.float32)


def _white_balance(pixels: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """Scale the channels so a neutral-looking background becomes grey (gray-world on the
    background). A colourful background (wood, a red blanket) says nothing about the light,
    so the correction fades out as the background's chroma approaches ``_NEUTRAL_CHROMA``."""
    if background is None or not background.any():
        return pixels
    mean = pixels[background].mean(axis=0)
    lab = cv2.cvtColor(mean.reshape(1, 1, 3).astype(np.float32), cv2.COLOR_RGB2Lab)[0, 0]
    chroma = float(np.hypot(lab[1], lab[2]))
    strength = max(0.0, 1.0 - chroma / _NEUTRAL_CHROMA)
    if strength == 0.0 or mean.min() <= 1e-3:
        return pixels
    gains = np.clip(mean.mean() / mean, 1 / _MAX_GAIN, _MAX_GAIN) ** strength
    return np.clip(pixels * gains, 0.0, 1.0).astype(np.float32)


def _centre_weights(inside: np.ndarray) -> np.ndarray:
    """Weights of the garment's pixels, highest at its centre: a model's face, hands and
    trousers sit at the edges of a shirt's packshot."""
    ys, xs = np.nonzero(inside)
    height, width = inside.shape
    cy, cx = ys.mean(), xs.mean()
    sy = max(ys.max() - ys.min() + 1, 1) * _CENTRE_SIGMA
    sx = max(xs.max() - xs.min() + 1, 1) * _CENTRE_SIGMA
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    weights = np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2)) * inside
    return (weights / weights.sum()).astype(np.float32)


def _soft_assignment(lab: np.ndarray) -> np.ndarray:
    """(n, DIM) rows summing to 1: how much each pixel looks like each palette colour."""
    scaled = lab * _SCALE
    squared = (scaled**2).sum(axis=1, keepdims=True) - 2 * scaled @ _PALETTE_SCALED.T
    squared += (_PALETTE_SCALED**2).sum(axis=1)
    logits = -(squared - squared.min(axis=1, keepdims=True)) / (2 * _SOFTNESS**2)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)
