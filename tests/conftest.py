"""Fixtures shared across the suite: one real embedder for the whole session, a generated
catalog, and a run from an empty directory with no settings in the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.settings import Settings
from embeddings import Embedder
from tests.support.catalog import Product, write_catalog

CACHE_SETTING = "EMBEDDING_CACHE_DIR"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The default backbone (loaded on first use: it is the slow part on 2 cores). Batches of
    4, so a handful of test images already spans several batches."""
    return Embedder(batch_size=4)


@pytest.fixture(scope="session", autouse=True)
def shared_onnx_exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One ``EMBEDDING_CACHE_DIR`` for the session (bots and CLIs started by tests inherit
    it): each model is exported to ONNX once, not once per test's data directory."""
    path = tmp_path_factory.mktemp("onnx-exports")
    previous = os.environ.get(CACHE_SETTING)
    os.environ[CACHE_SETTING] = str(path)
    yield path
    if previous is None:
        os.environ.pop(CACHE_SETTING, None)
    else:
        os.environ[CACHE_SETTING] = previous


@pytest.fixture
def no_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run from an empty directory, with no setting in the environment (but the shared ONNX
    exports), so a developer's ``.env`` or shell cannot change the test."""
    monkeypatch.chdir(tmp_path)
    for info in Settings.model_fields.values():
        if info.alias and info.alias != CACHE_SETTING:
            monkeypatch.delenv(info.alias, raising=False)


@dataclass(frozen=True)
class GeneratedCatalog:
    styles: Path
    images: Path
    products: list[Product]


@pytest.fixture
def generated_catalog(tmp_path: Path) -> GeneratedCatalog:
    """A fresh copy of the generated catalog (24 products) under ``tmp_path/catalog``, safe to
    edit."""
    root = tmp_path / "catalog"
    products = write_catalog(root)
    return GeneratedCatalog(root / "styles.csv", root / "images", products)
