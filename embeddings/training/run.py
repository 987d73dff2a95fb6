"""One training run (:func:`train`): the items and real photos it may see, the cached front
features, the epochs with a checkpoint after each (so a run can be resumed), and the weights
file at the end.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..embedder import resolve_device
from ..finetuned import (
    EmbeddingNet,
    LabelHeads,
    TrainedModelInfo,
    atomic_torch_save,
    load_trained,
    save_trained,
)
from .config import (
    CACHE_DIR,
    CHECKPOINT_FILE,
    TRAINED_MODEL_FILE,
    TrainConfig,
    TrainingError,
    TrainItem,
    TrainResult,
    training_items,
)
from .feature_cache import (
    FrozenFeatures,
    TrainingFeatures,
    cache_key,
    cached_frozen_features,
    real_photos_key,
)
from .objective import (
    Objective,
    label_tensors,
    label_vocabularies,
    lr_schedule,
    make_optimizer,
    real_label_masks,
)
from .real_photos import RealPhoto
from .splits import is_held_out


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    items: Sequence[TrainItem],
    data_dir: Path,
    config: TrainConfig,
    *,
    real_photos: Sequence[RealPhoto] = (),
    start_from: Path | None = None,
    resume: bool = False,
    device: str = "auto",
    threads: int | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train on the non-held-out part of ``items`` and of ``real_photos`` and write
    ``data_dir/trained-model.pt``.

    Real photos always leave out the default held-out split (evaluation measures on it),
    whatever ``config.held_out_fraction`` says of the catalog. ``start_from`` is a weights file
    of the same architecture (e.g. the shipped model) to continue from instead of ImageNet.
    A checkpoint (``trained-model.checkpoint.pt``) is written after every epoch and removed at
    the end; ``resume=True`` continues from it and refuses one made with another config/data.
    ``threads`` sets torch's CPU threads (one is faster on a machine busy with other work).
    """
    selected = sorted(
        training_items(items, config.held_out_fraction, config.split_salt), key=lambda i: i.id
    )
    if len(selected) < 2:
        raise TrainingError(
            f"{len(selected)} training items after leaving out the held-out split "
            f"({len(items)} given): training needs at least 2"
        )
    for item in selected:
        if not item.image_path.is_file():
            raise TrainingError(f"item {item.id}: image {item.image_path} not found")
    photos = sorted(
        {photo.path: photo for photo in real_photos if not is_held_out(photo.id)}.values(),
        key=lambda photo: photo.id,
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = data_dir / CHECKPOINT_FILE
    start = _starting_point(start_from, config)
    data_key = "+".join(
        [
            cache_key(selected, config),
            *([real_photos_key(photos, config)] if photos else []),
            *([f"from:{start[1].sha256}"] if start else []),
        ]
    )
    checkpoint = _read_checkpoint(checkpoint_path, config, data_key) if resume else None

    if threads is not None:
        torch.set_num_threads(threads)
    seed_everything(config.seed)
    torch_device = resolve_device(device)
    net = EmbeddingNet(
        config.backbone,
        unfreeze_blocks=config.unfreeze_blocks,
        dim=config.dim,
        colour_tap=config.colour_tap,
        pretrained=True,
    )
    if start is not None:
        net.load_state_dict(start[0].state_dict())
    net = net.to(torch_device, memory_format=torch.channels_last)
    net.eval()
    started = time.perf_counter()
    features = cached_frozen_features(
        net, selected, photos, config, data_dir / CACHE_DIR, torch_device, show_progress
    )
    cache_seconds = time.perf_counter() - started

    vocabularies = label_vocabularies(selected)
    labels = label_tensors(selected, vocabularies)
    real_allowed = real_label_masks(photos, vocabularies) if photos else {}
    objective = Objective(config.dim, vocabularies, config)
    if start is not None and start[1].label_heads is not None:
        _start_classifiers(objective, vocabularies, start[1].label_heads)
    objective = objective.to(torch_device)
    optimizer = make_optimizer(net, objective, config)
    steps_per_epoch = math.ceil(len(selected) / config.batch_size)
    if config.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_schedule(steps_per_epoch * config.epochs)
    )
    history: list[dict[str, float]] = []
    first_epoch, previous_seconds = 0, 0.0
    if checkpoint is not None:
        net.load_state_dict(checkpoint["model"])
        objective.load_state_dict(checkpoint["objective"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        history = list(checkpoint["history"])
        first_epoch, previous_seconds = int(checkpoint["epoch"]), float(checkpoint["seconds"])
        log(f"resuming after epoch {first_epoch} of {config.epochs}")

    started = time.perf_counter()
    for epoch in range(first_epoch, config.epochs):
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        order = torch.randperm(len(selected), generator=generator)
        views = torch.randint(0, config.phone_views, (len(selected),), generator=generator)
        real_order, real_views = _real_schedule(
            len(photos), steps_per_epoch * config.real_batch_size, config.real_views, generator
        )
        net.train()
        objective.train()
        sums: dict[str, float] = {}
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="step",
            disable=not show_progress,
        )
        for step in bar:
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            if len(batch) < 2:  # a lone leftover item has no negatives for InfoNCE
                continue
            real_batch = real_order[step * config.real_batch_size :][: config.real_batch_size]
            loss, parts = step_loss(
                net,
                objective,
                features,
                labels,
                batch,
                views[batch],
                torch_device,
                real_allowed=real_allowed,
                real_batch=real_batch,
                real_views=real_views[step * config.real_batch_size :][: len(real_batch)],
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value
            bar.set_postfix(loss=f"{parts['total']:.3f}")
        history.append({name: value / steps_per_epoch for name, value in sums.items()})
        elapsed = previous_seconds + time.perf_counter() - started
        atomic_torch_save(
            {
                "config": _config_dict(config),
                "data_key": data_key,
                "epoch": epoch + 1,
                "model": net.state_dict(),
                "objective": objective.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "history": history,
                "seconds": elapsed,
            },
            checkpoint_path,
        )
        log(f"epoch {epoch + 1}/{config.epochs}: loss {history[-1]['total']:.4f}")

    train_seconds = previous_seconds + time.perf_counter() - started
    net.eval()
    info = save_trained(
        data_dir / TRAINED_MODEL_FILE,
        net,
        {
            "backbone": config.backbone,
            "labels": vocabularies,
            "held_out_fraction": config.held_out_fraction,
            "split_salt": config.split_salt,
            "garment_crop": config.garment_crop,
            "seed": config.seed,
            "epochs": config.epochs,
            "train_items": len(selected),
            "real_photos": len(photos),
            "started_from": None if start is None else start[1].model_name,
            "config": _config_dict(config),
            "history": history,
            "train_seconds": round(train_seconds, 1),
            "cache_seconds": round(cache_seconds, 1),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        objective.label_heads(vocabularies),
    )
    checkpoint_path.unlink(missing_ok=True)
    return TrainResult(
        info, len(selected), len(photos), config.epochs, cache_seconds, train_seconds, history
    )


def _starting_point(
    path: Path | None, config: TrainConfig
) -> tuple[EmbeddingNet, TrainedModelInfo] | None:
    """The network to continue from, checked to have the configured architecture."""
    if path is None:
        return None
    try:
        net, info = load_trained(path)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    differs = config.architecture_differences(info.meta)
    if differs:
        details = ", ".join(
            f"{key} {old!r} there, {new!r} here" for key, (old, new) in differs.items()
        )
        raise TrainingError(f"cannot start from {path}: another architecture ({details})")
    return net, info


def _start_classifiers(
    objective: Objective, vocabularies: Mapping[str, Sequence[str]], heads: LabelHeads
) -> None:
    """Classifier rows of label values the starting model knew begin at its prototypes."""
    with torch.no_grad():
        for name, classifier in objective.classifiers.items():
            known = {value: row for row, value in enumerate(heads.vocabularies.get(name, ()))}
            for row, value in enumerate(vocabularies[name]):
                if value in known:
                    prototype = torch.from_numpy(heads.prototypes[name][known[value]])
                    classifier[row] = prototype * classifier[row].norm().clamp_min(1e-3)


def _real_schedule(
    photos: int, needed: int, views: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which real photo, and which of its views, each step's real slots take this epoch:
    shuffled passes over the photos, as many as the epoch needs."""
    if photos == 0:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    passes = math.ceil(needed / photos)
    order = torch.cat([torch.randperm(photos, generator=generator) for _ in range(passes)])
    return order[:needed], torch.randint(0, views, (needed,), generator=generator)


def step_loss(
    net: EmbeddingNet,
    objective: Objective,
    features: TrainingFeatures,
    labels: Mapping[str, torch.Tensor],
    batch: torch.Tensor,
    views: torch.Tensor,
    device: torch.device,
    *,
    real_allowed: Mapping[str, torch.Tensor] | None = None,
    real_batch: torch.Tensor | None = None,
    real_views: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of the items ``batch`` (packshot vs phone view ``views[i]`` of item ``batch[i]``)
    and of the real photos ``real_batch`` (view ``real_views[i]``)."""

    def embed(frozen: FrozenFeatures, *index: torch.Tensor) -> torch.Tensor:
        def load(tensor: torch.Tensor) -> torch.Tensor:
            return tensor[index].to(device, torch.float32, memory_format=torch.channels_last)

        return net.tail(load(frozen.features), load(frozen.tap))

    packshot_embeddings = embed(features.packshots, batch)
    photo_embeddings = embed(features.phones, views, batch)
    batch_labels = {name: values[batch].to(device) for name, values in labels.items()}
    real, allowed = None, None
    if features.real is not None and real_batch is not None and len(real_batch):
        real = embed(features.real, real_views, real_batch)
        allowed = {name: mask[real_batch].to(device) for name, mask in (real_allowed or {}).items()}
    return objective(packshot_embeddings, photo_embeddings, batch_labels, real, allowed)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    """JSON-compatible form (tuples become lists), as stored in checkpoints and metadata."""
    return json.loads(json.dumps(asdict(config)))


def _read_checkpoint(path: Path, config: TrainConfig, data_key: str) -> dict[str, Any]:
    if not path.is_file():
        raise TrainingError(f"nothing to resume: no checkpoint at {path} (run without --resume)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip/pickle errors: a damaged or foreign file
        raise TrainingError(f"cannot read checkpoint {path}: {error}") from error
    stored = checkpoint.get("config", {})
    wanted = _config_dict(config)
    changed = sorted(k for k in wanted.keys() | stored.keys() if wanted.get(k) != stored.get(k))
    if changed:
        details = ", ".join(f"{k}: {stored.get(k)!r} → {wanted.get(k)!r}" for k in changed)
        raise TrainingError(f"the checkpoint {path} was made with other settings ({details})")
    if checkpoint.get("data_key") != data_key:
        raise TrainingError(
            f"the checkpoint {path} was made from other training images (the catalog changed)"
        )
    return checkpoint
