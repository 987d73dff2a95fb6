"""From a nearest-neighbour pool to a page: colour-aware relevance, then variety.

The HNSW index ranks by CNN similarity only, which knows the garment type well and its colour
poorly, and happily returns five photos of the same product. So the recommender asks it for a
pool of candidates and this module

1. scores each by ``cnn_similarity + colour_weight * colour_similarity + label_weight *
   label_agreement`` (relevance), where label agreement is how strongly a trained model's
   label heads believe the query shares the candidate's article type and colour: the
   catalog's own labels, which a shop's data always has, steer the order;
2. picks the page greedily by maximal marginal relevance (MMR): relevance minus ``diversity``
   times the candidate's highest CNN similarity to anything already picked or shown before;
3. on a search's first page, fills the first ``visual_slots`` places by CNN + colour alone:
   the photographed product itself, when the shop has it, must not lose its place to items
   the label heads merely agree with, when their type guess is wrong;
4. defers near-duplicates, candidates whose CNN similarity to something picked or shown is
   above ``near_duplicate``: they only fill a page that would otherwise stay short.

Items shown earlier in a search count as picked, so page n+1 continues the same greedy order
page n stopped at, after a restart too: the shown keys are stored, and the vectors and colours
are the catalog's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from embeddings import LabelHeads

MIN_KNOWN_LABELS = 0.5
"""Share of a pool's catalog labels the model must know for that label to steer the order."""

RANKED_LABELS = ("article_type", "base_colour")
"""Label fields whose agreement counts in relevance: the garment type and the colour a shopper
sees first (why not gender: docs/BENCHMARKS.md, "Ranking defaults")."""


@dataclass(frozen=True)
class RankingConfig:
    """How a page is chosen; see the module docstring. How the defaults were picked:
    docs/BENCHMARKS.md ("Ranking defaults"). ``label_weight`` and ``visual_slots`` only act
    with a trained model."""

    pool: int = 50
    colour_weight: float = 0.0
    label_weight: float = 1.0
    visual_slots: int = 2
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
    labels: Mapping[str, str | None] = field(default_factory=dict)
    """Its catalog labels (article_type, base_colour, …), None where the shop gave none."""


def label_agreement(
    heads: LabelHeads, query: np.ndarray, candidates: Sequence[Candidate]
) -> np.ndarray | None:
    """Per candidate, the mean over :data:`RANKED_LABELS` of the probability the label heads
    give the query for the candidate's label, in [0, 1]; None when no label can be judged.

    A candidate whose label is missing, or one the model never learnt, is judged by the
    model's belief about its own vector instead (the chance both share a label), so a new
    product type is neither favoured nor buried by the shop's wording. A field whose labels
    the model mostly does not know (a shop with a vocabulary of its own: fewer than
    :data:`MIN_KNOWN_LABELS` of the pool's labels known) is left out, and with no field left
    the page goes by look alone.
    """
    if not candidates:
        return None
    fields = [
        name
        for name in RANKED_LABELS
        if name in heads.prototypes and _known_share(heads, name, candidates) >= MIN_KNOWN_LABELS
    ]
    if not fields:
        return None
    query_probs = heads.probabilities(query[None, :])
    vectors = np.stack([candidate.vector for candidate in candidates])
    own_probs = heads.probabilities(vectors)
    agreement = np.zeros(len(candidates))
    for name in fields:
        index = {value: i for i, value in enumerate(heads.vocabularies[name])}
        beliefs = own_probs[name] @ query_probs[name][0]
        for row, candidate in enumerate(candidates):
            known = index.get(candidate.labels.get(name) or "")
            agreement[row] += beliefs[row] if known is None else query_probs[name][0, known]
    return agreement / len(fields)


def _known_share(heads: LabelHeads, name: str, candidates: Sequence[Candidate]) -> float:
    vocabulary = set(heads.vocabularies[name])
    return sum((c.labels.get(name) or "") in vocabulary for c in candidates) / len(candidates)


def relevance(
    candidates: Sequence[Candidate],
    query_colour: np.ndarray | None,
    colour_weight: float,
    labels: np.ndarray | None = None,
    label_weight: float = 0.0,
) -> np.ndarray:
    """``(cnn + colour_weight * colour + label_weight * labels) / (1 + both weights)`` per
    candidate, in [-1, 1]; ``labels`` is :func:`label_agreement` (None: no label heads).

    Without a query colour the colour term drops out; a candidate without a colour gets the
    pool's mean colour similarity, so it is neither favoured nor buried.
    """
    cnn = np.array([candidate.similarity for candidate in candidates], dtype=np.float64)
    if query_colour is None or not candidates:
        colour_weight = 0.0
    if labels is None or not candidates:
        label_weight = 0.0
    score = cnn
    if colour_weight:
        score = score + colour_weight * _colour_similarity(candidates, query_colour)
    if label_weight:
        score = score + label_weight * labels
    return score / (1 + colour_weight + label_weight)


def _colour_similarity(candidates: Sequence[Candidate], query_colour: np.ndarray) -> np.ndarray:
    known = np.array([candidate.colour is not None for candidate in candidates])
    colour = np.zeros(len(candidates))
    if known.any():
        colours = np.stack([c.colour for c in candidates if c.colour is not None])
        colour[known] = colours @ np.asarray(query_colour, dtype=np.float32)
        colour[~known] = colour[known].mean()
    return colour


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


def select_first_page(
    candidates: Sequence[Candidate],
    visual: np.ndarray,
    scores: np.ndarray,
    count: int,
    *,
    visual_slots: int,
    shown: Sequence[np.ndarray] = (),
    diversity: float = 0.0,
    near_duplicate: float = 1.0,
) -> list[int]:
    """A search's first page: ``visual_slots`` places by ``visual`` (CNN + colour relevance),
    then the rest by ``scores`` (with label agreement), each part by :func:`select_page`."""
    lead = select_page(
        candidates, visual, min(visual_slots, count), shown=shown,
        diversity=diversity, near_duplicate=near_duplicate,
    )  # fmt: skip
    rest = [i for i in range(len(candidates)) if i not in lead]
    tail = select_page(
        [candidates[i] for i in rest], scores[rest], count - len(lead),
        shown=[*shown, *(candidates[i].vector for i in lead)],
        diversity=diversity, near_duplicate=near_duplicate,
    )  # fmt: skip
    return lead + [rest[i] for i in tail]
