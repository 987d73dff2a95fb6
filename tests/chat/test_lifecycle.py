"""Stopping and dying well: SIGTERM mid-reindex, a revoked token, Telegram gone, kill -9, and
webhook mode; the real bot process against a fresh Bot API emulator per test."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bot_process import (
    REPLY_TIMEOUT,
    BotProcess,
    bot_env,
    catalog_settings,
    ingest,
    reply_text,
    to,
    wait_for_album,
    wait_until_polling,
)
from tests.support.botapi import BotAPIEmulator
from tests.support.catalog import jpeg_bytes, photo_of, write_catalog
from tests.support.paths import REPO_ROOT

ADMIN = 42
VARIANTS = 8  # 192 items: a reindex long enough to be interrupted on 2 cores
STOP_SECONDS = 15.0
SECRET = "s3cret-token_for-tests"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("lifecycle")
    products = write_catalog(root / "catalog", variants=VARIANTS)
    settings = {"ADMIN_IDS": str(ADMIN), **catalog_settings(root)}
    with BotAPIEmulator() as emulator:
        ingest(root, bot_env(emulator, root / "data", **settings))
    return {"root": root, "products": products, "settings": settings}


@pytest.fixture
def emulator() -> Iterator[BotAPIEmulator]:
    with BotAPIEmulator() as emulator:
        yield emulator


def _bot(shop: dict, emulator: BotAPIEmulator, **settings: str) -> BotProcess:
    env = bot_env(emulator, shop["root"] / "data", **{**shop["settings"], **settings})
    return BotProcess(shop["root"], env)


@pytest.fixture
def bot(shop: dict, emulator: BotAPIEmulator) -> Iterator[BotProcess]:
    process = _bot(shop, emulator)
    since = emulator.mark()
    process.start()
    try:
        wait_until_polling(emulator, process, since)
        yield process
    finally:
        process.stop()


def _exit_within(bot: BotProcess, seconds: float) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = bot.process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {seconds} s:\n{bot.tail()}")
    return status, time.monotonic() - started


def _served_normally(shop: dict, emulator: BotAPIEmulator, chat: int) -> None:
    since = emulator.mark()
    emulator.user_sends_text(ADMIN, "/stats")
    stats = reply_text(emulator, ADMIN, since)
    assert f"Catalog: {len(shop['products'])} items" in stats, stats
    assert f"Index: {len(shop['products'])} vectors" in stats, stats
    emulator.user_sends_photo(chat, jpeg_bytes(photo_of("Dresses", "Red")))
    ids, _ = wait_for_album(emulator, chat, since)
    assert len(ids) == 5


def _reindex_under_way(emulator: BotAPIEmulator) -> int:
    """Send /reindex and wait for its first progress; the mark before it."""
    since = emulator.mark()
    emulator.user_sends_text(ADMIN, "/reindex")
    emulator.wait_for_call(
        "editMessageText", lambda call: "embedding images" in call.params.get("text", ""),
        REPLY_TIMEOUT, since,
    )  # fmt: skip
    return since


def _restart(bot: BotProcess, emulator: BotAPIEmulator) -> None:
    since = emulator.mark()
    bot.start()
    wait_until_polling(emulator, bot, since)


def test_sigterm_during_a_reindex_stops_within_seconds_and_keeps_the_catalog(
    shop: dict, emulator: BotAPIEmulator, bot: BotProcess
) -> None:
    since = _reindex_under_way(emulator)
    second = emulator.mark()
    emulator.user_sends_text(ADMIN, "/reindex")
    assert "already running" in reply_text(emulator, ADMIN, second)
    bot.process.send_signal(signal.SIGTERM)
    status, _ = _exit_within(bot, STOP_SECONDS)
    assert status == 0, bot.tail()
    cancelled = [c.params["text"] for c in emulator.calls[since:] if c.method == "editMessageText"]
    assert "Reindex cancelled" in cancelled[-1]
    _restart(bot, emulator)
    _served_normally(shop, emulator, 3001)


def test_kill_9_during_a_reindex_loses_nothing(
    shop: dict, emulator: BotAPIEmulator, bot: BotProcess
) -> None:
    _reindex_under_way(emulator)
    bot.process.kill()
    bot.process.wait()
    _restart(bot, emulator)
    _served_normally(shop, emulator, 3002)


def test_with_no_admin_ids_nobody_is_admin(shop: dict, emulator: BotAPIEmulator) -> None:
    bot = _bot(shop, emulator, ADMIN_IDS="")
    since = emulator.mark()
    bot.start()
    try:
        wait_until_polling(emulator, bot, since)
        for command in ("/reindex", "/stats", "/reindex force"):
            since = emulator.mark()
            emulator.user_sends_text(ADMIN, command)
            assert "only for the shop's admins" in reply_text(emulator, ADMIN, since)
    finally:
        bot.stop()


def test_a_revoked_token_ends_the_process_with_a_clear_line(
    emulator: BotAPIEmulator, bot: BotProcess
) -> None:
    emulator.revoke_token()
    status, _ = _exit_within(bot, STOP_SECONDS)
    assert status == 1
    assert "Telegram refused the bot token (401 Unauthorized)" in bot.log.read_text()


def test_sigterm_when_telegram_is_gone_stops_within_seconds(
    emulator: BotAPIEmulator, bot: BotProcess
) -> None:
    emulator.stop()
    time.sleep(1)
    bot.process.send_signal(signal.SIGTERM)
    status, _ = _exit_within(bot, STOP_SECONDS)
    assert status == 0, bot.tail()


def _post(url: str, body: dict, secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_webhook_mode_checks_the_secret_and_answers_like_polling(
    shop: dict, emulator: BotAPIEmulator
) -> None:
    port = _free_port()
    bot = _bot(
        shop,
        emulator,
        TELEGRAM_WEBHOOK_URL="https://shop.example/telegram/updates",
        WEBHOOK_LISTEN="127.0.0.1",
        WEBHOOK_PORT=str(port),
        WEBHOOK_SECRET_TOKEN=SECRET,
        LOG_LEVEL="DEBUG",  # python-telegram-bot logs setWebhook's parameters at DEBUG
    )
    bot.start()
    try:
        emulator.wait_for_call("setWebhook", timeout=REPLY_TIMEOUT)
        assert emulator.webhook["url"] == "https://shop.example/telegram/updates"
        assert emulator.webhook["secret_token"] == SECRET
        url = f"http://127.0.0.1:{port}/telegram/updates"
        chat = 3003
        since = emulator.mark()
        emulator.user_sends_photo(chat, jpeg_bytes(photo_of("Tshirts", "Green")))
        (update,) = emulator.take_updates()
        assert _post(url, update, None) == 403
        assert _post(url, update, "wrong") == 403
        assert _post(url, {"update_id": 1, "message": {"message_id": "x"}}, SECRET) == 200
        assert _post(url, update, SECRET) == 200
        ids, _ = wait_for_album(emulator, chat, since)
        assert len(ids) == 5
        replies = [
            c for c in emulator.calls[since:] if c.method == "sendMediaGroup" and to(chat)(c)
        ]
        assert len(replies) == 1, "refused posts were not handled"
        assert not [c for c in emulator.calls if c.method == "getUpdates"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as health:
            assert health.status == 200
        _wait_for_heartbeat(shop["root"] / "data")
        check = subprocess.run(
            [sys.executable, "-m", "bot.cli", "health"],
            cwd=shop["root"], env={**bot.env, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        bot.process.send_signal(signal.SIGTERM)
        status, _ = _exit_within(bot, STOP_SECONDS)
        assert status == 0, bot.tail()
        log = bot.log.read_text()
        assert "setWebhook" in log and SECRET not in log
        assert not (shop["root"] / "data" / "heartbeat").exists(), "a stopped bot looks alive"
    finally:
        bot.stop()


def _wait_for_heartbeat(data_dir: Path) -> None:
    deadline = time.monotonic() + 30
    while not (data_dir / "heartbeat").exists():
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.2)
