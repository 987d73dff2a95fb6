"""embeddings.colour: the garment's colour descriptor."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from embeddings.colour import DIM, colour_descriptor
from embeddings.foreground import garment_mask
from tests.embeddings.test_foreground import _fabric
from tests.support.catalog import garment_image

REDS = [(200, 30, 40), (170, 20, 30), (225, 50, 45)]
BLUES = [(30, 60, 200), (25, 40, 150), (60, 100, 220)]


def _on(background: Image.Image, shape: str, rgb: tuple[int, int, int]) -> Image.Image:
    """A garment of colour ``rgb`` laid on ``background``."""
    garment = garment_image(shape, "Black").resize((240, 320), Image.Resampling.NEAREST)
    alpha = garment.convert("L").point(lambda value: 255 if value < 128 else 0)
    photo = background.copy()
    photo.paste(Image.new("RGB", garment.size, rgb), (100, 120), alpha)
    return photo


def _descriptor(image: Image.Image) -> np.ndarray:
    return colour_descriptor(image, garment_mask(image))


def _cast(image: Image.Image, gains: tuple[float, float, float]) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32) * np.array(gains, dtype=np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_descriptor_is_a_unit_vector() -> None:
    descriptor = _descriptor(_on(Image.new("RGB", (440, 560), "white"), "Dresses", REDS[0]))
    assert descriptor.shape == (DIM,) and descriptor.dtype == np.float32
    assert np.linalg.norm(descriptor) == pytest.approx(1.0, abs=1e-5)
    assert (descriptor >= 0).all()


def test_a_red_garment_is_closer_to_other_reds_than_to_blues() -> None:
    white = Image.new("RGB", (440, 560), "white")
    query = _descriptor(_on(_fabric(1, (440, 560)), "Dresses", REDS[0]))
    reds = [_descriptor(_on(white, shape, rgb)) for shape, rgb in zip(
        ["Tshirts", "Trousers", "Dresses"], REDS, strict=True)]  # fmt: skip
    blues = [_descriptor(_on(white, shape, rgb)) for shape, rgb in zip(
        ["Tshirts", "Trousers", "Dresses"], BLUES, strict=True)]  # fmt: skip
    assert min(red @ query for red in reds) > max(blue @ query for blue in blues) + 0.3


def test_the_background_does_not_leak_into_the_colour() -> None:
    """The same garment on white and on a brown, checked cloth describes the same."""
    on_white = _descriptor(_on(Image.new("RGB", (440, 560), "white"), "Tshirts", BLUES[0]))
    on_cloth = _descriptor(_on(_fabric(3, (440, 560)), "Tshirts", BLUES[0]))
    assert on_white @ on_cloth > 0.9


@pytest.mark.parametrize("gains", [(1.12, 1.0, 0.85), (0.88, 1.0, 1.12), (0.8, 0.8, 0.8)])
def test_a_moderate_colour_cast_changes_little(gains: tuple[float, float, float]) -> None:
    """A warm or cool white balance, or underexposure, of a photo taken on a light sheet."""
    for rgb in (REDS[0], BLUES[0], (40, 140, 60), (235, 200, 30)):
        photo = _on(Image.new("RGB", (440, 560), (225, 222, 215)), "Tshirts", rgb)
        assert _descriptor(photo) @ _descriptor(_cast(photo, gains)) > 0.85, rgb


def test_white_grey_and_black_are_told_apart() -> None:
    """Each neutral is closest to the same neutral photographed on another cloth."""
    neutrals = ((245, 245, 245), (128, 128, 128), (20, 20, 22))
    queries = [_descriptor(_on(_fabric(2, (440, 560)), "Tshirts", rgb)) for rgb in neutrals]
    references = [_descriptor(_on(_fabric(4, (440, 560)), "Dresses", rgb)) for rgb in neutrals]
    similarity = np.array([[query @ reference for reference in references] for query in queries])
    assert (similarity.argmax(axis=1) == [0, 1, 2]).all(), similarity.round(2)
