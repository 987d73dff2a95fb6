"""Settings: read from the environment and .env, nonsense refused."""

from __future__ import annotations

import pytest

from bot.settings import Settings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADMIN_IDS", "1, 2 3")
    monkeypatch.setenv("TELEGRAM_BASE_URL", "http://127.0.0.1:8081/bot")
    monkeypatch.setenv("EMBEDDING_WEIGHTS", "")
    monkeypatch.delenv("TELEGRAM_BASE_FILE_URL", raising=False)
    settings = Settings()
    assert settings.admin_ids == {1, 2, 3}
    assert settings.file_base_url == "http://127.0.0.1:8081/file/bot"
    assert settings.embedding_weights is None
    monkeypatch.setenv("TELEGRAM_BASE_FILE_URL", "http://files.local/file/bot")
    assert Settings().file_base_url == "http://files.local/file/bot"


def test_settings_read_dotenv_and_reject_nonsense(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESULTS_PER_PAGE", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=123:abc\nRESULTS_PER_PAGE=7\n")
    settings = Settings()
    assert settings.telegram_bot_token == "123:abc" and settings.results_per_page == 7
    monkeypatch.setenv("RESULTS_PER_PAGE", "11")  # Telegram albums hold at most 10
    with pytest.raises(ValueError):
        Settings()


def test_the_trained_model_to_embed_with(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import embeddings.weights

    shipped_dir = tmp_path / "models"
    shipped_dir.mkdir()
    monkeypatch.setattr(embeddings.weights, "SHIPPED_DIR", shipped_dir)
    data = tmp_path / "data"
    data.mkdir()
    base = {"_env_file": None, "WARDROBE_DATA_DIR": data}
    assert Settings(**base).trained_model_path() is None  # nothing trained, nothing shipped
    with pytest.raises(ValueError, match="no model ships"):
        Settings(**base, EMBEDDING_TRAINED="shipped").trained_model_path()

    shipped = shipped_dir / embeddings.weights.SHIPPED_MODELS["efficientnet_lite0"]
    shipped.write_bytes(b"weights")
    assert Settings(**base).trained_model_path() == shipped  # a fresh install
    assert Settings(**base, EMBEDDING_TRAINED="shipped").trained_model_path() == shipped
    assert Settings(**base, EMBEDDING_TRAINED="none").trained_model_path() is None
    assert Settings(**base, EMBEDDING_WEIGHTS=str(shipped)).trained_model_path() is None
    assert Settings(**base, EMBEDDING_BACKBONE="resnet50").trained_model_path() is None

    own = data / "trained-model.pt"
    own.write_bytes(b"the shop's own")
    assert Settings(**base).trained_model_path() == own  # `wardrobe train` wins
