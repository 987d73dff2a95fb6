"""The torch runtime: a backbone or a ``wardrobe train`` model run by torch (training, a GPU,
and the fallback to ONNX Runtime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbones import DEFAULT_BACKBONE, get_backbone_spec
from .finetuned import TrainedModelInfo, load_trained, read_trained_info
from .networks import load_backbone
from .serving import ImageEmbedder
from .weights import ModelSource


def resolve_device(device: str) -> torch.device:
    """``auto`` = the GPU when torch sees one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Embedder(ImageEmbedder):
    """Lazily loaded torch backbone that maps PIL images to unit-length float32 vectors.

    Construction is cheap and validates the configuration (backbone name, weights file) so
    mistakes surface at start-up; the model itself is built on the first :meth:`load` /
    :meth:`embed` call, so a bot can start polling while it warms up.
    """

    runtime = "torch"

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
        super().__init__()
        self.source = ModelSource(backbone, weights, trained)
        self.spec = get_backbone_spec(backbone)
        self.weights = self.source.weights
        self.trained: TrainedModelInfo | None = None
        self.label_heads = None
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.torch_threads = torch_threads
        self.dim = self.spec.dim
        self.model_name = self.source.untrained_model_name
        if self.source.trained is not None:
            self.trained = self._trained_info(self.source.trained)
            self.dim = self.trained.dim
            self.model_name = self.trained.model_name
            self.label_heads = self.trained.label_heads

    def __repr__(self) -> str:
        return f"Embedder({self.model_name!r}, device={str(self.device)!r})"

    def _build(self) -> nn.Module:
        if self.torch_threads is not None:
            # Process-wide torch setting: it caps the intra-op pool for every model.
            torch.set_num_threads(self.torch_threads)
        if self.trained is not None:
            model: nn.Module = load_trained(self.trained.path)[0]
        else:
            model, _ = load_backbone(self.spec.name, self.weights)
        # channels_last (NHWC) lets oneDNN pick its fast CPU convolutions: ~1.6x faster
        # for EfficientNet-Lite0 on the 2-core target; inputs follow in embed_inputs().
        return model.to(self.device, memory_format=torch.channels_last)

    def _trained_info(self, path: Path) -> TrainedModelInfo:
        info = read_trained_info(path)
        self.source.check_trained_from(info.backbone)
        return info

    def embed_inputs(self, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        self.load()
        assert self._model is not None
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
            batch = batch.to(self.device, memory_format=torch.channels_last)
            features = self._model(batch).float()
            return nn.functional.normalize(features, dim=1).cpu().numpy()
