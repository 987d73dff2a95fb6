"""``wardrobe train``: the training loop, its weights file, resuming, and the Embedder using it.

Tiny runs on the synthetic catalog (a few steps, small batches, one phone view): they check
the mechanics, not the quality, which is measured on fashion-dev in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bot.cli.main import main
from bot.service import make_embedder
from bot.settings import Settings
from embeddings import Embedder
from embeddings.finetuned import EmbeddingNet, load_trained, read_trained_info
from embeddings.training.config import (
    CHECKPOINT_FILE,
    TRAINED_MODEL_FILE,
    TrainConfig,
    TrainingError,
    TrainItem,
    training_items,
)
from embeddings.training.objective import (
    Objective,
    label_tensors,
    label_vocabularies,
    make_optimizer,
)
from embeddings.training.run import train
from embeddings.training.splits import is_held_out
from embeddings.training.views import tensor_preprocessing
from embeddings.weights import shipped_model
from tests.support.catalog import garment_image, write_catalog, write_real_photos

TINY = TrainConfig(epochs=1, batch_size=8, dim=32, phone_views=1, max_steps_per_epoch=2)


pytestmark = pytest.mark.usefixtures("no_env_file")


def catalog_items(root: Path) -> list[TrainItem]:
    products = write_catalog(root)
    return [
        TrainItem(
            product.id,
            root / "images" / f"{product.id}.jpg",
            {"article_type": product.article_type, "base_colour": product.colour, "gender": "Men"},
        )
        for product in products
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `wardrobe train` run on a catalog and real photos whose held-out images are not
    even images."""
    root = tmp_path_factory.mktemp("train")
    items = catalog_items(root / "catalog")
    held_out = [item for item in items if is_held_out(item.id)]
    assert held_out, "the synthetic catalog should have held-out items"
    photos = write_real_photos(root / "real", held_out=3, others=6)
    never = [root / "real" / "images" / f"{row['image']}.jpg" for row in photos]
    never = [item.image_path for item in held_out] + [p for p in never if is_held_out(p.stem)]
    for path in never:
        path.write_bytes(b"not an image: training must never open held-out images")
    data = root / "data"
    code = main(
        ["--data-dir", str(data), "train", "--styles", str(root / "catalog" / "styles.csv"),
         "--images", str(root / "catalog" / "images"), "--epochs", "1", "--batch-size", "8",
         "--dim", "32", "--phone-views", "1", "--device", "cpu",
         "--real-photos", str(root / "real")]
    )  # fmt: skip
    assert code == 0
    return {"root": root, "data": data, "items": items, "held_out": held_out}


def test_training_items_never_include_held_out_ones(tmp_path: Path) -> None:
    items = catalog_items(tmp_path)
    kept = training_items(items)
    assert {item.id for item in kept} == {item.id for item in items if not is_held_out(item.id)}
    assert 0 < len(kept) < len(items)


def test_train_writes_weights_with_metadata(trained: dict) -> None:
    info = read_trained_info(trained["data"] / TRAINED_MODEL_FILE)
    meta = info.meta
    train_count = len(trained["items"]) - len(trained["held_out"])
    assert (info.backbone, info.dim) == ("efficientnet_lite0", 32)
    assert meta["train_items"] == train_count and meta["epochs"] == 1 and meta["seed"] == 0
    assert meta["held_out_fraction"] == 0.2 and meta["split_salt"] == "wardrobe-split-v1"
    assert meta["labels"]["article_type"] == ["Casual Shoes", "Dresses", "Trousers", "Tshirts"]
    assert len(meta["history"]) == 1
    assert meta["real_photos"] == 6 and meta["started_from"] is None
    assert {"real article_type", "real gender", "instance"} <= set(meta["history"][0])
    assert not (trained["data"] / CHECKPOINT_FILE).exists()


def test_embedder_uses_the_trained_weights(trained: dict) -> None:
    path = trained["data"] / TRAINED_MODEL_FILE
    info = read_trained_info(path)
    embedder = Embedder(trained=path, batch_size=4)
    assert embedder.dim == 32
    assert embedder.model_name == f"efficientnet_lite0+trained@{info.sha256[:8]}"
    images = [garment_image("Dresses", "Red"), garment_image("Trousers", "Blue")]
    first = embedder.embed(images)
    assert first.shape == (2, 32) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, embedder.embed(images))
    assert not np.allclose(first[0], first[1])


