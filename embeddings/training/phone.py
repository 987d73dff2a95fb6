"""Simulated shopper photos made from catalog packshots, for evaluation and training.

The catalog shows each garment on white in studio light; shoppers photograph clothes lying on a
bed, a table or the floor, hanging on a wall, tilted, badly lit, blurred and JPEG-compressed.
:func:`simulate_phone_photo` turns a packshot into such a photo, so retrieval can be measured
(and trained) on the gap between the two without collecting real photos.

Pure Pillow + numpy and cheap enough for training to generate photos on the fly (its cost:
docs/BENCHMARKS.md, "Figures moved out of the code").
Every random choice comes from the ``random.Random`` passed in: the same rng state gives the
same photo.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from ..images import flatten_to_rgb

# packshot_mask: a pixel is garment when it differs from the background colour by more than
# _COLOUR_TOLERANCE in some channel, or sits on an edge stronger than _EDGE_TOLERANCE (the
# outline of a white shirt on white). Tolerant on purpose: the hole filling and clean-up after
# it remove what little background noise gets through.
_COLOUR_TOLERANCE = 5
_EDGE_TOLERANCE = 10
_MASK_WORK_SIDE = 320
_RIM_TOLERANCE = 24
_PEEL = 6
_MIN_COMPONENT_SHARE = 0.12  # of the largest component: pairs of shoes survive, specks don't

# simulate_phone_photo renders at this short side and scales up at the end.
_WORK_SHORT_SIDE = 224
_MESH_CELLS = 6  # per side of the cloth warp; enough for the homography to look straight

Rgb = tuple[int, int, int]


def packshot_mask(image: Image.Image) -> Image.Image:
    """'L' mask (0 or 255) of the item in a catalog packshot on a white or plain background.

    The background colour is the median of the border; the item is what differs from it or
    has an edge, closed, hole-filled and with the specks dropped. An image with nothing on it
    gives an empty mask.
    """
    rgb = image if image.mode == "RGB" else flatten_to_rgb(image)
    work = rgb
    if max(rgb.size) > _MASK_WORK_SIDE:
        work = rgb.copy()
        work.thumbnail((_MASK_WORK_SIDE, _MASK_WORK_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(work)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = Image.new("RGB", work.size, tuple(int(v) for v in np.median(border, axis=0)))
    red, green, blue = ImageChops.difference(work, background).split()
    distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    differs = np.asarray(distance) > _COLOUR_TOLERANCE
    edges = np.asarray(work.convert("L").filter(ImageFilter.FIND_EDGES)) > _EDGE_TOLERANCE
    edges[[0, -1], :] = False  # FIND_EDGES leaves the border row/column undefined
    edges[:, [0, -1]] = False
    found = differs | edges
    garment = _fill_holes(_erode(_dilate(found, 3), 3))
    garment = _main_components(_dilate(_erode(garment, 1), 1))
    # JPEG ringing leaves near-white pixels a few pixels out from the outline, and edges
    # reach one past it: peel near-background pixels off the rim, or every cut-out wears a
    # white fringe. Near-white garments lose at most _PEEL pixels of their rim.
    faint = np.asarray(distance) < _RIM_TOLERANCE
    for _ in range(_PEEL):
        garment &= ~(faint & ~_erode(garment, 1))
    mask = Image.fromarray((garment * 255).astype(np.uint8))
    if mask.size != rgb.size:
        mask = mask.resize(rgb.size, Image.Resampling.BILINEAR).point(lambda v: 255 * (v >= 128))
    return mask


def simulate_phone_photo(
    packshot: Image.Image,
    rng: random.Random,
    *,
    distractors: Sequence[Image.Image] = (),
    size: tuple[int, int] = (480, 640),
    mask: Image.Image | None = None,
) -> Image.Image:
    """How a shopper photographs a garment: an RGB photo of ``size`` (width, height).

    The item is cut out with :func:`packshot_mask`, scaled to cover roughly 30–85 % of the
    frame, rotated (±30°, sometimes 90°), tilted in perspective and shifted (sometimes partly
    out of the frame), laid on a bed sheet, wood, fabric, tiles or a carpet, held upright
    against a wall (on a hanger when its shape allows), or in front of one of ``distractors``
    (other photos, blurred), with a drop shadow, uneven light, a white-balance cast, defocus
    or motion blur, sensor noise and JPEG compression at quality 30–85. The same ``rng``
    state gives the same photo. ``mask``: the packshot's :func:`packshot_mask`, when the caller
    keeps it (a fifth of the cost here; training sees each packshot many times).

    Rendering happens at :data:`_WORK_SHORT_SIDE` pixels on the short side and is scaled up at
    the end: the embedders look at 224 pixels anyway, and it costs a quarter of full size.
    """
    width, height = size
    scale = min(1.0, _WORK_SHORT_SIDE / min(width, height))
    work = (max(1, round(width * scale)), max(1, round(height * scale)))
    noise = np.random.default_rng(rng.getrandbits(64))
    garment, alpha = _cut_out(packshot, mask)
    hanging = rng.random() < 0.2  # upright against a wall or a door
    background = (
        _distractor_background(rng, rng.choice(distractors), work)
        if distractors and not hanging and rng.random() < 0.25
        else _texture_background(rng, noise, work, wall=hanging)
    )
    _shade_garment(rng, noise, garment)
    layer, box = _place(rng, garment, alpha, work, hanging)
    if hanging and _hangable(alpha):
        _draw_hanger(rng, background, box)
    _cast_shadow(rng, background, layer, box)
    surface = background.copy() if rng.random() < 0.3 else None
    background.paste(layer, box[:2], layer)
    if surface is not None:
        _tuck_under(rng, background, surface, box)
    photo = _relight(rng, noise, background)
    if rng.random() < 0.15:
        photo = _motion_blur(rng, photo)
    photo = _defocus_to(rng, photo, size)
    return _jpeg(photo, rng.randint(30, 85))


def _cut_out(packshot: Image.Image, mask: Image.Image | None) -> tuple[Image.Image, Image.Image]:
    """The packshot cropped to its item, and the item's soft-edged alpha."""
    rgb = packshot if packshot.mode == "RGB" else flatten_to_rgb(packshot)
    if mask is None:
        mask = packshot_mask(rgb)
    elif mask.size != rgb.size:
        raise ValueError(f"mask size {mask.size} differs from the packshot's {rgb.size}")
    box = mask.getbbox()
    if box is None or (box[2] - box[0]) * (box[3] - box[1]) < 0.01 * rgb.width * rgb.height:
        return rgb.copy(), Image.new("L", rgb.size, 255)  # nothing to cut out: the whole image
    # Feather inwards (blur a mask one pixel smaller), so every partly transparent pixel is
    # still the item's colour and no white from the packshot leaks into the photo.
    inner = Image.fromarray(_erode(np.asarray(mask.crop(box)) > 0, 1).astype(np.uint8) * 255)
    return rgb.crop(box), inner.filter(ImageFilter.BoxBlur(1))


