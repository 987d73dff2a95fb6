"""What search needs from a model, whichever runtime runs it (:class:`ImageEmbedder`, with a
trained model's :class:`LabelHeads`), and how the asyncio bot drives one without blocking
(:class:`AsyncEmbedder`).

Free of torch: the ONNX Runtime embedder serves through these classes in a process that never
imports it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits

from .backbones import BackboneSpec, batch, preprocess
from .colour import DIM as COLOUR_DIM
from .features import Features, view_and_colour
from .images import DEFAULT_MAX_PIXELS, ImageRejected, load_image

_T = TypeVar("_T")

BACKGROUND_NICENESS = 10
"""Catalog embedding runs this much nicer than shoppers' queries, so that a reindex takes the
cores only while no shopper needs them."""


@dataclass(frozen=True)
class Prepared:
    """Images made ready for the network: the CPU work of search before inference."""

    inputs: np.ndarray
    """float32 (n, 3, crop, crop), the network's input."""
    colours: np.ndarray
    """float32 (n, colour.DIM), the garments' colour descriptors."""


@dataclass(frozen=True)
class PreparedFiles:
    """Catalog image files prepared in one job; rows of ``prepared`` follow ``kept``."""

    prepared: Prepared
    kept: list[int]
    """Positions (in the request) of the files that were prepared."""
    rejected: dict[int, str]
    """Position → why that file is not a usable image."""


def limit_blas_threads() -> None:
    """Give numpy's BLAS (OpenBLAS) one thread, process-wide. Its idle workers spin after each
    product and take the cores from the network's next run: search ranking a pool with numpy
    between two queries made a query take 101 ms, not 36 (torch runtime)."""
    threadpool_limits(1, user_api="blas")


