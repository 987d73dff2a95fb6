"""Safe decoding of untrusted user images.

Everything a user sends goes through :func:`load_image` before it reaches a model, so that
bad input fails early with a message the bot can show as-is (:class:`ImageRejected`).

Policy:

* Only JPEG, PNG and WebP are accepted — the formats Telegram clients send photos in.
  Pillow is restricted to those decoders, which also keeps the parsing attack surface small.
  GIF, BMP, TIFF, HEIC, … are rejected with a reason that names the format.
* Animated PNG/WebP: the first frame is used (a sticker-like upload still shows the garment);
  animated GIFs are rejected like any GIF.
* The pixel count is checked from the header *before* decoding (decompression-bomb guard).
* EXIF orientation is applied, so phone photos are upright.
* The result is always RGB; transparency is flattened onto white because catalog images
  are packshots on a white background.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP")
DEFAULT_MAX_PIXELS = 40_000_000

ImageSource = bytes | bytearray | memoryview | Path

_NOT_AN_IMAGE = "That file isn't an image I can read — please send a JPEG, PNG or WebP photo."
_DAMAGED = "That image seems to be damaged or incomplete — please try sending it again."

# Magic numbers of formats we refuse, only to name them in the reason we give the user.
_KNOWN_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIC"),
    (4, b"ftypavif", "AVIF"),
)


class ImageRejected(ValueError):
    """The input cannot be used as a photo; ``reason`` is safe to show to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_image(data: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``data`` (raw bytes or a file path) into an upright, fully loaded RGB image.

    Raises :class:`ImageRejected` for anything that is not a readable JPEG/PNG/WebP of at
    most ``max_pixels`` pixels. A missing file raises :class:`FileNotFoundError`: paths come
    from our own code, not from users.
    """
    if isinstance(data, Path):
        with data.open("rb") as fp:
            return _decode(fp, max_pixels)
    if isinstance(data, bytes | bytearray | memoryview):
        return _decode(io.BytesIO(data), max_pixels)
    raise TypeError(f"load_image() takes bytes or a Path, not {type(data).__name__}")


def flatten_to_rgb(image: Image.Image) -> Image.Image:
    """Return an RGB copy of ``image``; transparent areas become white, not black."""
    if image.mode.startswith("I;16"):
        # 16-bit greyscale PNG: Pillow's convert() clips every value above 255 to white.
        image = Image.fromarray((np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _decode(fp: io.BufferedIOBase | io.BytesIO, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(fp, formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        fp.seek(0)
        raise ImageRejected(_unsupported_reason(fp.read(16))) from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected(_too_large_reason(max_pixels)) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(_NOT_AN_IMAGE) from exc

    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageRejected(_too_large_reason(max_pixels, width, height))
        try:
            image.load()  # decoding errors and truncation surface here, not later in the model
        except Image.DecompressionBombError as exc:
            raise ImageRejected(_too_large_reason(max_pixels, width, height)) from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageRejected(_DAMAGED) from exc
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:  # orientation is best effort: broken EXIF must not reject a photo
            upright = image
        return flatten_to_rgb(upright)


def _unsupported_reason(head: bytes) -> str:
    for offset, signature, name in _KNOWN_SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return (
                f"I can't use {name} images — please send the photo as a JPEG, PNG or WebP "
                "(sending it as a regular Telegram photo does this for you)."
            )
    return _NOT_AN_IMAGE


def _too_large_reason(max_pixels: int, width: int | None = None, height: int | None = None) -> str:
    size = f" ({width}×{height} pixels)" if width and height else ""
    return (
        f"That image is too large{size} — please send a smaller photo "
        f"(up to {max_pixels / 1_000_000:g} megapixels)."
    )
