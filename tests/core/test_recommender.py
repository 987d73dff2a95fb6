"""Ingestion and the recommender core with the real default model on a generated catalog."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from bot.core.recommender import EmptyCatalog, Recommender, SearchExpired, UnknownItem
from bot.core.sources import CatalogSource
from embeddings import AsyncEmbedder, Embedder, ImageRejected
from storage.catalog import Catalog
from storage.source import CatalogSourceError
from tests.support.catalog import jpeg_bytes, photo_of, stored_item, write_styles


@pytest.fixture
async def recommender(tmp_path: Path, embedder: Embedder):
    catalog = await Catalog.open(tmp_path / "data" / "catalog.sqlite3")
    async_embedder = AsyncEmbedder(embedder)
    opened = await Recommender.open(catalog, async_embedder, tmp_path / "data")
    yield opened
    async_embedder.close()
    await catalog.close()


@pytest.fixture
def source(generated_catalog):
    return generated_catalog.styles, generated_catalog.images, generated_catalog.products


async def test_ingest_reports_bad_images_and_indexes_the_rest(recommender, source) -> None:
    styles, images, products = source
    (images / f"{products[0].id}.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (images / f"{products[1].id}.jpg").unlink()
    progress: list[tuple[int, int]] = []
    report = await recommender.ingest(
        CatalogSource.fashion(styles, images), progress=lambda *p: progress.append(p)
    )
    assert report.index_size == len(products) - 2 == len(recommender.index)
    failed = dict(report.failures)
    assert set(failed) == {products[0].id, "line 3"}
    assert "no image" in failed["line 3"]
    assert progress[-1] == (len(products) - 1, len(products) - 1, "embedding images")


async def test_reingest_updates_instead_of_duplicating(recommender, source) -> None:
    styles, images, products = source
    await recommender.ingest(CatalogSource.fashion(styles, images))
    again = await recommender.ingest(CatalogSource.fashion(styles, images))
    assert (again.embedded, again.unchanged) == (0, len(products))
    renamed = [products[0].__class__(**{**products[0].__dict__, "name": "Renamed no. 1000"})]
    write_styles(styles, renamed + products[1:])
    shutil.copy(images / f"{products[2].id}.jpg", images / f"{products[3].id}.jpg")
    changed = await recommender.ingest(CatalogSource.fashion(styles, images))
    assert changed.embedded == 1 and changed.unchanged == len(products) - 1
    assert await recommender.catalog.count_items() == len(products)
    stored = await stored_item(recommender.catalog, products[0].id)
    assert stored.item.name == "Renamed no. 1000"


async def test_prune_removes_items_missing_from_the_source(recommender, source) -> None:
    styles, images, products = source
    await recommender.ingest(CatalogSource.fashion(styles, images))
    write_styles(styles, products[:10])
    report = await recommender.ingest(CatalogSource.fashion(styles, images), prune=True)
    assert report.removed == len(products) - 10
    assert len(recommender.index) == 10 == await recommender.catalog.count_items()


async def test_missing_source_is_a_clear_error(recommender, tmp_path: Path) -> None:
    with pytest.raises(CatalogSourceError, match="not found"):
        await recommender.ingest(CatalogSource.fashion(tmp_path / "missing.csv", tmp_path))


async def test_empty_catalog_is_reported(recommender) -> None:
    with pytest.raises(EmptyCatalog):
        await recommender.search_image(jpeg_bytes(photo_of("Tshirts", "Red")), chat_id=1)


async def test_search_more_and_item_search(recommender, source) -> None:
    styles, images, _ = source
    await recommender.ingest(CatalogSource.fashion(styles, images))
    by_key = await recommender.catalog.all_items()

    page = await recommender.search_image(jpeg_bytes(photo_of("Trousers", "Blue")), chat_id=5)
    assert len(page.matches) == 5
    assert page.matches[0].item.item.article_type == "Trousers"
    scores = [match.score for match in page.matches]
    assert scores == sorted(scores, reverse=True)

    seen = [match.item.key for match in page.matches]
    while more := (await recommender.more(page.search_id, chat_id=5)).matches:
        seen += [match.item.key for match in more]
    assert sorted(seen) == sorted(by_key), "paging shows every item exactly once"

    seed = page.matches[0].item.key
    from_item = await recommender.search_from_item(seed, chat_id=5)
    assert seed not in [match.item.key for match in from_item.matches]
    assert from_item.matches[0].item.item.article_type == "Trousers"

    with pytest.raises(SearchExpired):
        await recommender.more(10_000, chat_id=5)
    with pytest.raises(SearchExpired):  # another chat cannot read or advance this search
        await recommender.more(page.search_id, chat_id=6)
    with pytest.raises(UnknownItem):
        await recommender.search_from_item(10_000, chat_id=5)
    with pytest.raises(ImageRejected):
        await recommender.search_image(b"not an image", chat_id=5)
    pages = math.ceil(len(seen) / 5) + 1  # the photo search and its "more" pages, the item search
    assert await recommender.catalog.get_meta("queries_served") == str(pages)


async def test_a_second_process_ingest_is_picked_up(
    recommender, source, embedder, tmp_path
) -> None:
    """``wardrobe ingest`` run beside the bot: the bot reloads the index on its next query."""
    styles, images, products = source
    catalog = await Catalog.open(tmp_path / "data" / "catalog.sqlite3")
    other = await Recommender.open(catalog, AsyncEmbedder(embedder), tmp_path / "data")
    await other.ingest(CatalogSource.fashion(styles, images))
    page = await recommender.search_image(jpeg_bytes(photo_of("Dresses", "Green")), chat_id=1)
    assert len(page.matches) == 5 and len(recommender.index) == len(products)
    other.embedder.close()
    await catalog.close()
