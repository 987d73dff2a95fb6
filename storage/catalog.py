"""The catalog in SQLite (aiosqlite, WAL): items, their embeddings, shoppers' search sessions, meta.

SQLite is the source of truth. The USearch index is derived from the ``embeddings`` table and
can always be rebuilt from it (:mod:`storage.index_files`); ``meta.vectors_version`` names the
index file that matches the rows. The schema is :mod:`storage.migrations`'.
"""

from __future__ import annotations

import asyncio
import errno
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

import aiosqlite
import numpy as np

from storage.migrations import migrate
from storage.models import CatalogItem, Facets, SearchSession, StoredItem, Vote

_ITEM_COLUMNS = tuple(field.name for field in fields(CatalogItem))
_FULL_BELOW_BYTES = 1024 * 1024
"""Free space under which an SQLite error on opening is put down to a full disk."""
_KEYS_PER_QUERY = 10_000
"""Keys bound in one ``IN (...)`` query, under SQLite's 32,766 parameters per statement."""


async def _switch_to_wal(db: aiosqlite.Connection, seconds: float = 5.0) -> None:
    """``journal_mode=WAL`` takes an exclusive lock and SQLite does not always wait for it (the
    busy timeout is skipped to avoid deadlocks): two processes opening the same new catalog
    at once got "database is locked". Retry for a few seconds instead."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


class CatalogUnusable(RuntimeError):
    """The catalog file cannot be used as it is: damaged, not a database, or not writable."""


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says the disk is full, as the OS (saving an index file) or SQLite
    (writing the catalog) says it."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return isinstance(error, sqlite3.OperationalError) and "disk is full" in str(error)


@dataclass(frozen=True)
class EmbeddedItem:
    """An item ready to be written with its image fingerprint, vector and colour descriptor."""

    item: CatalogItem
    image_sha256: str
    vector: np.ndarray
    colour: np.ndarray | None = None


@dataclass(frozen=True)
class ItemState:
    key: int
    image_sha256: str | None
    has_vector: bool
    has_colour: bool
    """False for items embedded before colours were stored: an ingest re-embeds them."""
    origin: str = "feed"


class Catalog:
    """Async access to the catalog database; one instance per process, made by ``Catalog.open``."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # One connection is shared by every coroutine: without this lock a shopper's write
        # could land inside (and be committed or rolled back with) an ingest's transaction.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Catalog:
        """Open (creating and migrating) the catalog; an unusable file is one
        :class:`CatalogUnusable` naming it, never a hang: the connection's thread would keep
        the process from exiting, so it is closed on every failure."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)  # explicit transactions only
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA busy_timeout=5000")
            await _switch_to_wal(db)
            await db.execute("PRAGMA foreign_keys=ON")
            await migrate(db)
            # Pages the schema lives on: a damaged file fails here, not on a shopper's search.
            await db.execute("SELECT COUNT(*) FROM items")
        except sqlite3.DatabaseError as error:
            await db.close()
            if shutil.disk_usage(path.parent).free < _FULL_BELOW_BYTES:
                raise CatalogUnusable(
                    f"the disk holding {path} is full ({error}): free some space"
                ) from None
            raise CatalogUnusable(f"the catalog database {path} cannot be used: {error}") from None
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    # -- items -----------------------------------------------------------------------------

    async def count_items(self) -> int:
        async with self._db.execute("SELECT COUNT(*) FROM items") as cursor:
            (count,) = await cursor.fetchone()
        return int(count)

    async def item_states(self) -> dict[str, ItemState]:
        """What is stored per product id, so an ingest can skip unchanged images."""
        query = (
            "SELECT items.id, items.key, items.image_sha256, embeddings.item_key IS NOT NULL, "
            "embeddings.colour IS NOT NULL, items.origin "
            "FROM items LEFT JOIN embeddings ON embeddings.item_key = items.key"
        )
        async with self._db.execute(query) as cursor:
            rows = await cursor.fetchall()
        return {
            row[0]: ItemState(row[1], row[2], bool(row[3]), bool(row[4]), row[5]) for row in rows
        }

    async def item_by_id(self, item_id: str, *, or_group: bool = False) -> StoredItem | None:
        """The item with the shop's product id ``item_id``; ``or_group``: else the first
        variant of the product group of that id (a web shop links a product, the catalog
        holds its colours)."""
        async with self._db.execute(
            "SELECT * FROM items WHERE id = ? OR (? AND group_id = ?) "
            "ORDER BY id = ? DESC, available DESC, key LIMIT 1",
            (item_id, or_group, item_id, item_id),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _stored_item(row)

    async def variants(self, group_ids: Sequence[str]) -> dict[str, list[StoredItem]]:
        """The items in stock of each product group that have a vector, by group id."""
        rows = await self._rows_for_keys(
            "SELECT items.* FROM items JOIN embeddings ON embeddings.item_key = items.key "
            "WHERE items.available AND items.group_id IN ({keys}) ORDER BY items.key",
            group_ids,
        )
        found: dict[str, list[StoredItem]] = {}
        for row in rows:
            found.setdefault(row["group_id"], []).append(_stored_item(row))
        return found

    async def image_paths(self) -> set[Path]:
        """The image file of every item: what a cache of downloaded images must keep."""
        async with self._db.execute("SELECT image_path FROM items") as cursor:
            return {Path(row[0]) for row in await cursor.fetchall()}

    async def removed_ids(self) -> set[str]:
        """Feed items an admin removed with /remove: a reindex of the feed keeps them out."""
        async with self._db.execute("SELECT id FROM removed_items") as cursor:
            return {row[0] for row in await cursor.fetchall()}

    async def restore_removed(self, item_id: str) -> bool:
        """Let the next reindex bring a removed feed item back; False when it was not removed."""
        async with self._write_lock:
            cursor = await self._db.execute("DELETE FROM removed_items WHERE id = ?", (item_id,))
        return cursor.rowcount > 0

    async def facets(self) -> Facets:
        """The labels of the items in stock (those a search can show)."""
        async with self._db.execute(
            "SELECT DISTINCT article_type, base_colour, gender, price IS NOT NULL FROM items "
            "WHERE available AND key IN (SELECT item_key FROM embeddings)"
        ) as cursor:
            rows = await cursor.fetchall()
        return Facets(frozenset(row[:3] for row in rows), any(row[3] for row in rows))

    async def keys_labelled(
        self,
        *,
        article_type: str | None = None,
        colour: str | None = None,
        not_colour: str | None = None,
        genders: Iterable[str] | None = None,
    ) -> list[int]:
        """The keys of the items in stock with a vector whose labels are these (any case),
        ``not_colour`` excepted: the subset a narrowed search may search within."""
        where, values = ["available", "key IN (SELECT item_key FROM embeddings)"], []
        for column, value in (("article_type", article_type), ("base_colour", colour)):
            if value is not None:
                where.append(f"{column} = ? COLLATE NOCASE")
                values.append(value)
        if not_colour is not None:
            where.append("(base_colour IS NULL OR base_colour <> ? COLLATE NOCASE)")
            values.append(not_colour)
        if genders is not None:
            allowed = list(genders)
            where.append(f"gender IN ({','.join('?' * len(allowed))})")
            values.extend(allowed)
        query = f"SELECT key FROM items WHERE {' AND '.join(where)}"
        async with self._db.execute(query, values) as cursor:
            return [row[0] for row in await cursor.fetchall()]

    async def get_items(self, keys: Sequence[int]) -> dict[int, StoredItem]:
        rows = await self._rows_for_keys("SELECT * FROM items WHERE key IN ({keys})", keys)
        return {row["key"]: _stored_item(row) for row in rows}

    async def get_items_with_colours(
        self, keys: Sequence[int]
    ) -> dict[int, tuple[StoredItem, np.ndarray | None]]:
        """:meth:`get_items` and :meth:`get_colours` in one query, for the keys that have both
        a row and an embedding (what a search may show)."""
        rows = await self._rows_for_keys(
            "SELECT items.*, embeddings.colour AS colour FROM items "
            "JOIN embeddings ON embeddings.item_key = items.key WHERE items.key IN ({keys})",
            keys,
        )
        return {row["key"]: (_stored_item(row), _vector(row["colour"])) for row in rows}

    async def _rows_for_keys(self, query: str, keys: Sequence[int]) -> list[aiosqlite.Row]:
        """Rows of ``query``, whose ``{keys}`` is replaced by one placeholder per key."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        async with self._db.execute(query.format(keys=marks), tuple(keys)) as cursor:
            return list(await cursor.fetchall())

    async def all_items(self) -> dict[int, StoredItem]:
        async with self._db.execute("SELECT * FROM items") as cursor:
            rows = await cursor.fetchall()
        return {row["key"]: _stored_item(row) for row in rows}

    async def write_items(
        self,
        embedded: Iterable[EmbeddedItem],
        *,
        metadata_only: Iterable[CatalogItem] = (),
        remove_ids: Iterable[str] = (),
        keep_out: Iterable[str] = (),
        meta: dict[str, str] | None = None,
        clear_vectors: bool = False,
    ) -> list[int]:
        """Apply one ingest in a single transaction: either all of it lands or none of it.

        ``embedded`` items get new vectors, ``metadata_only`` items keep their vector (their
        image did not change), ``remove_ids`` are deleted, ``keep_out`` ids are recorded as
        removed by an admin (:meth:`removed_ids`), ``clear_vectors`` first drops every
        stored vector (the model changed, so old vectors are meaningless). Returns the keys
        of the ``embedded`` items, in order: what an index update has to (re)insert.
        """
        now = time.time()
        columns = ", ".join(_ITEM_COLUMNS)
        marks = ", ".join("?" * len(_ITEM_COLUMNS))
        updates = ", ".join(f"{name} = excluded.{name}" for name in _ITEM_COLUMNS if name != "id")
        upsert = (
            f"INSERT INTO items ({columns}, image_sha256, updated_at) VALUES ({marks}, ?, ?) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}, updated_at = excluded.updated_at, "
            "image_sha256 = COALESCE(excluded.image_sha256, items.image_sha256), "
            "telegram_file_id = CASE WHEN excluded.image_sha256 IS NULL "
            "OR excluded.image_sha256 = items.image_sha256 "
            "THEN items.telegram_file_id ELSE NULL END "
            "RETURNING key"
        )
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                keys = await self._apply(
                    upsert, now, embedded, metadata_only, remove_ids, meta, clear_vectors
                )
                await self._db.executemany(
                    "INSERT OR REPLACE INTO removed_items (id, removed_at) VALUES (?, ?)",
                    [(item_id, now) for item_id in keep_out],
                )
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")
        return keys

    async def _apply(
        self,
        upsert: str,
        now: float,
        embedded: Iterable[EmbeddedItem],
        metadata_only: Iterable[CatalogItem],
        remove_ids: Iterable[str],
        meta: dict[str, str] | None,
        clear_vectors: bool,
    ) -> list[int]:
        if clear_vectors:
            await self._db.execute("DELETE FROM embeddings")
        for item_id in remove_ids:
            await self._db.execute("DELETE FROM items WHERE id = ?", (item_id,))
        for item in metadata_only:
            await self._upsert(upsert, item, None, now)
        keys = []
        for entry in embedded:
            key = await self._upsert(upsert, entry.item, entry.image_sha256, now)
            await self._db.execute(
                "INSERT OR REPLACE INTO embeddings (item_key, vector, colour) VALUES (?, ?, ?)",
                (key, _blob(entry.vector), None if entry.colour is None else _blob(entry.colour)),
            )
            keys.append(key)
        for name, value in (meta or {}).items():
            await self._set_meta(name, value)
        return keys

    async def _upsert(self, upsert: str, item: CatalogItem, sha: str | None, now: float) -> int:
        async with self._db.execute(upsert, (*astuple(item), sha, now)) as cursor:
            (key,) = await cursor.fetchone()
        return int(key)

    async def all_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Every stored (key, vector) pair, for building the index."""
        async with self._db.execute(
            "SELECT item_key, vector FROM embeddings ORDER BY item_key"
        ) as cursor:
            rows = await cursor.fetchall()
        return _keys_and_vectors(rows, dim)

    async def vectors_of(self, keys: Sequence[int], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored (key, vector) pairs of those ``keys`` that have one, read by key: an index
        update reads what changed, not the catalog."""
        rows: list[aiosqlite.Row] = []
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            rows += await self._rows_for_keys(
                "SELECT item_key, vector FROM embeddings WHERE item_key IN ({keys})",
                keys[start : start + _KEYS_PER_QUERY],
            )
        return _keys_and_vectors(rows, dim)

    async def count_vectors(self) -> int:
        """How many items have a vector: the size an index of this catalog must have."""
        async with self._db.execute("SELECT COUNT(*) FROM embeddings") as cursor:
            (count,) = await cursor.fetchone()
        return int(count)

    async def get_colours(self, keys: Sequence[int]) -> dict[int, np.ndarray | None]:
        """Colour descriptors of those ``keys`` that have an embedding (None: not stored yet).

        A key missing from the result has no embedding row: the item left the catalog.
        """
        rows = await self._rows_for_keys(
            "SELECT item_key, colour FROM embeddings WHERE item_key IN ({keys})", keys
        )
        return {row[0]: _vector(row[1]) for row in rows}

    async def set_telegram_file_ids(self, file_ids: dict[int, str]) -> None:
        """Remember Telegram's file ids so the next album re-sends instead of re-uploading."""
        async with self._write_lock:
            await self._db.executemany(
                "UPDATE items SET telegram_file_id = ? WHERE key = ?",
                [(file_id, key) for key, file_id in file_ids.items()],
            )

    # -- search sessions -------------------------------------------------------------------

    async def create_search(
        self,
        chat_id: int,
        model: str,
        vector: np.ndarray,
        shown: Sequence[int],
        colour: np.ndarray | None = None,
        *,
        filters: dict[str, Any] | None = None,
        seen: dict[str, Any] | None = None,
        page: Sequence[int] | None = None,
    ) -> int:
        """Store a search; ``colour`` is the query's colour descriptor, so its next pages are
        re-ranked the same way after a restart; ``page``: the keys of its first page (which
        ``shown`` includes)."""
        row = (chat_id, model, _blob(vector), json.dumps(list(shown)))
        pages = json.dumps([] if page is None else [list(page)])
        extra = (_json_or_null(filters), _json_or_null(seen), pages)
        async with (
            self._write_lock,
            self._db.execute(
                "INSERT INTO searches (chat_id, model, vector, shown, created_at, colour, "
                "filters, seen, pages) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (*row, time.time(), None if colour is None else _blob(colour), *extra),
            ) as cursor,
        ):
            (search_id,) = await cursor.fetchone()
        return int(search_id)

    async def get_search(self, search_id: int) -> SearchSession | None:
        async with self._db.execute(
            "SELECT id, chat_id, model, vector, shown, colour, filters, seen, pages "
            "FROM searches WHERE id = ?",
            (search_id,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return SearchSession(
            row[0], row[1], row[2], row[3], tuple(json.loads(row[4])), row[5],
            filters=json.loads(row[6] or "{}"), seen=json.loads(row[7] or "{}"),
            pages=tuple(tuple(page) for page in json.loads(row[8])),
        )  # fmt: skip

    async def add_page(self, search_id: int, keys: Sequence[int]) -> None:
        """Record the next page of a search: its items join ``shown`` and ``pages``."""

        def add(shown: list[int], pages: list[list[int]]) -> tuple[list[int], list[list[int]]]:
            return [*shown, *keys], [*pages, list(keys)]

        await self._edit_pages(search_id, add)

    async def set_page(self, search_id: int, number: int, keys: Sequence[int]) -> None:
        """Keep only ``keys`` of page ``number`` of a search (what it showed): the others
        leave ``shown`` too, which stays the items searched from followed by the pages."""

        def keep(shown: list[int], pages: list[list[int]]) -> tuple[list[int], list[list[int]]]:
            if not 0 <= number < len(pages):
                return shown, pages
            left_out = set(pages[number]) - set(keys)
            pages[number] = [key for key in pages[number] if key not in left_out]
            return [key for key in shown if key not in left_out], pages

        await self._edit_pages(search_id, keep)

    async def _edit_pages(
        self,
        search_id: int,
        edit: Callable[[list[int], list[list[int]]], tuple[list[int], list[list[int]]]],
    ) -> None:
        """Rewrite a search's ``shown`` and ``pages`` by ``edit``; nothing if it is gone."""
        async with self._write_lock:
            async with self._db.execute(
                "SELECT shown, pages FROM searches WHERE id = ?", (search_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return
            shown, pages = edit(json.loads(row[0]), json.loads(row[1]))
            await self._db.execute(
                "UPDATE searches SET shown = ?, pages = ? WHERE id = ?",
                (json.dumps(shown), json.dumps(pages), search_id),
            )

    # -- shoppers' votes -------------------------------------------------------------------

    async def record_vote(self, vote: Vote) -> bool:
        """Store a shopper's vote on a page; a second vote on the same page replaces the
        first. True when it was the page's first vote."""
        async with self._write_lock:
            async with self._db.execute(
                "SELECT 1 FROM feedback WHERE search_id = ? AND page = ?",
                (vote.search_id, vote.page),
            ) as cursor:
                first = await cursor.fetchone() is None
            await self._db.execute(
                "INSERT INTO feedback (search_id, page, vote, model, vector, items, filters, "
                "seen, voted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (search_id, page) DO UPDATE SET vote = excluded.vote, "
                "voted_at = excluded.voted_at",
                (
                    vote.search_id, vote.page, vote.vote, vote.model, vote.vector,
                    json.dumps(list(vote.items)), _json_or_null(vote.filters),
                    _json_or_null(vote.seen), vote.voted_at,
                ),
            )  # fmt: skip
        return first

    async def vote_counts(self) -> tuple[int, int]:
        """(votes, of which 👍) over all pages shoppers voted on."""
        async with self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(vote = 1), 0) FROM feedback"
        ) as cursor:
            votes, up = await cursor.fetchone()
        return int(votes), int(up)

    async def votes(self) -> list[Vote]:
        """Every vote, oldest first (``wardrobe feedback``)."""
        async with self._db.execute(
            "SELECT search_id, page, vote, model, vector, items, filters, seen, voted_at "
            "FROM feedback ORDER BY voted_at, id"
        ) as cursor:
            rows = await cursor.fetchall()
        return [_vote(row) for row in rows]

    async def prune_searches(self, older_than_seconds: float) -> int:
        async with self._write_lock:
            cursor = await self._db.execute(
                "DELETE FROM searches WHERE created_at < ?", (time.time() - older_than_seconds,)
            )
        return cursor.rowcount

    async def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file and truncate it. SQLite does this
        by itself only when no reader holds the log, which a busy bot seldom allows."""
        async with self._write_lock:
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- meta ------------------------------------------------------------------------------

    async def get_meta(self, name: str) -> str | None:
        async with self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)) as cursor:
            row = await cursor.fetchone()
        return row[0] if row else None

    async def _set_meta(self, name: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    async def increment_counter(self, name: str, by: int = 1) -> int:
        async with (
            self._write_lock,
            self._db.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) "
                "DO UPDATE SET value = CAST(meta.value AS INTEGER) + ? RETURNING value",
                (name, str(by), by),
            ) as cursor,
        ):
            (value,) = await cursor.fetchone()
        return int(value)


def _blob(array: np.ndarray) -> bytes:
    return np.asarray(array, dtype=np.float32).tobytes()


def _keys_and_vectors(rows: Sequence[aiosqlite.Row], dim: int) -> tuple[np.ndarray, np.ndarray]:
    keys = np.fromiter((row[0] for row in rows), dtype=np.uint64, count=len(rows))
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    for i, row in enumerate(rows):
        vectors[i] = np.frombuffer(row[1], dtype=np.float32)
    return keys, vectors


def _vote(row: aiosqlite.Row) -> Vote:
    items, filters, seen = json.loads(row[5]), json.loads(row[6] or "{}"), row[7]
    return Vote(*row[:5], tuple(items), filters, json.loads(seen or "{}"), row[8])


def _json_or_null(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value, sort_keys=True) if value else None


def _vector(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32)


def _stored_item(row: aiosqlite.Row) -> StoredItem:
    values = {name: row[name] for name in _ITEM_COLUMNS}
    values["available"] = bool(values["available"])  # SQLite stores it as 0/1
    item = CatalogItem(**values)
    return StoredItem(row["key"], item, row["image_sha256"], row["telegram_file_id"])
