"""The ONNX Runtime runtime: exported once per weights file, the same vectors as torch, and a
catalog lane that yields the CPU to shoppers' queries."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from embeddings import AsyncEmbedder, Embedder, ModelSource, OnnxEmbedder, load_image
from embeddings.serving import BACKGROUND_NICENESS
from embeddings.weights import shipped_model
from tests.support.catalog import garment_image, photo_of
from tests.support.paths import CLOTHING_DEV, FASHION_DEV

MIN_COSINE = 0.9999


def parity_images() -> list[Image.Image]:
    """Drawn garments and phone-like photos, plus real packshots and real phone photos when
    the shared datasets are there."""
    images = [garment_image(t, c) for t, c in [("Tshirts", "Red"), ("Trousers", "Blue")]]
    images += [photo_of("Dresses", "Green"), photo_of("Casual Shoes", "Black", size=640)]
    if FASHION_DEV.is_dir():
        images += [load_image(p) for p in sorted((FASHION_DEV / "images").glob("*.jpg"))[:6]]
    if CLOTHING_DEV.is_dir():
        images += [load_image(p) for p in sorted(CLOTHING_DEV.rglob("*.jpg"))[:6]]
    return images


@pytest.fixture(scope="module")
def shipped_source() -> ModelSource:
    path = shipped_model("efficientnet_lite0")
    assert path is not None
    return ModelSource("efficientnet_lite0", trained=path)


@pytest.mark.parametrize(
    "kind", ["shipped", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
)
def test_onnx_vectors_equal_torch_vectors(
    kind: str, shipped_source: ModelSource, shared_onnx_exports: Path, embedder: Embedder
) -> None:
    """The shipped model and every ImageNet backbone that works offline."""
    source = shipped_source if kind == "shipped" else ModelSource(kind)
    if kind == "shipped":
        reference = Embedder(trained=source.trained)
    else:
        reference = embedder if kind == "efficientnet_lite0" else Embedder(kind)
    onnx = OnnxEmbedder(source, shared_onnx_exports, batch_size=4)
    assert (onnx.model_name, onnx.dim) == (reference.model_name, reference.dim)
    images = parity_images()

    ours, theirs = onnx.features(images, crop=True), reference.features(images, crop=True)

    cosines = np.sum(ours.vectors * theirs.vectors, axis=1)
    assert cosines.min() >= MIN_COSINE, cosines
    np.testing.assert_allclose(np.linalg.norm(ours.vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(ours.colours, theirs.colours)
    assert onnx.exported.meta["parity_cosine"] >= MIN_COSINE
    if kind == "shipped":
        heads, expected = onnx.label_heads, reference.label_heads
        assert heads is not None and expected is not None
        assert heads.vocabularies == expected.vocabularies and heads.scale == expected.scale
        for name, prototypes in expected.prototypes.items():
            assert np.array_equal(heads.prototypes[name], prototypes)


def test_export_is_named_by_the_weights_and_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    net = Embedder("efficientnet_lite0")
    net.load()
    state = net._model.model.state_dict()  # the Lite0 trunk, as EMBEDDING_WEIGHTS holds it
    weights = tmp_path / "shop-finetune.pt"
    torch.save(state, weights)
    cache = tmp_path / "cache"

    first = OnnxEmbedder(ModelSource("efficientnet_lite0", weights), cache)
    assert first.model_name == "efficientnet_lite0@shop-finetune"
    exports = sorted(cache.glob("*.onnx"))
    assert len(exports) == 1

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr("embeddings.onnx_runtime.embedder.subprocess.run", no_export)
    again = OnnxEmbedder(ModelSource("efficientnet_lite0", weights), cache)
    assert again.exported.onnx == first.exported.onnx
    monkeypatch.undo()

    state["_conv_stem.weight"] = state["_conv_stem.weight"] * 0.5  # the file changes
    torch.save(state, weights)
    changed = OnnxEmbedder(ModelSource("efficientnet_lite0", weights), cache)
    assert changed.exported.onnx != first.exported.onnx
    assert len(list(cache.glob("*.onnx"))) == 2
    image = garment_image("Tshirts", "Red")
    assert float(first.embed([image])[0] @ changed.embed([image])[0]) < 0.9999


def test_a_damaged_export_is_made_again(shared_onnx_exports: Path, tmp_path: Path) -> None:
    source = ModelSource("efficientnet_lite0")
    good = OnnxEmbedder(source, shared_onnx_exports)
    cache = tmp_path / "cache"
    cache.mkdir()
    for path in (good.exported.onnx, good.exported.onnx.with_suffix(".json")):
        (cache / path.name).write_bytes(path.read_bytes())
    damaged = cache / good.exported.onnx.name
    size = damaged.stat().st_size
    damaged.write_bytes(damaged.read_bytes()[: size // 2])

    again = OnnxEmbedder(source, cache)

    assert again.exported.onnx == damaged and damaged.stat().st_size > size // 2
    image = garment_image("Dresses", "Green")
    assert float(again.embed([image])[0] @ good.embed([image])[0]) > 0.9999


def test_a_broken_model_file_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "trained-model.pt"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"^ONNX export failed: Cannot read trained model file"):
        OnnxEmbedder(ModelSource("efficientnet_lite0", trained=broken), tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.onnx"))
    with pytest.raises(ValueError, match="does not exist"):
        ModelSource("efficientnet_lite0", trained=tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="Unknown backbone"):
        ModelSource("vgg16")


class PriorityRecordingEmbedder(OnnxEmbedder):
    """Remembers the scheduling priority of every thread that ran the network."""

    niceness: list[int]

    def embed_inputs(self, inputs: np.ndarray) -> np.ndarray:
        self.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return super().embed_inputs(inputs)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="needs per-thread priorities")
async def test_catalog_images_run_at_a_lower_priority_than_queries(
    shared_onnx_exports: Path, tmp_path: Path
) -> None:
    queries = PriorityRecordingEmbedder(ModelSource("efficientnet_lite0"), shared_onnx_exports)
    catalog = queries.with_threads(1)
    queries.niceness, catalog.niceness = [], []
    async_embedder = AsyncEmbedder(queries, garment_crop=True, background=catalog)
    path = tmp_path / "dress.png"
    garment_image("Dresses", "Red").save(path)
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    try:
        photo = path.read_bytes()
        query, files = await asyncio.gather(
            async_embedder.features_bytes(photo),
            async_embedder.prepare_files([tmp_path / "junk.jpg", path]),
        )
        catalog_features = await async_embedder.embed_prepared(files.prepared)
    finally:
        async_embedder.close()
    assert queries.niceness == [own]
    assert catalog.niceness == [own + BACKGROUND_NICENESS]
    assert files.kept == [1] and "JPEG, PNG or WebP" in files.rejected[0]
    assert float(query.vectors[0] @ catalog_features.vectors[0]) > 0.9999
