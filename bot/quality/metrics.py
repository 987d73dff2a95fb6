"""Retrieval quality metrics (shared by ``wardrobe bench`` and ``wardrobe evaluate``).

Each metric is a mean over queries of a per-query score in [0, 1], so the per-query functions
here are what tests pin down exactly and what both commands average.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from embeddings.training.real_photos import ARTICLE_TYPE_GROUPS, CLASS_ARTICLE_TYPES, CLASS_GROUPS
from storage.models import CatalogItem
from storage.vector_index import VectorIndex

# Which catalog fields must agree for a result to count as relevant, per reported metric.
LABELS: dict[str, tuple[str, ...]] = {
    "type": ("article_type",),
    "colour": ("base_colour",),
    "type+colour": ("article_type", "base_colour"),
    "gender": ("gender",),
}


def label_precision(
    query: CatalogItem, results: Sequence[CatalogItem], k: int = 5
) -> dict[str, float]:
    """P@k of one query for every label the query has: relevant results among the first ``k``,
    over ``k`` (a short result list is not rewarded). Labels the query lacks are left out, so
    an unlabelled item never counts against the model."""
    precision = {}
    for name, fields in LABELS.items():
        wanted = tuple(getattr(query, field) for field in fields)
        if None in wanted:
            continue
        same = sum(tuple(getattr(r, f) for f in fields) == wanted for r in results[:k])
        precision[name] = same / k
    return precision


def class_precision(
    photo_class: str, results: Sequence[CatalogItem], k: int = 5
) -> dict[str, float]:
    """P@k of one real photo of a coarse garment class: ``type`` counts the results whose
    article type fits the class (:data:`CLASS_ARTICLE_TYPES`), ``group`` those in its garment
    group (top, bottom, dress, shoes, hat)."""
    fits = CLASS_ARTICLE_TYPES[photo_class]
    group = CLASS_GROUPS[photo_class]
    shown = [result.article_type for result in results[:k]]
    return {
        "type": sum(kind in fits for kind in shown) / k,
        "group": sum(ARTICLE_TYPE_GROUPS.get(kind or "") == group for kind in shown) / k,
    }


def recall_at(item_id: str, result_ids: Sequence[str], k: int) -> float:
    """1.0 when the exact item is among the first ``k`` results, else 0.0."""
    return float(item_id in result_ids[:k])


class Means:
    """Running means of named per-query scores; a name's count is its own queries only."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, scores: Mapping[str, float]) -> None:
        for name, value in scores.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
            self._counts[name] = self._counts.get(name, 0) + 1

    def count(self, name: str) -> int:
        return self._counts.get(name, 0)

    def mean(self, name: str) -> float | None:
        """None when no query had this score (e.g. no item had a colour)."""
        count = self._counts.get(name, 0)
        return self._sums[name] / count if count else None


def leave_one_out_precision(
    index: VectorIndex, items: Mapping[int, CatalogItem], k: int = 5
) -> dict[str, float]:
    """Catalog→catalog P@k: each item queries the index with its own vector, itself excluded.

    An item whose label is unknown does not count for that label.
    """
    means = Means()
    for key, item in items.items():
        vector = index.get(key)
        if vector is None:
            continue
        neighbours = [items[n] for n, _ in index.search(vector, k, exclude={key}) if n in items]
        if neighbours:
            means.add(label_precision(item, neighbours, k))
    return {name: means.mean(name) or 0.0 for name in LABELS}