def test_label_heads_travel_with_the_weights_and_are_hashed(trained: dict, tmp_path: Path) -> None:
    path = trained["data"] / TRAINED_MODEL_FILE
    heads = Embedder(trained=path).label_heads
    assert heads is not None
    assert heads.vocabularies["article_type"] == [
        "Casual Shoes", "Dresses", "Trousers", "Tshirts"
    ]  # fmt: skip
    assert heads.prototypes["article_type"].shape == (4, 32)
    vectors = Embedder(trained=path).embed([garment_image("Dresses", "Red")])
    probabilities = heads.probabilities(vectors)["base_colour"]
    assert probabilities.shape == (1, len(heads.vocabularies["base_colour"]))
    assert np.isclose(probabilities.sum(), 1.0)
    # Editing a head is editing the model: the stored hash must catch it.
    payload = torch.load(path, weights_only=True)
    payload["heads"]["heads.article_type"][0, 0] += 1.0
    tampered = tmp_path / "tampered.pt"
    torch.save(payload, tampered)
    with pytest.raises(ValueError, match="damaged"):
        load_trained(tampered)


def test_train_exports_the_model_for_onnx_runtime(
    trained: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bot had to export the model itself")

    monkeypatch.setattr("embeddings.onnx_runtime.embedder.subprocess.run", no_export)
    path = trained["data"] / TRAINED_MODEL_FILE
    served = make_embedder(Settings(WARDROBE_DATA_DIR=trained["data"]))
    try:
        assert served.embedder.model_name == read_trained_info(path).model_name
        images = [garment_image("Dresses", "Red"), garment_image("Trousers", "Blue")]
        ours, theirs = served.embedder.embed(images), Embedder(trained=path).embed(images)
        assert np.sum(ours * theirs, axis=1).min() >= 0.9999
    finally:
        served.close()


def test_settings_pick_up_the_trained_model(trained: dict, tmp_path: Path) -> None:
    data = trained["data"]
    auto = Settings(WARDROBE_DATA_DIR=data)
    assert auto.trained_model_path() == data / TRAINED_MODEL_FILE
    assert "+trained@" in make_embedder(auto).model_name
    off = Settings(WARDROBE_DATA_DIR=data, EMBEDDING_TRAINED="none", GARMENT_CROP=False)
    assert make_embedder(off).model_name == "efficientnet_lite0"
    # Nothing trained here: the model shipped with the package, if this install has one.
    assert Settings(WARDROBE_DATA_DIR=tmp_path).trained_model_path() == shipped_model(
        "efficientnet_lite0"
    )
    explicit = Settings(
        WARDROBE_DATA_DIR=tmp_path, EMBEDDING_TRAINED=str(data / TRAINED_MODEL_FILE)
    )
    assert make_embedder(explicit).model_name == make_embedder(auto).model_name


def test_trained_model_conflicts_are_clear_errors(trained: dict, tmp_path: Path) -> None:
    path = trained["data"] / TRAINED_MODEL_FILE
    with pytest.raises(ValueError, match="not from the configured backbone"):
        Embedder("resnet50", trained=path)
    with pytest.raises(ValueError, match="already holds all weights"):
        Embedder(weights=path, trained=path)
    with pytest.raises(ValueError, match="does not exist"):
        Embedder(trained=tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="Cannot read"):
        Embedder(trained=garbage)


def test_loss_decreases_on_a_fixed_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, lr=1e-2)
    items = catalog_items(tmp_path)[:8]
    net = EmbeddingNet(
        "efficientnet_lite0", unfreeze_blocks=1, dim=32, colour_tap=True, pretrained=True
    )
    preprocess = tensor_preprocessing("efficientnet_lite0")
    batch = torch.stack([preprocess(Image.open(item.image_path)) for item in items])
    with torch.inference_mode():
        features, tap = net.frozen_features(batch)
    features, tap = features.clone(), tap.clone()
    vocabularies = label_vocabularies(items)
    labels = label_tensors(items, vocabularies)
    objective = Objective(32, vocabularies, config)
    optimizer = make_optimizer(net, objective, config)
    net.train()
    losses = []
    for _ in range(6):
        embeddings = net.tail(features, tap)
        loss, _ = objective(embeddings, embeddings.roll(1, dims=0), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_resume_continues_from_the_checkpoint(tmp_path: Path) -> None:
    items = catalog_items(tmp_path / "catalog")
    config = dataclasses.replace(TINY, epochs=2)
    data = tmp_path / "data"
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(items, data, config, resume=True, device="cpu", show_progress=False)

    class Interrupted(Exception):
        pass

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1/2"):
            raise Interrupted

    with pytest.raises(Interrupted):
        train(items, data, config, device="cpu", show_progress=False, log=stop_after_first_epoch)
    assert (data / CHECKPOINT_FILE).is_file() and not (data / TRAINED_MODEL_FILE).exists()
    with pytest.raises(TrainingError, match=r"other settings.*epochs"):
        train(items, data, TINY, resume=True, device="cpu", show_progress=False)

    lines: list[str] = []
    resumed = train(items, data, config, resume=True, device="cpu", show_progress=False,
                    log=lines.append)  # fmt: skip
    assert lines[0] == "resuming after epoch 1 of 2" and len(lines) == 2
    assert not (data / CHECKPOINT_FILE).exists()
    straight = train(items, data, config, device="cpu", show_progress=False, log=print)
    assert resumed.history == straight.history
    assert resumed.info.sha256 == straight.info.sha256
    net, info = load_trained(straight.info.path)
    assert info.dim == 32 and not net.training


def test_no_training_items_is_a_clear_error(tmp_path: Path) -> None:
    items = catalog_items(tmp_path)
    everything_held_out = dataclasses.replace(TINY, held_out_fraction=1.0)
    with pytest.raises(TrainingError, match="0 training items"):
        train(items, tmp_path / "data", everything_held_out, device="cpu", show_progress=False)
    with pytest.raises(TrainingError, match="batch_size"):
        TrainConfig(batch_size=1)


def test_cli_reports_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    images = tmp_path / "images"
    images.mkdir()
    code = main(["--data-dir", str(tmp_path / "data"), "train", "--styles",
                 str(tmp_path / "missing.csv"), "--images", str(images)])  # fmt: skip
    assert code == 2
    assert "styles file not found" in capsys.readouterr().err
    (tmp_path / "styles.csv").write_text("id,articleType\n")
    code = main(["--data-dir", str(tmp_path / "data"), "train", "--styles",
                 str(tmp_path / "styles.csv"), "--images", str(images)])  # fmt: skip
    assert code == 2
    assert "0 training items" in capsys.readouterr().err


def test_real_photos_raise_the_probability_of_what_their_class_allows() -> None:
    vocabularies = {"article_type": ["Jeans", "Shirts", "Trousers"], "gender": ["Men", "Women"]}
    config = TrainConfig(label_weights=(("article_type", 1.0), ("gender", 0.3)))
    objective = Objective(4, vocabularies, config)
    with torch.no_grad():
        objective.classifiers["article_type"].copy_(torch.eye(4)[:3])
    real = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0, 1.0, 0.0]]), dim=1)
    packshots = photos = torch.nn.functional.normalize(torch.randn(2, 4), dim=1)
    labels = {name: torch.tensor([-1, -1]) for name in vocabularies}

    def real_loss(allowed: list[bool]) -> float:
        masks = {"article_type": torch.tensor([allowed])}
        return objective(packshots, photos, labels, real, masks)[1]["real article_type"]

    assert real_loss([True, True, True]) == pytest.approx(0.0, abs=1e-6)
    # Pants allow Jeans and Trousers: the photo sits between both, far from Shirts.
    assert real_loss([True, False, True]) < real_loss([False, True, False])
    none_allowed = objective(
        packshots, photos, labels, real, {"article_type": torch.tensor([[False] * 3])}
    )
    assert "real article_type" not in none_allowed[1]


