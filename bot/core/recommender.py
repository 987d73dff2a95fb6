"""The product's core, free of Telegram: photo or catalog item in, a page of similar items out.

Query sessions live in SQLite so "More like this" keeps working after a restart. The served
index is swapped atomically (one attribute assignment) when a reindex completes, and reloaded
when another process (``wardrobe ingest``) has written a newer catalog version.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.core.filters import (
    GENDERS,
    NO_FILTERS,
    NOTHING_SEEN,
    Filters,
    Refinement,
    Seen,
    offered,
)
from bot.core.indexing import Edit, Indexer, IngestReport, ProgressCallback
from bot.core.ranking import (
    RANKED_LABELS,
    Candidate,
    RankingConfig,
    label_agreement,
    relevance,
    select_first_page,
    select_page,
)
from bot.core.seeing import CLOSE_SIMILARITY, catalog_lacks, seen_in_photo
from bot.core.sources import CatalogSource
from embeddings import AsyncEmbedder
from storage.catalog import Catalog
from storage.downloads import DownloadLimits
from storage.index_files import load_or_rebuild_index
from storage.models import CatalogItem, Facets, SearchSession, StoredItem, Vote
from storage.vector_index import VectorIndex


class EmptyCatalog(Exception):
    """There is nothing to recommend from yet."""


class SearchExpired(Exception):
    """The stored search is gone or was made with a model the catalog no longer uses."""


class UnknownItem(Exception):
    """The catalog item a shopper tapped is no longer in the catalog."""


POOL_GROWTH = 4
"""How much wider the next pool is when out-of-stock items, variants or filters left too few."""


@dataclass(frozen=True)
class Match:
    item: StoredItem
    score: float
    variants: int = 0
    """How many other variants (colours) of this product are in stock."""
    similarity: float = 1.0
    """Cosine similarity of the item's CNN vector to the query's."""


@dataclass(frozen=True)
class ResultPage:
    search_id: int
    matches: list[Match]
    page: int = 0
    """Which page of its search this is (0: the first); a vote names it."""
    seen: Seen = NOTHING_SEEN
    filters: Filters = NO_FILTERS
    refinements: tuple[Refinement, ...] = ()
    """The refinements worth offering under this page (:func:`bot.core.filters.offered`)."""
    close: bool = True
    """False: nothing in the catalog looks very close to the query, these are the nearest."""
    from_photo: bool = False
    """The first page of a search from a shopper's photo (what the model saw is said)."""


@dataclass(frozen=True)
class RecommenderStats:
    """What ``/stats`` and ``wardrobe stats`` report."""

    items: int
    index_vectors: int
    catalog_model: str | None
    """The model the stored vectors were made with (None before the first ingest)."""
    model: str
    """The model this process embeds with."""
    runtime: str
    """What runs it: ``onnx`` or ``torch``."""
    dim: int
    queries_served: int
    uptime_seconds: float
    reindexing: bool
    votes: int = 0
    """Pages shoppers voted 👍 or 👎 on."""
    votes_up: int = 0

    def feedback(self) -> str:
        """The share of 👍, like "75% 👍 (3 of 4 votes)", or "no votes yet"."""
        if not self.votes:
            return "no votes yet"
        return f"{100 * self.votes_up / self.votes:.0f}% 👍 ({self.votes_up} of {self.votes} votes)"


