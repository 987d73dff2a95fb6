"""The views training learns from, made the way the query path makes them: a catalog item's
packshot and simulated shopper photos of it (:mod:`.phone`), and real shoppers' photos
(:mod:`.real_photos`), each cropped to the garment as search crops (:func:`search_crop`) and
preprocessed as search does (:mod:`embeddings.backbones`), so that only the content differs
from what the model sees at inference.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import torch
from PIL import Image, ImageOps

from ..backbones import get_backbone_spec, preprocess
from ..features import view_and_colour
from ..images import ImageRejected, load_image
from . import phone
from .config import TrainConfig, TrainingError, TrainItem
from .real_photos import RealPhoto

VIEW_VERSION = "2"
"""Bump when the way views are made changes, so stale feature caches are not reused. Edits to
the phone-photo simulator itself do not invalidate a cache on purpose (its views are still
phone photos, and recomputing them is the expensive part): delete ``train-cache/`` for that."""


def _random_crop_box(
    size: tuple[int, int], rng: random.Random, scale: tuple[float, float] = (0.6, 1.0)
) -> tuple[int, int, int, int]:
    """A RandomResizedCrop-style box: a share ``scale`` of the area, aspect within 3:4..4:3."""
    width, height = size
    area = width * height * rng.uniform(*scale)
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w = min(width, round(math.sqrt(area * ratio)))
    h = min(height, round(math.sqrt(area / ratio)))
    left = rng.randint(0, width - w)
    top = rng.randint(0, height - h)
    return left, top, left + w, top + h


def search_crop(image: Image.Image) -> Image.Image:
    """The image cropped to its garment exactly as search crops catalog images and photos."""
    return view_and_colour(image)[0]


def phone_view(
    packshot: Image.Image,
    rng: random.Random,
    preprocess: Callable[[Image.Image], torch.Tensor],
    distractors: Sequence[Image.Image] = (),
    *,
    crop: bool = True,
) -> torch.Tensor:
    """A simulated shopper photo of ``packshot`` (mirrored half the time, randomly framed),
    then the query path's garment crop and preprocessing, so only the content differs from
    a real query."""
    if rng.random() < 0.5:
        packshot = ImageOps.mirror(packshot)
    photo = phone.simulate_phone_photo(packshot, rng, distractors=distractors)
    photo = photo.crop(_random_crop_box(photo.size, rng))
    return preprocess(search_crop(photo) if crop else photo)


def _view_rng(seed: int, item_id: str, view: int) -> random.Random:
    """Independent of order and batch size, so a cache can be rebuilt exactly."""
    return random.Random(f"{seed}:{item_id}:{view}")


def _load_packshot(item: TrainItem) -> Image.Image:
    try:
        return load_image(item.image_path)
    except ImageRejected as error:
        raise TrainingError(
            f"item {item.id}: image {item.image_path} rejected: {error.reason}"
        ) from None


class ViewDataset(torch.utils.data.Dataset):
    """View number ``view`` (None = the packshot) of every item, as preprocessed tensors.

    A Dataset so DataLoader workers make the views (decoding, simulating, masking: as costly
    as the network on a CPU) while the main process runs the network.
    """

    def __init__(self, items: Sequence[TrainItem], view: int | None, config: TrainConfig):
        self.items, self.view, self.config = items, view, config
        self._preprocess: Callable[[Image.Image], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._preprocess is None:
            self._preprocess = tensor_preprocessing(self.config.backbone)
        item, crop = self.items[index], self.config.garment_crop
        packshot = _load_packshot(item)
        if self.view is None:
            return self._preprocess(search_crop(packshot) if crop else packshot)
        rng = _view_rng(self.config.seed, item.id, self.view)
        others = rng.sample(range(len(self.items)), k=min(len(self.items), rng.randint(0, 2)))
        distractors = [_load_packshot(self.items[i]) for i in others if i != index]
        return phone_view(packshot, rng, self._preprocess, distractors, crop=crop)


class RealPhotoViews(torch.utils.data.Dataset):
    """View number ``view`` of every real photo: view 0 exactly as search sees the photo, the
    others mirrored half the time and randomly reframed first."""

    def __init__(self, photos: Sequence[RealPhoto], view: int, config: TrainConfig):
        self.photos, self.view, self.config = photos, view, config
        self._preprocess: Callable[[Image.Image], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._preprocess is None:
            self._preprocess = tensor_preprocessing(self.config.backbone)
        photo = self.photos[index]
        try:
            image = load_image(photo.path)
        except ImageRejected as error:
            raise TrainingError(f"real photo {photo.path} rejected: {error.reason}") from None
        if self.view:
            rng = _view_rng(self.config.seed, f"real:{photo.id}", self.view)
            if rng.random() < 0.5:
                image = ImageOps.mirror(image)
            image = image.crop(_random_crop_box(image.size, rng, scale=(0.7, 1.0)))
        return self._preprocess(search_crop(image) if self.config.garment_crop else image)


def tensor_preprocessing(backbone: str) -> Callable[[Image.Image], torch.Tensor]:
    """Search's preprocessing for ``backbone``, as a tensor for the training batches."""
    prep = get_backbone_spec(backbone).preprocessing
    return lambda image: torch.from_numpy(preprocess(image, prep))
