"""Find the garment in a photo so the CNN and the colour descriptor look at it, not the room.

Catalog packshots sit on white; shoppers photograph the garment on a bed, a hanger or a person.
No segmentation model can be downloaded, so this is classical and cheap (a few ms, on a 96 px
thumbnail): the image border is taken as background, its colours are clustered in Lab (so a
checked blanket or wood grain is several background colours), pixels far from every one of
them are garment candidates, a centre prior breaks ties, morphology cleans up and the most
central large components win. Packshots on white are the easy special case of the same.

Tuned on simulated phone photos (:mod:`.training.phone`) against their true masks
(docs/BENCHMARKS.md, "Figures moved out of the code").
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from PIL import Image

_WORK_SIDE = 96  # longer side of the thumbnail the mask is computed on
_BORDER = 0.06  # width of the border band taken as background, as a fraction of the short side
_CLUSTERS = 4
_SIDE_SHARE = 0.1  # a background colour covers this much of at least two border sides
_MIN_DISTANCE = 5.0  # ΔE (CIE76) within which a pixel matches a background colour ...
_SPREAD_FACTOR = 1.0  # ... or within this many of the colour cluster's own spread
_CENTRE_PRIOR = 1.5  # the tolerance grows by this factor from the centre to the corners
_MAX_BORDER_SAMPLES = 600  # border pixels clustered: plenty for 4 colours, and fast
_MIN_AREA, _MAX_AREA = 0.02, 0.97  # plausible garment area, as a fraction of the image

cv2.setNumThreads(1)  # thumbnails are tiny: OpenCV's thread pool costs more than it saves


def locate_garment(image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """The thumbnail the garment was looked for on (RGB, longer side 96 px) and the garment's
    binary 'L' mask (0 / 255) on it: all that cropping and colour need, at a fraction of the
    cost of a full-size mask."""
    small = _thumbnail(image)
    lab = cv2.cvtColor(np.asarray(small, dtype=np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return small, Image.fromarray(_clean(_far_from_background(lab)))


def garment_mask(image: Image.Image) -> Image.Image:
    """A binary 'L' mask (0 / 255) of the garment, the size of ``image``.

    An empty mask means "no garment found"; :func:`crop_to_garment` then keeps the whole image.
    """
    _, mask = locate_garment(image)
    # Bilinear, then threshold: a smooth outline, not thumbnail-sized stairs.
    full = mask.resize(image.size, Image.Resampling.BILINEAR)
    return full.point(lambda value: 255 if value >= 128 else 0)


def mask_is_plausible(mask: Image.Image) -> bool:
    """Whether ``mask`` covers a believable share of the image (not empty, not everything)."""
    share = float(np.count_nonzero(np.asarray(mask))) / (mask.width * mask.height)
    return _MIN_AREA <= share <= _MAX_AREA


def garment_box(
    mask: Image.Image, margin: float = 0.08, size: tuple[int, int] | None = None
) -> tuple[int, int, int, int] | None:
    """A square-ish (left, top, right, bottom) box around the mask plus ``margin`` of its size,
    in the pixels of an image of ``size`` (default: the mask's own) the mask was scaled from.

    Square because the CNN centre-crops a square: a tall dress in a non-square box would lose
    its hem. The box is shifted, never shrunk, to stay inside the image where it can; None
    when the mask is implausible.
    """
    if not mask_is_plausible(mask):
        return None
    width, height = size or mask.size
    scale_x, scale_y = width / mask.width, height / mask.height
    ys, xs = np.nonzero(np.asarray(mask))
    left, right = xs.min() * scale_x, (xs.max() + 1) * scale_x
    top, bottom = ys.min() * scale_y, (ys.max() + 1) * scale_y
    side = max(right - left, bottom - top) * (1 + 2 * margin)
    box = []
    for low, high, limit in ((left, right, width), (top, bottom, height)):
        length = min(side, limit)
        start = min(max((low + high - length) / 2, 0), limit - length)
        box.append((round(start), round(start + length)))
    (x0, x1), (y0, y1) = box
    return x0, y0, x1, y1


def crop_to_garment(image: Image.Image, mask: Image.Image, margin: float = 0.08) -> Image.Image:
    """``image`` cropped to :func:`garment_box`, or unchanged when the mask is implausible.

    ``mask`` may be smaller than the image (the thumbnail mask of :func:`locate_garment`).
    """
    box = garment_box(mask, margin, image.size)
    return image if box is None else image.crop(box)


def _thumbnail(image: Image.Image) -> Image.Image:
    if image.mode != "RGB":
        image = image.convert("RGB")
    scale = _WORK_SIDE / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # reducing_gap: a cheap box reduction first, then a proper resize; averaging also mutes
    # JPEG noise and fine background texture.
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _border_sides(lab: np.ndarray) -> list[np.ndarray]:
    """The pixels of the top, bottom, left and right border bands, each subsampled."""
    height, width = lab.shape[:2]
    band = max(1, round(_BORDER * min(height, width)))
    sides = [lab[:band], lab[height - band :], lab[:, :band], lab[:, width - band :]]
    flat = [side.reshape(-1, 3) for side in sides]
    return [side[:: max(1, 4 * len(side) // _MAX_BORDER_SAMPLES)] for side in flat]


def _kmeans(points: np.ndarray, k: int, iterations: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means (farthest-point initialisation): (centres, labels)."""
    centres = np.empty((k, points.shape[1]), dtype=points.dtype)
    centres[0] = points[np.argmin(points[:, 0])]  # darkest first: a stable, repeatable start
    gaps = np.sum((points - centres[0]) ** 2, axis=1)
    for j in range(1, k):
        centres[j] = points[np.argmax(gaps)]
        gaps = np.minimum(gaps, np.sum((points - centres[j]) ** 2, axis=1))
    for _ in range(iterations):
        labels = _nearest(points, centres)
        for j in range(k):
            members = points[labels == j]
            if len(members):
                centres[j] = members.mean(axis=0)
    return centres, _nearest(points, centres)


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    squared = (points**2).sum(axis=1)[:, None] - 2 * points @ centres.T + (centres**2).sum(axis=1)
    return squared.argmin(axis=1)


def _far_from_background(lab: np.ndarray) -> np.ndarray:
    """Boolean map of pixels unlike every background colour, with a tolerance that grows
    towards the edges (centre prior).

    Background colours are clusters of the border's colours. A cluster that covers a good
    part of only one side is the garment (or the model wearing it) running off the frame,
    so it must also show up on a second side, or be the border's dominant colour.
    """
    sides = _border_sides(lab)
    border = np.concatenate(sides)
    centres, labels = _kmeans(border, min(_CLUSTERS, len(border)))
    side_of = np.repeat(np.arange(len(sides)), [len(side) for side in sides])
    dominant = np.bincount(labels, minlength=len(centres)).argmax()
    pixels = lab.reshape(-1, 3)
    distance = np.full(len(pixels), np.inf, dtype=np.float32)
    for j, centre in enumerate(centres):
        members = labels == j
        coverage = [members[side_of == side].mean() for side in range(len(sides))]
        if j != dominant and sum(share >= _SIDE_SHARE for share in coverage) < 2:
            continue
        distances = np.sqrt(np.square(border[members] - centre).sum(axis=1))
        rank = int(0.9 * (len(distances) - 1))  # the 90th percentile, minus np.percentile's cost
        spread = np.partition(distances, rank)[rank]
        tolerance = max(_MIN_DISTANCE, _SPREAD_FACTOR * spread)
        squared = np.square(pixels - centre).sum(axis=1)
        distance = np.minimum(distance, squared / tolerance**2)
    height, width = lab.shape[:2]
    return distance.reshape(height, width) > _threshold(height, width)


@functools.lru_cache(maxsize=8)
def _threshold(height: int, width: int) -> np.ndarray:
    """Squared tolerance factor per pixel: 1 at the centre, 1 + _CENTRE_PRIOR at a corner."""
    yy, xx = np.mgrid[0:height, 0:width]
    radius = np.hypot((xx + 0.5) / width - 0.5, (yy + 0.5) / height - 0.5) / np.hypot(0.5, 0.5)
    return ((1.0 + _CENTRE_PRIOR * radius**2) ** 2).astype(np.float32)


def _clean(candidates: np.ndarray) -> np.ndarray:
    """Open away speckle, close gaps, keep the best components, fill holes: uint8 0/255."""
    mask = candidates.astype(np.uint8) * 255
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return np.zeros_like(mask)
    height, width = mask.shape
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    offsets = np.hypot(centroids[1:, 0] / width - 0.5, centroids[1:, 1] / height - 0.5)
    scores = areas * (1.0 - offsets)
    best = scores.max()
    # A pair of shoes or two trouser legs can be separate components of similar weight.
    chosen = 1 + np.flatnonzero(scores >= 0.3 * best)
    mask = np.isin(labels, chosen).astype(np.uint8) * 255
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 255, thickness=cv2.FILLED)
    return filled
