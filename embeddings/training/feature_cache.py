"""The frozen front of the network, run once per image and view and kept on disk.

The front never changes during training and is the expensive part, so its output for the
packshot and for ``phone_views`` phone photos per item, and for ``real_views`` views of each
real photo, is computed once (cached under ``train-cache/``, keyed by the images and the view
settings) and every epoch only runs the small trainable tail, forward and back.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..finetuned import EmbeddingNet, atomic_torch_save
from .config import TrainConfig, TrainItem
from .real_photos import RealPhoto
from .views import VIEW_VERSION, RealPhotoViews, ViewDataset


@dataclass
class FrozenFeatures:
    """The frozen front's output for every item, in item order."""

    features: torch.Tensor
    """float16 (N, C, h, w) for packshots, (views, N, C, h, w) for phone photos."""
    tap: torch.Tensor
    """The colour tap, shaped alike."""


def real_photos_key(photos: Sequence[RealPhoto], config: TrainConfig) -> str:
    """Names the cached real-photo views: it changes with the photos, their classes and the
    settings that change the views or the front."""
    digest = hashlib.sha256()
    described = {
        "view_version": VIEW_VERSION,
        "backbone": config.backbone,
        "unfreeze_blocks": config.unfreeze_blocks,
        "garment_crop": config.garment_crop,
        "seed": config.seed,
        "real_views": config.real_views,
    }
    digest.update(json.dumps(described, sort_keys=True).encode())
    for photo in photos:
        digest.update(f"{photo.id}\0{photo.label}\0{photo.kids}\0".encode())
        digest.update(hashlib.sha256(photo.path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def cache_key(items: Sequence[TrainItem], config: TrainConfig) -> str:
    """Names the cached features (and ties a checkpoint to its data): it changes with the
    items' images and with the settings that change the views or the front."""
    digest = hashlib.sha256()
    described = {
        "view_version": VIEW_VERSION,
        "backbone": config.backbone,
        "unfreeze_blocks": config.unfreeze_blocks,
        "garment_crop": config.garment_crop,
        "seed": config.seed,
    }
    digest.update(json.dumps(described, sort_keys=True).encode())
    for item in items:
        digest.update(f"{item.id}\0".encode())
        digest.update(hashlib.sha256(item.image_path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _compute_view_features(
    net: EmbeddingNet,
    views: torch.utils.data.Dataset,
    device: torch.device,
    bar: tqdm,
    batch_size: int = 16,
) -> FrozenFeatures:
    """Frozen-front output of ``views``, in item order."""
    # One worker on a CPU (torch's threads and the worker share the cores); more feed a GPU.
    workers = 1 if device.type == "cpu" else min(8, os.cpu_count() or 1)
    # Its own generator: drawing worker seeds from the global one would make the rest of the
    # run depend on whether the cache was computed or read.
    loader = torch.utils.data.DataLoader(
        views, batch_size=batch_size, num_workers=workers, generator=torch.Generator()
    )
    chunks: list[tuple[torch.Tensor, torch.Tensor]] = []
    for batch in loader:
        with torch.inference_mode():
            features, tap = net.frozen_features(batch.to(device, memory_format=torch.channels_last))
        chunks.append((features.half().cpu(), tap.half().cpu()))
        bar.update(len(batch))
    return FrozenFeatures(
        torch.cat([f for f, _ in chunks]).contiguous(),
        torch.cat([t for _, t in chunks]).contiguous(),
    )


@dataclass
class TrainingFeatures:
    packshots: FrozenFeatures
    phones: FrozenFeatures
    real: FrozenFeatures | None
    """Views of the real photos, (views, N, …); None without real photos."""


def cached_frozen_features(
    net: EmbeddingNet,
    items: Sequence[TrainItem],
    photos: Sequence[RealPhoto],
    config: TrainConfig,
    cache_dir: Path,
    device: torch.device,
    show_progress: bool,
) -> TrainingFeatures:
    """Packshot, phone-view and real-photo features, read from ``cache_dir`` or computed and
    saved there view by view (an interrupted run keeps the views it finished). Catalog and
    real-photo views have keys of their own, so adding photos does not recompute the
    catalog's."""
    catalog_key = cache_key(items, config)
    jobs: list[tuple[Path, torch.utils.data.Dataset]] = [
        (cache_dir / f"{catalog_key}-packshot.pt", ViewDataset(items, None, config)),
        *(
            (cache_dir / f"{catalog_key}-phone{view}.pt", ViewDataset(items, view, config))
            for view in range(config.phone_views)
        ),
    ]
    if photos:
        photos_key = real_photos_key(photos, config)
        jobs += [
            (cache_dir / f"{photos_key}-real{view}.pt", RealPhotoViews(photos, view, config))
            for view in range(config.real_views)
        ]
    missing = sum(len(views) for path, views in jobs if not path.is_file())
    bar = tqdm(total=missing, desc="caching frozen features", unit="img", disable=not show_progress)
    loaded: list[FrozenFeatures] = []
    with bar:
        for path, views in jobs:
            if path.is_file():
                stored = torch.load(path, map_location="cpu", weights_only=True)
                loaded.append(FrozenFeatures(stored["features"], stored["tap"]))
                continue
            computed = _compute_view_features(net, views, device, bar)
            atomic_torch_save({"features": computed.features, "tap": computed.tap}, path)
            loaded.append(computed)
    phones = 1 + config.phone_views
    return TrainingFeatures(
        loaded[0], _stacked(loaded[1:phones]), _stacked(loaded[phones:]) if photos else None
    )


def _stacked(views: Sequence[FrozenFeatures]) -> FrozenFeatures:
    return FrozenFeatures(
        torch.stack([view.features for view in views]), torch.stack([view.tap for view in views])
    )
