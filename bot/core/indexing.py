"""Catalog ingestion: read a catalog source, fetch its images, embed what changed, write SQLite,
make a new index; and the admins' live edits (one item in or out, no full reindex).

Used by ``wardrobe ingest`` and by the bot's ``/reindex``, ``/add`` and ``/remove``. The new
index is built beside the one being served and only handed back at the end, so callers can
swap it in atomically; where index files live and when they are rebuilt is
:mod:`storage.index_files`' business.

How a feed and the live edits relate: items an admin added with ``/add`` belong to the chat,
and a reindex of the feed neither removes nor overwrites them; a feed item taken out with
``/remove`` is remembered, and a reindex keeps it out (``/restore`` lets it back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bot.core.sources import CatalogSource
from embeddings import AsyncEmbedder, ImageRejected
from embeddings.serving import PreparedFiles
from storage.catalog import Catalog, EmbeddedItem, ItemState
from storage.downloads import DownloadCache, DownloadFailed, DownloadLimits, Fetched
from storage.feeds import ListedItem, read_feed
from storage.index_files import build_and_save_index, update_and_save_index
from storage.models import CatalogItem, StoredItem
from storage.source import CatalogSourceError
from storage.vector_index import VectorIndex

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]
"""Called with (done, to do, stage): ``downloading images``, then ``embedding images``."""

IMAGE_CACHE = "image-cache"
"""Folder in the data directory of images (and feeds) downloaded by URL."""
ADDED_IMAGES = "added-images"
"""Folder in the data directory of the photos admins sent with /add."""


@dataclass
class IngestReport:
    format: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    """For a CSV of the shop's own making: our field → the column it was read from."""
    rows: int = 0
    embedded: int = 0
    unchanged: int = 0
    removed: int = 0
    out_of_stock: int = 0
    kept_out: int = 0
    """Feed items an admin removed with /remove, which this ingest did not bring back."""
    downloaded: int = 0
    revalidated: int = 0
    """Images by URL whose server said the cached copy is current: no body downloaded."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(product id or ``line N``, reason) for every row that could not be used."""
    warnings: list[tuple[str, str]] = field(default_factory=list)
    """(product id, reason) for items kept with the image of an earlier ingest."""
    index_size: int = 0
    seconds: float = 0.0
    version: int = 0
    """The catalog's ``vectors_version`` this ingest wrote."""

    @property
    def items_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        text = (
            f"{self.index_size} items indexed: {self.embedded} embedded, "
            f"{self.unchanged} unchanged, {self.removed} removed, "
            f"{len(self.failures)} failed, in {self.seconds:.1f} s"
        )
        extras = []
        if self.downloaded or self.revalidated:
            extras.append(
                f"images: {self.downloaded} downloaded, {self.revalidated} unchanged on the server"
            )
        if self.out_of_stock:
            extras.append(f"{self.out_of_stock} out of stock (kept, not shown)")
        if self.kept_out:
            extras.append(f"{self.kept_out} kept out (removed with /remove)")
        return "; ".join([text, *extras])


class CatalogWouldShrink(CatalogSourceError):
    """An ingest would remove more of the catalog than it may: the source is probably broken
    (an empty image folder, a header-only styles.csv), not the shop's new catalog."""


class CatalogEdit(CatalogSourceError):
    """A live edit cannot be made as asked; the message says why, for the admin."""


@dataclass(frozen=True)
class Edit:
    """A live edit as made: the index to serve now, its version, the item added or removed."""

    index: VectorIndex
    version: int
    item: StoredItem


@dataclass(frozen=True)
class _Candidate:
    item: CatalogItem
    sha256: str