def test_training_can_continue_from_a_trained_model(trained: dict, tmp_path: Path) -> None:
    weights = trained["data"] / TRAINED_MODEL_FILE
    items = trained["items"]
    usable = [item for item in items if not is_held_out(item.id)]
    config = dataclasses.replace(TINY, dim=32, phone_views=1)
    result = train(usable, tmp_path, config, start_from=weights, device="cpu", show_progress=False,
                   log=lambda line: None)  # fmt: skip
    assert result.info.meta["started_from"] == read_trained_info(weights).model_name
    with pytest.raises(TrainingError, match="another architecture"):
        train(usable, tmp_path, dataclasses.replace(config, dim=16), start_from=weights,
              device="cpu", show_progress=False, log=lambda line: None)  # fmt: skip


def test_starting_from_a_shipped_model_that_is_not_there_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import embeddings.weights

    monkeypatch.setattr(embeddings.weights, "SHIPPED_DIR", tmp_path / "nothing-ships")
    write_catalog(tmp_path / "catalog")
    catalog = tmp_path / "catalog"
    code = main(["--data-dir", str(tmp_path / "data"), "train",
                 "--styles", str(catalog / "styles.csv"), "--images", str(catalog / "images"),
                 "--start-from", "shipped"])  # fmt: skip
    assert code == 2
    assert "no model ships for backbone 'efficientnet_lite0'" in capsys.readouterr().err


