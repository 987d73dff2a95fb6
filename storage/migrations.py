"""Numbered schema migrations of the catalog database, recorded in ``meta.schema_version``.

Each migration runs once, in order, inside the same write transaction as the version it
records, so two processes opening one database at once (the bot and ``wardrobe ingest``)
cannot both apply it. Databases written before migrations were numbered hold no version:
they are migrated from 0, which is why each step only adds what is missing. A migration,
once released, is never edited: a schema change is a new function at the end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosqlite

Migration = Callable[[aiosqlite.Connection], Awaitable[None]]

MIGRATIONS: list[Migration] = []
"""In order: ``MIGRATIONS[n - 1]`` brings a database to version ``n``."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of the program than this one."""


def migration(step: Migration) -> Migration:
    MIGRATIONS.append(step)
    return step


async def migrate(db: aiosqlite.Connection) -> int:
    """Apply the migrations ``db`` lacks; returns its schema version after.

    An up-to-date database is only read: opening it never waits for another process's write.
    """
    version = await schema_version(db)
    _check_not_newer(version)
    if version == len(MIGRATIONS):
        return version
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        version = await schema_version(db)  # again: another process may just have migrated
        _check_not_newer(version)
        for step in MIGRATIONS[version:]:
            await step(db)
        await db.execute(
            "INSERT INTO meta (name, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (str(len(MIGRATIONS)),),
        )
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")
    return len(MIGRATIONS)


def _check_not_newer(version: int) -> None:
    if version > len(MIGRATIONS):
        raise SchemaTooNew(
            f"the catalog database has schema version {version}, this program knows up to "
            f"{len(MIGRATIONS)}: it was written by a newer version of Wardrobe Consultant"
        )


async def schema_version(db: aiosqlite.Connection) -> int:
    """The version recorded in ``meta``; 0 for a new database or one from before numbering."""
    async with db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ) as cursor:
        if await cursor.fetchone() is None:
            return 0
    async with db.execute("SELECT value FROM meta WHERE name = 'schema_version'") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


@migration
async def m001_catalog_and_searches(db: aiosqlite.Connection) -> None:
    """Items, their vectors, shoppers' searches (the first release's schema)."""
    await db.execute(
        """CREATE TABLE IF NOT EXISTS items (
            key INTEGER PRIMARY KEY,
            id TEXT, name TEXT, image_path TEXT, gender TEXT, master_category TEXT,
            sub_category TEXT, article_type TEXT, base_colour TEXT, season TEXT, year INTEGER,
            usage TEXT, price TEXT, url TEXT,
            image_sha256 TEXT,
            telegram_file_id TEXT,
            updated_at REAL NOT NULL,
            UNIQUE (id)
        )"""
    )
    await db.execute(
        """CREATE TABLE IF NOT EXISTS embeddings (
            item_key INTEGER PRIMARY KEY REFERENCES items(key) ON DELETE CASCADE,
            vector BLOB NOT NULL
        )"""
    )
    await db.execute(
        """CREATE TABLE IF NOT EXISTS searches (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL,
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            shown TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL
        )"""
    )
    await db.execute("CREATE INDEX IF NOT EXISTS searches_created_at ON searches (created_at)")


@migration
async def m002_colour_descriptors(db: aiosqlite.Connection) -> None:
    """A colour descriptor per item and per search; rows from before hold NULL (an ingest
    re-embeds such items, see ``ItemState.has_colour``)."""
    await _add_column(db, "embeddings", "colour", "BLOB")
    await _add_column(db, "searches", "colour", "BLOB")


@migration
async def m003_shop_feeds(db: aiosqlite.Connection) -> None:
    """What product feeds describe beyond the Fashion Product Images columns (brand, variant
    group, stock), where an item came from, and the feed items an admin removed with /remove
    (a reindex of the feed keeps them out)."""
    await _add_column(db, "items", "brand", "TEXT")
    await _add_column(db, "items", "group_id", "TEXT")
    await _add_column(db, "items", "available", "INTEGER NOT NULL DEFAULT 1")
    await _add_column(db, "items", "origin", "TEXT NOT NULL DEFAULT 'feed'")
    await db.execute("CREATE INDEX IF NOT EXISTS items_group_id ON items (group_id)")
    await db.execute(
        """CREATE TABLE IF NOT EXISTS removed_items (
            id TEXT PRIMARY KEY,
            removed_at REAL NOT NULL
        )"""
    )


@migration
async def m004_refinements_and_feedback(db: aiosqlite.Connection) -> None:
    """What a search was refined by (its filters), what the bot saw in the photo, the items of
    each page shown; and shoppers' 👍/👎 on a page. A vote copies the query and the page, so it
    outlives the search it was made on (searches are pruned after a few days)."""
    await _add_column(db, "searches", "filters", "TEXT")
    await _add_column(db, "searches", "seen", "TEXT")
    await _add_column(db, "searches", "pages", "TEXT NOT NULL DEFAULT '[]'")
    await db.execute(
        """CREATE TABLE IF NOT EXISTS feedback (
            id INTEGER PRIMARY KEY,
            search_id INTEGER NOT NULL,
            page INTEGER NOT NULL,
            vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            items TEXT NOT NULL,
            filters TEXT,
            seen TEXT,
            voted_at REAL NOT NULL,
            UNIQUE (search_id, page)
        )"""
    )


@migration
async def m005_search_ids_never_reused(db: aiosqlite.Connection) -> None:
    """Search ids are never handed out again. A vote outlives its search and is keyed by the
    search's id and page. A plain ``INTEGER PRIMARY KEY`` starts again at 1 once every search
    has been pruned, so a new search's vote would overwrite an old one (and an old button
    could name a new search). Rebuilt with ``AUTOINCREMENT``, counting on from the highest id
    any search or vote has used."""
    async with db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'searches'"
    ) as cursor:
        (schema,) = await cursor.fetchone()
    if "AUTOINCREMENT" in schema.upper():
        return
    columns = "id, chat_id, model, vector, shown, created_at, colour, filters, seen, pages"
    await db.execute(
        """CREATE TABLE searches_v5 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id INTEGER NOT NULL,
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            shown TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL,
            colour BLOB,
            filters TEXT,
            seen TEXT,
            pages TEXT NOT NULL DEFAULT '[]'
        )"""
    )
    await db.execute(f"INSERT INTO searches_v5 ({columns}) SELECT {columns} FROM searches")
    await db.execute("DROP TABLE searches")
    await db.execute("ALTER TABLE searches_v5 RENAME TO searches")
    await db.execute("CREATE INDEX searches_created_at ON searches (created_at)")
    await db.execute("DELETE FROM sqlite_sequence WHERE name = 'searches'")
    await db.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'searches', MAX("
        "(SELECT COALESCE(MAX(id), 0) FROM searches), "
        "(SELECT COALESCE(MAX(search_id), 0) FROM feedback))"
    )


async def _add_column(db: aiosqlite.Connection, table: str, column: str, kind: str) -> None:
    """``ALTER TABLE … ADD COLUMN`` unless a database from before numbered migrations has it."""
    async with db.execute(f"PRAGMA table_info({table})") as cursor:
        present = {row[1] for row in await cursor.fetchall()}
    if column not in present:
        await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