class Recommender:
    def __init__(
        self,
        catalog: Catalog,
        embedder: AsyncEmbedder,
        index: VectorIndex,
        *,
        data_dir: Path,
        page_size: int = 5,
        ranking: RankingConfig | None = None,
        downloads: DownloadLimits | None = None,
        close_similarity: float = CLOSE_SIMILARITY,
    ) -> None:
        self.catalog = catalog
        self.embedder = embedder
        self.page_size = page_size
        self.ranking = ranking or RankingConfig()
        self.close_similarity = close_similarity
        self._facets: tuple[str | None, Facets] | None = None
        self._indexer = Indexer(catalog, embedder, data_dir, downloads)
        self._started_at = time.time()
        self._data_dir = data_dir
        self._index = index
        self._index_version: str | None = None
        self._reload_lock = asyncio.Lock()
        self._search_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @classmethod
    async def open(
        cls,
        catalog: Catalog,
        embedder: AsyncEmbedder,
        data_dir: Path,
        page_size: int = 5,
        ranking: RankingConfig | None = None,
        downloads: DownloadLimits | None = None,
        close_similarity: float = CLOSE_SIMILARITY,
    ) -> Recommender:
        recommender = cls(
            catalog,
            embedder,
            VectorIndex.build(np.empty(0), np.empty((0, 0)), ndim=embedder.dim),
            data_dir=data_dir,
            page_size=page_size,
            ranking=ranking,
            downloads=downloads,
            close_similarity=close_similarity,
        )
        await recommender.refresh_index()
        return recommender

    @property
    def index(self) -> VectorIndex:
        return self._index

    @property
    def reindexing(self) -> bool:
        """Whether an ingest is running in this process."""
        return self._indexer.running

    async def stats(self) -> RecommenderStats:
        votes, up = await self.catalog.vote_counts()
        return RecommenderStats(
            items=await self.catalog.count_items(),
            index_vectors=len(self._index),
            catalog_model=await self.catalog.get_meta("model"),
            model=self.embedder.model_name,
            runtime=self.embedder.runtime,
            dim=self.embedder.dim,
            queries_served=int(await self.catalog.get_meta("queries_served") or 0),
            uptime_seconds=time.time() - self._started_at,
            reindexing=self.reindexing,
            votes=votes,
            votes_up=up,
        )

    async def warm_up(self) -> None:
        """Load the model now (in the embedder's worker), so the first shopper doesn't wait."""
        await self.embedder.load()

    async def close(self) -> None:
        """Close the embedder's worker and the catalog this recommender was opened with."""
        self.embedder.close()
        await self.catalog.close()

    async def remember_file_ids(self, file_ids: dict[int, str]) -> None:
        """Keep the messenger's ids of uploaded photos (item key → file id), so the next album
        re-sends them instead of uploading again."""
        if file_ids:
            await self.catalog.set_telegram_file_ids(file_ids)

    async def record_sent(self, page: ResultPage, sent: ResultPage) -> None:
        """The items of ``page`` the shopper got (``sent``: those whose photo could be sent),
        which is what a vote on it records."""
        keys = [match.item.key for match in sent.matches]
        if keys != [match.item.key for match in page.matches]:
            await self.catalog.set_page(page.search_id, page.page, keys)

    def swap_index(self, index: VectorIndex, version: str) -> None:
        """Serve ``index`` from now on; searches already running finish on the old one."""
        self._index = index
        self._index_version = version

    async def refresh_index(self) -> VectorIndex:
        """Load the index again if the catalog's vectors changed since it was loaded."""
        version = await self.catalog.get_meta("vectors_version")
        if version == self._index_version:
            return self._index
        async with self._reload_lock:
            if version != self._index_version and not self._indexer.running:
                model = await self.catalog.get_meta("model")
                if model in (None, self.embedder.model_name):
                    index = await load_or_rebuild_index(
                        self.catalog, self._data_dir, self.embedder.dim
                    )
                    self.swap_index(index, version)
        return self._index

    async def ingest(
        self,
        source: CatalogSource,
        *,
        reembed_all: bool = False,
        prune: bool = False,
        progress: ProgressCallback | None = None,
        max_removed_share: float = 1.0,
    ) -> IngestReport:
        """Run an ingest; shoppers are served from the old index until the new one is swapped in."""
        index, report = await self._indexer.ingest(
            source,
            reembed_all=reembed_all,
            prune=prune,
            progress=progress,
            max_removed_share=max_removed_share,
        )
        self.swap_index(index, str(report.version))
        return report

    async def add_item(self, item: CatalogItem, image: bytes) -> StoredItem:
        """Put an admin's item in the catalog and serve it from the next search on."""
        edit = await self._indexer.add_item(item, image)
        return self._served(edit).item

    async def remove_item(self, item_id: str) -> StoredItem | None:
        """Take an item out of the catalog and of the served index; None: no such item."""
        edit = await self._indexer.remove_item(item_id)
        return None if edit is None else self._served(edit).item

    def _served(self, edit: Edit) -> Edit:
        self.swap_index(edit.index, str(edit.version))
        return edit

    async def search_image(self, data: bytes, chat_id: int) -> ResultPage:
        """Raises ``ImageRejected`` for input that is not a usable image, ``EmptyCatalog``."""
        index = await self._serving_index()
        features = await self.embedder.features_bytes(data)
        query = _Query(features.vectors[0], features.colours[0])
        return await self._start_search(index, query, chat_id, seed=(), seen=None)

    async def find_similar(self, data: bytes, top: int) -> list[Match]:
        """A one-off search with no stored session (``wardrobe search``, benchmarks)."""
        index = await self._serving_index()
        features = await self.embedder.features_bytes(data)
        query = _Query(features.vectors[0], features.colours[0])
        return await self._matches(index, query, count=top)

    async def search_from_item(self, key: int, chat_id: int) -> ResultPage:
        """A new search seeded with a catalog item's stored vector and colour (no image work)."""
        index = await self._serving_index()
        vector = index.get(key)
        stored = (await self.catalog.get_items([key])).get(key)
        if vector is None or stored is None:
            raise UnknownItem(key)
        colour = (await self.catalog.get_colours([key])).get(key)
        seen = Seen.of_item(stored.item)
        return await self._start_search(index, _Query(vector, colour), chat_id, (key,), seen)

    async def search_from_item_id(self, item_id: str, chat_id: int) -> ResultPage:
        """:meth:`search_from_item` by the shop's product id (or product group id), as a web
        shop's "find similar" link names it."""
        stored = await self.catalog.item_by_id(item_id, or_group=True)
        if stored is None:
            raise UnknownItem(item_id)
        return await self.search_from_item(stored.key, chat_id)

    async def colours_of(self, key: int, chat_id: int) -> ResultPage:
        """The other variants in stock of item ``key``'s product, nearest look first, as a new
        search from that item (its "More like this" goes on with similar products)."""
        index = await self._serving_index()
        vector = index.get(key)
        stored = (await self.catalog.get_items([key])).get(key)
        if vector is None or stored is None:
            raise UnknownItem(key)
        group = stored.item.group_id
        siblings = (await self.catalog.variants([group])).get(group, []) if group else []
        ranked = sorted(
            (
                (float(sibling_vector @ vector), sibling)
                for sibling in siblings
                if sibling.key != key and (sibling_vector := index.get(sibling.key)) is not None
            ),
            key=lambda pair: -pair[0],
        )
        matches = [Match(sibling, score, 0, score) for score, sibling in ranked[: self.page_size]]
        colour = (await self.catalog.get_colours([key])).get(key)
        page = [match.item.key for match in matches]
        seen = Seen.of_item(stored.item)
        search_id = await self.catalog.create_search(
            chat_id, self.embedder.model_name, vector, [key, *page], colour,
            seen=seen.to_json(), page=page,
        )  # fmt: skip
        await self.catalog.increment_counter("queries_served")
        return await self._page(search_id, matches, 0, seen, NO_FILTERS)

    async def more(self, search_id: int, chat_id: int) -> ResultPage:
        """The next page of a stored search, never repeating an item already shown, narrowed
        by the search's filters.

        A search belongs to the chat it was made in: for any other chat it does not exist.
        Presses on one search take turns (a double tap gets two different pages).
        """
        async with self._search_lock(search_id):
            session, index, query = await self._stored_search(search_id, chat_id)
            filters, seen = Filters.from_json(session.filters), Seen.from_json(session.seen)
            matches = await self._matches(
                index, query, exclude=session.shown, count=self.page_size, first_page=False,
                filters=filters,
            )  # fmt: skip
            if matches:
                await self.catalog.add_page(search_id, [match.item.key for match in matches])
                await self.catalog.increment_counter("queries_served")
        return await self._page(search_id, matches, len(session.pages), seen, filters)

    def _search_lock(self, search_id: int) -> asyncio.Lock:
        lock = self._search_locks.get(search_id)
        if lock is None:
            lock = self._search_locks[search_id] = asyncio.Lock()
        return lock

    async def refine(
        self, search_id: int, chat_id: int, refinement: Refinement, page: int | None = None
    ) -> ResultPage:
        """A new search from the same query, with ``refinement`` added to its filters (or
        them cleared); it starts again from the best match the filters let through. ``page``:
        the page whose button it was (its prices set "Cheaper"), else the last one."""
        session, index, query = await self._stored_search(search_id, chat_id)
        seen = Seen.from_json(session.seen)
        if page is None or not 0 <= page < len(session.pages):
            page = len(session.pages) - 1
        keys = session.pages[page] if page >= 0 else ()
        page_items = [item.item for item in (await self.catalog.get_items(keys)).values()]
        filters = Filters.from_json(session.filters).refined(refinement, seen, page_items)
        return await self._start_search(
            index, query, chat_id, _seed(session), seen, filters=filters
        )

    async def vote(self, search_id: int, chat_id: int, page: int, up: bool) -> bool:
        """Store a shopper's 👍 (``up``) or 👎 on a page of their search, with the query and
        what the page showed; True for the page's first vote, False when it replaced one."""
        session = await self.catalog.get_search(search_id)
        if session is None or session.chat_id != chat_id or not 0 <= page < len(session.pages):
            raise SearchExpired(search_id)
        items = await self.catalog.get_items(session.pages[page])
        ids = tuple(items[key].item.id for key in session.pages[page] if key in items)
        vote = Vote(
            search_id, page, 1 if up else -1, session.model, session.vector, ids,
            session.filters, session.seen, time.time(),
        )  # fmt: skip
        return await self.catalog.record_vote(vote)

    async def _stored_search(
        self, search_id: int, chat_id: int
    ) -> tuple[SearchSession, VectorIndex, _Query]:
        session = await self.catalog.get_search(search_id)
        if (
            session is None
            or session.chat_id != chat_id
            or session.model != self.embedder.model_name
        ):
            raise SearchExpired(search_id)
        index = await self._serving_index()
        vector = np.frombuffer(session.vector, dtype=np.float32)
        if vector.shape != (index.ndim,):
            raise SearchExpired(search_id)
        colour = None if session.colour is None else np.frombuffer(session.colour, np.float32)
        return session, index, _Query(vector, colour)

    async def _serving_index(self) -> VectorIndex:
        index = await self.refresh_index()
        if len(index) == 0:
            raise EmptyCatalog()
        return index

    async def _start_search(
        self,
        index: VectorIndex,
        query: _Query,
        chat_id: int,
        seed: tuple[int, ...],
        seen: Seen | None,
        *,
        filters: Filters = NO_FILTERS,
    ) -> ResultPage:
        """A search's first page; ``seed``: the item it starts from (never shown), ``seen``:
        what the query shows, None for a photo (the model says)."""
        matches = await self._matches(
            index, query, exclude=seed, count=self.page_size, filters=filters
        )
        facets = await self.facets()
        page_items = [match.item.item for match in matches]
        photo = seen is None
        if seen is None:
            seen = seen_in_photo(self.embedder.label_heads, query.vector, facets, page_items)
        best = max((match.similarity for match in matches), default=-1.0)
        close = best >= self.close_similarity or filters.active  # no claim from a subset
        if photo and catalog_lacks(self.embedder.label_heads, seen, facets):
            close = False
        keys = [match.item.key for match in matches]
        search_id = await self.catalog.create_search(
            chat_id, self.embedder.model_name, query.vector, [*seed, *keys], query.colour,
            filters=filters.to_json(), seen=seen.to_json(), page=keys,
        )  # fmt: skip
        await self.catalog.increment_counter("queries_served")
        return await self._page(search_id, matches, 0, seen, filters, close=close, from_photo=photo)

    async def _page(
        self,
        search_id: int,
        matches: list[Match],
        number: int,
        seen: Seen,
        filters: Filters,
        *,
        close: bool = True,
        from_photo: bool = False,
    ) -> ResultPage:
        page_items = [match.item.item for match in matches]
        refinements = tuple(offered(seen, filters, await self.facets(), page_items))
        return ResultPage(search_id, matches, number, seen, filters, refinements, close, from_photo)

    async def facets(self) -> Facets:
        """The labels of the items in stock, read again when the served index changes."""
        if self._facets is None or self._facets[0] != self._index_version:
            self._facets = (self._index_version, await self.catalog.facets())
        return self._facets[1]

    async def _matches(
        self,
        index: VectorIndex,
        query: _Query,
        *,
        count: int,
        exclude: tuple[int, ...] = (),
        first_page: bool = True,
        filters: Filters = NO_FILTERS,
    ) -> list[Match]:
        """The next ``count`` items under :mod:`bot.core.ranking`'s rule, best first.

        The index is asked for a pool of the nearest items not in ``exclude``; only those that
        still have a catalog row compete (while a reindex commits, the index being served may
        still hold items the new catalog dropped). ``exclude`` holds what this search already
        showed, which the page must differ from. A ``first_page`` leads with the best matches
        by look alone (``visual_slots``), the exact product first when the shop has it.
        """
        config = self.ranking
        candidates, stored = await self._candidates(index, query, count, exclude, filters)
        shown = [vector for key in exclude if (vector := index.get(key)) is not None]
        visual = relevance(candidates, query.colour, config.colour_weight)
        scores, heads = visual, self.embedder.label_heads
        agreement = None
        if heads is not None and config.label_weight > 0:
            agreement = label_agreement(heads, query.vector, candidates)
        if agreement is not None:
            scores = relevance(
                candidates, query.colour, config.colour_weight, agreement, config.label_weight
            )
        options = {"shown": shown, "diversity": config.diversity,
                   "near_duplicate": config.near_duplicate}  # fmt: skip
        if first_page and scores is not visual:
            page = select_first_page(
                candidates, visual, scores, count, visual_slots=config.visual_slots, **options
            )
        else:
            page = select_page(candidates, scores, count, **options)
        page_items = [stored[candidates[i].key][0] for i in page]
        groups = [item.item.group_id for item in page_items if item.item.group_id]
        variants = await self.catalog.variants(groups) if groups else {}
        return [
            Match(item, float(scores[i]), _other_variants(item, variants), candidates[i].similarity)
            for i, item in zip(page, page_items, strict=True)
        ]

    async def _candidates(
        self,
        index: VectorIndex,
        query: _Query,
        count: int,
        exclude: tuple[int, ...],
        filters: Filters,
    ) -> tuple[list[Candidate], dict[int, tuple[StoredItem, np.ndarray | None]]]:
        """The pool a page is chosen from: the nearest items in stock that still have a
        catalog row and pass ``filters``, one per product (its variant nearest the query),
        none of a product already shown. Out-of-stock items, variants and what filters leave
        out stay in the index, so the pool grows until it holds ``count`` or the index ends;
        a narrowed search searches the items its filters let through instead, once they are
        fewer than the next pool would hold (:meth:`_passing_keys`).
        """
        shown_groups = {
            item.item.group_id
            for item in (await self.catalog.get_items(list(exclude))).values()
            if item.item.group_id
        }
        size = max(self.ranking.pool, 2 * count)
        subset = passing = None
        while True:
            if subset is None:
                hits = index.search(query.vector, size, exclude=set(exclude))
            else:
                hits = subset
            stored = await self.catalog.get_items_with_colours([key for key, _ in hits])
            candidates, groups = [], set(shown_groups)
            for key, similarity in hits:
                if key not in stored or (vector := index.get(key)) is None:
                    continue
                item = stored[key][0].item
                if not item.available or (item.group_id and item.group_id in groups):
                    continue
                if not filters.admits(item):
                    continue
                if item.group_id:
                    groups.add(item.group_id)
                candidates.append(
                    Candidate(key, similarity, vector, stored[key][1], _labels(stored[key][0]))
                )
            if len(candidates) >= count or size >= len(index) or subset is not None:
                return candidates, stored
            if filters.active and passing is None:
                passing = await self._passing_keys(index, filters, exclude)
            if passing is not None and len(passing) <= size * POOL_GROWTH:
                subset = _nearest(index, query, passing)
            size *= POOL_GROWTH

    async def _passing_keys(
        self, index: VectorIndex, filters: Filters, exclude: tuple[int, ...]
    ) -> list[int]:
        """The indexed items in stock whose labels pass ``filters`` (price aside), less
        ``exclude``: what a narrowed search searches within once that is smaller than the
        next pool."""
        genders = GENDERS.get(filters.gender) if filters.gender else None
        keys = await self.catalog.keys_labelled(
            article_type=filters.article_type, colour=filters.colour,
            not_colour=filters.not_colour, genders=genders,
        )  # fmt: skip
        skipped = set(exclude)
        return [key for key in keys if key not in skipped and key in index]


def _nearest(index: VectorIndex, query: _Query, keys: list[int]) -> list[tuple[int, float]]:
    """``keys`` with their exact similarity to the query, nearest first."""
    similarities = index.get_many(keys) @ np.asarray(query.vector, dtype=np.float32)
    order = np.argsort(-similarities, kind="stable")
    return [(keys[i], float(similarities[i])) for i in order]


def _seed(session: SearchSession) -> tuple[int, ...]:
    """The item a search from an item started with: what ``shown`` holds beyond its pages."""
    on_pages = sum(len(page) for page in session.pages)
    return session.shown[: len(session.shown) - on_pages]


def _other_variants(item: StoredItem, variants: dict[str, list[StoredItem]]) -> int:
    siblings = variants.get(item.item.group_id or "", [])
    return sum(sibling.key != item.key for sibling in siblings)


def _labels(stored: StoredItem) -> dict[str, str | None]:
    return {name: getattr(stored.item, name) for name in RANKED_LABELS}


@dataclass(frozen=True)
class _Query:
    vector: np.ndarray
    colour: np.ndarray | None