class Indexer:
    """Runs one ingest or live edit at a time against a catalog with a given embedder."""

    def __init__(
        self,
        catalog: Catalog,
        embedder: AsyncEmbedder,
        data_dir: Path,
        downloads: DownloadLimits | None = None,
    ) -> None:
        self._catalog = catalog
        self._embedder = embedder
        self._data_dir = data_dir
        self._download_limits = downloads or DownloadLimits()
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def ingest(
        self,
        source: CatalogSource,
        *,
        reembed_all: bool = False,
        prune: bool = False,
        progress: ProgressCallback | None = None,
        max_removed_share: float = 1.0,
    ) -> tuple[VectorIndex, IngestReport]:
        """Bring the catalog in line with the source and return the new index with a report.

        Unchanged images keep their vectors unless ``reembed_all``; ``prune`` removes feed
        items the source no longer lists. Unreadable rows and images are reported, never
        fatal, but an ingest that would remove more than ``max_removed_share`` of the stored
        items (unlisted or unreadable) writes nothing and raises :class:`CatalogWouldShrink`.
        """
        async with self._lock:
            started = time.perf_counter()
            report = IngestReport()
            catalog_model = await self._catalog.get_meta("model")
            model_changed = catalog_model not in (None, self._embedder.model_name)
            reembed_all = reembed_all or model_changed
            async with self._downloads() as cache:
                listed = await self._read(source, cache, report)
                if source.is_url:
                    listed = _only_remote_images(listed)
                states = await self._catalog.item_states()
                listed = _admissible(listed, states, await self._catalog.removed_ids(), report)
                candidates = await self._resolve_images(listed, cache, report, progress)
                report.downloaded = cache.report.downloaded
                report.revalidated = cache.report.revalidated
                to_embed, unchanged = [], []
                for candidate in candidates:
                    state = states.get(candidate.item.id)
                    # Items stored before colour descriptors existed have none: embed them
                    # again, so vector and colour come from the same preprocessing.
                    fresh = (
                        state
                        and state.has_vector
                        and state.has_colour
                        and state.image_sha256 == candidate.sha256
                    )
                    (unchanged if fresh and not reembed_all else to_embed).append(candidate)
                embedded = await self._embed_all(to_embed, report, progress)

                failed_ids = {item_id for item_id, _ in report.failures}
                feed_items = {
                    item_id for item_id, state in states.items() if state.origin == "feed"
                }
                listed_ids = {candidate.item.id for candidate in candidates}
                remove = feed_items & failed_ids
                if prune:
                    remove |= feed_items - listed_ids
                _check_shrink(len(remove), len(states), len(listed_ids), max_removed_share)
                index, version = await self._commit(
                    embedded,
                    metadata_only=[candidate.item for candidate in unchanged],
                    remove_ids=sorted(remove),
                    removed_keys=[states[item_id].key for item_id in remove],
                    clear_vectors=model_changed,
                )
                if prune:
                    cache.prune(await self._catalog.image_paths())

            report.embedded = len(embedded)
            report.unchanged = len(unchanged)
            report.removed = len(remove)
            report.out_of_stock = sum(not candidate.item.available for candidate in candidates)
            report.index_size = len(index)
            report.version = version
            report.seconds = time.perf_counter() - started
            log.info("ingest of %s done: %s", source, report.summary())
            return index, report

    async def add_item(self, item: CatalogItem, image: bytes) -> Edit:
        """Put one item (an admin's photo and caption) in the catalog and the index now.

        Raises :class:`ImageRejected` when the photo cannot be used and :class:`CatalogEdit`
        when the catalog holds vectors of another model (a reindex has to come first).
        """
        async with self._lock:
            await self._check_model()
            folder = self._data_dir / ADDED_IMAGES
            path = folder / f"{item.id}.{_image_suffix(image)}"
            await asyncio.to_thread(_write_file, path, image)
            item = dataclasses.replace(item, image_path=str(path), origin="chat")
            report = IngestReport()
            digest = hashlib.sha256(image).hexdigest()
            embedded = await self._embed_all([_Candidate(item, digest)], report, None)
            if not embedded:
                path.unlink(missing_ok=True)
                reason = report.failures[0][1] if report.failures else "unusable image"
                raise ImageRejected(reason.removeprefix("image rejected: "))
            index, version = await self._commit(embedded)
            stored = await self._catalog.item_by_id(item.id)
            if stored is None:  # written in the same transaction that named the version
                raise RuntimeError(f"item {item.id} vanished after it was added")
            return Edit(index, version, stored)

    async def remove_item(self, item_id: str) -> Edit | None:
        """Take item ``item_id`` out of the catalog and the index now (None: no such item).

        A feed item is remembered as removed, so a reindex of the feed keeps it out; the
        photo of an item added with /add is deleted with it."""
        async with self._lock:
            stored = await self._catalog.item_by_id(item_id)
            if stored is None:
                return None
            from_feed = stored.item.origin == "feed"
            index, version = await self._commit(
                [],
                remove_ids=[item_id],
                removed_keys=[stored.key],
                keep_out=[item_id] if from_feed else [],
            )
            if not from_feed:
                Path(stored.item.image_path).unlink(missing_ok=True)
            return Edit(index, version, stored)

    async def _commit(
        self,
        embedded: list[EmbeddedItem],
        *,
        metadata_only: Sequence[CatalogItem] = (),
        remove_ids: Sequence[str] = (),
        removed_keys: Sequence[int] = (),
        keep_out: Sequence[str] = (),
        clear_vectors: bool = False,
    ) -> tuple[VectorIndex, int]:
        """Write one change of the catalog as the next ``vectors_version`` and save its index."""
        dim = self._embedder.dim
        version = int(await self._catalog.get_meta("vectors_version") or 0) + 1
        written = await self._catalog.write_items(
            embedded,
            metadata_only=metadata_only,
            remove_ids=remove_ids,
            keep_out=keep_out,
            clear_vectors=clear_vectors,
            meta={
                "model": self._embedder.model_name,
                "dim": str(dim),
                "vectors_version": str(version),
            },
        )
        if clear_vectors:
            index = await build_and_save_index(self._catalog, self._data_dir, version, dim)
        else:
            index = await update_and_save_index(
                self._catalog, self._data_dir, version, dim, changed=written, removed=removed_keys
            )
        return index, version

    async def _check_model(self) -> None:
        stored = await self._catalog.get_meta("model")
        if stored not in (None, self._embedder.model_name):
            raise CatalogEdit(
                f"the catalog was embedded with {stored}, the bot now uses "
                f"{self._embedder.model_name}: run /reindex first"
            )

    def _downloads(self) -> DownloadCache:
        return DownloadCache(self._data_dir / IMAGE_CACHE, self._download_limits)

    async def _read(
        self, source: CatalogSource, cache: DownloadCache, report: IngestReport
    ) -> list[ListedItem]:
        """The source's usable rows, one per product id (a repeated id: the last row wins)."""
        if source.is_url:
            try:
                path = await cache.fetch_document(source.location)
            except DownloadFailed as failed:
                raise CatalogSourceError(
                    f"the feed {source.location} could not be downloaded: {failed.reason}"
                ) from None
        else:
            path = Path(source.location)
        feed = await asyncio.to_thread(
            read_feed,
            path,
            source.format,
            source.mapping,
            images_dir=source.images_dir,
            shop_url=source.shop_url,
        )
        report.format, report.columns = feed.format, feed.columns
        listed: dict[str, ListedItem] = {}
        for row in feed.rows:
            report.rows += 1
            if row.listed is None:
                report.failures.append((row.where, row.problem or "unreadable row"))
            else:
                listed[row.listed.item.id] = row.listed
        return list(listed.values())

    async def _resolve_images(
        self,
        listed: Sequence[ListedItem],
        cache: DownloadCache,
        report: IngestReport,
        progress: ProgressCallback | None,
    ) -> list[_Candidate]:
        """Each item with the first of its images that could be had (downloading those given
        by URL, the additional ones only where the main one failed), and its fingerprint."""
        chosen: dict[str, Path] = {}
        problems: dict[str, list[str]] = {item.item.id: [] for item in listed}
        pending = [item for item in listed if item.images]
        for item in listed:
            if not item.images:
                problems[item.item.id].append("no image")
        position = 0
        while pending:
            urls = [item.images[position] for item in pending if _is_url(item.images[position])]
            fetched: dict[str, Fetched | DownloadFailed] = {}
            if urls:
                fetched = await cache.fetch_images(
                    urls, progress=_staged(progress, "downloading images")
                )
            for item in pending:
                image = item.images[position]
                found, problem = _image_file(image, fetched.get(image))
                if found is not None:
                    chosen[item.item.id] = found
                    if isinstance(result := fetched.get(image), Fetched) and result.stale:
                        report.warnings.append(
                            (item.item.id, f"{image}: {result.stale}; kept the last copy")
                        )
                else:
                    problems[item.item.id].append(problem)
            position += 1
            pending = [
                item
                for item in pending
                if item.item.id not in chosen and position < len(item.images)
            ]
        return await asyncio.to_thread(_fingerprint, listed, chosen, problems, report)

    async def _embed_all(
        self,
        candidates: Sequence[_Candidate],
        report: IngestReport,
        progress: ProgressCallback | None,
    ) -> list[EmbeddedItem]:
        """Embed in batches, decoding and cropping the next batch while the network embeds
        this one; each step is one job of the embedder, so shoppers' queries are served
        between them instead of waiting for the whole reindex."""
        size = self._embedder.batch_size
        batches = [candidates[start : start + size] for start in range(0, len(candidates), size)]
        embedded: list[EmbeddedItem] = []
        if progress:
            progress(0, len(candidates), "embedding images")
        done = 0
        upcoming: asyncio.Future[PreparedFiles] | None = None
        try:
            for number, batch in enumerate(batches):
                prepared = await (upcoming or self._prepare(batch))
                upcoming = None
                if number + 1 < len(batches):
                    upcoming = asyncio.ensure_future(self._prepare(batches[number + 1]))
                for position, reason in prepared.rejected.items():
                    report.failures.append((batch[position].item.id, f"image rejected: {reason}"))
                if prepared.kept:
                    features = await self._embedder.embed_prepared(prepared.prepared)
                    for position, vector, colour in zip(
                        prepared.kept, features.vectors, features.colours, strict=True
                    ):
                        candidate = batch[position]
                        embedded.append(
                            EmbeddedItem(candidate.item, candidate.sha256, vector, colour)
                        )
                done += len(batch)
                if progress:
                    progress(done, len(candidates), "embedding images")
        finally:
            if upcoming is not None:
                upcoming.cancel()
        return embedded

    def _prepare(self, batch: Sequence[_Candidate]) -> Awaitable[PreparedFiles]:
        return self._embedder.prepare_files([Path(c.item.image_path) for c in batch])


