"""The model shipped inside the package: there, small, intact, and what a fresh install
searches with."""

from __future__ import annotations

import numpy as np

from bot.service import make_embedder
from bot.settings import Settings
from embeddings import Embedder
from embeddings.finetuned import load_trained
from embeddings.weights import SHIPPED_MODELS, shipped_model
from tests.support.catalog import garment_image

MAX_SHIPPED_BYTES = 25 * 2**20


def test_the_default_backbone_ships_a_small_intact_model() -> None:
    assert set(SHIPPED_MODELS) == {"efficientnet_lite0"}
    path = shipped_model("efficientnet_lite0")
    assert path is not None, "the package ships a model for the default backbone"
    assert path.stat().st_size <= MAX_SHIPPED_BYTES
    net, info = load_trained(path)  # verifies the hash over every tensor
    assert info.backbone == "efficientnet_lite0" and info.dim == net.dim
    assert info.meta["real_photos"] > 0, "trained on real shoppers' photos too"
    assert info.label_heads is not None
    types = set(info.label_heads.vocabularies["article_type"])
    assert {"Tshirts", "Jeans", "Dresses", "Casual Shoes"} <= types


def test_a_fresh_install_searches_with_it(tmp_path) -> None:
    settings = Settings(_env_file=None, WARDROBE_DATA_DIR=tmp_path)
    path = shipped_model("efficientnet_lite0")
    assert settings.trained_model_path() == path
    embedder = make_embedder(settings)
    try:
        assert "+trained@" in embedder.model_name and embedder.label_heads is not None
    finally:
        embedder.close()
    vectors = Embedder(trained=path).embed([garment_image("Dresses", "Red")])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
