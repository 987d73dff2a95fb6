"""Fine-tune the embedding on the shop's own catalog (``wardrobe train``).

Recipe (see docs/BENCHMARKS.md for how it was chosen): an
:class:`~embeddings.finetuned.EmbeddingNet` (EfficientNet-Lite0, last blocks + head conv
trainable, attention pooling, projection to a unit vector) learns from two views of every
training item — the packshot exactly as the :class:`~embeddings.embedder.Embedder`
preprocesses it at inference, and a simulated phone photo of it
(:func:`embeddings.phone.simulate_phone_photo`, then a random crop and the same
preprocessing) — with

* normalised-softmax classification with an additive cosine margin (CosFace) of both views'
  embeddings by articleType, baseColour and gender, so the *cosine* geometry the index searches
  groups items by type and colour;
* a symmetric InfoNCE loss between each phone view and the packshots of the batch, so a phone
  photo lands next to the packshot of the same item.

The classifiers' prototypes are saved with the weights as label heads: search ranks by them
(``bot.ranking``). Defaults: the last 4 MBConv blocks, 3 phone views per item, 10 epochs; on
the held-out split 1 block (10 or 20 epochs) and 2 views did worse, 6 epochs about the same.

Only items outside the held-out split (:func:`embeddings.splits.is_held_out`) are used.

Speed: the frozen front of the network does not change, so its output for the packshot and
for ``phone_views`` phone photos per item is computed once (the expensive part, cached on disk
under ``train-cache/``) and every epoch only runs the small trainable tail, forward and back.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from . import phone
from .backbones import DEFAULT_BACKBONE
from .embedder import Embedder
from .features import view_and_colour
from .finetuned import (
    EmbeddingNet,
    LabelHeads,
    TrainedModelInfo,
    atomic_torch_save,
    save_trained,
)
from .images import ImageRejected, load_image
from .splits import DEFAULT_HELD_OUT_FRACTION, DEFAULT_SALT, is_held_out

LABEL_FIELDS = ("article_type", "base_colour", "gender")
"""The catalog fields training reads."""
TYPE_COLOUR = "article_type+base_colour"
LABELS = (*LABEL_FIELDS, TYPE_COLOUR)
"""What the embedding can be classified by: each field, and type and colour together (the
pair is what "similar" means to a shopper: neighbours should agree on both, not either)."""
TRAINED_MODEL_FILE = "trained-model.pt"
CHECKPOINT_FILE = "trained-model.checkpoint.pt"
CACHE_DIR = "train-cache"
_VIEW_VERSION = "2"
"""Bump when the way views are made changes, so stale feature caches are not reused. Edits to
the phone-photo simulator itself do not invalidate a cache on purpose (its views are still
phone photos, and recomputing them is the expensive part): delete ``train-cache/`` for that."""


class TrainingError(ValueError):
    """Training cannot start or continue (bad input, nothing to train on, checkpoint mismatch)."""


@dataclass(frozen=True)
class TrainItem:
    """One catalog item as training sees it: its image and the labels it is classified by."""

    id: str
    image_path: Path
    labels: Mapping[str, str | None]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (a checkpoint only resumes the same)."""

    backbone: str = DEFAULT_BACKBONE
    epochs: int = 10
    seed: int = 0
    batch_size: int = 64
    unfreeze_blocks: int = 4
    dim: int = 256
    colour_tap: bool = True
    garment_crop: bool = True
    """Crop both views to the garment first, as search does with ``GARMENT_CROP`` on."""
    phone_views: int = 3
    lr: float = 2e-3
    backbone_lr: float = 2e-4
    weight_decay: float = 1e-4
    cosface_scale: float = 20.0
    cosface_margin: float = 0.2
    temperature: float = 0.07
    label_weights: tuple[tuple[str, float], ...] = (
        ("article_type", 1.0),
        ("base_colour", 1.0),
        ("gender", 0.3),
    )
    instance_weight: float = 1.0
    held_out_fraction: float = DEFAULT_HELD_OUT_FRACTION
    split_salt: str = DEFAULT_SALT
    max_steps_per_epoch: int | None = None
    """Cut epochs short (smoke tests); None = every training item once per epoch."""

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "dim", "phone_views")
        for name in positive:
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise TrainingError("batch_size must be at least 2 (InfoNCE needs negatives)")
        unknown = {name for name, _ in self.label_weights} - set(LABELS)
        if unknown:
            raise TrainingError(f"unknown labels {sorted(unknown)}; known: {LABELS}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise TrainingError("max_steps_per_epoch must be at least 1")


@dataclass
class TrainResult:
    info: TrainedModelInfo
    train_items: int
    epochs: int
    cache_seconds: float
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    """Mean losses per epoch (``total`` and one per loss term)."""


def training_items(
    items: Sequence[TrainItem],
    fraction: float = DEFAULT_HELD_OUT_FRACTION,
    salt: str = DEFAULT_SALT,
) -> list[TrainItem]:
    """The items training may see: every held-out one is dropped, duplicates keep the last."""
    unique = {item.id: item for item in items}
    return [item for item in unique.values() if not is_held_out(item.id, fraction, salt)]


def resolve_device(device: str) -> torch.device:
    """``auto`` = the GPU when torch sees one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- views ---------------------------------------------------------------------------------------


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


# --- frozen-front feature cache -------------------------------------------------------------------


@dataclass
class _Features:
    features: torch.Tensor
    """float16 (N, C, h, w) for packshots, (views, N, C, h, w) for phone photos."""
    tap: torch.Tensor
    """The colour tap, shaped alike."""


def _cache_key(items: Sequence[TrainItem], config: TrainConfig) -> str:
    digest = hashlib.sha256()
    described = {
        "view_version": _VIEW_VERSION,
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


class _Views(torch.utils.data.Dataset):
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
            self._preprocess = Embedder(self.config.backbone).preprocess
        item, crop = self.items[index], self.config.garment_crop
        packshot = _load_packshot(item)
        if self.view is None:
            return self._preprocess(search_crop(packshot) if crop else packshot)
        rng = _view_rng(self.config.seed, item.id, self.view)
        others = rng.sample(range(len(self.items)), k=min(len(self.items), rng.randint(0, 2)))
        distractors = [_load_packshot(self.items[i]) for i in others if i != index]
        return phone_view(packshot, rng, self._preprocess, distractors, crop=crop)


def _compute_view_features(
    net: EmbeddingNet,
    views: _Views,
    device: torch.device,
    bar: tqdm,
    batch_size: int = 16,
) -> _Features:
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
    return _Features(
        torch.cat([f for f, _ in chunks]).contiguous(),
        torch.cat([t for _, t in chunks]).contiguous(),
    )


def _feature_cache(
    net: EmbeddingNet,
    items: Sequence[TrainItem],
    config: TrainConfig,
    cache_dir: Path,
    key: str,
    device: torch.device,
    show_progress: bool,
) -> tuple[_Features, _Features]:
    """Packshot and phone-view features, read from ``cache_dir`` or computed and saved there
    view by view (an interrupted run keeps the views it finished)."""
    views: list[int | None] = [None, *range(config.phone_views)]
    paths = [cache_dir / f"{key}-{'packshot' if v is None else f'phone{v}'}.pt" for v in views]
    missing = sum(not path.is_file() for path in paths)
    bar = tqdm(
        total=missing * len(items),
        desc="caching frozen features",
        unit="img",
        disable=not show_progress,
    )
    loaded: list[_Features] = []
    with bar:
        for view, path in zip(views, paths, strict=True):
            if path.is_file():
                stored = torch.load(path, map_location="cpu", weights_only=True)
                loaded.append(_Features(stored["features"], stored["tap"]))
                continue
            computed = _compute_view_features(net, _Views(items, view, config), device, bar)
            atomic_torch_save({"features": computed.features, "tap": computed.tap}, path)
            loaded.append(computed)
    phones = _Features(
        torch.stack([view.features for view in loaded[1:]]),
        torch.stack([view.tap for view in loaded[1:]]),
    )
    return loaded[0], phones


# --- objective ----------------------------------------------------------------------------------


class Objective(nn.Module):
    """CosFace classification per label field on both views + cross-view InfoNCE."""

    def __init__(self, dim: int, vocabularies: Mapping[str, Sequence[str]], config: TrainConfig):
        super().__init__()
        self.weights = dict(config.label_weights)
        self.classifiers = nn.ParameterDict(
            {
                name: nn.Parameter(torch.randn(len(vocabularies[name]), dim) * 0.01)
                for name in self.weights
                if len(vocabularies[name]) > 1
            }
        )
        self.scale = config.cosface_scale
        self.margin = config.cosface_margin
        self.temperature = config.temperature
        self.instance_weight = config.instance_weight

    def label_heads(self, vocabularies: Mapping[str, Sequence[str]]) -> LabelHeads:
        """The learnt classifiers, as search uses them (unit prototypes, CosFace's scale)."""
        prototypes = {
            name: F.normalize(weights.detach().float().cpu(), dim=1).numpy()
            for name, weights in self.classifiers.items()
        }
        return LabelHeads({name: vocabularies[name] for name in prototypes}, prototypes, self.scale)

    def forward(
        self, packshots: torch.Tensor, photos: torch.Tensor, labels: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and its parts; label ``-1`` (unknown) is left out of its field's loss."""
        both = torch.cat([packshots, photos])
        parts: dict[str, torch.Tensor] = {}
        for name, classifier in self.classifiers.items():
            target = labels[name].repeat(2)
            known = target >= 0
            if not known.any():
                continue
            cosine = both[known] @ F.normalize(classifier, dim=1).T
            margin = F.one_hot(target[known], cosine.shape[1]) * self.margin
            parts[name] = F.cross_entropy(self.scale * (cosine - margin), target[known])
        logits = photos @ packshots.T / self.temperature
        same = torch.arange(len(photos), device=photos.device)
        parts["instance"] = (F.cross_entropy(logits, same) + F.cross_entropy(logits.T, same)) / 2
        total = sum(
            parts[name] * (self.instance_weight if name == "instance" else self.weights[name])
            for name in parts
        )
        assert isinstance(total, torch.Tensor)
        values = {"total": total.item(), **{k: v.item() for k, v in parts.items()}}
        return total, values


def _label(item: TrainItem, name: str) -> str | None:
    if name == TYPE_COLOUR:
        parts = [item.labels.get(field) for field in ("article_type", "base_colour")]
        return " / ".join(parts) if all(parts) else None  # type: ignore[arg-type]
    return item.labels.get(name) or None


def label_vocabularies(items: Sequence[TrainItem]) -> dict[str, list[str]]:
    """Sorted distinct values per label among ``items`` (unknown values left out)."""
    values = {name: {_label(item, name) for item in items} - {None} for name in LABELS}
    return {name: sorted(found) for name, found in values.items()}  # type: ignore[type-var]


def label_tensors(
    items: Sequence[TrainItem], vocabularies: Mapping[str, Sequence[str]]
) -> dict[str, torch.Tensor]:
    """Each item's class index per label; -1 where the item's value is unknown."""
    index = {name: {v: i for i, v in enumerate(vocab)} for name, vocab in vocabularies.items()}
    return {
        name: torch.tensor([index[name].get(_label(item, name) or "", -1) for item in items])
        for name in LABELS
    }


def make_optimizer(
    net: EmbeddingNet, objective: Objective, config: TrainConfig
) -> torch.optim.Optimizer:
    head = [*net.attention.parameters(), *net.projection.parameters(), *objective.parameters()]
    return torch.optim.AdamW(
        [
            {"params": net.trainable_backbone_parameters(), "lr": config.backbone_lr},
            {"params": head, "lr": config.lr},
        ],
        weight_decay=config.weight_decay,
    )


def _schedule(total_steps: int) -> Callable[[int], float]:
    """Linear warm-up over the first 5 % of steps, then cosine decay to zero."""
    warmup = max(1, total_steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


# --- the training run ---------------------------------------------------------------------------


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
    data_key = _cache_key(selected, config)
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
    packshots, phones = _feature_cache(
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
        optimizer, _schedule(steps_per_epoch * config.epochs)
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
    packshots: _Features,
    phones: _Features,
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
