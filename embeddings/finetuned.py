"""The embedding network fine-tuned on a shop's catalog, and its self-contained weights file.

:class:`EmbeddingNet` is an EfficientNet-Lite trunk split in two: a frozen front (ImageNet
weights, run once per image) and a trainable tail (the last MBConv blocks and the head conv),
followed by attention pooling and a linear projection to a small L2-normalised vector. The
split lets training cache the front's output and backpropagate through the tail only.

The weights file (written by :func:`embeddings.training.run.train`) holds the whole network plus
metadata, so inference does not depend on where the ImageNet weights came from; the metadata's
``sha256`` covers every tensor and names the model in ``Embedder.model_name``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .backbones import get_backbone_spec
from .networks import build_classifier
from .serving import LabelHeads

FILE_FORMAT = "wardrobe-trained-model/1"
SUPPORTED_BACKBONES = ("efficientnet_lite0",)
COLOUR_TAP_BLOCKS = 5
"""The colour tap reads the trunk after this many MBConv blocks: EfficientNet-Lite0's stage 2
output, 40 channels at stride 8, where ImageNet features still carry colour that the last
stages have mostly discarded."""
TAP_POOL = 4
"""Stride 8 → stride 32: the tap is average-pooled onto the grid of the last feature map."""


class EmbeddingNet(nn.Module):
    """Image batch (N, 3, 224, 224) → unit vectors (N, dim).

    ``unfreeze_blocks`` counts the trailing MBConv blocks that training updates (the head
    conv is always updated); everything before them is :meth:`frozen_features`.
    """

    def __init__(
        self,
        backbone: str,
        *,
        unfreeze_blocks: int,
        dim: int,
        colour_tap: bool,
        pretrained: bool,
    ) -> None:
        super().__init__()
        if backbone not in SUPPORTED_BACKBONES:
            raise ValueError(
                f"Training supports {', '.join(SUPPORTED_BACKBONES)}, not backbone {backbone!r}."
            )
        model = build_classifier(get_backbone_spec(backbone), pretrained)
        blocks = len(model._blocks)
        if not 0 <= unfreeze_blocks <= blocks - COLOUR_TAP_BLOCKS:
            raise ValueError(
                f"unfreeze_blocks must be within 0..{blocks - COLOUR_TAP_BLOCKS}, "
                f"got {unfreeze_blocks}"
            )
        if dim < 2:
            raise ValueError(f"dim must be at least 2, got {dim}")
        model._fc = nn.Identity()  # the ImageNet classifier is not part of the embedding
        self.backbone_name = backbone
        self.backbone = model
        self.split = blocks - unfreeze_blocks
        self.colour_tap = colour_tap
        channels = model._conv_head.out_channels
        self.tap_channels = model._blocks[COLOUR_TAP_BLOCKS - 1]._project_conv.out_channels
        pooled = channels + (self.tap_channels if colour_tap else 0)
        # Zero weights = uniform attention = global average pooling, the baseline's pooling.
        self.attention = nn.Conv2d(channels, 1, kernel_size=1)
        nn.init.zeros_(self.attention.weight)
        nn.init.zeros_(self.attention.bias)
        self.projection = nn.Sequential(nn.Linear(pooled, dim), nn.BatchNorm1d(dim))
        self.dim = dim
        for parameter in self.frozen_parameters():
            parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> EmbeddingNet:
        """Only the projection's BatchNorm learns statistics: the backbone keeps ImageNet's,
        because training batches are small and mix two domains (packshots and phone photos)."""
        super().train(mode)
        self.backbone.eval()
        return self

    def frozen_parameters(self) -> list[nn.Parameter]:
        model = self.backbone
        front = [model._conv_stem, model._bn0, *model._blocks[: self.split]]
        return [p for module in front for p in module.parameters()]

    def trainable_backbone_parameters(self) -> list[nn.Parameter]:
        model = self.backbone
        tail = [*model._blocks[self.split :], model._conv_head, model._bn1]
        return [p for module in tail for p in module.parameters()]

    def frozen_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The front's output and the colour tap (computed even when unused: it is nearly free
        and keeps cached features valid for both variants)."""
        model = self.backbone
        x = tap = model._swish(model._bn0(model._conv_stem(images)))
        for index, block in enumerate(model._blocks[: self.split]):
            x = block(x)
            if index + 1 == COLOUR_TAP_BLOCKS:
                tap = x
        return x, F.avg_pool2d(tap, TAP_POOL)

    def tail(self, features: torch.Tensor, tap: torch.Tensor) -> torch.Tensor:
        """Trainable part: remaining blocks → head conv → attention pooling → projection."""
        model = self.backbone
        x = features
        for block in model._blocks[self.split :]:
            x = block(x)
        x = model._swish(model._bn1(model._conv_head(x)))
        weights = torch.softmax(self.attention(x).flatten(1), dim=1).unsqueeze(1)  # (N, 1, hw)
        pooled = (x.flatten(2) * weights).sum(dim=2)
        if self.colour_tap:
            pooled = torch.cat([pooled, (tap.flatten(2) * weights).sum(dim=2)], dim=1)
        return F.normalize(self.projection(pooled), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tail(*self.frozen_features(images))


@dataclass(frozen=True)
class TrainedModelInfo:
    """What a weights file says about itself; enough to name and size the model unloaded, and
    its label heads (small), which search needs without the network."""

    path: Path
    backbone: str
    dim: int
    sha256: str
    meta: Mapping[str, Any]
    label_heads: LabelHeads | None = None

    @property
    def model_name(self) -> str:
        return f"{self.backbone}+trained@{self.sha256[:8]}"


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Hash of every tensor's name, dtype, shape and bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())  # C order, whatever the memory format
    return digest.hexdigest()


def atomic_torch_save(obj: object, path: Path) -> None:
    """Write to a temporary file beside ``path`` and rename it over, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_trained(
    path: Path,
    net: EmbeddingNet,
    meta: Mapping[str, Any],
    heads: LabelHeads | None = None,
) -> TrainedModelInfo:
    """Write ``net``, ``meta`` (JSON-compatible) and the label ``heads`` atomically; returns
    the file's info."""
    state = {key: value.detach().cpu() for key, value in net.state_dict().items()}
    head_state = {} if heads is None else _head_state(heads)
    digest = state_sha256({**state, **head_state})
    full_meta = {
        **meta,
        "backbone": net.backbone_name,
        "dim": net.dim,
        "unfreeze_blocks": len(net.backbone._blocks) - net.split,
        "colour_tap": net.colour_tap,
        "sha256": digest,
    }
    if heads is not None:
        full_meta["label_heads"] = heads.meta()
    json.dumps(full_meta)  # fail before writing if the metadata would not round-trip
    payload = {"format": FILE_FORMAT, "meta": full_meta, "state_dict": state, "heads": head_state}
    atomic_torch_save(payload, path)
    return TrainedModelInfo(path, net.backbone_name, net.dim, digest, full_meta, heads)


def _head_state(heads: LabelHeads) -> dict[str, torch.Tensor]:
    return {f"heads.{name}": torch.from_numpy(p) for name, p in heads.prototypes.items()}


def _read(path: Path, *, mmap: bool) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"Trained model file {str(path)!r} does not exist or is not a file.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # zip, pickle and safety errors all mean "not our file"
        raise ValueError(f"Cannot read trained model file {str(path)!r}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a trained model written by `wardrobe train` "
            f"(expected format {FILE_FORMAT!r})."
        )
    return payload


def read_trained_info(path: str | Path) -> TrainedModelInfo:
    """Read the metadata and label heads (the network's tensors are memory-mapped, not loaded)."""
    path = Path(path)
    return _info(path, _read(path, mmap=True))


def _info(path: Path, payload: Mapping[str, Any]) -> TrainedModelInfo:
    meta = payload["meta"]
    heads = None
    if described := meta.get("label_heads"):
        stored = payload.get("heads", {})
        prototypes = {
            name: stored[f"heads.{name}"].numpy().astype(np.float32, copy=True)
            for name in described["vocabularies"]
        }
        heads = LabelHeads(described["vocabularies"], prototypes, float(described["scale"]))
    return TrainedModelInfo(path, meta["backbone"], int(meta["dim"]), meta["sha256"], meta, heads)


def load_trained(path: str | Path) -> tuple[EmbeddingNet, TrainedModelInfo]:
    """Build the network from a weights file, verify its hash, return it in eval mode."""
    path = Path(path)
    payload = _read(path, mmap=False)
    meta, state = payload["meta"], payload["state_dict"]
    if state_sha256({**state, **payload.get("heads", {})}) != meta["sha256"]:
        raise ValueError(f"Trained model file {str(path)!r} is damaged (hash mismatch).")
    net = EmbeddingNet(
        meta["backbone"],
        unfreeze_blocks=int(meta["unfreeze_blocks"]),
        dim=int(meta["dim"]),
        colour_tap=bool(meta["colour_tap"]),
        pretrained=False,
    )
    net.load_state_dict(state)
    net.eval()
    net.requires_grad_(False)
    return net, _info(path, payload)
