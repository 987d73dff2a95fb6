"""The recommender with colour re-ranking, near-duplicates and stored colours, end to end
through ingest and search (real default model, generated catalog)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.core.ranking import RankingConfig
from bot.core.recommender import Recommender
from bot.core.sources import CatalogSource
from embeddings import AsyncEmbedder, Embedder, LabelHeads
from storage.catalog import Catalog
from tests.support.catalog import Product, jpeg_bytes, photo_of, write_styles


@pytest.fixture
async def world(tmp_path: Path, embedder: Embedder, generated_catalog):
    catalog = await Catalog.open(tmp_path / "data" / "catalog.sqlite3")
    async_embedder = AsyncEmbedder(embedder, garment_crop=True)

    async def open_with(**ranking: float) -> Recommender:
        return await Recommender.open(
            catalog, async_embedder, tmp_path / "data", ranking=RankingConfig(**ranking)
        )

    yield {
        "open": open_with,
        "styles": generated_catalog.styles,
        "images": generated_catalog.images,
        "products": generated_catalog.products,
        "catalog": catalog,
    }
    async_embedder.close()
    await catalog.close()


def _ids(matches) -> list[str]:
    return [match.item.item.id for match in matches]


def _by_id(products: list[Product]) -> dict[str, Product]:
    return {product.id: product for product in products}


async def test_a_red_dress_photo_gets_the_red_dress_first(world) -> None:
    recommender = await world["open"](colour_weight=0.25)
    await recommender.ingest(CatalogSource.fashion(world["styles"], world["images"]))
    page = await recommender.search_image(jpeg_bytes(photo_of("Dresses", "Red")), chat_id=3)
    first = _by_id(world["products"])[_ids(page.matches)[0]]
    assert (first.article_type, first.colour) == ("Dresses", "Red")
    session = await recommender.catalog.get_search(page.search_id)
    assert session.colour is not None, "the query's colour is kept for the next pages"


async def test_more_like_this_continues_the_same_ranking(world) -> None:
    """Page 1 + "More like this" shows what one page of twice the size would have shown."""
    recommender = await world["open"](colour_weight=1.0, diversity=0.2)
    await recommender.ingest(CatalogSource.fashion(world["styles"], world["images"]))
    photo = jpeg_bytes(photo_of("Tshirts", "Green"))
    page = await recommender.search_image(photo, chat_id=4)
    more = await recommender.more(page.search_id, chat_id=4)
    recommender.page_size = 10
    both = await recommender.search_image(photo, chat_id=4)
    assert set(_ids(page.matches)) | set(_ids(more.matches)) == set(_ids(both.matches))


async def test_a_duplicate_photo_does_not_share_a_page_with_its_twin(world) -> None:
    products = world["products"]
    red_dress = next(p for p in products if (p.article_type, p.colour) == ("Dresses", "Red"))
    twin = replace(red_dress, id="9999", name="Red Dresses no. 9999")
    shutil.copy(world["images"] / f"{red_dress.id}.jpg", world["images"] / "9999.jpg")
    write_styles(world["styles"], [*products, twin])
    recommender = await world["open"](near_duplicate=0.95)
    await recommender.ingest(CatalogSource.fashion(world["styles"], world["images"]))
    page = await recommender.search_image(jpeg_bytes(photo_of("Dresses", "Red")), chat_id=5)
    assert len(page.matches) == 5
    assert not {red_dress.id, "9999"} <= set(_ids(page.matches))
    shown = _ids(page.matches)
    while more := (await recommender.more(page.search_id, chat_id=5)).matches:
        shown += _ids(more)
    assert {red_dress.id, "9999"} <= set(shown), "the twin is deferred, not lost"


async def test_items_stored_without_colours_still_serve_and_are_reembedded(world) -> None:
    """A catalog from before colours existed: searches work, the next ingest fills them in."""
    recommender = await world["open"]()
    await recommender.ingest(CatalogSource.fashion(world["styles"], world["images"]))
    db = world["catalog"]._db
    await db.execute("UPDATE embeddings SET colour = NULL")
    page = await recommender.search_image(jpeg_bytes(photo_of("Trousers", "Blue")), chat_id=6)
    assert len(page.matches) == 5
    key = page.matches[0].item.key
    assert len((await recommender.search_from_item(key, chat_id=6)).matches) == 5
    report = await recommender.ingest(CatalogSource.fashion(world["styles"], world["images"]))
    assert report.embedded == len(world["products"])
    colours = await recommender.catalog.get_colours([key])
    assert colours[key] is not None


async def test_label_heads_rank_by_the_catalogs_own_labels(world, monkeypatch) -> None:
    """With label heads, a page follows the shop's labels: a product the shop calls a dress
    joins a dress photo's results even though it looks like trousers."""
    products = world["products"]
    relabelled = next(p for p in products if (p.article_type, p.colour) == ("Trousers", "Red"))
    write_styles(
        world["styles"],
        [replace(p, article_type="Dresses") if p is relabelled else p for p in products],
    )
    recommender = await world["open"](colour_weight=0.0, label_weight=5.0, visual_slots=0)
    await recommender.ingest(CatalogSource.fashion(world["styles"], world["images"]))
    items = await recommender.catalog.all_items()
    types = sorted({stored.item.article_type for stored in items.values()})
    centroids = np.stack([
        np.mean([recommender.index.get(k) for k, s in items.items() if s.item.article_type == t], 0)
        for t in types
    ])  # fmt: skip
    prototypes = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    heads = LabelHeads({"article_type": types}, {"article_type": prototypes}, 100.0)
    monkeypatch.setattr(recommender.embedder.embedder, "label_heads", heads)
    recommender.page_size = 7
    page = await recommender.search_image(jpeg_bytes(photo_of("Dresses", "Red")), chat_id=7)
    labelled_dresses = {p.id for p in products if p.article_type == "Dresses"} | {relabelled.id}
    assert set(_ids(page.matches)) == labelled_dresses
