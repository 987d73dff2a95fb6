"""Retrieval quality metrics over an indexed catalog (shared by ``wardrobe bench``/``evaluate``)."""

from __future__ import annotations

from collections.abc import Mapping

from storage.models import CatalogItem
from storage.vector_index import VectorIndex

# Which catalog fields must agree for a result to count as relevant, per reported metric.
LABELS: dict[str, tuple[str, ...]] = {
    "type": ("article_type",),
    "colour": ("base_colour",),
    "type+colour": ("article_type", "base_colour"),
    "gender": ("gender",),
}


def leave_one_out_precision(
    index: VectorIndex, items: Mapping[int, CatalogItem], k: int = 5
) -> dict[str, float]:
    """Catalog→catalog P@k: each item queries the index with its own vector, itself excluded.

    An item whose label is unknown does not count for that label.
    """
    hits = {name: 0 for name in LABELS}
    queries = {name: 0 for name in LABELS}
    for key, item in items.items():
        vector = index.get(key)
        if vector is None:
            continue
        neighbours = [items[n] for n, _ in index.search(vector, k, exclude={key}) if n in items]
        for name, fields in LABELS.items():
            wanted = tuple(getattr(item, field) for field in fields)
            if None in wanted or not neighbours:
                continue
            queries[name] += 1
            same = sum(tuple(getattr(n, f) for f in fields) == wanted for n in neighbours)
            hits[name] += same / k
    return {name: hits[name] / queries[name] if queries[name] else 0.0 for name in LABELS}
