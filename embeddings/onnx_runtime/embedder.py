"""The ONNX Runtime runtime: what the bot and ``wardrobe search`` serve with, without torch.

A model (an ImageNet backbone, a weights file, or a ``wardrobe train`` model) is exported from
torch once, by :mod:`.export` in a child process so that this one never imports torch,
into a cache folder, named by a hash of the weights file: a retrained model gets a new export,
an unchanged one is never exported again. Beside the ``.onnx`` file a JSON file records what
search needs without torch (model name, dimension, label heads) and the parity measured at
export time.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backbones import get_backbone_spec
from ..serving import ImageEmbedder, LabelHeads
from ..weights import ModelSource, file_sha256

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "images", "vectors"
EXPORT_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class ExportedModel:
    """An exported model on disk: ``onnx`` and what its JSON file says."""

    onnx: Path
    model_name: str
    dim: int
    label_heads: LabelHeads | None
    meta: dict[str, Any]


def exported_model(source: ModelSource, cache_dir: Path) -> ExportedModel:
    """The export of ``source`` in ``cache_dir``, made now (in a child process) if it is
    missing or damaged (its JSON file holds the ``.onnx`` file's hash)."""
    stem = source.export_stem(cache_dir)
    meta = _read_export(stem)
    if meta is None:
        _export_in_child(source, stem)
        meta = _read_export(stem)
        if meta is None:
            raise ValueError(f"The ONNX export {stem}.onnx cannot be read back.")
    source.check_trained_from(meta["backbone"])
    onnx = stem.with_suffix(".onnx")
    return ExportedModel(onnx, meta["model_name"], int(meta["dim"]), _heads(meta), meta)


def _read_export(stem: Path) -> dict[str, Any] | None:
    onnx, info = stem.with_suffix(".onnx"), stem.with_suffix(".json")
    if not (onnx.is_file() and info.is_file()):
        return None
    try:
        meta = json.loads(info.read_text(encoding="utf-8"))
        if meta.get("onnx_sha256") == file_sha256(onnx):
            return meta
    except (OSError, ValueError) as error:
        log.warning("ONNX export %s unreadable (%s): exporting it again", onnx, error)
        return None
    log.warning("ONNX export %s does not match its hash: exporting it again", onnx)
    return None


def write_model_info(stem: Path, meta: dict[str, Any], heads: LabelHeads | None) -> None:
    """Write the JSON file beside ``<stem>.onnx`` atomically; it marks the export complete."""
    full = dict(meta)
    if heads is not None:
        full["label_heads"] = {
            **heads.meta(),
            "prototypes": {name: p.tolist() for name, p in heads.prototypes.items()},
        }
    path = stem.with_suffix(".json")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(full), encoding="utf-8")
    os.replace(tmp, path)


class OnnxEmbedder(ImageEmbedder):
    """A model exported to ONNX, run by ONNX Runtime on the CPU.

    Construction checks the configuration and makes the export if it is missing (the first
    start with a new model waits for it, once); the session is created on the first
    :meth:`load` / :meth:`embed`.
    """

    runtime = "onnx"

    def __init__(
        self,
        source: ModelSource,
        cache_dir: Path,
        *,
        batch_size: int = 8,
        threads: int | None = None,
    ) -> None:
        """``threads``: ONNX Runtime's intra-op threads (None: one per core). With one thread
        inference runs in the calling thread, so that thread's priority applies to it."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        super().__init__()
        self.spec = get_backbone_spec(source.backbone)
        self.source = source
        self.exported = exported_model(source, cache_dir)
        self.dim = self.exported.dim
        self.model_name = self.exported.model_name
        self.label_heads = self.exported.label_heads
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1

    def with_threads(self, threads: int) -> OnnxEmbedder:
        """The same model with its own session of ``threads`` intra-op threads."""
        twin = copy.copy(self)
        twin.threads, twin._model, twin._lock = threads, None, threading.Lock()
        return twin

    def __repr__(self) -> str:
        return f"OnnxEmbedder({self.model_name!r}, threads={self.threads})"

    def _build(self) -> Any:
        return _session(self.exported.onnx, self.threads)

    def embed_inputs(self, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        self.load()
        feed = {INPUT_NAME: np.ascontiguousarray(inputs, dtype=np.float32)}
        (vectors,) = self._model.run([OUTPUT_NAME], feed)
        return vectors


def _session(path: Path, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Idle pool threads would spin after each run and take the cores from the next request's
    # decoding and garment crop, which run in Python between two inferences.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _export_in_child(source: ModelSource, stem: Path) -> None:
    command = [sys.executable, "-m", "embeddings.onnx_runtime.export"]
    command += ["--backbone", source.backbone, "--out", str(stem)]
    if source.weights is not None:
        command += ["--weights", str(source.weights)]
    if source.trained is not None:
        command += ["--trained", str(source.trained)]
    log.info("exporting %s to ONNX once, into %s (takes a minute)", source.backbone, stem.parent)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"Exporting the model to ONNX took over {EXPORT_TIMEOUT_SECONDS} s."
        ) from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise ValueError(lines[-1] if lines else f"ONNX export failed ({done.returncode}).")


def _heads(meta: dict[str, Any]) -> LabelHeads | None:
    described = meta.get("label_heads")
    if not described:
        return None
    prototypes = {
        name: np.asarray(rows, dtype=np.float32) for name, rows in described["prototypes"].items()
    }
    return LabelHeads(described["vocabularies"], prototypes, float(described["scale"]))
