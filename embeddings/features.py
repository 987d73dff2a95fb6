"""What an image is turned into for search: a CNN vector and a colour descriptor.

Shoppers' photos and catalog images take the same steps, so that they are comparable: find
the garment (:mod:`.foreground`), crop to it for the CNN, describe its colours on the mask
(:mod:`.colour`). Everything but the CNN costs a few milliseconds per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .colour import DIM, colour_descriptor
from .foreground import crop_to_garment, locate_garment

if TYPE_CHECKING:
    from .embedder import Embedder

CROP_MARGIN = 0.08
"""Background kept around the garment's box, as a fraction of its size on each side."""


@dataclass(frozen=True)
class Features:
    """Rows belong to the images in order."""

    vectors: np.ndarray
    """float32 (n, dim), unit CNN vectors."""
    colours: np.ndarray
    """float32 (n, colour.DIM), unit colour descriptors."""


def garment_view(image: Image.Image, *, crop: bool = True) -> tuple[Image.Image, np.ndarray]:
    """The image the CNN should see (cropped to the garment when ``crop``) and its colour
    descriptor, both from one garment mask found on a thumbnail."""
    thumbnail, mask = locate_garment(image)
    view = crop_to_garment(image, mask, CROP_MARGIN) if crop else image
    return view, colour_descriptor(thumbnail, mask)


def extract_features(
    embedder: Embedder, images: Sequence[Image.Image], *, crop: bool = True
) -> Features:
    """:class:`Features` of ``images``: mask, crop and colour per image, then one CNN batch."""
    views, colours = [], []
    for image in images:
        view, colour = garment_view(image, crop=crop)
        views.append(view)
        colours.append(colour)
    stacked = np.stack(colours) if colours else np.empty((0, DIM), dtype=np.float32)
    return Features(embedder.embed(views), stacked)
