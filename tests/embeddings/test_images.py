"""Decoding of untrusted uploads: embeddings.images.load_image."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embeddings.images import ImageRejected, flatten_to_rgb, load_image

RED = (220, 20, 30)
BLUE = (20, 40, 220)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` but carries no pixel data at all."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def assert_close(pixel: tuple[int, ...], expected: tuple[int, ...], tol: int = 12) -> None:
    assert all(abs(a - b) <= tol for a, b in zip(pixel, expected, strict=True)), (pixel, expected)


def test_png_alpha_is_flattened_onto_white() -> None:
    image = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # fully transparent *black*
    image.paste((*RED, 255), (0, 0, 20, 20))
    image.putpixel((30, 10), (0, 0, 0, 128))  # half-transparent black over white -> grey

    loaded = load_image(encode(image, "PNG"))

    assert loaded.mode == "RGB"
    assert loaded.size == (40, 20)
    assert loaded.getpixel((5, 5)) == RED
    assert loaded.getpixel((35, 5)) == (255, 255, 255)
    assert_close(loaded.getpixel((30, 10)), (127, 127, 127), tol=2)


def test_palette_png_transparency_is_white() -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, *RED] + [0] * 762)
    image.paste(1, (0, 0, 5, 10))

    loaded = load_image(encode(image, "PNG", transparency=0))

    assert loaded.getpixel((1, 1)) == RED
    assert loaded.getpixel((8, 1)) == (255, 255, 255)


def test_flatten_to_rgb_handles_la_and_sixteen_bit_grey() -> None:
    la = Image.new("LA", (2, 1), (0, 0))
    assert flatten_to_rgb(la).getpixel((0, 0)) == (255, 255, 255)

    grey16 = Image.fromarray(np.full((4, 4), 0x8000, dtype=np.uint16))
    loaded = load_image(encode(grey16, "PNG"))
    assert loaded.getpixel((0, 0)) == (128, 128, 128)  # not clipped to white


def test_exif_orientation_is_applied() -> None:
    # Stored landscape: red left half, blue right half. Orientation 6 means the camera was
    # turned; viewers rotate 90° clockwise, so red ends up on top of a portrait image.
    image = Image.new("RGB", (80, 40), BLUE)
    image.paste(RED, (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6

    loaded = load_image(encode(image, "JPEG", exif=exif, quality=95))

    assert loaded.size == (40, 80)
    assert_close(loaded.getpixel((20, 10)), RED)
    assert_close(loaded.getpixel((20, 70)), BLUE)


def test_webp_is_accepted() -> None:
    image = Image.new("RGB", (32, 24), BLUE)
    loaded = load_image(encode(image, "WEBP", lossless=True))
    assert loaded.mode == "RGB"
    assert loaded.size == (32, 24)
    assert loaded.getpixel((3, 3)) == BLUE


def test_animated_webp_uses_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, BLUE)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert load_image(data).getpixel((8, 8)) == RED


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    assert load_image(encode(image, "JPEG")).mode == "RGB"


def test_load_from_path(tmp_path: Path) -> None:
    path = tmp_path / "shirt.jpg"
    Image.new("RGB", (50, 60), RED).save(path, quality=95)

    loaded = load_image(path)

    assert loaded.size == (50, 60)
    assert_close(loaded.getpixel((25, 30)), RED)


def test_missing_path_is_not_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "nope.jpg")


@pytest.mark.parametrize("data", [b"", b"definitely not an image", bytes(range(256)) * 4])
def test_garbage_is_rejected(data: bytes) -> None:
    with pytest.raises(ImageRejected) as info:
        load_image(data)
    assert "JPEG, PNG or WebP" in info.value.reason
    assert isinstance(info.value, ValueError)
    assert str(info.value) == info.value.reason


def test_truncated_jpeg_is_rejected() -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8))
    data = encode(noise, "JPEG", quality=90)

    with pytest.raises(ImageRejected) as info:
        load_image(data[: len(data) // 2])
    assert "damaged or incomplete" in info.value.reason


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")])
def test_other_formats_are_rejected_by_name(fmt: str, name: str) -> None:
    data = encode(Image.new("RGB", (8, 8), RED), fmt)
    with pytest.raises(ImageRejected) as info:
        load_image(data)
    assert f"can't use {name} images" in info.value.reason


def test_oversized_image_is_rejected() -> None:
    data = encode(Image.new("RGB", (1200, 1000), RED), "PNG")
    with pytest.raises(ImageRejected) as info:
        load_image(data, max_pixels=1_000_000)
    assert "too large (1200×1000 pixels)" in info.value.reason
    assert load_image(data, max_pixels=1_200_000).size == (1200, 1000)


def test_size_is_checked_before_decoding() -> None:
    # 48 MP with no pixel data: decoding would fail as "damaged", so a "too large" answer
    # proves the header was checked first.
    with pytest.raises(ImageRejected) as info:
        load_image(png_header_only(8000, 6000))
    assert "too large" in info.value.reason


def test_pillow_decompression_bomb_guard_is_translated() -> None:
    with pytest.raises(ImageRejected) as info:
        load_image(png_header_only(100_000, 100_000), max_pixels=10**12)
    assert "too large" in info.value.reason


def test_other_input_types_are_a_programming_error() -> None:
    with pytest.raises(TypeError):
        load_image("photo.jpg")  # type: ignore[arg-type]
