"""From a nearest-neighbour pool to a page: colour-aware relevance, then variety.

The HNSW index ranks by CNN similarity only, which knows the garment type well and its colour
poorly, and happily returns five photos of the same product. So the recommender asks it for a
pool of candidates and this module

1. scores each by ``cnn_similarity + colour_weight * colour_similarity`` (relevance);
2. picks the page greedily by maximal marginal relevance (MMR): relevance minus ``diversity``
   times the candidate's highest CNN similarity to anything already picked or shown before;
3. defers near-duplicates, candidates whose CNN similarity to something picked or shown is
   above ``near_duplicate``: they only fill a page that would otherwise stay short.

Items shown earlier in a search count as picked, so page n+1 continues the same greedy order
page n stopped at, after a restart too: the shown keys are stored, and the vectors and colours
are the catalog's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankingConfig:
    """How a page is chosen; see the module docstring. The defaults were tuned on the train
    split of fashion-dev with the frozen ImageNet backbone (docs/BENCHMARKS.md): a pool of 50
    is as good as 100; colour weight 0.25 is the largest that costs about one point of type
    P@5, for +4 points of type+colour P@5 and +2.4 of phone exact R@5 (0.5 bought +1.4 more
    type+colour for another point of type, and let solid colours outrank the garment type);
    MMR cost 1-3 points of phone type P@5 for little less redundancy, so it is off; 0.95 keeps
    near-identical photos (a pair on 3.6 % of pages) apart for -0.1 point. A fine-tuned model
    spreads similarities differently: re-check then.
    """

    pool: int = 50
    colour_weight: float = 0.25
    diversity: float = 0.0
    near_duplicate: float = 0.95


@dataclass(frozen=True)
class Candidate:
    key: int
    similarity: float
    """Cosine similarity of the candidate's CNN vector to the query's."""
    vector: np.ndarray
    """The candidate's unit CNN vector."""
    colour: np.ndarray | None
    """Its colour descriptor; None when the catalog has none for it yet."""


def relevance(
    candidates: Sequence[Candidate], query_colour: np.ndarray | None, colour_weight: float
) -> np.ndarray:
    """``(cnn + colour_weight * colour) / (1 + colour_weight)`` per candidate, in [-1, 1].

    Without a query colour the colour term drops out; a candidate without a colour gets the
    pool's mean colour similarity, so it is neither favoured nor buried.
    """
    cnn = np.array([candidate.similarity for candidate in candidates], dtype=np.float64)
    if query_colour is None or colour_weight == 0 or not candidates:
        return cnn
    known = np.array([candidate.colour is not None for candidate in candidates])
    colour = np.zeros(len(candidates))
    if known.any():
        colours = np.stack([c.colour for c in candidates if c.colour is not None])
        colour[known] = colours @ np.asarray(query_colour, dtype=np.float32)
        colour[~known] = colour[known].mean()
    return (cnn + colour_weight * colour) / (1 + colour_weight)


def select_page(
    candidates: Sequence[Candidate],
    scores: np.ndarray,
    count: int,
    *,
    shown: Sequence[np.ndarray] = (),
    diversity: float = 0.0,
    near_duplicate: float = 1.0,
) -> list[int]:
    """Indices into ``candidates`` of the next page, best first by ``scores``.

    ``shown`` are the CNN vectors of items already shown in this search (and of the item a
    search started from): near-duplicates of them are deferred too.
    """
    if not candidates or count <= 0:
        return []
    vectors = np.stack([candidate.vector for candidate in candidates]).astype(np.float32)
    redundancy = np.full(len(candidates), -1.0)
    if len(shown):
        redundancy = (vectors @ np.stack(shown).astype(np.float32).T).max(axis=1)
    open_ = np.ones(len(candidates), dtype=bool)
    picked: list[int] = []
    while len(picked) < count:
        eligible = open_ & (redundancy <= near_duplicate)
        if not eligible.any():
            break
        marginal = np.where(eligible, scores - diversity * np.maximum(redundancy, 0.0), -np.inf)
        best = int(np.argmax(marginal))
        picked.append(best)
        open_[best] = False
        redundancy = np.maximum(redundancy, vectors @ vectors[best])
    deferred = [int(i) for i in np.flatnonzero(open_)[np.argsort(-scores[open_], kind="stable")]]
    picked += deferred[: count - len(picked)]
    return sorted(picked, key=lambda i: -scores[i])
