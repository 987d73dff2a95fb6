"""Image → L2-normalised embedding and search :class:`~.features.Features`, synchronously
(:class:`Embedder`) or from asyncio (:class:`AsyncEmbedder`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from threadpoolctl import threadpool_limits
from torch import nn
from torchvision.transforms import InterpolationMode

from .backbones import DEFAULT_BACKBONE, check_weights_path, get_backbone_spec, load_backbone
from .colour import DIM as COLOUR_DIM
from .features import Features, view_and_colour
from .finetuned import LabelHeads, TrainedModelInfo, load_trained, read_trained_info
from .images import DEFAULT_MAX_PIXELS, flatten_to_rgb, load_image

_T = TypeVar("_T")


def resolve_device(device: str) -> torch.device:
    """``auto`` = the GPU when torch sees one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Embedder:
    """Lazily loaded backbone that maps PIL images to unit-length float32 vectors.

    Construction is cheap and validates the configuration (backbone name, weights file) so
    mistakes surface at start-up; the model itself is built on the first :meth:`load` /
    :meth:`embed` call, so a bot can start polling while it warms up.
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        weights: str | Path | None = None,
        *,
        trained: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        torch_threads: int | None = None,
    ) -> None:
        """``trained``: a weights file from ``wardrobe train`` (it replaces the backbone's
        pooled features by the fine-tuned embedding; ``weights`` must then be None)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if torch_threads is not None and torch_threads < 1:
            raise ValueError(f"torch_threads must be at least 1, got {torch_threads}")
        self.spec = get_backbone_spec(backbone)
        self.weights = None if weights is None else check_weights_path(weights)
        self.trained: TrainedModelInfo | None = None
        self.label_heads: LabelHeads | None = None
        """A trained model's label classifiers (search ranks by them); None otherwise."""
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self.dim: int = self.spec.dim
        # Stable id stored next to an index, so vectors from different models are never mixed.
        self.model_name: str = (
            self.spec.name if self.weights is None else f"{self.spec.name}@{self.weights.stem}"
        )
        if trained is not None:
            self.trained = self._trained_info(trained)
            self.dim = self.trained.dim
            self.model_name = self.trained.model_name
            self.label_heads = self.trained.label_heads
        prep = self.spec.preprocessing
        self._interpolation = InterpolationMode(prep.interpolation)
        self._mean = list(prep.mean)
        self._std = list(prep.std)
        self._model: nn.Module | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Embedder({self.model_name!r}, device={str(self.device)!r})"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Build the model once; safe to call from several threads."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            if self.torch_threads is not None:
                # Process-wide torch setting: it caps the intra-op pool for every model.
                torch.set_num_threads(self.torch_threads)
            # Process-wide too: numpy's BLAS (OpenBLAS) gets one thread. Its idle workers spin
            # after each product and take both cores from torch's next forward pass: search
            # ranking a pool with numpy between two queries made a query take 101 ms, not 36.
            threadpool_limits(1, user_api="blas")
            if self.trained is not None:
                model: nn.Module = load_trained(self.trained.path)[0]
            else:
                model, _ = load_backbone(self.spec.name, self.weights)
            # channels_last (NHWC) lets oneDNN pick its fast CPU convolutions: ~1.6x faster
            # for EfficientNet-Lite0 on the 2-core target; inputs follow in embed().
            self._model = model.to(self.device, memory_format=torch.channels_last)

    def _trained_info(self, path: str | Path) -> TrainedModelInfo:
        info = read_trained_info(path)
        if self.weights is not None:
            raise ValueError(
                f"Trained model {str(info.path)!r} already holds all weights: "
                "unset EMBEDDING_WEIGHTS or EMBEDDING_TRAINED."
            )
        if info.backbone != self.spec.name:
            raise ValueError(
                f"Trained model {str(info.path)!r} was trained from {info.backbone!r}, "
                f"not from the configured backbone {self.spec.name!r}."
            )
        return info

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """(3, crop, crop) float tensor, the same transform the backbone's weights expect.

        For torchvision backbones this is step for step ``Weights.DEFAULT.transforms()``.
        """
        prep = self.spec.preprocessing
        if image.mode != "RGB":
            image = flatten_to_rgb(image)
        image = TF.resize(image, [prep.resize], interpolation=self._interpolation, antialias=True)
        image = TF.center_crop(image, [prep.crop])
        tensor = TF.convert_image_dtype(TF.pil_to_tensor(image), torch.float)
        return TF.normalize(tensor, mean=self._mean, std=self._std)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed ``images`` in batches of ``batch_size``: float32 (n, dim), rows of norm 1."""
        if len(images) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        self.load()
        assert self._model is not None
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = torch.stack(
                    [self.preprocess(image) for image in images[start : start + self.batch_size]]
                ).to(self.device, memory_format=torch.channels_last)
                features = self._model(batch).float()
                chunks.append(nn.functional.normalize(features, dim=1).cpu().numpy())
        return np.concatenate(chunks)

    def features(self, images: Sequence[Image.Image], *, crop: bool) -> Features:
        """Search :class:`Features` of ``images``: mask, crop (when ``crop``) and colour per
        image, then one CNN batch."""
        views, colours = [], []
        for image in images:
            view, colour = view_and_colour(image, crop=crop)
            views.append(view)
            colours.append(colour)
        stacked = np.stack(colours) if colours else np.empty((0, COLOUR_DIM), dtype=np.float32)
        return Features(self.embed(views), stacked)


class AsyncEmbedder:
    """Runs an :class:`Embedder` in a single-worker ThreadPoolExecutor so the asyncio event
    loop never blocks on decoding or inference.

    One worker is deliberate: the target machine has 2 cores and torch already spreads one
    forward pass over them (intra-op threads), so parallel requests would only contend for the
    same cores and memory. Requests queue up instead and each finishes as fast as possible.

    :meth:`features` (catalog images) and :meth:`features_bytes` (shoppers' photos) are what
    search uses, made the same way: a CNN vector, of the image cropped to the garment when
    ``garment_crop``, and the garment's colour descriptor.
    """

    def __init__(
        self,
        embedder: Embedder,
        executor: ThreadPoolExecutor | None = None,
        *,
        garment_crop: bool = False,
    ) -> None:
        self.embedder = embedder
        self.garment_crop = garment_crop
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="embedder"
        )

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

    async def load(self) -> None:
        """Load the model in the worker, e.g. at bot start-up, so the first user doesn't wait."""
        await self._run(self.embedder.load)

    async def features(self, images: Sequence[Image.Image]) -> Features:
        """Search features of catalog images, in one job of the pool."""
        return await self._run(self._features, list(images))

    async def features_bytes(
        self, data: bytes | bytearray, *, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> Features:
        """Decode an uploaded photo and compute its search features (one row). Raises
        ImageRejected for bad input."""
        return await self._run(self._features_bytes, bytes(data), max_pixels)

    def close(self) -> None:
        """Shut down the executor if this object created it (a shared one is left alone)."""
        if self._owns_executor:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _features(self, images: list[Image.Image]) -> Features:
        return self.embedder.features(images, crop=self.garment_crop)

    def _features_bytes(self, data: bytes, max_pixels: int) -> Features:
        return self._features([load_image(data, max_pixels=max_pixels)])

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
