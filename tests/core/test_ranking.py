"""bot.core.ranking: colour-aware relevance, MMR page selection and the near-duplicate rule."""

from __future__ import annotations

import numpy as np
import pytest

from bot.core.ranking import (
    Candidate,
    label_agreement,
    relevance,
    select_first_page,
    select_page,
)
from embeddings import LabelHeads
from embeddings.colour import DIM

RED, BLUE = np.zeros(DIM, np.float32), np.zeros(DIM, np.float32)
RED[0], BLUE[1] = 1.0, 1.0


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _candidates(
    vectors: np.ndarray, query: np.ndarray, colours: list[np.ndarray | None]
) -> list[Candidate]:
    return [
        Candidate(key, float(vector @ query), vector, colour)
        for key, (vector, colour) in enumerate(zip(vectors, colours, strict=True))
    ]


def _spread(count: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A query and ``count`` distinct unit vectors around it."""
    rng = np.random.default_rng(seed)
    query = _unit(rng.normal(size=dim))
    vectors = np.stack([_unit(query + 0.6 * _unit(rng.normal(size=dim))) for _ in range(count)])
    return query, vectors


def test_colour_puts_same_colour_first_among_equally_similar_candidates() -> None:
    _, vectors = _spread(6)
    # Blue items are slightly closer by CNN; a red query must still get the reds first.
    candidates = [
        Candidate(key, 0.80 if key % 2 else 0.78, vectors[key], BLUE if key % 2 else RED)
        for key in range(6)
    ]
    plain = relevance(candidates, RED, colour_weight=0.0)
    assert [candidates[i].key for i in np.argsort(-plain)[:3]] == [1, 3, 5]
    scores = relevance(candidates, RED, colour_weight=0.3)
    page = select_page(candidates, scores, 3)
    assert {candidates[i].key for i in page} == {0, 2, 4}
    assert list(scores[page]) == sorted(scores[page], reverse=True)


def test_relevance_is_plain_cnn_without_a_query_colour_and_neutral_for_unknown_colours() -> None:
    query, vectors = _spread(3)
    candidates = _candidates(vectors, query, [RED, BLUE, None])
    np.testing.assert_allclose(relevance(candidates, None, 0.5), [c.similarity for c in candidates])
    scores = relevance(candidates, RED, 0.5)
    mean_colour = 0.5  # RED·RED = 1, RED·BLUE = 0
    expected = (candidates[2].similarity + 0.5 * mean_colour) / 1.5
    assert scores[2] == pytest.approx(expected)


def test_near_duplicates_are_deferred_not_lost() -> None:
    query, vectors = _spread(5)
    best = int(np.argmax(vectors @ query))
    vectors = np.vstack([vectors, vectors[best][None]])  # candidate 5: the same photo again
    candidates = _candidates(vectors, query, [None] * 6)
    scores = relevance(candidates, None, 0.0)
    assert set(select_page(candidates, scores, 2, near_duplicate=1.0)) == {best, 5}
    page = select_page(candidates, scores, 2, near_duplicate=0.97)
    assert best in page and 5 not in page
    everything = select_page(candidates, scores, 6, near_duplicate=0.97)
    assert sorted(everything) == list(range(6)), "the duplicate still fills a short page"


def test_items_already_shown_count_as_picked() -> None:
    query, vectors = _spread(8, seed=3)
    candidates = _candidates(vectors, query, [None] * 8)
    scores = relevance(candidates, None, 0.0)
    shown_twin = vectors[int(np.argmax(scores))]
    page = select_page(
        candidates, scores, 3, shown=[shown_twin], near_duplicate=0.99, diversity=0.0
    )
    assert int(np.argmax(scores)) not in page, "a twin of a shown item came back"


def test_diversity_prefers_a_different_item_over_a_near_copy() -> None:
    query = _unit(np.array([1.0, 0.0, 0.0, 0.0]))
    best = _unit(np.array([1.0, 0.3, 0.0, 0.0]))
    copy = _unit(np.array([1.0, 0.31, 0.02, 0.0]))  # almost the best, slightly less relevant
    other = _unit(np.array([1.0, -0.35, 0.0, 0.0]))  # a bit less relevant, but different
    candidates = _candidates(np.stack([best, copy, other]), query, [None] * 3)
    scores = relevance(candidates, None, 0.0)
    assert scores[1] > scores[2]
    assert set(select_page(candidates, scores, 2, diversity=0.0)) == {0, 1}
    assert set(select_page(candidates, scores, 2, diversity=0.5)) == {0, 2}


@pytest.mark.parametrize(("diversity", "near_duplicate"), [(0.0, 1.0), (0.2, 0.9), (0.5, 0.8)])
def test_next_page_continues_where_the_last_one_stopped(
    diversity: float, near_duplicate: float
) -> None:
    """Page 2 computed from the keys shown on page 1 is what one long page would have had."""
    query, vectors = _spread(30, seed=7)
    rng = np.random.default_rng(1)
    colours = [_unit(rng.random(DIM)) for _ in range(30)]
    candidates = _candidates(vectors, query, colours)
    scores = relevance(candidates, colours[0], 0.3)
    rule = {"diversity": diversity, "near_duplicate": near_duplicate}
    both = select_page(candidates, scores, 10, **rule)
    first = select_page(candidates, scores, 5, **rule)
    rest = [i for i in range(30) if i not in first]
    second = select_page(
        [candidates[i] for i in rest],
        scores[rest],
        5,
        shown=[vectors[i] for i in first],
        **rule,
    )
    assert set(first) | {rest[i] for i in second} == set(both)


def _heads(dim: int = 16) -> LabelHeads:
    """Two article types whose prototypes are the first two axes; colour heads absent."""
    prototypes = np.zeros((2, dim), np.float32)
    prototypes[0, 0] = prototypes[1, 1] = 1.0
    return LabelHeads({"article_type": ["Dresses", "Shirts"]}, {"article_type": prototypes}, 20.0)


def test_label_agreement_trusts_catalog_labels_and_falls_back_to_the_model() -> None:
    heads = _heads()
    query = _unit(np.eye(16, dtype=np.float32)[0] + 0.1)  # looks like a dress
    vectors = np.stack([_unit(np.eye(16, dtype=np.float32)[i] + 0.1) for i in (0, 1, 0, 1)])
    labels = [{"article_type": "Dresses"}, {"article_type": "Shirts"},
              {"article_type": None}, {"article_type": "Kaftans"}]  # fmt: skip
    candidates = [
        Candidate(key, float(v @ query), v, None, label)
        for key, (v, label) in enumerate(zip(vectors, labels, strict=True))
    ]
    agreement = label_agreement(heads, query, candidates)
    assert agreement[0] > 0.99 and agreement[1] < 0.01
    # Unlabelled or unknown to the model: judged by what the model sees in the candidate.
    assert agreement[2] > 0.95 and agreement[3] < 0.05


def test_a_shop_vocabulary_the_model_does_not_know_leaves_the_order_to_the_look() -> None:
    heads = _heads()
    query = _unit(np.eye(16, dtype=np.float32)[0] + 0.1)
    vectors = np.stack([_unit(np.eye(16, dtype=np.float32)[i % 2] + 0.1) for i in range(4)])
    labels = ["Women's dress", "Men's shirt", "Dresses", "Shirt (slim)"]  # one in four known
    candidates = [
        Candidate(key, float(v @ query), v, None, {"article_type": label})
        for key, (v, label) in enumerate(zip(vectors, labels, strict=True))
    ]
    assert label_agreement(heads, query, candidates) is None
    assert label_agreement(heads, query, []) is None


def test_label_weight_lifts_the_predicted_type_over_a_closer_other_type() -> None:
    heads = _heads()
    query = _unit(np.eye(16, dtype=np.float32)[0] + 0.1)
    _, vectors = _spread(4)
    # Shirts are closer by CNN similarity, but the heads say the query is a dress.
    candidates = [
        Candidate(key, 0.80 if key % 2 else 0.75, vectors[key], None,
                  {"article_type": "Shirts" if key % 2 else "Dresses"})
        for key in range(4)
    ]  # fmt: skip
    agreement = label_agreement(heads, query, candidates)
    plain = relevance(candidates, None, 0.25, agreement, label_weight=0.0)
    assert [int(i) for i in np.argsort(-plain)[:2]] == [1, 3]
    ranked = relevance(candidates, None, 0.25, agreement, label_weight=0.5)
    assert {int(i) for i in np.argsort(-ranked)[:2]} == {0, 2}
    assert np.all(np.abs(ranked) <= 1.0)
    np.testing.assert_allclose(relevance(candidates, None, 0.25, None, 0.5), plain)


def test_first_page_keeps_the_closest_look_ahead_of_label_agreement() -> None:
    heads = _heads()
    query = _unit(np.eye(16, dtype=np.float32)[0] + 0.1)  # the heads call it a dress
    _, vectors = _spread(5)
    # Key 0 is the photographed product (a shirt the heads mistake for a dress): by far the
    # closest look. The labelled dresses would push it off a page ranked by agreement alone.
    candidates = [
        Candidate(key, 0.95 if key == 0 else 0.6, vectors[key], None,
                  {"article_type": "Shirts" if key in (0, 1) else "Dresses"})
        for key in range(5)
    ]  # fmt: skip
    agreement = label_agreement(heads, query, candidates)
    visual = relevance(candidates, None, 0.0)
    scores = relevance(candidates, None, 0.0, agreement, label_weight=1.0)
    assert 0 not in select_page(candidates, scores, 3)
    page = select_first_page(candidates, visual, scores, 3, visual_slots=1)
    assert page[0] == 0 and set(page[1:]) <= {2, 3, 4}
    assert select_first_page(candidates, visual, scores, 3, visual_slots=0) == select_page(
        candidates, scores, 3
    )