def _hangable(alpha: Image.Image) -> bool:
    """Shaped like something that hangs on a hanger (taller than wide, as wide at the top as
    anywhere: trousers, a flat-laid shirt or dress), not shoes, bags or a model's head."""
    rows = np.asarray(alpha) > 127
    widths = rows.sum(axis=1)
    if rows.shape[0] < 1.2 * rows.shape[1] or widths.max() == 0:
        return False
    shoulders = widths[: max(1, rows.shape[0] // 5)].max()
    return bool(shoulders >= 0.85 * widths.max())


def _smooth_noise(
    noise: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]
) -> np.ndarray:
    """Value noise in [0, 1] of ``shape`` (rows, columns) with about ``cells`` blobs."""
    grid = noise.random((cells[0] + 1, cells[1] + 1), dtype=np.float32)
    field = Image.fromarray(grid).resize(shape[::-1], Image.Resampling.BICUBIC)
    return np.asarray(field)


def _texture_background(
    rng: random.Random, noise: np.random.Generator, size: tuple[int, int], *, wall: bool
) -> Image.Image:
    """A procedural surface a garment is photographed on (a wall when ``wall``)."""
    kind = rng.choice(("plain", "tiles", "noise") if wall else _SURFACES)
    # Coarse surfaces are drawn at half size and scaled up: a third of the cost, same look.
    shrink = 1 if kind == "fabric" else 2
    width, height = max(1, size[0] // shrink), max(1, size[1] // shrink)
    pixels = _TEXTURES[kind](rng, noise, height, width)
    surface = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return surface if surface.size == size else surface.resize(size, Image.Resampling.BILINEAR)


def _colour(rng: random.Random, palette: Sequence[Rgb], jitter: int = 18) -> np.ndarray:
    base = rng.choice(palette)
    return np.array([c + rng.randint(-jitter, jitter) for c in base], dtype=np.float32)


def _wood(rng: random.Random, noise: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Planks with grain: a floor or a table top."""
    along, across = (height, width) if rng.random() < 0.5 else (width, height)
    plank = rng.uniform(0.12, 0.3) * across
    u = np.arange(across, dtype=np.float32)[None, :] + rng.uniform(0, plank)
    warp = _smooth_noise(noise, (along, across), (2, 6)) * rng.uniform(6, 20)
    grain = np.sin(2 * np.pi * (u + warp) / rng.uniform(3, 9))
    planks = np.floor(u / plank).astype(np.int32)
    tone = (0.82 + 0.3 * noise.random(int(planks.max()) + 2, dtype=np.float32))[planks]
    seams = np.where((u % plank) < 1.2, 0.55, 1.0)
    shade = (
        tone
        * seams
        * (0.9 + 0.07 * grain)
        * (0.9 + 0.2 * _smooth_noise(noise, (along, across), (3, 8)))
    )
    pixels = shade[:, :, None] * _colour(rng, _WOODS)
    return pixels if along == height else pixels.transpose(1, 0, 2)


def _fabric(rng: random.Random, noise: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A woven blanket, sofa or table cloth, plain or checked, with soft folds."""
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    period = rng.uniform(2.2, 4.0)
    weave = 0.93 + 0.035 * (np.sin(2 * np.pi * x / period) + np.sin(2 * np.pi * y / period))
    base = _colour(rng, _FABRICS, 30)
    pixels = np.broadcast_to(base, (height, width, 3)).copy()
    if rng.random() < 0.5:
        check = rng.uniform(10, 40)
        stripes = ((x // check) % 2 + (y // check) % 2)[:, :, None]
        pixels = pixels + stripes * (_colour(rng, _FABRICS, 30) - base) * 0.5
    folds = 0.8 + 0.25 * _smooth_noise(noise, (height, width), (4, 3))
    return pixels * (weave * folds)[:, :, None]


def _sheet(rng: random.Random, noise: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A light bed sheet or duvet with long soft folds."""
    y = np.arange(height, dtype=np.float32)[:, None] / height
    x = np.arange(width, dtype=np.float32)[None, :] / width
    folds = np.zeros((height, width), dtype=np.float32)
    for _ in range(rng.randint(3, 6)):
        angle = rng.uniform(0, np.pi)
        distance = x * math.cos(angle) + y * math.sin(angle) - rng.uniform(-0.2, 1.2)
        folds += rng.uniform(0.3, 1.0) * np.exp(-((distance / rng.uniform(0.02, 0.09)) ** 2))
    folds += 0.8 * _smooth_noise(noise, (height, width), (3, 3))
    shade = 1.02 - 0.18 * folds / max(float(folds.max()), 1e-6)
    return shade[:, :, None] * _colour(rng, _SHEETS, 10)


def _tiles(rng: random.Random, noise: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Floor or wall tiles with grout lines, each tile a slightly different tone."""
    side = rng.uniform(0.12, 0.4) * max(height, width)
    y = np.arange(height, dtype=np.float32)[:, None] + rng.uniform(0, side)
    x = np.arange(width, dtype=np.float32)[None, :] + rng.uniform(0, side)
    rows, columns = (y // side).astype(np.int32), (x // side).astype(np.int32)
    tone = 0.9 + 0.15 * noise.random(
        (int(rows.max()) + 1, int(columns.max()) + 1), dtype=np.float32
    )
    shade = tone[rows, columns]
    if rng.random() < 0.25:  # a chequered floor
        shade = shade * np.where((rows + columns) % 2 == 0, 1.0, rng.uniform(0.3, 0.7))
    grout = ((y % side) < 2) | ((x % side) < 2)
    gloss = 0.85 + 0.2 * _smooth_noise(noise, (height, width), (2, 2))
    pixels = (shade * gloss)[:, :, None] * _colour(rng, _TILES)
    pixels[grout] = _colour(rng, _TILES) * 0.8
    return pixels


def _plain(rng: random.Random, noise: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A painted wall or a door: a gradient between two close colours."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (x * math.cos(angle) + y * math.sin(angle)) / 1.42 + 0.5
    near = _colour(rng, _WALLS)
    far = near * rng.uniform(0.65, 1.0)
    speckle = 1 + 0.04 * (_smooth_noise(noise, (height, width), (20, 15))[:, :, None] - 0.5)
    return (near + (far - near) * ramp) * speckle


def _carpet(rng: random.Random, noise: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A carpet, rug or concrete floor: blotchy noise at a few scales."""
    field = 0.55 * _smooth_noise(noise, (height, width), (4, 3))
    field += 0.3 * _smooth_noise(noise, (height, width), (24, 18))
    field += 0.15 * noise.random((height, width), dtype=np.float32)
    return (0.75 + 0.4 * field)[:, :, None] * _colour(rng, _CARPETS, 25)


_TEXTURES: dict[str, Callable[[random.Random, np.random.Generator, int, int], np.ndarray]] = {
    "wood": _wood,
    "fabric": _fabric,
    "sheet": _sheet,
    "tiles": _tiles,
    "plain": _plain,
    "noise": _carpet,
}
_SURFACES = ("wood", "wood", "fabric", "sheet", "sheet", "tiles", "plain", "noise")
_WOODS: tuple[Rgb, ...] = (
    (196, 152, 104),
    (168, 118, 72),
    (112, 76, 46),
    (150, 140, 124),
    (84, 58, 38),
    (214, 190, 150),
)
_FABRICS: tuple[Rgb, ...] = (
    (60, 70, 110),
    (150, 40, 50),
    (90, 120, 80),
    (200, 190, 170),
    (70, 70, 70),
    (180, 140, 60),
    (120, 90, 140),
    (30, 30, 35),
)
_SHEETS: tuple[Rgb, ...] = (
    (240, 240, 236),
    (236, 226, 206),
    (212, 216, 222),
    (206, 220, 236),
    (236, 210, 214),
    (190, 190, 186),
)
_TILES: tuple[Rgb, ...] = (
    (226, 222, 214),
    (180, 176, 170),
    (120, 118, 116),
    (206, 190, 164),
    (150, 170, 180),
    (60, 60, 62),
)
_WALLS: tuple[Rgb, ...] = (
    (238, 234, 224),
    (220, 212, 196),
    (200, 204, 206),
    (214, 226, 214),
    (236, 222, 200),
    (170, 160, 150),
)
_CARPETS: tuple[Rgb, ...] = (
    (140, 130, 120),
    (110, 100, 90),
    (160, 150, 140),
    (90, 60, 50),
    (70, 80, 100),
    (180, 170, 150),
)


def _distractor_background(
    rng: random.Random, photo: Image.Image, size: tuple[int, int]
) -> Image.Image:
    """Part of another photo, scaled to fill the frame and out of focus."""
    rgb = photo if photo.mode == "RGB" else flatten_to_rgb(photo)
    zoom = rng.uniform(1.5, 3.0)
    crop_w = min(rgb.width, rgb.height * size[0] / size[1]) / zoom
    crop_h = crop_w * size[1] / size[0]
    left = rng.uniform(0, rgb.width - crop_w)
    top = rng.uniform(0, rgb.height - crop_h)
    small = (max(1, size[0] // 4), max(1, size[1] // 4))
    blurred = rgb.resize(
        small, Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h)
    )
    blurred = blurred.filter(ImageFilter.BoxBlur(rng.uniform(1.0, 3.0)))
    return blurred.resize(size, Image.Resampling.BILINEAR)


def _shade_garment(rng: random.Random, noise: np.random.Generator, garment: Image.Image) -> None:
    """Creases: a cloth lying around is never as flat as the pressed one in the studio."""
    depth = rng.uniform(0.0, 0.25)
    field = 1 - depth * _smooth_noise(noise, (garment.height, garment.width), (3, 3))
    shade = Image.fromarray((field * 255).astype(np.uint8))
    garment.paste(ImageChops.multiply(garment, Image.merge("RGB", (shade, shade, shade))))


def _place(
    rng: random.Random,
    garment: Image.Image,
    alpha: Image.Image,
    size: tuple[int, int],
    hanging: bool,
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Scale, rotate, tilt and move the item into the frame: the warped RGBA layer and its box."""
    width, height = size
    gw, gh = garment.size
    if hanging:
        angle = rng.uniform(-8, 8)
    elif rng.random() < 0.12:
        angle = rng.choice((-90, 90)) + rng.uniform(-10, 10)
    else:
        angle = rng.uniform(-30, 30)
    theta = math.radians(angle)
    cos, sin = abs(math.cos(theta)), abs(math.sin(theta))
    turned_w, turned_h = gw * cos + gh * sin, gw * sin + gh * cos
    coverage = rng.uniform(0.3, 0.85)
    fit = min(width / turned_w, height / turned_h)
    cropped = not hanging and rng.random() < 0.2
    scale = min(
        math.sqrt(coverage * width * height / (turned_w * turned_h)),
        fit * (1.25 if cropped else 1.0),
    )
    half_w, half_h = turned_w * scale / 2, turned_h * scale / 2
    slack = 0.2 if cropped else 0.0
    centre_x = _between(rng, half_w * (1 - 2 * slack), width - half_w * (1 - 2 * slack))
    centre_y = _between(rng, half_h * (1 - 2 * slack), height - half_h * (1 - 2 * slack))
    tilt = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1)]) * 0.35 / max(width, height)
    forward = (
        np.array([[1, 0, centre_x], [0, 1, centre_y], [0, 0, 1]])
        @ np.array([[1, 0, 0], [0, 1, 0], [tilt[0], tilt[1], 1]])
        @ np.array(
            [
                [math.cos(theta), -math.sin(theta), 0],
                [math.sin(theta), math.cos(theta), 0],
                [0, 0, 1],
            ]
        )
        @ np.array([[scale, 0, 0], [0, scale, 0], [0, 0, 1]])
        @ np.array([[1, 0, -gw / 2], [0, 1, -gh / 2], [0, 0, 1]])
    )
    # Cloth is not a rigid print: the warp is a mesh whose corners follow the homography and
    # are then pushed around a little, which bends outlines and prints like a crumpled garment.
    bend = rng.uniform(0.0, 0.05) * max(gw, gh)
    corners = forward @ np.array([[0, gw, gw, 0], [0, 0, gh, gh], [1, 1, 1, 1]])
    xs, ys = corners[0] / corners[2], corners[1] / corners[2]
    margin = bend * scale
    left, top = max(0, math.floor(xs.min() - margin)), max(0, math.floor(ys.min() - margin))
    right = min(width, math.ceil(xs.max() + margin))
    bottom = min(height, math.ceil(ys.max() + margin))
    right, bottom = max(right, left + 1), max(bottom, top + 1)  # the centre is in the frame
    inverse = np.linalg.inv(forward)
    cells = _MESH_CELLS
    grid_x = np.linspace(left, right, cells + 1)
    grid_y = np.linspace(top, bottom, cells + 1)
    points = np.stack(
        [*np.meshgrid(grid_x, grid_y), np.ones((cells + 1, cells + 1))]
    )  # (3, rows, columns) in the frame
    source = np.einsum("ij,jkl->ikl", inverse, points)
    source = source[:2] / source[2] + bend * _noise_field(rng, cells + 1)
    mesh = [
        (
            (
                round(grid_x[col] - left),
                round(grid_y[row] - top),
                round(grid_x[col + 1] - left),
                round(grid_y[row + 1] - top),
            ),
            tuple(
                float(value)
                for r, c in ((row, col), (row + 1, col), (row + 1, col + 1), (row, col + 1))
                for value in source[:, r, c]
            ),
        )
        for row in range(cells)
        for col in range(cells)
    ]
    rgba = garment.copy()
    rgba.putalpha(alpha)
    # Premultiplied, so interpolating at the rim doesn't pull in the colour of clear pixels.
    layer = rgba.convert("RGBa").transform(
        (right - left, bottom - top), Image.Transform.MESH, mesh, Image.Resampling.BILINEAR
    )
    return layer.convert("RGBA"), (left, top, right, bottom)


def _noise_field(rng: random.Random, points: int) -> np.ndarray:
    """(2, points, points) displacements in [-1, 1], smooth: a 3×3 random grid interpolated."""
    coarse = np.array([[[rng.uniform(-1, 1) for _ in range(3)] for _ in range(3)] for _ in "xy"])
    at = np.linspace(0, 2, points)
    low = np.minimum(at.astype(int), 1)
    frac = at - low
    rows = coarse[:, low] * (1 - frac)[None, :, None] + coarse[:, low + 1] * frac[None, :, None]
    return rows[:, :, low] * (1 - frac) + rows[:, :, low + 1] * frac


def _tuck_under(
    rng: random.Random, photo: Image.Image, surface: Image.Image, box: tuple[int, int, int, int]
) -> None:
    """Hide a slice (10–30 %) of the item under the surface, from one side along a slanted
    line: a sleeve folded under, a corner under the pillow, a hand's worth of occlusion."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    depth = rng.uniform(0.1, 0.3)
    slant = rng.uniform(-0.25, 0.25)
    side = rng.choice("lrtb")
    if side in "lr":
        near, far = (left, right) if side == "l" else (right, left)
        cut = near + (far - near) * depth
        shift = slant * height / 2
        polygon = [(near, top), (cut - shift, top), (cut + shift, bottom), (near, bottom)]
    else:
        near, far = (top, bottom) if side == "t" else (bottom, top)
        cut = near + (far - near) * depth
        shift = slant * width / 2
        polygon = [(left, near), (left, cut - shift), (right, cut + shift), (right, near)]
    cover = Image.new("L", photo.size, 0)
    ImageDraw.Draw(cover).polygon(polygon, fill=255)
    photo.paste(surface, (0, 0), cover.filter(ImageFilter.BoxBlur(1)))


def _between(rng: random.Random, low: float, high: float) -> float:
    """Uniform in [low, high], or their middle when the range is empty."""
    return rng.uniform(low, high) if high > low else (low + high) / 2


def _draw_hanger(
    rng: random.Random, background: Image.Image, box: tuple[int, int, int, int]
) -> None:
    """A coat hanger whose bar the garment will cover and whose hook sticks out above it."""
    draw = ImageDraw.Draw(background)
    left, top, right, bottom = box
    middle = (left + right) / 2
    span = (right - left) * rng.uniform(0.35, 0.45)
    thick = max(2, round((right - left) * 0.02))
    colour = rng.choice(((40, 40, 42), (150, 110, 70), (200, 200, 205), (230, 230, 230)))
    bar = top + (bottom - top) * 0.08
    neck = top - (bottom - top) * 0.04
    draw.line(
        [(middle - span, bar), (middle, neck), (middle + span, bar)], fill=colour, width=thick
    )
    hook = (bottom - top) * 0.06
    draw.arc(
        [middle - hook, neck - 2.2 * hook, middle + hook, neck - 0.2 * hook],
        start=150,
        end=450,
        fill=colour,
        width=max(1, thick // 2 + 1),
    )


def _cast_shadow(
    rng: random.Random, background: Image.Image, layer: Image.Image, box: tuple[int, int, int, int]
) -> None:
    """Darken the surface under the item, offset towards where the light doesn't come from."""
    left, top, right, bottom = box
    strength = rng.uniform(0.1, 0.5)
    offset = rng.uniform(0.01, 0.05) * max(right - left, bottom - top)
    direction = rng.uniform(0, 2 * math.pi)
    dx, dy = round(offset * math.cos(direction)), round(offset * math.sin(direction))
    alpha = layer.getchannel("A")
    small = alpha.reduce(4) if min(alpha.size) >= 8 else alpha
    blur = small.filter(ImageFilter.BoxBlur(rng.uniform(1.0, 3.0))).resize(
        alpha.size, Image.Resampling.BILINEAR
    )
    shadow = Image.new("L", background.size, 255)
    shadow.paste(blur.point(lambda v: 255 - round(v * strength)), (left + dx, top + dy))
    background.paste(ImageChops.multiply(background, Image.merge("RGB", (shadow, shadow, shadow))))


def _relight(rng: random.Random, noise: np.random.Generator, photo: Image.Image) -> Image.Image:
    """Uneven light, exposure, contrast, a white-balance cast and sensor noise."""
    width, height = photo.size
    y = np.linspace(-1, 1, 12, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, 9, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0, 0.6) * (x * math.cos(angle) + y * math.sin(angle)) / 1.42
    light *= 1 - rng.uniform(0, 0.5) * (x**2 + y**2) / 2
    light /= light.max()
    field = Image.fromarray((light * 255).astype(np.uint8)).resize(
        photo.size, Image.Resampling.BILINEAR
    )
    lit = ImageChops.multiply(photo, Image.merge("RGB", (field, field, field)))
    exposure = rng.uniform(0.75, 1.3)
    contrast = rng.uniform(0.75, 1.2)
    gamma = rng.uniform(0.8, 1.25)
    warm = rng.uniform(-0.12, 0.12)
    gains = (1 + warm, 1 + rng.uniform(-0.04, 0.04), 1 - warm)
    levels = np.arange(256, dtype=np.float32) / 255
    curve = ((levels * exposure).clip(0, 1) ** gamma - 0.5) * contrast + 0.5
    lut = np.concatenate([(curve * gain * 255).clip(0, 255) for gain in gains])
    lit = lit.point(lut.round().astype(np.uint8).tolist())
    # Luminance grain, the sum of two uniforms (close enough to Gaussian, and integer-fast),
    # centred on 64 so ImageChops.add can take it off again with its offset.
    spread = rng.randint(2, 12)
    grain = noise.integers(0, spread + 1, (height, width), dtype=np.uint8)
    grain += noise.integers(0, spread + 1, (height, width), dtype=np.uint8)
    grain += 64 - spread
    grey = Image.fromarray(grain)
    return ImageChops.add(lit, Image.merge("RGB", (grey, grey, grey)), offset=-64)


def _motion_blur(rng: random.Random, photo: Image.Image) -> Image.Image:
    """A shaky hand: the average of the photo shifted along one direction."""
    length = rng.uniform(3, 9)
    direction = rng.uniform(0, math.pi)
    pixels = np.asarray(photo, dtype=np.uint16)
    taps = 6
    total = np.zeros_like(pixels)
    for tap in range(taps):
        step = (tap / (taps - 1) - 0.5) * length
        dx, dy = round(step * math.cos(direction)), round(step * math.sin(direction))
        total += np.roll(pixels, (dy, dx), axis=(0, 1))
    return Image.fromarray((total // taps).astype(np.uint8))


def _defocus_to(rng: random.Random, photo: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to the output size, through a smaller image when the focus is off."""
    if rng.random() < 0.5:
        factor = rng.uniform(1.2, 2.5)
        smaller = (max(1, round(photo.width / factor)), max(1, round(photo.height / factor)))
        photo = photo.resize(smaller, Image.Resampling.BILINEAR)
    return photo.resize(size, Image.Resampling.BILINEAR)


def _jpeg(photo: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a (2·radius+1)² square, separably."""
    out = mask.copy()
    for shift in range(1, radius + 1):
        out[shift:] |= mask[:-shift]
        out[:-shift] |= mask[shift:]
    rows = out.copy()
    for shift in range(1, radius + 1):
        out[:, shift:] |= rows[:, :-shift]
        out[:, :-shift] |= rows[:, shift:]
    return out


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary erosion by a square; the image border does not erode."""
    return ~_dilate(~mask, radius)


def _label_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components (4-neighbour) of ``mask`` via its horizontal runs.

    Returns each pixel's run id (flat; meaningless outside ``mask``) and each run's
    component id. Runs are few (a handful per row), so a union-find over the runs that touch
    vertically costs about a millisecond, where per-pixel Python would cost a hundred.
    """
    width = mask.shape[1]
    flat = mask.ravel()
    starts = flat.copy()
    starts[1:] &= ~flat[:-1]
    starts[::width] = flat[::width]  # every row starts its own runs
    runs = np.cumsum(starts, dtype=np.int32) - 1
    count = int(runs[-1]) + 1 if flat.any() else 0
    touching = flat[:-width] & flat[width:]
    codes = runs[:-width][touching].astype(np.int64) * count + runs[width:][touching]
    changes = np.ones(codes.size, dtype=bool)
    changes[1:] = codes[1:] != codes[:-1]  # long runs repeat one pair: drop repeats first
    pairs = np.unique(codes[changes])
    parent = list(range(count))

    def root(run: int) -> int:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    for upper, lower in zip(
        (pairs // max(count, 1)).tolist(), (pairs % max(count, 1)).tolist(), strict=True
    ):
        a, b = root(upper), root(lower)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return runs, np.array([root(run) for run in range(count)], dtype=np.int32)


def _fill_holes(found: np.ndarray) -> np.ndarray:
    """Everything not connected to the image border through background is garment."""
    free = ~found
    if not free.any():
        return found
    runs, components = _label_runs(free)
    edge = np.zeros(found.shape, dtype=bool)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    edge &= free
    outside = np.isin(components, components[runs[edge.ravel()]])
    return ~(free.ravel() & outside[runs]).reshape(found.shape)


def _main_components(found: np.ndarray) -> np.ndarray:
    """Keep the connected components at least _MIN_COMPONENT_SHARE of the largest one."""
    if not found.any():
        return found
    inside = found.ravel()
    runs, components = _label_runs(found)
    pixel_components = components[runs[inside]]
    sizes = np.bincount(pixel_components)
    keep = sizes >= _MIN_COMPONENT_SHARE * sizes.max()
    kept = np.zeros(found.size, dtype=bool)
    kept[inside] = keep[pixel_components]
    return kept.reshape(found.shape)