def test_a_shops_training_starts_from_the_shipped_model_when_it_fits(
    trained: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import embeddings.weights

    shipped_dir = tmp_path / "models"
    shipped_dir.mkdir()
    shipped = shipped_dir / embeddings.weights.SHIPPED_MODELS["efficientnet_lite0"]
    shutil.copyfile(trained["data"] / TRAINED_MODEL_FILE, shipped)
    monkeypatch.setattr(embeddings.weights, "SHIPPED_DIR", shipped_dir)
    catalog = trained["root"] / "catalog"

    def train_with(*options: str) -> dict:
        data = tmp_path / f"data{len(options)}"
        code = main(["--data-dir", str(data), "train", "--styles", str(catalog / "styles.csv"),
                     "--images", str(catalog / "images"), "--epochs", "1", "--batch-size", "8",
                     "--phone-views", "1", "--device", "cpu", *options])  # fmt: skip
        assert code == 0
        return read_trained_info(data / TRAINED_MODEL_FILE).meta

    assert train_with("--dim", "32")["started_from"] == read_trained_info(shipped).model_name
    capsys.readouterr()
    assert train_with("--dim", "16", "--start-from", "auto")["started_from"] is None
    assert "the shipped model has another architecture" in capsys.readouterr().err
    assert (
        train_with("--dim", "32", "--start-from", "imagenet", "--seed", "1")["started_from"] is None
    )


def test_real_photos_come_from_the_settings_and_training_without_them_warns(
    trained: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    catalog = trained["root"] / "catalog"
    write_real_photos(tmp_path / "real", held_out=1, others=4)

    def train_with(data: Path, *options: str) -> tuple[dict, str]:
        code = main(["--data-dir", str(data), "train", "--styles", str(catalog / "styles.csv"),
                     "--images", str(catalog / "images"), "--epochs", "1", "--dim", "32",
                     "--phone-views", "1", "--device", "cpu",
                     "--start-from", "imagenet", *options])  # fmt: skip
        assert code == 0
        return read_trained_info(data / TRAINED_MODEL_FILE).meta, capsys.readouterr().err

    monkeypatch.setenv("TRAIN_REAL_PHOTOS", str(tmp_path / "real"))
    meta, err = train_with(tmp_path / "with")
    assert meta["real_photos"] == 4 and "training without real photos" not in err
    meta, err = train_with(tmp_path / "refused", "--no-real-photos")
    assert meta["real_photos"] == 0 and "warning: training without real photos" in err
    monkeypatch.setenv("TRAIN_REAL_PHOTOS", "")
    meta, err = train_with(tmp_path / "without")
    assert meta["real_photos"] == 0 and "warning: training without real photos" in err

    monkeypatch.setenv("TRAIN_REAL_PHOTOS", str(tmp_path / "not-there"))
    code = main(["--data-dir", str(tmp_path / "missing"), "train",
                 "--styles", str(catalog / "styles.csv"),
                 "--images", str(catalog / "images")])  # fmt: skip
    assert code == 2
    assert "TRAIN_REAL_PHOTOS: no labels.csv in" in capsys.readouterr().err
