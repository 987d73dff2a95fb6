"""Index files on disk: one USearch file per catalog version, derived from SQLite.

SQLite is the source of truth; ``index-v<vectors_version>.usearch`` in the data directory is a
cache of its vectors, served memory-mapped. An ingest that changed a few items makes its
version from the previous file plus those items, and ``index-v<version>.changes`` counts the
items changed since the file was last built from the whole catalog. ``index-v<version>.sha256``
is the file's checksum, written after it was saved: USearch maps a file without checking it,
and a damaged graph crashes the process on search. A file that is missing, damaged
(checksum), unreadable, of another dimension or scalar type, or holding another number of
vectors than SQLite is rebuilt from the catalog, and files of older versions are deleted once
a newer one is saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Collection
from pathlib import Path

from storage.catalog import Catalog
from storage.vector_index import VectorIndex, default_dtype

log = logging.getLogger(__name__)

# Removed vectors leave tombstones in the graph whose slots new ones reuse, and search drifts:
# once the items changed since the last full build pass this share of the catalog, the next
# ingest rebuilds (measured in docs/BENCHMARKS.md, "a million items").
_CHANGE_BUDGET = 0.5


def index_path(data_dir: Path, version: int) -> Path:
    return data_dir / f"index-v{version}.usearch"


def _changes_path(data_dir: Path, version: int) -> Path:
    return data_dir / f"index-v{version}.changes"


def _checksum_path(path: Path) -> Path:
    return path.with_suffix(".sha256")


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


async def _intact(path: Path) -> bool:
    """Whether ``path`` exists and its bytes are those its checksum file records."""
    if not path.is_file():
        return False
    try:
        recorded = _checksum_path(path).read_text().strip()
    except OSError:
        recorded = None
    if recorded and recorded == await asyncio.to_thread(_sha256, path):
        return True
    log.warning("index file %s is damaged or unverified; rebuilding from the catalog", path)
    return False


async def load_or_rebuild_index(catalog: Catalog, data_dir: Path, dim: int) -> VectorIndex:
    """Open the index file matching the stored vectors, rebuilding it from SQLite if needed."""
    version = int(await catalog.get_meta("vectors_version") or 0)
    path = index_path(data_dir, version)
    if await _intact(path):
        try:
            index = await asyncio.to_thread(VectorIndex.load, path)
            if index.ndim == dim and len(index) == await catalog.count_vectors():
                return index
            log.warning("index file %s does not match the catalog; rebuilding", path)
        except (ValueError, RuntimeError) as error:
            log.warning("index file %s unreadable (%s); rebuilding from the catalog", path, error)
    return await build_and_save_index(catalog, data_dir, version, dim)


async def build_and_save_index(
    catalog: Catalog, data_dir: Path, version: int, dim: int
) -> VectorIndex:
    """Build the index of every stored vector, save it as ``version``, delete older files."""
    keys, vectors = await catalog.all_vectors(dim)
    index = await asyncio.to_thread(VectorIndex.build, keys, vectors, ndim=dim)
    return await _save(index, data_dir, version, changes=0)


async def update_and_save_index(
    catalog: Catalog,
    data_dir: Path,
    version: int,
    dim: int,
    *,
    changed: Collection[int],
    removed: Collection[int],
) -> VectorIndex:
    """Save ``version``'s index: the previous version's file with the ``removed`` keys taken
    out and the ``changed`` keys' vectors (re)inserted from SQLite, or a full rebuild when
    that file cannot be used or too much changed since it was last built."""
    total = await catalog.count_vectors()
    changes = _changes_since_build(data_dir, version - 1)
    index = None
    if changes is not None:
        changes += len(changed) + len(removed)
        if changes <= _CHANGE_BUDGET * total:
            index = await _writable_previous(index_path(data_dir, version - 1), dim, total)
    if index is None:
        return await build_and_save_index(catalog, data_dir, version, dim)
    keys, vectors = await catalog.vectors_of(sorted(changed), dim)
    await asyncio.to_thread(index.apply_changes, removed, keys, vectors)
    if len(index) != total:
        log.warning("updated index holds %d of %d vectors; rebuilding", len(index), total)
        return await build_and_save_index(catalog, data_dir, version, dim)
    return await _save(index, data_dir, version, changes=changes)


def _changes_since_build(data_dir: Path, version: int) -> int | None:
    """Items changed in ``version``'s file since its last full build (None: not known)."""
    try:
        return int(_changes_path(data_dir, version).read_text())
    except (OSError, ValueError):
        return None


async def _writable_previous(path: Path, dim: int, total: int) -> VectorIndex | None:
    """The previous version's index, read into memory to be changed, if it can be."""
    if not await _intact(path):
        return None
    try:
        index = await asyncio.to_thread(VectorIndex.load, path, writable=True)
    except (ValueError, RuntimeError) as error:
        log.warning("index file %s unreadable (%s); rebuilding from the catalog", path, error)
        return None
    if index.ndim != dim or index.dtype != default_dtype(total, dim):
        return None
    return index


async def _save(index: VectorIndex, data_dir: Path, version: int, *, changes: int) -> VectorIndex:
    """Save ``index`` as ``version`` with its change count, delete older files and serve the
    saved file mapped."""
    path = index_path(data_dir, version)
    await asyncio.to_thread(index.save, path)
    checksum = _checksum_path(path)
    _write_atomically(checksum, await asyncio.to_thread(_sha256, path))
    counted = _changes_path(data_dir, version)
    _write_atomically(counted, str(changes))
    kept = (path, checksum, counted)
    for pattern in ("index-v*.usearch", "index-v*.sha256", "index-v*.changes"):
        for old in data_dir.glob(pattern):
            if old not in kept:
                old.unlink(missing_ok=True)
    return await asyncio.to_thread(VectorIndex.load, path)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
