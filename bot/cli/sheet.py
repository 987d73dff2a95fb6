"""``wardrobe search --sheet OUT.png``: a contact sheet of what shoppers would see, so an admin
checks search quality by eye. One row per query: the photo, then its results left to right,
each with its name, type, colour and score; a query that failed shows why."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from bot.cli.common import CliError
from embeddings import ImageRejected, load_image

if TYPE_CHECKING:
    from bot.core.recommender import Match

CELL = 160
"""Width and height of a thumbnail."""
TEXT_LINES = 5
LINE_HEIGHT = 14
PADDING = 8
BACKGROUND = (255, 255, 255)
PLACEHOLDER = (220, 220, 220)
INK = (20, 20, 20)
QUERY_FRAME = (40, 90, 200)
WRITABLE = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


@dataclass(frozen=True)
class SheetRow:
    query: Path
    matches: Sequence[Match]
    error: str | None = None
    """Why the query has no results (an unreadable file, not an image)."""


def check_destination(path: Path) -> None:
    """Refuse, before any search runs, a sheet that could not be written."""
    if path.suffix.lower() not in WRITABLE:
        raise CliError(f"--sheet {path}: name a .png, .jpg or .webp file")
    if not path.parent.is_dir():
        raise CliError(f"--sheet {path}: {path.parent} is not a folder")


def write_contact_sheet(path: Path, rows: Sequence[SheetRow], columns: int) -> None:
    """Draw ``rows`` (``columns`` results each at most) and write them to ``path`` atomically."""
    check_destination(path)
    font = _font()
    cell_height = CELL + TEXT_LINES * LINE_HEIGHT + 2 * PADDING
    width = (1 + columns) * (CELL + PADDING) + PADDING
    sheet = Image.new("RGB", (width, max(1, len(rows)) * cell_height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for row_number, row in enumerate(rows):
        top = row_number * cell_height + PADDING
        _thumbnail(sheet, _query_image(row.query), PADDING, top)
        frame = (PADDING - 2, top - 2, PADDING + CELL + 1, top + CELL + 1)
        draw.rectangle(frame, outline=QUERY_FRAME)
        said = [(row.query.name, 1), *([(row.error, TEXT_LINES - 1)] if row.error else [])]
        _caption(draw, font, PADDING, top + CELL, said)
        for column, match in enumerate(row.matches[:columns], start=1):
            left = PADDING + column * (CELL + PADDING)
            item = match.item.item
            _thumbnail(sheet, _catalog_image(Path(item.image_path)), left, top)
            details = " · ".join(value for value in (item.article_type, item.base_colour) if value)
            said = [(f"{column}. {item.name}", 3), (details, 1), (f"score {match.score:.3f}", 1)]
            _caption(draw, font, left, top + CELL, said)
    temporary = path.with_name(f".{path.name}.tmp")
    sheet.save(temporary, WRITABLE[path.suffix.lower()])
    os.replace(temporary, path)


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans where the system has it (Cyrillic names, dashes), else Pillow's built-in
    font, which draws Latin letters only."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", 12)
    except OSError:
        return ImageFont.load_default(size=12)


def _query_image(path: Path) -> Image.Image | None:
    try:
        return load_image(path)
    except (OSError, ImageRejected):
        return None


def _catalog_image(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError:
        return None


def _thumbnail(sheet: Image.Image, image: Image.Image | None, left: int, top: int) -> None:
    """``image`` fitted into a CELL square (aspect kept, centred); grey when it is missing."""
    if image is None:
        box = (left, top, left + CELL - 1, top + CELL - 1)
        ImageDraw.Draw(sheet).rectangle(box, fill=PLACEHOLDER)
        return
    image = image.copy()
    image.thumbnail((CELL, CELL))
    sheet.paste(image, (left + (CELL - image.width) // 2, top + (CELL - image.height) // 2))


def _caption(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.ImageFont,
    left: int,
    top: int,
    texts: list[tuple[str, int]],
) -> None:
    """Texts under a thumbnail, each wrapped to its width in at most its number of lines."""
    lines = [line for text, most in texts for line in _wrap(draw, font, text, most)]
    for number, line in enumerate(lines[:TEXT_LINES]):
        draw.text((left, top + 4 + number * LINE_HEIGHT), line, fill=INK, font=font)


def _wrap(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, text: str, most: int) -> list[str]:
    """``text`` in lines no wider than a thumbnail, at most ``most`` of them (the last cut
    with "…"). Dashes become "-": the built-in font has no glyph for them."""
    words = text.replace("—", "-").replace("–", "-").split()
    lines: list[str] = []
    for word in words:
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= CELL:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] += "…"
    for number, line in enumerate(lines):
        while len(line) > 1 and draw.textlength(line, font=font) > CELL:
            line = line[:-2] + "…"
        lines[number] = line
    return lines
