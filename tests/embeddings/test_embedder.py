"""Backbone registry, Embedder and AsyncEmbedder."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models
from PIL import Image, ImageDraw

from embeddings import (
    BACKBONES,
    AsyncEmbedder,
    BackboneSpec,
    Embedder,
    ImageRejected,
    get_backbone_spec,
    load_backbone,
    load_image,
)
from embeddings.networks import build_classifier, strip_classifier
from tests.support.paths import FASHION_DEV

LITE_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
TORCHVISION_BACKBONES = sorted(set(BACKBONES) - set(LITE_BACKBONES))


def garment(
    colour: tuple[int, int, int], *, shift: int = 0, size: tuple[int, int] = (240, 320)
) -> Image.Image:
    """A crude shirt: a coloured trapezoid with sleeves on a white packshot background."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    body = [(w * 0.3, h * 0.2), (w * 0.7, h * 0.2), (w * 0.72, h * 0.9), (w * 0.28, h * 0.9)]
    draw.polygon([(x + shift, y) for x, y in body], fill=colour)
    draw.polygon(
        [(w * 0.3 + shift, h * 0.2), (w * 0.1 + shift, h * 0.4), (w * 0.3 + shift, h * 0.45)],
        fill=colour,
    )
    draw.polygon(
        [(w * 0.7 + shift, h * 0.2), (w * 0.9 + shift, h * 0.4), (w * 0.7 + shift, h * 0.45)],
        fill=colour,
    )
    return image


def stripes(size: tuple[int, int] = (240, 320)) -> Image.Image:
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[:, ::16] = (30, 160, 40)
    array[::16, :] = (240, 200, 0)
    return Image.fromarray(array)


def sample_images() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    noise = [Image.fromarray(rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)) for _ in range(2)]
    return [
        garment((200, 20, 30)),
        garment((20, 40, 200)),
        stripes(),
        *noise,
        Image.new("RGB", (64, 64)),
    ]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)  # rows are unit length


# --- registry ------------------------------------------------------------------------------


def test_unknown_backbone_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"Known backbones: .*efficientnet_lite0.*resnet50"):
        get_backbone_spec("vgg16")
    with pytest.raises(ValueError, match="Unknown backbone 'vgg16'"):
        load_backbone("vgg16")
    with pytest.raises(ValueError, match="Unknown backbone"):
        Embedder("vgg16")


def test_registry_has_the_promised_backbones() -> None:
    dims = {name: spec.dim for name, spec in BACKBONES.items()}
    assert dims == {
        "efficientnet_lite0": 1280,
        "efficientnet_lite1": 1280,
        "efficientnet_lite2": 1280,
        "resnet50": 2048,
        "convnext_tiny": 768,
        "efficientnet_b0": 1280,
        "mobilenet_v3_large": 960,
    }


@pytest.mark.parametrize("name", TORCHVISION_BACKBONES)
def test_torchvision_feature_dims_match_spec(name: str) -> None:
    spec = BACKBONES[name]
    features = strip_classifier(spec, build_classifier(spec, False)).eval()
    with torch.inference_mode():
        out = features(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, spec.dim)


@pytest.mark.parametrize("name", LITE_BACKBONES[1:])
def test_larger_lite_backbones_load_their_packaged_imagenet_weights(name: str) -> None:
    spec = BACKBONES[name]
    size = spec.preprocessing.crop
    features = strip_classifier(spec, build_classifier(spec, True)).eval()
    with torch.inference_mode():
        out = features(torch.zeros(1, 3, size, size))
    assert out.shape == (1, spec.dim)
    assert torch.isfinite(out).all() and out.abs().sum() > 0


