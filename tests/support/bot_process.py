"""The real bot (``python -m bot``) as a child process against the Bot API emulator, and the
waits the end-to-end tests share."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.chat import replies
from tests.support.botapi import ApiCall, BotAPIEmulator
from tests.support.paths import REPO_ROOT

REPLY_TIMEOUT = 90.0


class BotProcess:
    """``python -m bot`` in its own working directory, with its log kept for failures."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.log = workdir / "bot.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot"],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> int | None:
        """SIGTERM, then kill after 30 s; the exit status (None when it was not running)."""
        status = None
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        return status

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else "(no log)"


def bot_env(emulator: BotAPIEmulator, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment a test bot runs with: the emulator as Telegram, ``data_dir``."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "TELEGRAM_BOT_TOKEN": emulator.token,
        "TELEGRAM_BASE_URL": emulator.base_url,
        "TELEGRAM_BASE_FILE_URL": emulator.base_file_url,
        "WARDROBE_DATA_DIR": str(data_dir),
        "EMBEDDING_DEVICE": "cpu",
        **settings,
    }


def catalog_settings(root: Path) -> dict[str, str]:
    """The settings of a shop whose catalog source is ``root/catalog`` (``write_catalog``)."""
    return {
        "CATALOG_STYLES_CSV": str(root / "catalog" / "styles.csv"),
        "CATALOG_IMAGES_DIR": str(root / "catalog" / "images"),
        "REINDEX_PROGRESS_SECONDS": "0.2",
    }


def ingest(root: Path, env: dict[str, str], timeout: float = 600) -> str:
    """The real ``wardrobe ingest`` of the configured source, with torch importable (it makes
    the ONNX export the bot then serves); its output."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ingest"],
        cwd=root, env={**env, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_until_polling(emulator: BotAPIEmulator, bot: BotProcess, since: int) -> None:
    try:
        emulator.wait_for_call("getUpdates", since=since, timeout=REPLY_TIMEOUT)
    except AssertionError:
        pytest.fail(f"the bot never polled; its log:\n{bot.tail()}")


def to(chat_id: int):
    return lambda call: str(call.params.get("chat_id")) == str(chat_id)


def wait_for_album(emulator: BotAPIEmulator, chat_id: int, since: int) -> tuple[list[str], ApiCall]:
    """Wait for an album and its buttons message; return the shown product ids and buttons."""
    sent = emulator.wait_for_call(
        "sendMediaGroup", lambda c: to(chat_id)(c) and c.ok, REPLY_TIMEOUT, since
    )
    buttons = emulator.wait_for_call(
        "sendMessage", lambda c: to(chat_id)(c) and "reply_markup" in c.params, 30, since
    )
    ids = [re.search(r"no\. (\d+)", entry["caption"]).group(1) for entry in sent.params["media"]]
    return ids, buttons


def keyboard(buttons: ApiCall) -> list[list[dict]]:
    return buttons.params["reply_markup"]["inline_keyboard"]


def is_preamble(text: str) -> bool:
    """Whether ``text`` is what a search says above its album ("Looks like: …", nothing
    close), which comes and goes with what the model sees in a test's drawn photo."""
    english = replies.ENGLISH
    prefix = english.looks_like.split("{")[0]
    return all(line.startswith(prefix) or line == english.not_close for line in text.split("\n"))


def button_data(buttons: ApiCall, prefix: str) -> str:
    """The callback data of the first button whose data starts with ``prefix`` ("more:")."""
    found = [b.get("callback_data", "") for row in keyboard(buttons) for b in row]
    return next(data for data in found if data.startswith(prefix))


def reply_text(emulator: BotAPIEmulator, chat_id: int, since: int) -> str:
    return emulator.wait_for_call("sendMessage", to(chat_id), REPLY_TIMEOUT, since).params["text"]
