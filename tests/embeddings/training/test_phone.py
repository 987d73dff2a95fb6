"""embeddings.training.phone: packshot masks and simulated shopper photos, on Pillow-drawn
packshots."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from embeddings.training.phone import packshot_mask, simulate_phone_photo

TSHIRT = [(60, 30), (164, 30), (200, 70), (176, 92), (164, 80), (164, 200), (60, 200),
          (60, 80), (48, 92), (24, 70)]  # fmt: skip
MAGENTA = (200, 30, 200)


def packshot(
    colour: tuple[int, int, int], *, folds: bool = False
) -> tuple[Image.Image, np.ndarray]:
    """A T-shirt on white, JPEG-compressed like the catalog's, and its true shape."""
    image = Image.new("RGB", (224, 224), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.polygon(TSHIRT, fill=colour)
    if folds:  # what makes a white shirt visible on white: creases and a shaded rim
        for x in range(80, 160, 20):
            draw.line([(x, 95), (x + 10, 195)], fill=(224, 224, 220), width=2)
        draw.line([*TSHIRT, TSHIRT[0]], fill=(228, 228, 224), width=1)
    truth = Image.new("L", image.size, 0)
    ImageDraw.Draw(truth).polygon(TSHIRT, fill=255)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return Image.open(buffer).convert("RGB"), np.asarray(truth) > 0


def iou(mask: Image.Image, truth: np.ndarray) -> float:
    found = np.asarray(mask) > 0
    return float((found & truth).sum() / (found | truth).sum())


def test_mask_finds_a_coloured_garment() -> None:
    image, truth = packshot((30, 60, 200))
    mask = packshot_mask(image)
    assert mask.mode == "L" and mask.size == image.size
    assert set(np.unique(np.asarray(mask))) <= {0, 255}
    assert iou(mask, truth) > 0.9


def test_mask_finds_a_near_white_garment_on_white() -> None:
    image, truth = packshot((243, 242, 239), folds=True)
    assert iou(packshot_mask(image), truth) > 0.6


def test_mask_of_a_garment_with_a_hole_and_a_speck() -> None:
    image, truth = packshot((30, 60, 200))
    draw = ImageDraw.Draw(image)
    draw.ellipse((100, 120, 124, 144), fill=(255, 255, 255))  # a white print inside the shirt
    draw.point([(10, 210)], fill=(0, 0, 0))  # dust on the backdrop
    mask = np.asarray(packshot_mask(image)) > 0
    assert mask[132, 112], "a white area enclosed by the garment is part of it"
    assert not mask[210, 10]
    assert iou(Image.fromarray(mask), truth) > 0.9


def test_mask_keeps_both_shoes_of_a_pair() -> None:
    image = Image.new("RGB", (224, 224), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 120, 100, 160), fill=(20, 20, 20))
    draw.rectangle((124, 110, 204, 150), fill=(20, 20, 20))
    mask = np.asarray(packshot_mask(image)) > 0
    assert mask[140, 60] and mask[130, 164]


def test_mask_of_an_empty_packshot_is_empty() -> None:
    assert not np.asarray(packshot_mask(Image.new("RGB", (100, 80), (255, 255, 255)))).any()


def test_mask_of_a_large_image_has_its_size() -> None:
    image, truth = packshot((30, 60, 200))
    large = image.resize((896, 896))
    mask = packshot_mask(large)
    assert mask.size == (896, 896)
    assert iou(mask.resize((224, 224)), truth) > 0.85


@pytest.mark.parametrize("size", [(480, 640), (320, 240)])
def test_photo_size_and_mode(size: tuple[int, int]) -> None:
    image, _ = packshot(MAGENTA)
    photo = simulate_phone_photo(image, random.Random(1), size=size)
    assert photo.mode == "RGB" and photo.size == size


def test_same_seed_same_photo_other_seed_other_photo() -> None:
    image, _ = packshot(MAGENTA)
    distractors = [packshot((20, 160, 40))[0]]

    def photo(seed: int) -> np.ndarray:
        return np.asarray(simulate_phone_photo(image, random.Random(seed), distractors=distractors))

    assert np.array_equal(photo(7), photo(7))
    assert not np.array_equal(photo(7), photo(8))


def test_a_precomputed_mask_gives_the_same_photo() -> None:
    image, _ = packshot(MAGENTA)
    mask = packshot_mask(image)
    assert np.array_equal(
        np.asarray(simulate_phone_photo(image, random.Random(5), mask=mask)),
        np.asarray(simulate_phone_photo(image, random.Random(5))),
    )
    with pytest.raises(ValueError):
        simulate_phone_photo(image, random.Random(5), mask=mask.resize((10, 10)))


def test_accepts_greyscale_and_transparent_packshots() -> None:
    image, _ = packshot(MAGENTA)
    for converted in (image.convert("L"), image.convert("RGBA")):
        assert simulate_phone_photo(converted, random.Random(3)).mode == "RGB"


def test_the_garment_is_in_the_photo() -> None:
    """A magenta T-shirt covers a plausible share of each photo, whatever the scene."""
    image, _ = packshot(MAGENTA)
    shares = []
    for seed in range(24):
        pixels = np.asarray(simulate_phone_photo(image, random.Random(seed)), dtype=np.int16)
        red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        shares.append(float(((red > green + 50) & (blue > green + 50)).mean()))
    assert min(shares) > 0.04, shares
    assert max(shares) < 0.9, shares
    assert 0.1 < float(np.mean(shares)) < 0.6, shares


def test_distractors_are_sometimes_the_background() -> None:
    image, _ = packshot(MAGENTA)
    cyan = Image.new("RGB", (224, 224), (0, 200, 200))
    shares = []
    for seed in range(40):
        pixels = np.asarray(
            simulate_phone_photo(image, random.Random(seed), distractors=[cyan]), dtype=np.int16
        )
        red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        shares.append(float(((green > red + 80) & (blue > red + 80)).mean()))
    with_distractor = sum(share > 0.2 for share in shares)
    assert 3 <= with_distractor <= 25, shares
