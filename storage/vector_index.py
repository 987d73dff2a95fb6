"""USearch index over catalog embeddings (cosine), keyed by the catalog's integer item keys:
searched exactly while small, through its HNSW graph when big; served from a memory-mapped file.

Build parameters, the scalar type rule and the incremental update are measured in
docs/BENCHMARKS.md ("a million items").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

# usearch's wheel links libstdc++ statically, and some of its symbols (locale facets) are
# process-wide: importing onnxruntime *after* usearch crashes the process (SIGSEGV in
# onnxruntime's import, usearch 2.26.6 with onnxruntime 1.32). Loaded the other way round,
# both work; the bot serves with onnxruntime, so it is loaded first wherever it is installed.
# Import usearch through this module only (isort would put a direct import first).
with contextlib.suppress(ImportError):
    import onnxruntime  # noqa: F401

import usearch
from usearch.index import Index

USEARCH_VERSION: str = usearch.__version__

DTYPES = ("f32", "f16", "i8")
"""Scalar types an index can store its vectors in (``wardrobe bench --synthetic`` compares them)."""

# Graph knobs, measured in docs/BENCHMARKS.md ("a million items"): expansion 64 on insertion
# builds 2-3 times cheaper than 128 and loses under 0.01 of recall@5.
CONNECTIVITY = 32
EXPANSION_ADD = 64
EXPANSION_SEARCH = 128
_ADD_THREADS = 0  # usearch's "every core", in one call: smaller batches cost more CPU
# Up to this many stored floats a search scans every vector (about 3 ms at 5M on these cores):
# exact, and the graph, built on several threads, can miss even a query's own vector
# (docs/BENCHMARKS.md, "Exact search for shop-sized catalogs"). Bigger indexes use HNSW.
EXACT_SEARCH_FLOATS = 5_000_000


def default_dtype(count: int, ndim: int) -> str:
    """``f32`` while the index is searched exactly, so a shop's results are the exact ones to
    the last digit; ``f16`` beyond, where it halves the vectors' memory and file."""
    return "f32" if count * ndim <= EXACT_SEARCH_FLOATS else "f16"


class VectorIndex:
    """A nearest-neighbour index. It is built (or loaded writable and changed) beside the one
    being served, saved, and then served read-only from its memory-mapped file."""

    def __init__(self, index: Index, *, writable: bool = True) -> None:
        self._index = index
        self._writable = writable

    @classmethod
    def build(
        cls,
        keys: np.ndarray,
        vectors: np.ndarray,
        *,
        ndim: int | None = None,
        dtype: str | None = None,
    ) -> VectorIndex:
        """Build from ``keys`` (n,) and unit ``vectors`` (n, d); n may be 0 if ``ndim`` is set.

        ``dtype`` is one of :data:`DTYPES`, by default :func:`default_dtype`'s choice."""
        dim = int(vectors.shape[1]) if vectors.ndim == 2 and len(vectors) else ndim
        if not dim:
            raise ValueError("cannot build an empty index without knowing its dimension")
        index = Index(
            ndim=dim,
            metric="cos",
            dtype=dtype or default_dtype(len(keys), dim),
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        built = cls(index)
        built._add(keys, vectors)
        return built

    @classmethod
    def load(cls, path: Path, *, writable: bool = False) -> VectorIndex:
        """Map ``path`` read-only (instant, and pages are shared with the OS file cache), or
        read it into memory when ``writable``, to be changed and saved as a new file."""
        index = Index.restore(str(path), view=not writable)
        if index is None:
            raise ValueError(f"{path} is not a usearch index")
        index.expansion_add = EXPANSION_ADD  # not stored in the file
        index.expansion_search = EXPANSION_SEARCH
        return cls(index, writable=writable)

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename) so a crash never leaves a half-written index
        and a process that maps the previous file keeps reading it intact."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # the CLI and the bot may both save
        self._index.save(str(tmp))
        os.replace(tmp, path)

    def apply_changes(
        self, removed: Collection[int], keys: np.ndarray, vectors: np.ndarray
    ) -> None:
        """Drop ``removed`` and (re)insert ``keys`` with their new ``vectors``, in place: the
        update of a writable index, a few items at a time instead of a rebuild."""
        if not self._writable:  # usearch 2.26 crashes removing many keys from a mapped file
            raise ValueError("a memory-mapped index is read-only: load it writable to change it")
        stale = np.union1d(np.asarray(list(removed), dtype=np.uint64), keys.astype(np.uint64))
        if len(stale):
            self._index.remove(stale)
        self._add(keys, vectors)

    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys):
            self._index.add(
                np.asarray(keys, dtype=np.uint64),
                np.asarray(vectors, dtype=np.float32),
                threads=_ADD_THREADS,
            )

    @property
    def ndim(self) -> int:
        return int(self._index.ndim)

    @property
    def dtype(self) -> str:
        """The scalar type the vectors are stored in, one of :data:`DTYPES`."""
        return self._index.dtype.name.lower()

    @property
    def searched_exactly(self) -> bool:
        """Whether a search scans every vector rather than walking the graph."""
        return len(self) * self.ndim <= EXACT_SEARCH_FLOATS

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: int) -> bool:
        return bool(self._index.contains(key))

    def get(self, key: int) -> np.ndarray | None:
        """The stored vector of ``key`` as float32 (None: not indexed); vectors stored in a
        smaller type come back renormalised, so cosine arithmetic on them stays cosine."""
        if key not in self:
            return None
        vector = np.asarray(self._index.get(key, dtype="f32"), dtype=np.float32)
        if self.dtype != "f32":
            vector /= np.linalg.norm(vector)
        return vector

    def get_many(self, keys: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``keys`` (all indexed), (len(keys), ndim) float32, unit."""
        if not keys:
            return np.empty((0, self.ndim), dtype=np.float32)
        found = self._index.get(np.asarray(keys, dtype=np.uint64), dtype="f32")
        vectors = np.asarray(np.stack(found), dtype=np.float32)
        if self.dtype != "f32":
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors

    def search(
        self, vector: np.ndarray, count: int, *, exclude: Collection[int] = ()
    ) -> list[tuple[int, float]]:
        """Up to ``count`` (key, cosine similarity) pairs, best first, skipping ``exclude``."""
        if count <= 0 or len(self) == 0:
            return []
        wanted = min(len(self), count + len(exclude))
        matches = self._index.search(
            np.asarray(vector, dtype=np.float32), wanted, exact=self.searched_exactly
        )
        results = []
        for key, distance in zip(matches.keys, matches.distances, strict=True):
            key = int(key)
            if key in exclude:
                continue
            results.append((key, float(1.0 - distance)))
            if len(results) == count:
                break
        return results