@pytest.mark.parametrize("name", TORCHVISION_BACKBONES)
def test_preprocess_matches_torchvision_transforms(name: str) -> None:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    spec = BACKBONES[name].preprocessing
    transform = weights.transforms()
    assert (spec.resize, spec.crop) == (*transform.resize_size, *transform.crop_size)
    assert spec.interpolation == transform.interpolation.value
    for size in ((300, 500), (500, 300), (61, 80), (232, 232)):
        image = garment((200, 20, 30), size=size)
        ours = Embedder(name).preprocess(image)  # no model is loaded for this
        theirs = transform(image).numpy()
        assert ours.shape == theirs.shape == (3, 224, 224)
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("name", LITE_BACKBONES)
def test_lite_preprocess_matches_torchvision_steps(name: str) -> None:
    """Pillow + numpy preprocessing (what serving uses) equals torchvision's functional steps
    on PIL images, which training and the earlier torch-only code used."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    prep = BACKBONES[name].preprocessing
    for size in ((60, 80), (480, 640), (640, 480), (1000, 333)):
        image = garment((20, 160, 90), size=size)
        resized = TF.resize(image, [prep.resize], InterpolationMode(prep.interpolation))
        tensor = TF.pil_to_tensor(TF.center_crop(resized, [prep.crop])).float() / 255
        theirs = TF.normalize(tensor, list(prep.mean), list(prep.std)).numpy()
        np.testing.assert_allclose(Embedder(name).preprocess(image), theirs, atol=1e-6)


@pytest.mark.parametrize(("name", "size"), list(zip(LITE_BACKBONES, (224, 240, 260), strict=True)))
def test_lite_preprocessing_is_inception_style_at_the_models_own_size(name: str, size: int) -> None:
    embedder = Embedder(name)
    assert not embedder.loaded  # lazy: nothing built yet
    white = embedder.preprocess(Image.new("RGB", (300, 200), "white"))
    black = embedder.preprocess(Image.new("RGB", (300, 200), "black"))
    assert white.shape == (3, size, size)
    np.testing.assert_allclose(white, (255 - 127) / 128, rtol=1e-6)
    np.testing.assert_allclose(black, -127 / 128, rtol=1e-6)


def test_preprocess_flattens_transparency_onto_white(embedder: Embedder) -> None:
    transparent = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    white = Image.new("RGB", (50, 50), "white")
    assert np.array_equal(embedder.preprocess(transparent), embedder.preprocess(white))


# --- default backbone ------------------------------------------------------------------------


def test_embed_shape_dtype_norm(embedder: Embedder) -> None:
    vectors = embedder.embed(sample_images())
    assert vectors.shape == (6, 1280)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.model_name == "efficientnet_lite0"
    assert embedder.dim == 1280


def test_embed_is_deterministic(embedder: Embedder) -> None:
    images = sample_images()
    assert np.array_equal(embedder.embed(images), embedder.embed(images))


def test_batch_equals_single_calls(embedder: Embedder) -> None:
    images = sample_images()  # 6 images with batch_size 4: a full and a partial batch
    batched = embedder.embed(images)
    singles = np.concatenate([embedder.embed([image]) for image in images])
    np.testing.assert_allclose(batched, singles, atol=1e-5)


def test_empty_input(embedder: Embedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, 1280)
    assert vectors.dtype == np.float32


def test_colour_changes_the_vector(embedder: Embedder) -> None:
    red, blue = embedder.embed(
        [Image.new("RGB", (224, 224), (220, 20, 30)), Image.new("RGB", (224, 224), (20, 40, 220))]
    )
    assert cosine(red, blue) < 0.99


def test_similar_images_are_closer_than_dissimilar(embedder: Embedder) -> None:
    shirt, shifted_shirt, pattern = embedder.embed(
        [garment((200, 20, 30)), garment((210, 30, 40), shift=12), stripes()]
    )
    assert cosine(shirt, shifted_shirt) > cosine(shirt, pattern) + 0.1


@pytest.mark.fashion
def test_nearest_neighbour_shares_article_type_on_fashion_dev(embedder: Embedder) -> None:
    if not FASHION_DEV.is_dir():
        pytest.skip("../shared/fashion-dev is absent")
    wanted = ("Tshirts", "Sports Shoes", "Handbags", "Watches", "Sunglasses")
    with (FASHION_DEV / "styles.csv").open(newline="") as fp:
        rows = [r for r in csv.DictReader(fp) if r["articleType"] in wanted]
    picked = [r for t in wanted for r in [r for r in rows if r["articleType"] == t][:20]]
    labels = np.array([r["articleType"] for r in picked])
    vectors = embedder.embed(
        [load_image(FASHION_DEV / "images" / f"{r['id']}.jpg") for r in picked]
    )
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    accuracy = (labels[similarity.argmax(axis=1)] == labels).mean()
    assert accuracy >= 0.9, accuracy  # chance is 0.2


# --- weights from a file ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def mobilenet_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.mobilenet_v3_large(weights=None).state_dict()


def test_local_weights_are_loaded(tmp_path: Path, mobilenet_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "my-finetune.pt"
    torch.save(mobilenet_state, path)

    features, spec = load_backbone("mobilenet_v3_large", weights=path)

    assert spec.dim == 960
    assert not features.training
    loaded = features.state_dict()
    assert loaded  # every remaining key is a feature key and came from the file
    for key, value in loaded.items():
        assert torch.equal(value, mobilenet_state[key]), key
    assert all(not p.requires_grad for p in features.parameters())

    embedder = Embedder("mobilenet_v3_large", weights=str(path))
    assert embedder.model_name == "mobilenet_v3_large@my-finetune"
    (vector,) = embedder.embed([garment((200, 20, 30))])
    assert vector.shape == (960,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_local_weights_without_classifier(
    tmp_path: Path, mobilenet_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "headless.pt"
    torch.save({k: v for k, v in mobilenet_state.items() if not k.startswith("classifier.")}, path)
    features, _ = load_backbone("mobilenet_v3_large", weights=path)
    assert torch.equal(
        features.state_dict()["features.0.0.weight"], mobilenet_state["features.0.0.weight"]
    )


def test_missing_feature_keys_are_an_error(
    tmp_path: Path, mobilenet_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "partial.pt"
    torch.save({k: v for k, v in mobilenet_state.items() if not k.startswith("features.16.")}, path)
    with pytest.raises(ValueError, match=r"partial\.pt.*feature keys missing.*features\.16\."):
        load_backbone("mobilenet_v3_large", weights=path)


def test_wrong_architecture_is_an_error(
    tmp_path: Path, mobilenet_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "wrong.pt"
    torch.save({**mobilenet_state, "features.0.0.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match=r"wrong\.pt.*does not fit backbone 'mobilenet_v3_large'"):
        load_backbone("mobilenet_v3_large", weights=path)
    torch.save({**mobilenet_state, "extra.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"1 unexpected keys \['extra\.weight'\]"):
        load_backbone("mobilenet_v3_large", weights=path)


def test_unreadable_or_missing_weights_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"Cannot read weights file .*junk\.pt"):
        load_backbone("resnet50", weights=junk)
    with pytest.raises(ValueError, match="does not exist"):
        load_backbone("resnet50", weights=tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="does not exist"):
        Embedder("resnet50", weights=tmp_path / "absent.pt")


# --- loading ---------------------------------------------------------------------------------


def test_load_is_lazy_and_happens_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_load_backbone(
        name: str, weights: Path | None = None
    ) -> tuple[torch.nn.Module, BackboneSpec]:
        calls.append(name)
        return torch.nn.Flatten(), BACKBONES[name]

    monkeypatch.setattr("embeddings.embedder.load_backbone", fake_load_backbone)
    embedder = Embedder("mobilenet_v3_large")
    assert not embedder.loaded and calls == []

    threads = [threading.Thread(target=embedder.load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert embedder.loaded
    assert calls == ["mobilenet_v3_large"]


# --- asyncio ---------------------------------------------------------------------------------


class ThreadRecordingEmbedder(Embedder):
    """Shares the loaded model of ``source`` and remembers which thread ran the network."""

    def __init__(self, source: Embedder) -> None:
        super().__init__(source.spec.name)
        source.load()
        self._model = source._model
        self.threads: list[int] = []

    def embed_inputs(self, inputs: np.ndarray) -> np.ndarray:
        self.threads.append(threading.get_ident())
        return super().embed_inputs(inputs)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


async def test_async_embedder_runs_off_the_event_loop(embedder: Embedder) -> None:
    recording = ThreadRecordingEmbedder(embedder)
    async_embedder = AsyncEmbedder(recording)
    try:
        image = garment((200, 20, 30))
        features = await async_embedder.features([image])
        from_bytes = await async_embedder.features_bytes(png_bytes(image))
    finally:
        async_embedder.close()

    assert (async_embedder.model_name, async_embedder.dim) == ("efficientnet_lite0", 1280)
    assert async_embedder.batch_size == recording.batch_size
    loop_thread = threading.get_ident()
    assert len(recording.threads) == 2
    assert loop_thread not in recording.threads
    np.testing.assert_allclose(features.vectors, embedder.embed([image]), atol=1e-6)
    assert from_bytes.vectors.shape == (1, 1280)
    np.testing.assert_allclose(from_bytes.vectors, features.vectors, atol=1e-6)


async def test_async_features_bytes_rejects_garbage(embedder: Embedder) -> None:
    async_embedder = AsyncEmbedder(embedder)
    try:
        with pytest.raises(ImageRejected, match="JPEG, PNG or WebP"):
            await async_embedder.features_bytes(b"\x00garbage")
        with pytest.raises(ImageRejected, match="too large"):
            await async_embedder.features_bytes(
                png_bytes(Image.new("RGB", (100, 100))), max_pixels=99
            )
    finally:
        async_embedder.close()


async def test_requests_keep_the_loop_responsive(embedder: Embedder) -> None:
    async_embedder = AsyncEmbedder(embedder)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    try:
        await async_embedder.features(sample_images())
    finally:
        task.cancel()
        async_embedder.close()
    assert ticks > 2


async def test_shared_executor_is_not_shut_down(embedder: Embedder) -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        async_embedder = AsyncEmbedder(embedder, executor)
        await async_embedder.load()
        async_embedder.close()
        assert executor.submit(lambda: 42).result() == 42
