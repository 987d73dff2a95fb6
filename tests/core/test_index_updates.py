"""A re-ingest that changed a few items updates the previous index instead of rebuilding it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.core import indexing
from bot.core.recommender import Recommender
from bot.core.sources import CatalogSource
from embeddings import AsyncEmbedder, Embedder
from storage import index_files
from storage.catalog import Catalog
from tests.support.catalog import Product, garment_image, stored_item, write_styles


async def test_a_small_reingest_updates_the_served_index_in_place(
    tmp_path: Path, embedder: Embedder, generated_catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    styles, images, products = (
        generated_catalog.styles,
        generated_catalog.images,
        generated_catalog.products,
    )
    catalog = await Catalog.open(tmp_path / "data" / "catalog.sqlite3")
    async_embedder = AsyncEmbedder(embedder)
    recommender = await Recommender.open(catalog, async_embedder, tmp_path / "data")
    try:
        await recommender.ingest(CatalogSource.fashion(styles, images))
        dropped = await stored_item(catalog, products[5].id)
        shutil.copy(images / f"{products[2].id}.jpg", images / f"{products[3].id}.jpg")
        added = Product("9999", "Dresses", "Blue", "Blue Dresses no. 9999")
        garment_image(added.article_type, added.colour, 1).save(images / "9999.jpg")
        write_styles(styles, [*products[:5], *products[6:], added])

        async def no_rebuild(*args: object) -> None:
            raise AssertionError("three changed items rebuilt the whole index")

        monkeypatch.setattr(index_files, "build_and_save_index", no_rebuild)
        monkeypatch.setattr(indexing, "build_and_save_index", no_rebuild)
        report = await recommender.ingest(CatalogSource.fashion(styles, images), prune=True)
        keys, vectors = await catalog.all_vectors(embedder.dim)
        added_key = (await stored_item(catalog, added.id)).key
    finally:
        async_embedder.close()
        await catalog.close()

    assert (report.embedded, report.removed) == (2, 1)
    index = recommender.index
    assert report.index_size == len(index) == len(keys) == len(products)
    assert dropped.key not in index
    for key, vector in zip(keys.tolist(), vectors, strict=True):
        np.testing.assert_array_equal(index.get(key), vector)
    assert index.search(index.get(added_key), 1)[0][0] == added_key
