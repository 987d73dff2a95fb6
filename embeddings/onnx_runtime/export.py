"""Export a model from torch to ONNX for :class:`~.onnx_embedder.OnnxEmbedder`, and check that
ONNX Runtime computes the same vectors before anything serves them.

Run as ``python -m embeddings.onnx_runtime.export`` by the serving process (which must not import
torch itself), and in-process by ``wardrobe train`` right after training.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones import get_backbone_spec
from ..finetuned import load_trained
from ..networks import load_backbone
from ..serving import LabelHeads
from ..weights import EXPORT_FORMAT, ModelSource, file_sha256
from .embedder import INPUT_NAME, OUTPUT_NAME, write_model_info

OPSET = 17
MIN_PARITY_COSINE = 0.9999
"""Every parity input's ONNX vector must be this close (cosine) to torch's, or nothing is
written."""


class _UnitVectors(nn.Module):
    """Pooled features → rows of norm 1, inside the graph (a trained model's are already)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.model(images), dim=1)


def export(source: ModelSource, stem: Path) -> Path:
    """Write ``<stem>.onnx`` and ``<stem>.json`` for ``source``; returns the ``.onnx`` path.

    Raises ValueError for a model file that cannot be used, or when ONNX Runtime's vectors
    differ from torch's by more than :data:`MIN_PARITY_COSINE` allows.
    """
    model, meta, heads = _torch_model(source)
    size = get_backbone_spec(source.backbone).preprocessing.crop
    stem.parent.mkdir(parents=True, exist_ok=True)
    onnx_path = stem.with_suffix(".onnx")
    tmp = stem.with_name(f".{stem.name}.{os.getpid()}.onnx.tmp")
    try:
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.zeros(2, 3, size, size),),
                str(tmp),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        cosine = parity_cosine(model, tmp, parity_inputs(size))
        if cosine < MIN_PARITY_COSINE:
            raise ValueError(
                f"ONNX export of {meta['model_name']} differs from torch "
                f"(cosine {cosine:.6f} < {MIN_PARITY_COSINE}); serve with EMBEDDING_RUNTIME=torch."
            )
        os.replace(tmp, onnx_path)
    finally:
        tmp.unlink(missing_ok=True)
    meta.update(parity_cosine=cosine, onnx_sha256=file_sha256(onnx_path))
    write_model_info(stem, meta, heads)
    return onnx_path


def parity_inputs(size: int, count: int = 8, seed: int = 0) -> np.ndarray:
    """Smooth random images in the network's input range (pure noise would not look like
    anything a CNN sees): (count, 3, size, size) float32."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (count, 3, 8, 8)).astype(np.float32)
    images = nn.functional.interpolate(torch.from_numpy(coarse), size=(size, size), mode="bicubic")
    return images.clamp(-1, 1).numpy()


def parity_cosine(model: nn.Module, onnx_path: Path, inputs: np.ndarray) -> float:
    """The smallest cosine between torch's and ONNX Runtime's vectors of ``inputs``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (ours,) = session.run([OUTPUT_NAME], {INPUT_NAME: inputs})
    with torch.inference_mode():
        reference = model(torch.from_numpy(inputs)).numpy()
    return float(np.min(np.sum(ours * reference, axis=1)))


def _torch_model(source: ModelSource) -> tuple[nn.Module, dict[str, Any], LabelHeads | None]:
    meta: dict[str, Any] = {"format": EXPORT_FORMAT, "backbone": source.backbone}
    weights = source.weights_file
    meta["weights_file"] = None if weights is None else str(weights)
    if source.trained is not None:
        net, info = load_trained(source.trained)  # verifies the file's hash
        source.check_trained_from(info.backbone)
        meta.update(backbone=info.backbone, model_name=info.model_name, dim=info.dim)
        return _UnitVectors(net).eval(), meta, info.label_heads
    features, spec = load_backbone(source.backbone, source.weights)
    meta.update(model_name=source.untrained_model_name, dim=spec.dim)
    return _UnitVectors(features).eval(), meta, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embeddings.onnx_runtime.export")
    parser.add_argument("--backbone", required=True)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--trained", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="path without suffix")
    args = parser.parse_args(argv)
    try:
        export(ModelSource(args.backbone, args.weights, args.trained), args.out)
    except (ValueError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"ONNX export failed: {first_line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
