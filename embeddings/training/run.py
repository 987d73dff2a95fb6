"""One training run (:func:`train`): the items it may see, the cached front features, the
epochs with a checkpoint after each (so a run can be resumed), and the weights file at the end.
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
from ..finetuned import EmbeddingNet, atomic_torch_save, save_trained
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
from .feature_cache import FrozenFeatures, cache_key, cached_frozen_features
from .objective import Objective, label_tensors, label_vocabularies, lr_schedule, make_optimizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    items: Sequence[TrainItem],
    data_dir: Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    device: str = "auto",
    threads: int | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train on the non-held-out part of ``items`` and write ``data_dir/trained-model.pt``.

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
    data_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = data_dir / CHECKPOINT_FILE
    data_key = cache_key(selected, config)
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
    ).to(torch_device, memory_format=torch.channels_last)
    net.eval()
    started = time.perf_counter()
    packshots, phones = cached_frozen_features(
        net, selected, config, data_dir / CACHE_DIR, data_key, torch_device, show_progress
    )
    cache_seconds = time.perf_counter() - started

    vocabularies = label_vocabularies(selected)
    labels = label_tensors(selected, vocabularies)
    objective = Objective(config.dim, vocabularies, config).to(torch_device)
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
            loss, parts = step_loss(
                net, objective, packshots, phones, labels, batch, views[batch], torch_device
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
            "config": _config_dict(config),
            "history": history,
            "train_seconds": round(train_seconds, 1),
            "cache_seconds": round(cache_seconds, 1),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        objective.label_heads(vocabularies),
    )
    checkpoint_path.unlink(missing_ok=True)
    return TrainResult(info, len(selected), config.epochs, cache_seconds, train_seconds, history)


def step_loss(
    net: EmbeddingNet,
    objective: Objective,
    packshots: FrozenFeatures,
    phones: FrozenFeatures,
    labels: Mapping[str, torch.Tensor],
    batch: torch.Tensor,
    views: torch.Tensor,
    device: torch.device,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of the items ``batch``: packshot vs phone view ``views[i]`` of item ``batch[i]``."""

    def load(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(device, torch.float32, memory_format=torch.channels_last)

    packshot_embeddings = net.tail(load(packshots.features[batch]), load(packshots.tap[batch]))
    photo_embeddings = net.tail(load(phones.features[views, batch]), load(phones.tap[views, batch]))
    batch_labels = {name: values[batch].to(device) for name, values in labels.items()}
    return objective(packshot_embeddings, photo_embeddings, batch_labels)


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
