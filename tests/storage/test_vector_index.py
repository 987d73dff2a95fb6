"""VectorIndex: what a search returns, from memory and from a mapped file, and its changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from storage import vector_index
from storage.vector_index import VectorIndex, default_dtype
from tests.support.paths import REPO_ROOT


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_catalog_of_shop_size_is_searched_exactly() -> None:
    """Every query gets its true nearest neighbours, itself first: an approximate graph
    that misses the photographed product would be a visible bad result."""
    vectors = _unit(2000, 256, seed=0)
    keys = np.arange(100, 2100, dtype=np.uint64)
    index = VectorIndex.build(keys, vectors)
    for row in range(0, 2000, 20):
        found = index.search(vectors[row], 50)
        truth = np.sort(vectors @ vectors[row])[::-1][:50]
        assert found[0] == (int(keys[row]), pytest.approx(1.0, abs=1e-5))
        assert np.allclose([similarity for _, similarity in found], truth, atol=1e-5)


def test_search_skips_excluded_keys_and_knows_its_vectors() -> None:
    vectors = _unit(30, 16, seed=1)
    index = VectorIndex.build(np.arange(30, dtype=np.uint64), vectors)
    found = index.search(vectors[3], 5, exclude={3})
    assert len(found) == 5 and 3 not in {key for key, _ in found}
    assert np.allclose(index.get(3), vectors[3], atol=1e-6) and index.get(99) is None


def test_onnxruntime_imports_after_the_index_module() -> None:
    """usearch before onnxruntime crashed the process on import (SIGSEGV): the index module
    makes the order safe for every process that serves."""
    code = "import storage.vector_index, onnxruntime, usearch.index; print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("graph", [False, True], ids=["exact", "hnsw"])
def test_a_mapped_index_answers_like_the_one_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graph: bool
) -> None:
    """The bot serves the saved file memory-mapped: searching, looking up and listing must
    give what the index it was built as gives, and it must refuse changes."""
    if graph:
        monkeypatch.setattr(vector_index, "EXACT_SEARCH_FLOATS", 0)
    vectors = _unit(1500, 32, seed=2)
    keys = np.arange(7, 1507, dtype=np.uint64)
    built = VectorIndex.build(keys, vectors)
    built.save(tmp_path / "index.usearch")
    mapped = VectorIndex.load(tmp_path / "index.usearch")
    assert mapped.searched_exactly is not graph
    assert mapped._index.memory_usage < built._index.memory_usage / 10  # mapped, not read in
    assert (len(mapped), mapped.ndim, mapped.dtype) == (1500, 32, built.dtype)
    for row in range(0, 1500, 50):
        assert mapped.search(vectors[row], 50) == built.search(vectors[row], 50)
        assert mapped.search(vectors[row], 5, exclude={int(keys[row])}) == built.search(
            vectors[row], 5, exclude={int(keys[row])}
        )
        np.testing.assert_array_equal(mapped.get(int(keys[row])), built.get(int(keys[row])))
    assert 7 in mapped and 1506 in mapped and 6 not in mapped and mapped.get(6) is None
    with pytest.raises(ValueError, match="read-only"):
        mapped.apply_changes([7], np.empty(0, np.uint64), np.empty((0, 32), np.float32))


@pytest.mark.parametrize("dtype", ["f16", "i8"])
def test_a_smaller_scalar_type_round_trips(tmp_path: Path, dtype: str) -> None:
    vectors = _unit(300, 64, seed=3)
    keys = np.arange(300, dtype=np.uint64)
    VectorIndex.build(keys, vectors, dtype=dtype).save(tmp_path / "index.usearch")
    mapped = VectorIndex.load(tmp_path / "index.usearch")
    assert mapped.dtype == dtype
    for row in range(0, 300, 30):
        vector = mapped.get(row)
        assert vector.dtype == np.float32
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(vector, vectors[row], atol=2e-3 if dtype == "f16" else 3e-2)
        assert mapped.search(vectors[row], 5)[0][0] == row
    rows = [270, 0, 30]
    many = mapped.get_many(rows)
    assert many.dtype == np.float32 and many.shape == (3, 64)
    np.testing.assert_allclose(many, np.stack([mapped.get(row) for row in rows]), atol=1e-6)
    assert mapped.get_many([]).shape == (0, 64)


def test_shop_sized_indexes_keep_float32_and_big_ones_halve_it() -> None:
    assert default_dtype(19_000, 256) == "f32"
    assert default_dtype(1_000_000, 256) == "f16"
    assert VectorIndex.build(np.arange(10, dtype=np.uint64), _unit(10, 8, seed=4)).dtype == "f32"


@pytest.mark.parametrize("graph", [False, True], ids=["exact", "hnsw"])
def test_changes_in_place_equal_a_rebuild_and_removed_keys_never_return(
    monkeypatch: pytest.MonkeyPatch, graph: bool
) -> None:
    """Removing leaves tombstones in the graph; none of them may surface, re-embedded keys
    must answer with their new vector, and the count must be the live items'."""
    if graph:
        monkeypatch.setattr(vector_index, "EXACT_SEARCH_FLOATS", 0)
    vectors = _unit(2000, 32, seed=5)
    keys = np.arange(2000, dtype=np.uint64)
    index = VectorIndex.build(keys, vectors)
    removed = list(range(0, 100))
    changed = np.arange(100, 150, dtype=np.uint64)
    added = np.arange(5000, 5060, dtype=np.uint64)
    new_vectors = _unit(110, 32, seed=6)
    index.apply_changes(removed, np.concatenate([changed, added]), new_vectors)

    live = {int(key): vectors[int(key)] for key in keys[100:]}
    live |= dict(zip((int(key) for key in (*changed, *added)), new_vectors, strict=True))
    rebuilt = VectorIndex.build(np.array(list(live), np.uint64), np.array(list(live.values())))
    assert len(index) == len(live) == 1960
    assert all(index.get(key) is None and key not in index for key in removed)
    np.testing.assert_allclose(index.get(120), new_vectors[20], atol=1e-3)
    for row in range(0, 150, 3):
        found = index.search(vectors[row], 200)
        assert not {key for key, _ in found} & set(removed)
        if not graph:
            assert found == rebuilt.search(vectors[row], 200)
    for row, key in enumerate((*changed, *added)):
        assert index.search(new_vectors[row], 1)[0][0] == int(key)
