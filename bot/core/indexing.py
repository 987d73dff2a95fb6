"""Catalog ingestion: read a catalog source, embed what changed, write SQLite, make a new index.

Used by ``wardrobe ingest`` and by the bot's ``/reindex``. The new index is built beside the
one being served and only handed back at the end, so callers can swap it in atomically; where
index files live and when they are rebuilt is :mod:`storage.index_files`' business.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from embeddings import AsyncEmbedder
from embeddings.serving import PreparedFiles
from storage.catalog import Catalog, EmbeddedItem
from storage.index_files import build_and_save_index, update_and_save_index
from storage.models import CatalogItem
from storage.source import CatalogSourceError, read_styles
from storage.vector_index import VectorIndex

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""Called with (items done, items to embed) after every batch."""


@dataclass
class IngestReport:
    rows: int = 0
    embedded: int = 0
    unchanged: int = 0
    removed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(product id or ``line N``, reason) for every row that could not be used."""
    index_size: int = 0
    seconds: float = 0.0
    version: int = 0
    """The catalog's ``vectors_version`` this ingest wrote."""

    @property
    def items_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"{self.index_size} items indexed: {self.embedded} embedded, "
            f"{self.unchanged} unchanged, {self.removed} removed, "
            f"{len(self.failures)} failed, in {self.seconds:.1f} s"
        )


class CatalogWouldShrink(CatalogSourceError):
    """An ingest would remove more of the catalog than it may: the source is probably broken
    (an empty image folder, a header-only styles.csv), not the shop's new catalog."""


@dataclass(frozen=True)
class _Candidate:
    item: CatalogItem
    sha256: str


class Indexer:
    """Runs one ingest at a time against a catalog with a given embedder."""

    def __init__(self, catalog: Catalog, embedder: AsyncEmbedder, data_dir: Path) -> None:
        self._catalog = catalog
        self._embedder = embedder
        self._data_dir = data_dir
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def ingest(
        self,
        styles_csv: Path,
        images_dir: Path,
        *,
        reembed_all: bool = False,
        prune: bool = False,
        progress: ProgressCallback | None = None,
        max_removed_share: float = 1.0,
    ) -> tuple[VectorIndex, IngestReport]:
        """Bring the catalog in line with the source and return the new index with a report.

        Unchanged images keep their vectors unless ``reembed_all``; ``prune`` removes items
        the source no longer lists. Unreadable rows and images are reported, never fatal, but
        an ingest that would remove more than ``max_removed_share`` of the stored items
        (unlisted or unreadable) writes nothing and raises :class:`CatalogWouldShrink`.
        """
        async with self._lock:
            started = time.perf_counter()
            report = IngestReport()
            model, dim = self._embedder.model_name, self._embedder.dim
            catalog_model = await self._catalog.get_meta("model")
            model_changed = catalog_model is not None and catalog_model != model
            reembed_all = reembed_all or model_changed

            candidates = await asyncio.to_thread(_read_source, styles_csv, images_dir, report)
            states = await self._catalog.item_states()
            to_embed, unchanged = [], []
            for candidate in candidates:
                state = states.get(candidate.item.id)
                # Items stored before colour descriptors existed have none: embed them again,
                # so vector and colour come from the same preprocessing.
                fresh = (
                    state
                    and state.has_vector
                    and state.has_colour
                    and state.image_sha256 == candidate.sha256
                )
                (unchanged if fresh and not reembed_all else to_embed).append(candidate)
            embedded = await self._embed_all(to_embed, report, progress)

            failed_ids = {item_id for item_id, _ in report.failures}
            listed = {candidate.item.id for candidate in candidates}
            remove = {item_id for item_id in states if item_id in failed_ids}
            if prune:
                remove |= {item_id for item_id in states if item_id not in listed}
            _check_shrink(len(remove), len(states), len(listed), max_removed_share)
            version = int(await self._catalog.get_meta("vectors_version") or 0) + 1
            written = await self._catalog.write_items(
                embedded,
                metadata_only=[candidate.item for candidate in unchanged],
                remove_ids=sorted(remove),
                clear_vectors=model_changed,
                meta={"model": model, "dim": str(dim), "vectors_version": str(version)},
            )
            if model_changed:
                index = await build_and_save_index(self._catalog, self._data_dir, version, dim)
            else:
                index = await update_and_save_index(
                    self._catalog,
                    self._data_dir,
                    version,
                    dim,
                    changed=written,
                    removed=[states[item_id].key for item_id in remove],
                )

            report.embedded = len(embedded)
            report.unchanged = len(unchanged)
            report.removed = len(remove)
            report.index_size = len(index)
            report.version = version
            report.seconds = time.perf_counter() - started
            log.info("ingest done: %s", report.summary())
            return index, report

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
            progress(0, len(candidates))
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
                    progress(done, len(candidates))
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
            f"{stored} in the catalog (more than {max_share:.0%}); check the styles file and "
            "the image folder, or force it"
        )


def _read_source(styles_csv: Path, images_dir: Path, report: IngestReport) -> list[_Candidate]:
    candidates: dict[str, _Candidate] = {}
    for row in read_styles(styles_csv, images_dir):
        report.rows += 1
        if row.item is None:
            report.failures.append((f"line {row.line}", row.problem or "unreadable row"))
            continue
        try:
            digest = hashlib.sha256(Path(row.item.image_path).read_bytes()).hexdigest()
        except OSError as error:
            report.failures.append((row.item.id, f"image unreadable: {error.strerror}"))
            continue
        candidates[row.item.id] = _Candidate(row.item, digest)  # a repeated id: last row wins
    return list(candidates.values())
