"""What an image is turned into for search: a CNN vector and a colour descriptor.

Shoppers' photos and catalog images take the same steps, so that they are comparable: find
the garment (:mod:`.foreground`), crop to it for the CNN, describe its colours on the mask
(:mod:`.colour`). Those steps are here, a few milliseconds per image, with the
:class:`Features` record; :meth:`.embedder.Embedder.features` adds the CNN vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .colour import colour_descriptor
from .foreground import crop_to_garment, locate_garment

CROP_MARGIN = 0.08
"""Background kept around the garment's box, as a fraction of its size on each side."""


@dataclass(frozen=True)
class Features:
    """Rows belong to the images in order."""

    vectors: np.ndarray
    """float32 (n, dim), unit CNN vectors."""
    colours: np.ndarray
    """float32 (n, colour.DIM), unit colour descriptors."""


def view_and_colour(image: Image.Image, *, crop: bool = True) -> tuple[Image.Image, np.ndarray]:
    """The image the CNN should see (cropped to the garment when ``crop``) and its colour
    descriptor, both from one garment mask found on a thumbnail."""
    thumbnail, mask = locate_garment(image)
    view = crop_to_garment(image, mask, CROP_MARGIN) if crop else image
    return view, colour_descriptor(thumbnail, mask)
