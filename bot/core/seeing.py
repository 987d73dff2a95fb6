"""What a search saw in a shopper's photo, and whether the catalog has anything close to it.

The trained model's label heads name the garment type and colour ("Looks like: blue jeans")
when they are confident; refinements need the catalog's own words, so where the model's label
is not one the catalog holds, the page's most common label stands in. How the confidence
cut-offs and the close-match threshold were measured: docs/BENCHMARKS.md ("Shopper
controls").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from bot.core.filters import Seen, most_common
from bot.core.ranking import MIN_KNOWN_LABELS
from storage.models import CatalogItem, Facets

if TYPE_CHECKING:
    from embeddings import LabelHeads

CLOSE_SIMILARITY = 0.5
"""Default CNN similarity of a first page's best match under which the bot says nothing in
the catalog looks very close (``CLOSE_MATCH_SIMILARITY``)."""
LOOKS_LIKE_CONFIDENCE = {"article_type": 0.6, "base_colour": 0.8}
"""The label heads' probability from which the bot says what it saw."""


def seen_in_photo(
    heads: LabelHeads | None, vector: np.ndarray, facets: Facets, page: Sequence[CatalogItem]
) -> Seen:
    """What the model saw in the photo whose vector is ``vector``, with the catalog's words
    for refinements."""
    looks = _confident_labels(heads, vector) if heads is not None else {}
    kind = looks.get("article_type")
    colour = looks.get("base_colour")
    return Seen(
        article_type=kind if kind in facets.article_types else _page_label(page, "article_type"),
        base_colour=colour if colour in facets.base_colours else _page_label(page, "base_colour"),
        looks_like_type=kind,
        looks_like_colour=colour,
    )


def catalog_lacks(heads: LabelHeads | None, seen: Seen, facets: Facets) -> bool:
    """Whether the model is confident the photo shows a garment type the catalog holds none
    of. Only judged where the catalog speaks the model's language (most of its types are
    ones the model learnt): a shop's own wording says nothing about what it lacks."""
    kind = seen.looks_like_type
    if heads is None or kind is None or not facets.article_types:
        return False
    vocabulary = set(heads.vocabularies.get("article_type", ()))
    known = len(facets.article_types & vocabulary) / len(facets.article_types)
    return known >= MIN_KNOWN_LABELS and kind not in facets.article_types


def _confident_labels(heads: LabelHeads, vector: np.ndarray) -> dict[str, str]:
    probabilities = heads.probabilities(np.asarray(vector, dtype=np.float32)[None, :])
    found = {}
    for name, cut_off in LOOKS_LIKE_CONFIDENCE.items():
        if name not in probabilities:
            continue
        row = probabilities[name][0]
        best = int(np.argmax(row))
        if row[best] >= cut_off:
            found[name] = heads.vocabularies[name][best]
    return found


def _page_label(page: Sequence[CatalogItem], name: str) -> str | None:
    return most_common(getattr(item, name) for item in page)
