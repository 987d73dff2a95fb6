"""Colour descriptors in the catalog: stored per item and per search, and the migration of
databases written before colours existed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from storage.catalog import Catalog, EmbeddedItem
from storage.models import CatalogItem

# The schema as the first release wrote it: no colour columns anywhere.
OLD_SCHEMA = """
CREATE TABLE items (
    key INTEGER PRIMARY KEY, id TEXT, name TEXT, image_path TEXT, gender TEXT,
    master_category TEXT, sub_category TEXT, article_type TEXT, base_colour TEXT, season TEXT,
    year INTEGER, usage TEXT, price TEXT, url TEXT, image_sha256 TEXT, telegram_file_id TEXT,
    updated_at REAL NOT NULL, UNIQUE (id)
);
CREATE TABLE embeddings (
    item_key INTEGER PRIMARY KEY REFERENCES items(key) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
CREATE TABLE searches (
    id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL, model TEXT NOT NULL,
    vector BLOB NOT NULL, shown TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL
);
CREATE INDEX searches_created_at ON searches (created_at);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _old_database(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute(
            "INSERT INTO items (key, id, name, image_path, article_type, image_sha256, updated_at)"
            " VALUES (1, 'old', 'Old shirt', '/x/old.jpg', 'Shirts', 'abc', 0)"
        )
        db.execute("INSERT INTO embeddings VALUES (1, ?)", (np.ones(4, np.float32).tobytes(),))
        db.execute(
            "INSERT INTO searches (chat_id, model, vector, shown, created_at) VALUES (?,?,?,?,?)",
            (7, "m", np.ones(4, np.float32).tobytes(), json.dumps([1]), 1e12),
        )


async def test_an_old_database_opens_and_works(tmp_path: Path) -> None:
    path = tmp_path / "data" / "catalog.sqlite3"
    _old_database(path)
    catalog = await Catalog.open(path)
    try:
        state = (await catalog.item_states())["old"]
        assert state.has_vector and not state.has_colour, "an old item must get re-embedded"
        assert await catalog.get_colours([1, 2]) == {1: None}
        old_search = await catalog.get_search(1)
        assert old_search is not None and old_search.colour is None
        assert old_search.shown == (1,)

        colour = np.linspace(0, 1, 22, dtype=np.float32)
        item = CatalogItem(id="old", name="Old shirt", image_path="/x/old.jpg")
        await catalog.write_items([EmbeddedItem(item, "abc", np.ones(4), colour)])
        state = (await catalog.item_states())["old"]
        assert state.has_colour
        np.testing.assert_array_equal((await catalog.get_colours([1]))[1], colour)
        search_id = await catalog.create_search(7, "m", np.ones(4), [1], colour)
        stored = await catalog.get_search(search_id)
        np.testing.assert_array_equal(np.frombuffer(stored.colour, np.float32), colour)
    finally:
        await catalog.close()
    reopened = await Catalog.open(path)  # a second open finds the columns already there
    await reopened.close()


async def test_a_search_without_colour_is_stored_as_such(tmp_path: Path) -> None:
    catalog = await Catalog.open(tmp_path / "catalog.sqlite3")
    try:
        search_id = await catalog.create_search(1, "m", np.ones(4), [])
        assert (await catalog.get_search(search_id)).colour is None
    finally:
        await catalog.close()
