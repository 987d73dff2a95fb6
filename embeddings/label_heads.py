"""The label classifiers a trained model carries beside its embedding; free of torch, because
search ranks with them in a process that may serve with ONNX Runtime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LabelHeads:
    """The classifiers training learnt next to the embedding: one unit prototype per label
    value (article type, colour, …) in the embedding space.

    A vector's cosine to the prototypes, times ``scale`` and soft-maxed, is the model's belief
    about its labels; search uses it to prefer catalog items whose own labels agree.
    """

    vocabularies: Mapping[str, Sequence[str]]
    prototypes: Mapping[str, np.ndarray]
    """float32 (values, dim) per label, rows of norm 1, in vocabulary order."""
    scale: float

    def probabilities(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """(n, values) per label for unit ``vectors`` (n, dim); rows sum to 1."""
        result = {}
        for name, prototypes in self.prototypes.items():
            logits = self.scale * (np.asarray(vectors, dtype=np.float32) @ prototypes.T)
            logits -= logits.max(axis=1, keepdims=True)
            weights = np.exp(logits)
            result[name] = weights / weights.sum(axis=1, keepdims=True)
        return result

    def meta(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "vocabularies": {name: list(self.vocabularies[name]) for name in self.prototypes},
        }
