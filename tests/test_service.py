"""Opening a recommender from Settings (bot.service)."""

from __future__ import annotations

import pytest

from bot.settings import Settings


async def test_open_recommender_leaves_nothing_open_when_it_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from bot import service
    from storage.catalog import Catalog

    base = {"WARDROBE_DATA_DIR": str(tmp_path), "EMBEDDING_TRAINED": "none"}
    with pytest.raises(ValueError, match="no_such_net"):
        await service.open_recommender(Settings(**base, EMBEDDING_BACKBONE="no_such_net"))
    assert not (tmp_path / "catalog.sqlite3").exists()  # failed before touching the catalog

    closed = []
    real_close = Catalog.close

    async def close(self: Catalog) -> None:
        closed.append(self)
        await real_close(self)

    async def broken_open(*args: object, **kwargs: object) -> None:
        raise RuntimeError("index unreadable")

    monkeypatch.setattr(Catalog, "close", close)
    monkeypatch.setattr(service.Recommender, "open", broken_open)
    with pytest.raises(RuntimeError, match="index unreadable"):
        await service.open_recommender(Settings(**base))
    assert len(closed) == 1