def _check_shrink(removed: int, stored: int, listed: int, max_share: float) -> None:
    if stored and removed > max_share * stored:
        raise CatalogWouldShrink(
            f"the source lists {listed} usable items and this would remove {removed} of the "
            f"{stored} in the catalog (more than {max_share:.0%}); check the feed (or the "
            "styles file and image folder), or force it"
        )


def _admissible(
    listed: Sequence[ListedItem],
    states: dict[str, ItemState],
    kept_out: set[str],
    report: IngestReport,
) -> list[ListedItem]:
    """Leave out what the live edits own: feed items an admin removed, and ids of items
    added with /add (the feed must not overwrite them)."""
    admitted = []
    for item in listed:
        item_id = item.item.id
        if item_id in kept_out:
            report.kept_out += 1
        elif (state := states.get(item_id)) is not None and state.origin != "feed":
            report.failures.append((item_id, "an item added with /add has this id"))
        else:
            admitted.append(item)
    return admitted


def _only_remote_images(listed: Sequence[ListedItem]) -> list[ListedItem]:
    """A feed downloaded from the web names its images by URL: a local path in it would
    let whoever serves the feed pick files of this machine to show to shoppers."""
    return [
        dataclasses.replace(item, images=tuple(image for image in item.images if _is_url(image)))
        for item in listed
    ]


