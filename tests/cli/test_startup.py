"""Start-up problems end in one clear line and a non-zero exit within seconds: the real bot
process (``python -m bot``) against the Bot API emulator, with one mistake each."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.service import check_data_dir
from bot.settings import ConfigurationError, Settings
from tests.support.bot_process import bot_env
from tests.support.botapi import BotAPIEmulator

START_SECONDS = 30  # generous for 2 busy cores; a hang would take for ever


@pytest.fixture(scope="module")
def emulator() -> Iterator[BotAPIEmulator]:
    with BotAPIEmulator() as emulator:
        yield emulator


def _start(
    emulator: BotAPIEmulator, tmp_path: Path, **settings: str
) -> tuple[subprocess.CompletedProcess, float]:
    env = bot_env(emulator, tmp_path / "data", **settings)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=START_SECONDS,
    )  # fmt: skip
    return result, time.monotonic() - started


def _garbage_catalog(path: Path) -> dict[str, str]:
    path.mkdir()
    (path / "catalog.sqlite3").write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    return {}


def _newer_catalog(path: Path) -> dict[str, str]:
    path.mkdir()
    with sqlite3.connect(path / "catalog.sqlite3") as db:
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '999')")
    return {}


def _data_dir_is_a_file(path: Path) -> dict[str, str]:
    path.write_text("not a directory")
    return {}


def _data_dir_under_a_file(path: Path) -> dict[str, str]:
    path.write_text("a file")
    return {"WARDROBE_DATA_DIR": str(path / "data")}


CASES: dict[str, tuple[dict[str, str], Callable[[Path], dict[str, str]] | None, str]] = {
    "admin ids": ({"ADMIN_IDS": "abc"}, None, "ADMIN_IDS=abc: must be Telegram user ids"),
    "backbone": ({"EMBEDDING_BACKBONE": "nope"}, None, "EMBEDDING_BACKBONE=nope: must be one of"),
    "device": ({"EMBEDDING_DEVICE": "gpu"}, None, "EMBEDDING_DEVICE=gpu: must be auto, cpu"),
    "log level": ({"LOG_LEVEL": "LOUD"}, None, "LOG_LEVEL=LOUD: Input should be 'DEBUG'"),
    "page size": ({"RESULTS_PER_PAGE": "11"}, None, "RESULTS_PER_PAGE=11"),
    "no token": ({"TELEGRAM_BOT_TOKEN": ""}, None, "TELEGRAM_BOT_TOKEN is not set"),
    "wrong token": ({"TELEGRAM_BOT_TOKEN": "1:wrong"}, None, "Telegram refused TELEGRAM_BOT_TOKEN"),
    "api unreachable": ({"TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot"}, None,
                        "cannot reach the Bot API at TELEGRAM_BASE_URL=http://127.0.0.1:9/bot"),
    "webhook without secret": ({"TELEGRAM_WEBHOOK_URL": "https://shop.example/tg"}, None,
                               "WEBHOOK_SECRET_TOKEN is not"),
    "webhook over http": ({"TELEGRAM_WEBHOOK_URL": "http://shop.example/tg"}, None,
                          "TELEGRAM_WEBHOOK_URL=http://shop.example/tg: must be the public https"),
    "model file missing": ({"EMBEDDING_TRAINED": "/nowhere/model.pt"}, None,
                           "'/nowhere/model.pt' does not exist"),
    "data dir is a file": ({}, _data_dir_is_a_file, "is not a directory"),
    "data dir cannot be made": ({}, _data_dir_under_a_file, "cannot be created"),
    "damaged catalog": ({}, _garbage_catalog, "catalog.sqlite3 cannot be used"),
    "catalog too new": ({}, _newer_catalog, "newer version"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_start_up_mistake_is_one_line_and_a_quick_exit(
    emulator: BotAPIEmulator, tmp_path: Path, case: str
) -> None:
    settings, prepare, expected = CASES[case]
    if prepare is not None:
        settings = {**settings, **prepare(tmp_path / "data")}
    result, seconds = _start(emulator, tmp_path, **settings)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("wardrobe: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert seconds < START_SECONDS


def test_the_same_damaged_catalog_is_one_line_for_wardrobe_stats(tmp_path: Path) -> None:
    _garbage_catalog(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--data-dir", str(tmp_path / "data"), "stats"],
        cwd=tmp_path, capture_output=True, text=True, timeout=START_SECONDS,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot be used" in result.stderr


def test_unknown_settings_in_dotenv_are_reported(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ADMIN_ID=42\nRESULTS_PER_PAGES=6\nLOG_LEVEL=INFO\n")
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_IDS", "LOG_LEVEL")}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--data-dir", str(tmp_path / "data"), "stats"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=START_SECONDS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "unknown setting in .env, ignored: ADMIN_ID (did you mean ADMIN_IDS?)" in result.stderr
    assert "RESULTS_PER_PAGES (did you mean RESULTS_PER_PAGE?)" in result.stderr
    assert "LOG_LEVEL" not in result.stderr


def test_a_data_dir_this_user_cannot_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests run as root here, for whom every directory is writable: the permission check
    itself is stubbed (the Docker image's non-root user on a root-owned volume)."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    settings = Settings.load(_env_file=None, WARDROBE_DATA_DIR=tmp_path)
    with pytest.raises(ConfigurationError, match=r"is not writable by this user \(uid \d+\)"):
        check_data_dir(settings)
