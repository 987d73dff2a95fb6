"""VectorIndex: what a search returns."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from storage.vector_index import VectorIndex
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
