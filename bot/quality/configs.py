"""Configurations to compare: a name plus Settings overrides, on top of the baseline or of the
settings as configured."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.settings import Settings

# Settings that make "a plain frozen ImageNet backbone and nothing else": every feature that
# changes what a query returns is switched off. Fields this checkout's Settings lacks are
# skipped (the feature isn't there to switch off).
BASELINE: dict[str, object] = {
    "embedding_backbone": "efficientnet_lite0",
    "embedding_weights": None,
    "embedding_trained": "none",  # no `wardrobe train` weights
    "garment_crop": False,  # embed the whole photo, not the localised garment
    "colour_weight": 0.0,  # rank by CNN similarity alone
    "label_weight": 0.0,  # no label heads (the frozen model has none anyway)
    "diversity": 0.0,  # no MMR
    "near_duplicate_similarity": 1.0,  # defer no near-duplicates
}


@dataclass(frozen=True)
class Configuration:
    """A named set of Settings overrides (field names, values as given or typed)."""

    name: str
    overrides: Mapping[str, object] = field(default_factory=dict)


def settings_keys() -> dict[str, str]:
    """Lower-cased field names and env aliases → field name, read from Settings now, so
    settings added later can be overridden without touching this module."""
    keys = {}
    for name, info in Settings.model_fields.items():
        keys[name.lower()] = name
        if info.alias:
            keys[info.alias.lower()] = name
    return keys


def configure(settings: Settings, configuration: Configuration, data_dir: Path) -> Settings:
    """``settings`` with the configuration's overrides, validated, serving from ``data_dir``.

    A name starting with ``baseline`` starts from :data:`BASELINE` (so ``baseline+crop`` can
    show what one feature adds), any other from ``settings``. Settings resolved relative to
    the data directory (trained weights found there) are pinned first, so moving to the
    scratch directory doesn't silently drop them; so is the folder of ONNX exports, so that a
    model is not exported again for every scratch directory.
    """
    values = settings.model_dump()
    trained = settings.trained_model_path()
    values["embedding_trained"] = str(trained) if trained is not None else "none"
    values["embedding_cache_dir"] = settings.model_cache_dir
    base = BASELINE if configuration.name.startswith("baseline") else {}
    values.update({key: value for key, value in base.items() if key in values})
    values.update(configuration.overrides)
    values["data_dir"] = data_dir
    return Settings.model_validate(values)
