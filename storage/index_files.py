"""Index files on disk: one USearch file per catalog version, derived from SQLite.

SQLite is the source of truth; ``index-v<vectors_version>.usearch`` in the data directory is a
cache of its vectors. A file that is missing, unreadable or of another dimension is rebuilt
from the catalog, and files of older versions are deleted once a newer one is saved.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from storage.catalog import Catalog
from storage.vector_index import VectorIndex

log = logging.getLogger(__name__)


def index_path(data_dir: Path, version: int) -> Path:
    return data_dir / f"index-v{version}.usearch"


async def load_or_rebuild_index(catalog: Catalog, data_dir: Path, dim: int) -> VectorIndex:
    """Open the index file matching the stored vectors, rebuilding it from SQLite if needed."""
    version = int(await catalog.get_meta("vectors_version") or 0)
    path = index_path(data_dir, version)
    if path.is_file():
        try:
            index = await asyncio.to_thread(VectorIndex.load, path)
            if index.ndim == dim:
                return index
        except (ValueError, RuntimeError) as error:
            log.warning("index file %s unreadable (%s); rebuilding from the catalog", path, error)
    return await build_and_save_index(catalog, data_dir, version, dim)


async def build_and_save_index(
    catalog: Catalog, data_dir: Path, version: int, dim: int
) -> VectorIndex:
    """Build the index of every stored vector, save it as ``version``, delete older files."""
    keys, vectors = await catalog.all_vectors(dim)
    index = await asyncio.to_thread(VectorIndex.build, keys, vectors, ndim=dim)
    path = index_path(data_dir, version)
    await asyncio.to_thread(index.save, path)
    for old in data_dir.glob("index-v*.usearch"):
        if old != path:
            old.unlink(missing_ok=True)
    return index
