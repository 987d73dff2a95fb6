"""The SQLite catalog, the USearch index and the styles.csv reader."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from storage.catalog import Catalog, EmbeddedItem
from storage.models import CatalogItem, Vote
from storage.source import CatalogSourceError, read_styles
from storage.vector_index import VectorIndex
from tests.support.catalog import stored_item


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _item(item_id: str, **fields: object) -> CatalogItem:
    return CatalogItem(id=item_id, name=f"Item {item_id}", image_path=f"/x/{item_id}.jpg", **fields)


@pytest.fixture
async def catalog(tmp_path: Path):
    opened = await Catalog.open(tmp_path / "db" / "catalog.sqlite3")
    yield opened
    await opened.close()


# -- index ---------------------------------------------------------------------------------


def test_index_finds_exact_vector_first_and_scores_cosine() -> None:
    vectors = _unit(np.random.default_rng(0).normal(size=(200, 16)))
    index = VectorIndex.build(np.arange(100, 300, dtype=np.uint64), vectors)
    hits = index.search(vectors[42], 5)
    assert hits[0][0] == 142
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [score for _, score in hits] == sorted((score for _, score in hits), reverse=True)


def test_index_search_excludes_keys_and_still_fills_the_page() -> None:
    vectors = _unit(np.random.default_rng(1).normal(size=(50, 8)))
    index = VectorIndex.build(np.arange(50, dtype=np.uint64), vectors)
    first = [key for key, _ in index.search(vectors[0], 5)]
    second = [key for key, _ in index.search(vectors[0], 5, exclude=set(first))]
    assert len(second) == 5
    assert not set(first) & set(second)


def test_index_save_load_roundtrip_and_get(tmp_path: Path) -> None:
    vectors = _unit(np.random.default_rng(2).normal(size=(30, 8)))
    index = VectorIndex.build(np.arange(30, dtype=np.uint64), vectors)
    index.save(tmp_path / "index.usearch")
    loaded = VectorIndex.load(tmp_path / "index.usearch")
    assert len(loaded) == 30 and loaded.ndim == 8
    np.testing.assert_allclose(loaded.get(7), vectors[7], atol=1e-6)
    assert loaded.get(999) is None
    assert not list(tmp_path.glob("*.tmp"))


def test_empty_index_answers_nothing() -> None:
    index = VectorIndex.build(np.empty(0), np.empty((0, 0)), ndim=8)
    assert len(index) == 0
    assert index.search(np.ones(8, np.float32), 5) == []


# -- catalog ---------------------------------------------------------------------------------


async def test_catalog_upsert_updates_instead_of_duplicating(catalog: Catalog) -> None:
    vector = np.ones(4, np.float32) / 2
    await catalog.write_items([EmbeddedItem(_item("10", article_type="Shirts"), "sha1", vector)])
    first = await stored_item(catalog, "10")
    await catalog.write_items([EmbeddedItem(_item("10", article_type="Tshirts"), "sha2", vector)])
    second = await stored_item(catalog, "10")
    assert await catalog.count_items() == 1
    assert second.key == first.key
    assert second.item.article_type == "Tshirts"
    assert second.image_sha256 == "sha2"


async def test_catalog_vectors_roundtrip_and_removal_cascades(catalog: Catalog) -> None:
    vectors = _unit(np.random.default_rng(3).normal(size=(3, 4)))
    await catalog.write_items(
        [EmbeddedItem(_item(str(i)), f"sha{i}", vectors[i]) for i in range(3)]
    )
    keys, stored = await catalog.all_vectors(4)
    np.testing.assert_array_equal(stored, vectors)
    await catalog.write_items([], remove_ids=["1"])
    keys, stored = await catalog.all_vectors(4)
    assert len(keys) == 2 and await catalog.count_items() == 2
    states = await catalog.item_states()
    assert set(states) == {"0", "2"} and all(state.has_vector for state in states.values())


async def test_failed_write_rolls_back_everything(catalog: Catalog) -> None:
    await catalog.write_items([EmbeddedItem(_item("1"), "sha", np.ones(4, np.float32))])

    class Boom(Exception):
        pass

    def exploding():
        yield EmbeddedItem(_item("2"), "sha", np.ones(4, np.float32))
        raise Boom

    with pytest.raises(Boom):
        await catalog.write_items(exploding(), remove_ids=["1"], meta={"model": "x"})
    assert set(await catalog.item_states()) == {"1"}
    assert await catalog.get_meta("model") is None


async def test_telegram_file_id_kept_for_same_image_and_dropped_when_image_changes(
    catalog: Catalog,
) -> None:
    vector = np.ones(4, np.float32)
    await catalog.write_items([EmbeddedItem(_item("1"), "sha", vector)])
    key = (await stored_item(catalog, "1")).key
    await catalog.set_telegram_file_ids({key: "FILE-1"})
    await catalog.write_items([], metadata_only=[_item("1", price="10 EUR")])
    assert (await catalog.get_items([key]))[key].telegram_file_id == "FILE-1"
    await catalog.write_items([EmbeddedItem(_item("1"), "new-sha", vector)])
    assert (await catalog.get_items([key]))[key].telegram_file_id is None


async def test_search_sessions_persist_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    catalog = await Catalog.open(path)
    search_id = await catalog.create_search(
        7, "model-a", np.arange(4, dtype=np.float32), [9, 1, 2],
        filters={"gender": "Women"}, seen={"article_type": "Jeans"}, page=[1, 2],
    )  # fmt: skip
    await catalog.add_page(search_id, [3])
    await catalog.close()
    reopened = await Catalog.open(path)
    session = await reopened.get_search(search_id)
    assert session.shown == (9, 1, 2, 3) and session.model == "model-a" and session.chat_id == 7
    assert session.pages == ((1, 2), (3,))
    assert session.filters == {"gender": "Women"} and session.seen == {"article_type": "Jeans"}
    np.testing.assert_array_equal(np.frombuffer(session.vector, np.float32), np.arange(4))
    assert await reopened.get_search(search_id + 1) is None
    await reopened.close()


async def test_a_second_vote_on_a_page_replaces_the_first(catalog: Catalog) -> None:
    def vote(page: int, value: int) -> Vote:
        return Vote(5, page, value, "m", b"\0" * 16, ("a", "b"), {"gender": "Men"}, {}, 1.0)

    assert await catalog.record_vote(vote(0, 1))
    assert not await catalog.record_vote(vote(0, -1))
    assert await catalog.record_vote(vote(1, 1))
    assert await catalog.vote_counts() == (2, 1)
    stored = await catalog.votes()
    assert [(v.page, v.vote) for v in stored] == [(0, -1), (1, 1)]
    assert stored[0].items == ("a", "b") and stored[0].filters == {"gender": "Men"}


async def test_a_search_id_is_never_reused_so_old_votes_stay_as_they_were(
    catalog: Catalog,
) -> None:
    vector = np.ones(4, np.float32)
    first = await catalog.create_search(1, "m", vector, [1, 2], page=[1, 2])
    await catalog.record_vote(Vote(first, 0, 1, "m", b"\0" * 16, ("a",), None, None, 1.0))
    assert await catalog.prune_searches(older_than_seconds=-60) == 1
    later = await catalog.create_search(2, "m", vector, [3], page=[3])
    assert later > first
    assert await catalog.record_vote(Vote(later, 0, -1, "m", b"\0" * 16, ("b",), None, None, 2.0))
    assert [(v.search_id, v.vote, v.items) for v in await catalog.votes()] == [
        (first, 1, ("a",)), (later, -1, ("b",)),
    ]  # fmt: skip


async def test_facets_are_the_labels_of_items_in_stock(catalog: Catalog) -> None:
    vectors = _unit(np.random.default_rng(2).normal(size=(3, 4)))
    items = [
        CatalogItem("1", "a", "a.jpg", gender="Men", article_type="Jeans", base_colour="Blue"),
        CatalogItem("2", "b", "b.jpg", article_type="Shirts", price="10 EUR"),
        CatalogItem("3", "c", "c.jpg", gender="Women", article_type="Dresses", available=False),
    ]
    pairs = enumerate(zip(items, vectors, strict=True))
    await catalog.write_items([EmbeddedItem(item, f"sha{i}", v) for i, (item, v) in pairs])
    facets = await catalog.facets()
    assert facets.article_types == {"Jeans", "Shirts"} and facets.genders == {"Men"}
    assert facets.base_colours == {"Blue"} and facets.priced
    keys = {
        item.id: key for key, item in ((k, s.item) for k, s in (await catalog.all_items()).items())
    }
    assert await catalog.keys_labelled(article_type="jeans") == [keys["1"]]
    assert await catalog.keys_labelled(not_colour="BLUE") == [keys["2"]], "no colour is another"
    assert await catalog.keys_labelled(genders=["Men", "Unisex"]) == [keys["1"]]
    assert await catalog.keys_labelled(article_type="Dresses") == [], "out of stock"


async def test_counter_and_concurrent_writes_do_not_interfere(catalog: Catalog) -> None:
    vectors = _unit(np.random.default_rng(4).normal(size=(50, 4)))
    ingest = catalog.write_items(
        [EmbeddedItem(_item(str(i)), "sha", vectors[i]) for i in range(50)]
    )
    counters = [catalog.increment_counter("queries_served") for _ in range(20)]
    await asyncio.gather(ingest, *counters)
    assert await catalog.get_meta("queries_served") == "20"
    assert await catalog.count_items() == 50


async def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    catalog = await Catalog.open(tmp_path / "c.sqlite3")
    async with catalog._db.execute("PRAGMA journal_mode") as cursor:
        assert (await cursor.fetchone())[0] == "wal"
    await catalog.close()


# -- styles.csv --------------------------------------------------------------------------------


def test_read_styles_parses_rows_and_reports_problems(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for item_id in ("1", "2"):
        (images / f"{item_id}.jpg").write_bytes(b"x")
    styles = tmp_path / "styles.csv"
    styles.write_text(
        "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,"
        "productDisplayName\n"
        "1,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,Blue Shirt, Slim Fit\n"
        "2,Women,Apparel,Topwear,Tops,Red,,,Casual,Red Top\n"
        "3,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,No Image\n"
        "../4,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,Evil\n"
        ",Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,No Id\n",
        encoding="utf-8",
    )
    rows = list(read_styles(styles, images))
    good = [row.item for row in rows if row.item]
    assert [item.id for item in good] == ["1", "2"]
    assert good[0].name == "Blue Shirt, Slim Fit"  # unquoted comma in the last column
    assert good[0].year == 2011 and good[1].year is None and good[1].season is None
    assert good[0].image_path == str(images / "1.jpg")
    problems = [row.problem for row in rows if row.item is None]
    assert len(problems) == 3
    assert "no image" in problems[0]


def test_read_styles_rejects_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogSourceError):
        list(read_styles(tmp_path / "nope.csv", tmp_path))
    (tmp_path / "bad.csv").write_text("name,colour\nx,y\n")
    with pytest.raises(CatalogSourceError):
        list(read_styles(tmp_path / "bad.csv", tmp_path))


async def test_written_keys_come_back_and_their_vectors_are_read_by_key(catalog: Catalog) -> None:
    vectors = _unit(np.random.default_rng(4).normal(size=(5, 4)))
    keys = await catalog.write_items(
        [EmbeddedItem(_item(str(i)), f"sha{i}", vectors[i]) for i in range(5)]
    )
    assert len(set(keys)) == 5 and await catalog.count_vectors() == 5
    again = await catalog.write_items([EmbeddedItem(_item("3"), "new", vectors[0])])
    assert again == [keys[3]]  # a re-embedded item keeps its key
    found, stored = await catalog.vectors_of([keys[3], keys[1], 999], 4)
    assert dict(zip(found.tolist(), map(tuple, stored), strict=True)) == {
        keys[3]: tuple(vectors[0]),
        keys[1]: tuple(vectors[1]),
    }