@dataclass(frozen=True)
class LabelHeads:
    """The classifiers training learnt next to the embedding: one unit prototype per label
    value (article type, colour, …) in the embedding space.

    A vector's cosine to the prototypes, times ``scale`` and soft-maxed, is the model's belief
    about its labels; search uses it to prefer catalog items whose own labels agree.
    """

    vocabularies: Mapping[str, Sequence[str]]
    prototypes: Mapping[str, np.ndarray]
    """float32 (values, dim) per label, rows of norm 1, in vocabulary order."""
    scale: float

    def probabilities(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """(n, values) per label for unit ``vectors`` (n, dim); rows sum to 1."""
        result = {}
        for name, prototypes in self.prototypes.items():
            logits = self.scale * (np.asarray(vectors, dtype=np.float32) @ prototypes.T)
            logits -= logits.max(axis=1, keepdims=True)
            weights = np.exp(logits)
            result[name] = weights / weights.sum(axis=1, keepdims=True)
        return result

    def meta(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "vocabularies": {name: list(self.vocabularies[name]) for name in self.prototypes},
        }


class ImageEmbedder(ABC):
    """Images → unit vectors (n, dim), lazily loaded, for one model.

    Subclasses run the network (:meth:`embed_inputs`); preprocessing, the garment crop and
    colour are the same for every runtime, so vectors from one runtime search those of another.
    """

    spec: BackboneSpec
    dim: int
    model_name: str
    """Stable id stored next to an index, so vectors from different models are never mixed."""
    label_heads: LabelHeads | None
    """A trained model's label classifiers (search ranks by them); None otherwise."""
    batch_size: int
    runtime: str
    """What runs the network: ``onnx`` or ``torch`` (EMBEDDING_RUNTIME's values)."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Build the model once; safe to call from several threads."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is None:
                limit_blas_threads()
                self._model = self._build()

    @abstractmethod
    def _build(self) -> Any:
        """The runtime's loaded model (what :meth:`embed_inputs` runs)."""

    @abstractmethod
    def embed_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Preprocessed (n, 3, crop, crop) float32 → float32 (n, dim), rows of norm 1."""

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """(3, crop, crop) float32, the transform the backbone's weights expect."""
        return preprocess(image, self.spec.preprocessing)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed ``images`` in batches of ``batch_size``: float32 (n, dim), rows of norm 1."""
        if len(images) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        prep, size = self.spec.preprocessing, self.batch_size
        chunks = [
            self.embed_inputs(batch(images[start : start + size], prep))
            for start in range(0, len(images), size)
        ]
        return np.concatenate(chunks)

    def prepare(self, images: Sequence[Image.Image], *, crop: bool) -> Prepared:
        """Mask, crop (when ``crop``), colour and preprocess each image; no inference."""
        views, colours = [], []
        for image in images:
            view, colour = view_and_colour(image, crop=crop)
            views.append(self.preprocess(view))
            colours.append(colour)
        prep = self.spec.preprocessing
        inputs = np.stack(views) if views else np.empty((0, 3, prep.crop, prep.crop), np.float32)
        stacked = np.stack(colours) if colours else np.empty((0, COLOUR_DIM), dtype=np.float32)
        return Prepared(inputs, stacked)

    def embed_prepared(self, prepared: Prepared) -> Features:
        """Search :class:`Features` of prepared images, in batches of ``batch_size``."""
        inputs = prepared.inputs
        if len(inputs) == 0:
            return Features(np.empty((0, self.dim), dtype=np.float32), prepared.colours)
        chunks = [
            self.embed_inputs(inputs[start : start + self.batch_size])
            for start in range(0, len(inputs), self.batch_size)
        ]
        return Features(np.concatenate(chunks), prepared.colours)

    def features(self, images: Sequence[Image.Image], *, crop: bool) -> Features:
        """Search :class:`Features` of ``images``: :meth:`prepare`, then the network."""
        return self.embed_prepared(self.prepare(images, crop=crop))


class AsyncEmbedder:
    """Runs an :class:`ImageEmbedder` off the asyncio event loop, in two lanes.

    Shoppers' photos go to a single-worker executor: one query at a time, each using every
    core the runtime gives it. Catalog images (a reindex) go to the ``background`` embedder
    when there is one: decoding and garment crops in one thread, inference in another, both
    at a lower CPU priority, so that a reindex uses the cores nobody else needs and a
    shopper's query never waits for it. Without one, catalog batches queue in the query lane
    between shoppers' queries (the torch runtime: its thread pool is shared process-wide).

    Search features are made the same way for both: a CNN vector, of the image cropped to the
    garment when ``garment_crop``, and the garment's colour descriptor.
    """

    def __init__(
        self,
        embedder: ImageEmbedder,
        executor: ThreadPoolExecutor | None = None,
        *,
        garment_crop: bool = False,
        background: ImageEmbedder | None = None,
    ) -> None:
        self.embedder = embedder
        self.garment_crop = garment_crop
        self._background = background
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="embedder"
        )
        self._background_executors: list[ThreadPoolExecutor] = []
        if background is not None:
            self._background_executors = [
                ThreadPoolExecutor(1, f"catalog-{lane}", initializer=_lower_thread_priority)
                for lane in ("prepare", "embed")
            ]

    @property
    def label_heads(self) -> LabelHeads | None:
        return self.embedder.label_heads

    @property
    def model_name(self) -> str:
        """The model's name, marked when it embeds garment crops: vectors made one way must
        not be searched with vectors made the other (the catalog is re-embedded instead)."""
        name = self.embedder.model_name
        return f"{name}+crop" if self.garment_crop else name

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def batch_size(self) -> int:
        return self.embedder.batch_size

    @property
    def runtime(self) -> str:
        return self.embedder.runtime

    async def load(self) -> None:
        """Load the model in the worker, e.g. at bot start-up, so the first user doesn't wait."""
        await self._run(self._executor, self.embedder.load)

    async def features(self, images: Sequence[Image.Image]) -> Features:
        """Search features of catalog images."""
        prepare = functools.partial(
            self._catalog_embedder.prepare, list(images), crop=self.garment_crop
        )
        return await self.embed_prepared(await self._run(self._prepare_lane, prepare))

    async def prepare_files(self, paths: Sequence[Path]) -> PreparedFiles:
        """Decode and prepare catalog image files, the CPU work before inference; a file that
        is not a usable image is reported in ``rejected``, never raised."""
        return await self._run(self._prepare_lane, self._prepare_files, list(paths))

    async def embed_prepared(self, prepared: Prepared) -> Features:
        """Run the network on catalog images that :meth:`prepare_files` prepared."""
        return await self._run(self._embed_lane, self._catalog_embedder.embed_prepared, prepared)

    async def features_bytes(
        self, data: bytes | bytearray, *, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> Features:
        """Decode an uploaded photo and compute its search features (one row). Raises
        ImageRejected for bad input."""
        return await self._run(self._executor, self._features_bytes, bytes(data), max_pixels)

    def close(self) -> None:
        """Shut down the executors this object created (a shared one is left alone)."""
        for executor in self._background_executors:
            executor.shutdown(wait=True, cancel_futures=True)
        if self._owns_executor:
            self._executor.shutdown(wait=True, cancel_futures=True)

    @property
    def _catalog_embedder(self) -> ImageEmbedder:
        return self._background or self.embedder

    @property
    def _prepare_lane(self) -> ThreadPoolExecutor:
        return self._background_executors[0] if self._background_executors else self._executor

    @property
    def _embed_lane(self) -> ThreadPoolExecutor:
        return self._background_executors[1] if self._background_executors else self._executor

    def _prepare_files(self, paths: list[Path]) -> PreparedFiles:
        images, kept, rejected = [], [], {}
        for position, path in enumerate(paths):
            try:
                images.append(load_image(path))
            except ImageRejected as error:
                rejected[position] = error.reason
                continue
            kept.append(position)
        prepared = self._catalog_embedder.prepare(images, crop=self.garment_crop)
        return PreparedFiles(prepared, kept, rejected)

    def _features_bytes(self, data: bytes, max_pixels: int) -> Features:
        image = load_image(data, max_pixels=max_pixels)
        return self.embedder.features([image], crop=self.garment_crop)

    async def _run(self, executor: ThreadPoolExecutor, fn: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)


def _lower_thread_priority() -> None:
    """Linux schedules threads one by one: this thread (and the work it runs inline, such as
    a single-threaded ONNX Runtime session) yields the CPU to the process's other threads."""
    if sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
