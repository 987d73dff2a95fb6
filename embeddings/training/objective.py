"""What training minimises and how: the loss (:class:`Objective`), the label classes it
predicts, the optimiser and the learning-rate schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..finetuned import EmbeddingNet, LabelHeads
from .config import LABELS, TYPE_COLOUR, TrainConfig, TrainItem
from .real_photos import RealPhoto


class Objective(nn.Module):
    """CosFace classification per label field on both catalog views, cross-view InfoNCE, and
    for real photos, whose labels are coarse classes, a partial-label loss: the probability
    the classifier gives the set of values the class allows (e.g. every article type a
    photo of "Pants" may be) is raised."""

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
        self.real_weight = config.real_weight

    def label_heads(self, vocabularies: Mapping[str, Sequence[str]]) -> LabelHeads:
        """The learnt classifiers, as search uses them (unit prototypes, CosFace's scale)."""
        prototypes = {
            name: F.normalize(weights.detach().float().cpu(), dim=1).numpy()
            for name, weights in self.classifiers.items()
        }
        return LabelHeads({name: vocabularies[name] for name in prototypes}, prototypes, self.scale)

    def forward(
        self,
        packshots: torch.Tensor,
        photos: torch.Tensor,
        labels: Mapping[str, torch.Tensor],
        real: torch.Tensor | None = None,
        real_allowed: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and its parts; label ``-1`` (unknown) is left out of its field's loss.

        ``real`` are real photos' embeddings and ``real_allowed`` per label a boolean (photos,
        values) mask of what each photo's class allows; a photo allowing nothing (a shop whose
        vocabulary lacks its class) is left out of that label's loss.
        """
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
        weights = {"instance": self.instance_weight, **self.weights}
        for name, allowed in (real_allowed or {}).items():
            if name not in self.classifiers or real is None:
                continue
            rows = allowed.any(dim=1)
            if not rows.any():
                continue
            scores = self.scale * (real[rows] @ F.normalize(self.classifiers[name], dim=1).T)
            permitted = scores.masked_fill(~allowed[rows], float("-inf"))
            parts[f"real {name}"] = (scores.logsumexp(1) - permitted.logsumexp(1)).mean()
            weights[f"real {name}"] = self.real_weight * self.weights[name]
        total = sum(parts[name] * weights[name] for name in parts)
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


def real_label_masks(
    photos: Sequence[RealPhoto], vocabularies: Mapping[str, Sequence[str]]
) -> dict[str, torch.Tensor]:
    """Per label, a boolean (photos, values) mask of the values each photo's class allows:
    the article types it fits, the genders (children's or adults'), and the type and colour
    pairs of those types. Colour alone is not known for real photos."""
    allowed = {
        "article_type": lambda photo, value: value in photo.article_types,
        "gender": lambda photo, value: value in photo.genders,
        TYPE_COLOUR: lambda photo, value: value.split(" / ")[0] in photo.article_types,
    }
    return {
        name: torch.tensor(
            [[fits(photo, value) for value in vocabularies[name]] for photo in photos],
            dtype=torch.bool,
        ).reshape(len(photos), len(vocabularies[name]))
        for name, fits in allowed.items()
        if name in vocabularies
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


def lr_schedule(total_steps: int) -> Callable[[int], float]:
    """Linear warm-up over the first 5 % of steps, then cosine decay to zero."""
    warmup = max(1, total_steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor
