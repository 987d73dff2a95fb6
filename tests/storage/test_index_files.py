"""Index files: the next version from the previous file plus an ingest's changes, or rebuilt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storage import index_files
from storage.catalog import Catalog, EmbeddedItem
from storage.index_files import (
    build_and_save_index,
    index_path,
    load_or_rebuild_index,
    update_and_save_index,
)
from storage.models import CatalogItem
from storage.vector_index import VectorIndex

DIM = 16


def _unit(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _embedded(ids: range, seed: int) -> list[EmbeddedItem]:
    vectors = _unit(len(ids), seed)
    return [
        EmbeddedItem(CatalogItem(id=str(i), name=f"Item {i}", image_path=f"/x/{i}.jpg"), "s", v)
        for i, v in zip(ids, vectors, strict=True)
    ]


@pytest.fixture
async def catalog(tmp_path: Path):
    opened = await Catalog.open(tmp_path / "catalog.sqlite3")
    yield opened
    await opened.close()


async def _first_version(catalog: Catalog, data_dir: Path) -> dict[str, int]:
    """400 items written and indexed as version 1; returns their keys by id."""
    keys = await catalog.write_items(_embedded(range(400), seed=0))
    await build_and_save_index(catalog, data_dir, 1, DIM)
    return {str(i): key for i, key in enumerate(keys)}


async def _change_a_few(catalog: Catalog, keys: dict[str, int]) -> tuple[list[int], list[int]]:
    """Re-embed items 10-19, add 400-414, remove 0-9: (changed keys, removed keys)."""
    removed = [keys[str(i)] for i in range(10)]
    written = await catalog.write_items(
        _embedded(range(10, 20), seed=1) + _embedded(range(400, 415), seed=2),
        remove_ids=[str(i) for i in range(10)],
    )
    return written, removed


def _assert_same_as_a_rebuild(index: VectorIndex, keys: np.ndarray, vectors: np.ndarray) -> None:
    rebuilt = VectorIndex.build(keys, vectors)
    assert len(index) == len(rebuilt) and index.dtype == rebuilt.dtype
    for vector in [*vectors[::20], *_unit(10, seed=9)]:
        assert index.search(vector, 50) == rebuilt.search(vector, 50)
    for key, vector in zip(keys.tolist(), vectors, strict=True):
        np.testing.assert_array_equal(index.get(key), vector)


async def test_a_few_changes_update_the_previous_file_without_reading_the_catalog(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = await _first_version(catalog, tmp_path)
    old_vectors = {key: VectorIndex.load(index_path(tmp_path, 1)).get(key) for key in keys.values()}
    changed, removed = await _change_a_few(catalog, keys)
    all_keys, all_vectors = await catalog.all_vectors(DIM)

    async def no_full_read(dim: int) -> None:
        raise AssertionError("an update of 35 items read every vector")

    monkeypatch.setattr(catalog, "all_vectors", no_full_read)
    index = await update_and_save_index(catalog, tmp_path, 2, DIM, changed=changed, removed=removed)
    _assert_same_as_a_rebuild(index, all_keys, all_vectors)
    for key in removed:
        assert key not in index
        found = index.search(old_vectors[key], len(index))
        assert key not in {hit for hit, _ in found}
    assert sorted(path.name for path in tmp_path.glob("index-v*")) == [
        "index-v2.changes",
        "index-v2.sha256",
        "index-v2.usearch",
    ]
    assert (tmp_path / "index-v2.changes").read_text() == "35"
    monkeypatch.undo()
    served = await load_or_rebuild_index(catalog, tmp_path, DIM)
    assert len(served) == len(all_keys)


@pytest.mark.parametrize(
    "previous", ["missing", "unreadable", "other dimension", "other scalar type", "no count"]
)
async def test_an_unusable_previous_file_means_a_rebuild(
    catalog: Catalog, tmp_path: Path, previous: str
) -> None:
    keys = await _first_version(catalog, tmp_path)
    path = index_path(tmp_path, 1)
    if previous == "missing":
        path.unlink()
    elif previous == "unreadable":
        path.write_bytes(path.read_bytes()[:1000])
    elif previous == "other dimension":
        VectorIndex.build(np.arange(3, dtype=np.uint64), np.eye(3, 8, dtype=np.float32)).save(path)
    elif previous == "other scalar type":
        keys_, vectors = await catalog.all_vectors(DIM)
        VectorIndex.build(keys_, vectors, dtype="f16").save(path)
    else:
        (tmp_path / "index-v1.changes").unlink()
    changed, removed = await _change_a_few(catalog, keys)
    index = await update_and_save_index(catalog, tmp_path, 2, DIM, changed=changed, removed=removed)
    _assert_same_as_a_rebuild(index, *(await catalog.all_vectors(DIM)))


@pytest.mark.parametrize("damage", ["flipped bytes", "no checksum", "fewer vectors"])
async def test_a_damaged_served_file_is_rebuilt_instead_of_searched(
    catalog: Catalog, tmp_path: Path, damage: str
) -> None:
    """USearch maps a file without checking it: 200 flipped bytes past the header crashed
    the process on the first search. The checksum catches them before the file is mapped."""
    await catalog.write_items(_embedded(range(400), seed=0))
    await build_and_save_index(catalog, tmp_path, 0, DIM)  # the version the catalog names
    path = index_path(tmp_path, 0)
    if damage == "flipped bytes":
        data = bytearray(path.read_bytes())
        for offset in range(len(data) // 2, len(data) // 2 + 200):
            data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "no checksum":  # e.g. written by an older version, or a crash before it
        path.with_suffix(".sha256").unlink()
    else:
        keys, vectors = await catalog.all_vectors(DIM)
        VectorIndex.build(keys[:-3], vectors[:-3]).save(path)
        path.with_suffix(".sha256").write_text(index_files._sha256(path))
    index = await load_or_rebuild_index(catalog, tmp_path, DIM)
    _assert_same_as_a_rebuild(index, *(await catalog.all_vectors(DIM)))
    assert index_files._sha256(path) == path.with_suffix(".sha256").read_text()


def _spy_on_writable_loads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, for every index file loaded, whether it was loaded to be changed."""
    loads: list[bool] = []
    load = VectorIndex.load

    def spy(path: Path, *, writable: bool = False) -> VectorIndex:
        loads.append(writable)
        return load(path, writable=writable)

    monkeypatch.setattr(index_files.VectorIndex, "load", spy)
    return loads


