"""The service's parts on their own: which failed requests may be sent again, housekeeping
jobs, the heartbeat check."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.server import heartbeat, housekeeping
from bot.server.telegram_client import ServerError, may_send_again
from storage.catalog import Catalog


def _caused_by(error: NetworkError, cause: Exception) -> NetworkError:
    error.__cause__ = cause  # as python-telegram-bot raises it: `raise ... from httpx_error`
    return error


def _telegram(status: int) -> ServerError:
    return ServerError(status, f"Internal Server Error ({status})", from_telegram=True)


@pytest.mark.parametrize(
    ("endpoint", "error", "again"),
    [
        ("sendMediaGroup", _telegram(500), True),
        ("sendMediaGroup", _telegram(502), True),
        ("sendMediaGroup", _telegram(504), False),
        ("sendMediaGroup", ServerError(502, "Bad Gateway (502)", from_telegram=False), False),
        ("sendMediaGroup", _caused_by(TimedOut(), httpx.ReadTimeout("read")), False),
        ("sendMediaGroup", _caused_by(TimedOut(), httpx.ConnectTimeout("connect")), True),
        ("sendMediaGroup", _caused_by(NetworkError("read"), httpx.ReadError("x")), False),
        ("sendMediaGroup", _caused_by(NetworkError("connect"), httpx.ConnectError("x")), True),
        ("sendMessage", BadRequest("Bad Request: chat not found"), False),
        ("getFile", TimedOut(), True),
        ("answerCallbackQuery", NetworkError("httpx.ReadError: reset"), True),
        ("editMessageText", ServerError(504, "Gateway Timeout (504)", from_telegram=False), True),
    ],
)  # fmt: skip
def test_only_requests_that_cannot_double_a_message_are_sent_again(
    endpoint: str, error: NetworkError, again: bool
) -> None:
    assert may_send_again(endpoint, error) is again


async def test_housekeeping_prunes_old_searches_and_checkpoints(tmp_path: Path) -> None:
    catalog = await Catalog.open(tmp_path / "catalog.sqlite3")
    try:
        vector = np.ones(4, dtype=np.float32)
        old = await catalog.create_search(1, "m", vector, [1])
        await catalog._db.execute(
            "UPDATE searches SET created_at = ? WHERE id = ?", (time.time() - 40 * 86400, old)
        )
        new = await catalog.create_search(1, "m", vector, [2])
        context = SimpleNamespace(
            settings=SimpleNamespace(search_retention_days=30),
            recommender=SimpleNamespace(catalog=catalog),
        )
        await housekeeping.prune_searches(context)
        assert await catalog.get_search(old) is None
        assert await catalog.get_search(new) is not None
        await housekeeping.checkpoint(context)
        assert (tmp_path / "catalog.sqlite3-wal").stat().st_size == 0
    finally:
        await catalog.close()


def test_heartbeat_is_healthy_only_while_fresh(tmp_path: Path) -> None:
    path = heartbeat.heartbeat_path(tmp_path)
    assert "not running" in heartbeat.problem(path)
    heartbeat.beat(path)
    assert heartbeat.problem(path) is None
    stale = time.time() - heartbeat.STALE_SECONDS - 5
    path.write_text(f"{stale}\n")
    assert "not receiving updates" in heartbeat.problem(path)
    heartbeat.beat(path)
    assert "did not answer" in heartbeat.problem(path, webhook_port=9)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