def _is_url(image: str) -> bool:
    return image.startswith(("http://", "https://"))


def _image_file(image: str, fetched: Fetched | DownloadFailed | None) -> tuple[Path | None, str]:
    """The file to embed for one image reference, or why there is none."""
    if isinstance(fetched, Fetched):
        return fetched.path, ""
    if isinstance(fetched, DownloadFailed):
        return None, f"{image}: {fetched.reason}"
    path = Path(image)
    if path.is_file():
        return path, ""
    return None, f"image not found: {image}"


def _fingerprint(
    listed: Sequence[ListedItem],
    chosen: dict[str, Path],
    problems: dict[str, list[str]],
    report: IngestReport,
) -> list[_Candidate]:
    candidates = []
    for item in listed:
        item_id = item.item.id
        path = chosen.get(item_id)
        if path is None:
            report.failures.append((item_id, "; ".join(problems[item_id])))
            continue
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as error:
            report.failures.append((item_id, f"image unreadable: {error.strerror}"))
            continue
        candidates.append(_Candidate(dataclasses.replace(item.item, image_path=str(path)), digest))
    return candidates


def _staged(progress: ProgressCallback | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(done, total, stage)


def _image_suffix(data: bytes) -> str:
    """The file suffix of an admin's photo, by its content (Telegram photos are JPEG)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = (image.format or "jpeg").lower()
    except OSError:
        kind = "jpeg"
    return {"jpeg": "jpg"}.get(kind, kind)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
