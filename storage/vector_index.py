"""USearch index over catalog embeddings (cosine), keyed by the catalog's integer item keys:
searched exactly while small, through its HNSW graph when big."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection
from pathlib import Path

import numpy as np

# usearch's wheel links libstdc++ statically, and some of its symbols (locale facets) are
# process-wide: importing onnxruntime *after* usearch crashes the process (SIGSEGV in
# onnxruntime's import, usearch 2.26.6 with onnxruntime 1.32). Loaded the other way round,
# both work; the bot serves with onnxruntime, so it is loaded first wherever it is installed.
with contextlib.suppress(ImportError):
    import onnxruntime  # noqa: F401

from usearch.index import Index

# Build/search quality knobs: higher than usearch's defaults because catalogs are small
# (thousands to a few hundred thousand items) and a missed neighbour is a visible bad result.
_CONNECTIVITY = 32
_EXPANSION_ADD = 128
_EXPANSION_SEARCH = 128
# Up to this many stored floats a search scans every vector (about 3 ms at 5M on these cores):
# exact, and the graph, built on several threads, can miss even a query's own vector
# (docs/BENCHMARKS.md, "Exact search for shop-sized catalogs"). Bigger indexes use HNSW.
_EXACT_SEARCH_FLOATS = 5_000_000


class VectorIndex:
    """An immutable-once-built nearest-neighbour index; a reindex builds a new one and swaps it."""

    def __init__(self, index: Index) -> None:
        self._index = index

    @classmethod
    def build(
        cls, keys: np.ndarray, vectors: np.ndarray, *, ndim: int | None = None
    ) -> VectorIndex:
        """Build from ``keys`` (n,) and unit ``vectors`` (n, d); n may be 0 if ``ndim`` is set."""
        dim = int(vectors.shape[1]) if vectors.ndim == 2 and len(vectors) else ndim
        if not dim:
            raise ValueError("cannot build an empty index without knowing its dimension")
        index = Index(
            ndim=dim,
            metric="cos",
            dtype="f32",
            connectivity=_CONNECTIVITY,
            expansion_add=_EXPANSION_ADD,
            expansion_search=_EXPANSION_SEARCH,
        )
        if len(keys):
            index.add(np.asarray(keys, dtype=np.uint64), np.asarray(vectors, dtype=np.float32))
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        index = Index.restore(str(path))
        if index is None:
            raise ValueError(f"{path} is not a usearch index")
        index.expansion_search = _EXPANSION_SEARCH
        return cls(index)

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename) so a crash never leaves a half-written index."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # the CLI and the bot may both save
        self._index.save(str(tmp))
        os.replace(tmp, path)

    @property
    def ndim(self) -> int:
        return int(self._index.ndim)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: int) -> bool:
        return bool(self._index.contains(key))

    def get(self, key: int) -> np.ndarray | None:
        if key not in self:
            return None
        return np.asarray(self._index.get(key), dtype=np.float32)

    def search(
        self, vector: np.ndarray, count: int, *, exclude: Collection[int] = ()
    ) -> list[tuple[int, float]]:
        """Up to ``count`` (key, cosine similarity) pairs, best first, skipping ``exclude``."""
        if count <= 0 or len(self) == 0:
            return []
        wanted = min(len(self), count + len(exclude))
        exact = len(self) * self.ndim <= _EXACT_SEARCH_FLOATS
        matches = self._index.search(np.asarray(vector, dtype=np.float32), wanted, exact=exact)
        results = []
        for key, distance in zip(matches.keys, matches.distances, strict=True):
            key = int(key)
            if key in exclude:
                continue
            results.append((key, float(1.0 - distance)))
            if len(results) == count:
                break
        return results
