"""Numbered schema migrations: applied once, in order, recorded in meta, safe for two
processes, and refusing a database from a newer version."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from storage import migrations
from storage.catalog import Catalog
from storage.migrations import MIGRATIONS, SchemaTooNew
from storage.models import CatalogItem
from tests.storage.test_colours import OLD_SCHEMA


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0])


def _columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


async def test_a_new_database_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    catalog = await Catalog.open(path)
    await catalog.close()
    assert _version(path) == len(MIGRATIONS) >= 2
    # A field added to CatalogItem needs a migration that adds its column.
    assert {field.name for field in fields(CatalogItem)} <= _columns(path, "items")
    assert {"vector", "colour"} <= _columns(path, "embeddings")


async def test_a_database_from_before_numbering_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    with sqlite3.connect(path) as db:  # the last unnumbered release: colour columns present
        db.executescript(OLD_SCHEMA)
        db.execute("ALTER TABLE embeddings ADD COLUMN colour BLOB")
        db.execute("ALTER TABLE searches ADD COLUMN colour BLOB")
        db.execute("INSERT INTO meta VALUES ('queries_served', '7')")
    catalog = await Catalog.open(path)
    try:
        assert await catalog.get_meta("queries_served") == "7"
    finally:
        await catalog.close()
    assert _version(path) == len(MIGRATIONS)


async def test_search_ids_count_on_from_the_highest_a_search_or_vote_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalog.sqlite3"
    with monkeypatch.context() as patched:  # a database of the release before m005
        patched.setattr(migrations, "MIGRATIONS", MIGRATIONS[:4])
        await (await Catalog.open(path)).close()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO searches (id, chat_id, model, vector, shown, created_at, pages) "
            "VALUES (3, 7, 'm', x'00', '[1]', 1e12, '[[1]]')"
        )
        db.execute(
            "INSERT INTO feedback (search_id, page, vote, model, vector, items, voted_at) "
            "VALUES (9, 0, 1, 'm', x'00', '[\"a\"]', 1.0)"
        )
    catalog = await Catalog.open(path)
    try:
        assert (await catalog.get_search(3)).pages == ((1,),), "searches are kept"
        assert await catalog.create_search(7, "m", np.ones(4, np.float32), []) == 10
    finally:
        await catalog.close()
    assert _version(path) == len(MIGRATIONS)


async def test_two_processes_opening_a_new_database_at_once(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    first, second = await asyncio.gather(Catalog.open(path), Catalog.open(path))
    await first.close()
    await second.close()
    assert _version(path) == len(MIGRATIONS)


async def test_an_up_to_date_database_opens_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    await (await Catalog.open(path)).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # e.g. `wardrobe ingest` committing a large catalog
    try:
        catalog = await Catalog.open(path)  # would raise "database is locked" if it wrote
        await catalog.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_a_database_from_a_newer_version_is_refused_and_closed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    await (await Catalog.open(path)).close()
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(len(MIGRATIONS) + 1),)
        )
    before = _connection_threads()
    with pytest.raises(SchemaTooNew, match="newer version"):
        await Catalog.open(path)
    deadline = time.monotonic() + 5  # a closed connection's thread ends soon after, not at once
    while not _connection_threads() <= before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _connection_threads() <= before, "the connection's thread was left running"
    assert _version(path) == len(MIGRATIONS) + 1, "nothing was rolled back or rewritten"


def _connection_threads() -> set[threading.Thread]:
    """aiosqlite's connection threads (other tests' helpers may start threads of their own)."""
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}