async def test_a_big_change_is_a_rebuild(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _first_version(catalog, tmp_path)
    written = await catalog.write_items(_embedded(range(0, 250), seed=3))
    loads = _spy_on_writable_loads(monkeypatch)
    index = await update_and_save_index(catalog, tmp_path, 2, DIM, changed=written, removed=[])
    assert True not in loads  # most of the catalog changed: the old file is not read
    _assert_same_as_a_rebuild(index, *(await catalog.all_vectors(DIM)))


async def test_small_changes_adding_up_to_half_the_catalog_are_a_rebuild(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each update leaves tombstones behind; past the budget the graph is built afresh, and
    the count starts again from there."""
    await _first_version(catalog, tmp_path)
    loads = _spy_on_writable_loads(monkeypatch)
    updated = []
    for version, start in enumerate(range(0, 400, 80), start=2):
        written = await catalog.write_items(_embedded(range(start, start + 80), seed=version))
        loads.clear()
        index = await update_and_save_index(
            catalog, tmp_path, version, DIM, changed=written, removed=[]
        )
        updated.append(True in loads)
        _assert_same_as_a_rebuild(index, *(await catalog.all_vectors(DIM)))
    assert updated == [True, True, False, True, True]  # 80, 160, (240 > 200: rebuilt), 80, 160
    assert (tmp_path / "index-v6.changes").read_text() == "160"
