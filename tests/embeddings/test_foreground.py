"""embeddings.foreground: the garment's mask on white and on textured backgrounds, and the crop."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from embeddings.foreground import crop_to_garment, garment_box, garment_mask
from tests.support.catalog import COLOURS, SHAPES, garment_image


def _iou(mask: Image.Image, truth: np.ndarray) -> float:
    found = np.asarray(mask) > 127
    return float((found & truth).sum() / max((found | truth).sum(), 1))


def _garment(
    article_type: str, colour: str, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image]:
    """The catalog factory's garment scaled to ``size`` and its true mask ('L')."""
    packshot = garment_image(article_type, colour).resize(size, Image.Resampling.NEAREST)
    # The shoe's 240-grey sole is left out: on white it is within JPEG noise of the background.
    truth = (255 - np.asarray(packshot, dtype=np.int16)).max(axis=2) > 24
    return packshot, Image.fromarray(truth.astype(np.uint8) * 255)


def _fabric(seed: int, size: tuple[int, int]) -> Image.Image:
    """A woven, checked, unevenly lit cloth: the kind of bed cover shoppers shoot on."""
    rng = np.random.default_rng(seed)
    height, width = size[1], size[0]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(90, 220, 3)
    other = base * rng.uniform(0.75, 0.9)
    check = rng.uniform(18, 40)
    checks = (((x // check) + (y // check)) % 2)[..., None]
    weave = 1 + 0.05 * np.sin(x * 2.1)[..., None] * np.sin(y * 1.7)[..., None]
    light = (0.85 + 0.3 * x / width)[..., None]
    pixels = (base + (other - base) * checks) * weave * light
    pixels += rng.normal(0, 4, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("article_type", sorted(SHAPES))
@pytest.mark.parametrize("colour", ["Red", "Blue", "Black", "Yellow"])
def test_packshot_on_white(article_type: str, colour: str) -> None:
    image, truth = _garment(article_type, colour, (300, 400))
    mask = garment_mask(image)
    assert mask.mode == "L" and mask.size == image.size
    # The flat shoe is mostly outline at the mask's working resolution (96 px), hence less.
    assert _iou(mask, np.asarray(truth) > 127) > (0.85 if article_type == "Casual Shoes" else 0.9)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("article_type", ["Tshirts", "Trousers", "Dresses"])
def test_garment_on_a_textured_background(seed: int, article_type: str) -> None:
    colour = sorted(COLOURS)[seed % len(COLOURS)]
    background = _fabric(seed, (480, 640))
    garment, alpha = _garment(article_type, colour, (300, 400))
    angle = (seed - 2.5) * 6
    garment = garment.rotate(angle, expand=True, fillcolor=(255, 255, 255))
    alpha = alpha.rotate(angle, expand=True)
    position = (60 + 10 * seed, 90 + 12 * (seed % 3))
    background.paste(garment, position, alpha)
    truth = Image.new("L", background.size)
    truth.paste(alpha, position)
    assert _iou(garment_mask(background), np.asarray(truth) > 127) > 0.6


def test_crop_is_a_square_box_around_the_garment_with_a_margin() -> None:
    mask = Image.new("L", (400, 300))
    mask.paste(255, (150, 100, 250, 160))  # 100 × 60 garment
    box = garment_box(mask, margin=0.1)
    assert box is not None
    left, top, right, bottom = box
    assert right - left == bottom - top == 120, "square, longer side plus 10 % per side"
    assert left <= 150 and top <= 100 and right >= 250 and bottom >= 160
    image = Image.new("RGB", (400, 300))
    assert crop_to_garment(image, mask, margin=0.1).size == (120, 120)


def test_crop_stays_inside_the_image() -> None:
    mask = Image.new("L", (200, 400))
    mask.paste(255, (0, 300, 60, 400))  # in the bottom-left corner, taller than wide
    left, top, right, bottom = garment_box(mask, margin=0.2)
    assert left == 0 and bottom == 400 and right - left == bottom - top == 140


@pytest.mark.parametrize("share", [0.0, 0.001, 1.0])
def test_implausible_masks_keep_the_whole_image(share: float) -> None:
    image = Image.new("RGB", (100, 100), (200, 10, 10))
    mask = Image.new("L", image.size)
    side = round(100 * share**0.5)
    mask.paste(255, (0, 0, side, side))
    assert garment_box(mask) is None
    assert crop_to_garment(image, mask) is image


def test_nothing_on_white_gives_an_empty_mask() -> None:
    assert not np.asarray(garment_mask(Image.new("RGB", (300, 300), "white"))).any()
