"""The bot under load, through the local Bot API emulator (a benchmark, not a test).

    .venv/bin/python scripts/bench_load.py --styles ../shared/fashion-dev/styles.csv \
        --images ../shared/fashion-dev/images --photos ../shared/clothing-dev

1. Ingests the catalog with ``wardrobe ingest`` into a scratch data directory, starts the real
   bot (``python -m bot``) against the emulator and times start-up to its first album.
2. ``--shoppers`` shoppers each send a real photo within one second while another chat sends
   ``/help`` every 250 ms: time to album (p50/p95, all must arrive) and the slowest ``/help``.
3. The same while an admin's ``/reindex`` re-embeds the whole catalog.
4. A synthetic catalog of ``--synthetic-items`` items (random vectors of the served model's
   dimension, the dev images reused): start-up to first album and memory.

Memory is the bot process's resident set (VmRSS), sampled every 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.service import make_embedder  # noqa: E402
from bot.settings import Settings  # noqa: E402
from embeddings.colour import DIM as COLOUR_DIM  # noqa: E402
from embeddings.training.real_photos import read_real_photos  # noqa: E402
from storage.catalog import Catalog, EmbeddedItem  # noqa: E402
from storage.index_files import build_and_save_index  # noqa: E402
from storage.source import read_styles  # noqa: E402
from tests.support.botapi import BotAPIEmulator  # noqa: E402

ADMIN, HELP_CHAT, FIRST_SHOPPER = 42, 7, 1000
TIMEOUT = 180.0


class Bot:
    """``python -m bot`` with its memory sampled in the background."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.log = (workdir / "bot.log").open("a")
        self.started = time.time()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=workdir, env=env, stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.peak_mb = 0.0
        self._sampling = True
        threading.Thread(target=self._sample, daemon=True).start()

    def rss_mb(self) -> float:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0.0
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def torch_loaded(self) -> bool:
        return "libtorch" in Path(f"/proc/{self.process.pid}/maps").read_text()

    def _sample(self) -> None:
        while self._sampling and self.process.poll() is None:
            self.peak_mb = max(self.peak_mb, self.rss_mb())
            time.sleep(0.1)

    def stop(self) -> None:
        self._sampling = False
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--styles", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True, help="clothing-dev style folder")
    parser.add_argument("--shoppers", type=int, default=30)
    parser.add_argument("--synthetic-items", type=int, default=44_000)
    args = parser.parse_args()
    args.styles, args.images = args.styles.resolve(), args.images.resolve()
    photos = [p.path.read_bytes() for p in read_real_photos(args.photos, held_out=True).photos]
    random.Random(0).shuffle(photos)
    with tempfile.TemporaryDirectory(prefix="wardrobe-load-") as scratch:
        emulator = BotAPIEmulator()
        emulator.start()
        try:
            dev = _dev_catalog(emulator, Path(scratch), args, photos)
            synthetic = _synthetic_catalog(emulator, Path(scratch), args, photos)
        finally:
            emulator.stop()
    print("\n| measurement | value |\n|---|---|")
    for name, value in [*dev, *synthetic]:
        print(f"| {name} | {value} |")
    return 0


def _env(emulator: BotAPIEmulator, data: Path, args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TELEGRAM_BOT_TOKEN": emulator.token,
        "TELEGRAM_BASE_URL": emulator.base_url,
        "TELEGRAM_BASE_FILE_URL": emulator.base_file_url,
        "ADMIN_IDS": str(ADMIN),
        "WARDROBE_DATA_DIR": str(data),
        "CATALOG_STYLES_CSV": str(args.styles),
        "CATALOG_IMAGES_DIR": str(args.images),
        "REINDEX_PROGRESS_SECONDS": "3",
    }


def _dev_catalog(
    emulator: BotAPIEmulator, scratch: Path, args: argparse.Namespace, photos: list[bytes]
) -> list[tuple[str, str]]:
    data = scratch / "dev"
    env = _env(emulator, data, args)
    print("ingesting the catalog …", file=sys.stderr)
    done = subprocess.run([sys.executable, "-m", "bot.cli", "ingest"], env=env, cwd=scratch,
                          capture_output=True, text=True, check=True)  # fmt: skip
    summary = next(line for line in done.stdout.splitlines() if "items indexed" in line)
    rows = [("catalog ingested", summary)]
    bot, first = _start(emulator, env, scratch, photos[0])
    rows += [("dev catalog: start-up to first album", f"{first:.1f} s"),
             ("dev catalog: torch loaded in the bot", "yes" if bot.torch_loaded() else "no"),
             ("dev catalog: RSS after the first album", f"{bot.rss_mb():.0f} MB")]  # fmt: skip
    try:
        rows += _load_round(emulator, args.shoppers, photos[1:], "idle")
        since = emulator.mark()
        emulator.user_sends_text(ADMIN, "/reindex")
        emulator.wait_for_call("sendMessage", _text_to(ADMIN, "Reindex started"), TIMEOUT, since)
        started = time.time()
        rows += _load_round(emulator, args.shoppers, photos[1:], "during /reindex")
        complete = _text_to(ADMIN, "Reindex complete")
        done_call = emulator.wait_for_call("editMessageText", complete, 1800, since)
        rows.append(("/reindex of the whole catalog", f"{done_call.time - started:.0f} s"))
        rows.append(("dev catalog: peak RSS of the bot", f"{bot.peak_mb:.0f} MB"))
        rows.append(("dev catalog: RSS after all that", f"{bot.rss_mb():.0f} MB"))
    finally:
        bot.stop()
    return rows


def _synthetic_catalog(
    emulator: BotAPIEmulator, scratch: Path, args: argparse.Namespace, photos: list[bytes]
) -> list[tuple[str, str]]:
    data = scratch / "synthetic"
    env = _env(emulator, data, args)
    print(f"writing {args.synthetic_items} synthetic items …", file=sys.stderr)
    asyncio.run(_write_synthetic(data, args))
    bot, first = _start(emulator, env, scratch, photos[0])
    n = f"{args.synthetic_items:,} items"
    try:
        rows = [(f"{n}: start-up to first album", f"{first:.1f} s"),
                (f"{n}: RSS after the first album", f"{bot.rss_mb():.0f} MB")]  # fmt: skip
        rows += _load_round(emulator, args.shoppers, photos[1:], f"idle, {n}")
        rows.append((f"{n}: peak RSS of the bot", f"{bot.peak_mb:.0f} MB"))
    finally:
        bot.stop()
    return rows


async def _write_synthetic(data: Path, args: argparse.Namespace) -> None:
    """Catalog rows cycling through the dev catalog's items (ids made unique), each with a
    random unit vector, stored as if ingested by the served model; then its index file."""
    settings = Settings(_env_file=None, WARDROBE_DATA_DIR=data)
    embedder = make_embedder(settings)
    model, dim = embedder.model_name, embedder.dim
    embedder.close()
    items = [row.item for row in read_styles(args.styles, args.images) if row.item is not None]
    rng = np.random.default_rng(0)
    catalog = await Catalog.open(settings.database_path)
    try:
        batch = []
        for number in range(args.synthetic_items):
            source = items[number % len(items)]
            item = dataclasses.replace(source, id=f"{source.id}-{number}")
            vector = rng.standard_normal(dim).astype(np.float32)
            colour = rng.random(COLOUR_DIM).astype(np.float32)
            sha = hashlib.sha256(item.id.encode()).hexdigest()
            unit = vector / np.linalg.norm(vector), colour / np.linalg.norm(colour)
            batch.append(EmbeddedItem(item, sha, *unit))
        meta = {"model": model, "dim": str(dim), "vectors_version": "1"}
        await catalog.write_items(batch, meta=meta)
        await build_and_save_index(catalog, data, 1, dim)
    finally:
        await catalog.close()


def _start(
    emulator: BotAPIEmulator, env: dict[str, str], scratch: Path, photo: bytes
) -> tuple[Bot, float]:
    """Start the bot and send a photo at once: seconds from process start to the album."""
    since = emulator.mark()
    bot = Bot(env, scratch)
    emulator.user_sends_photo(FIRST_SHOPPER - 1, photo)
    album = emulator.wait_for_call("sendMediaGroup", _to(FIRST_SHOPPER - 1), TIMEOUT, since)
    return bot, album.time - bot.started


def _load_round(
    emulator: BotAPIEmulator, shoppers: int, photos: list[bytes], label: str
) -> list[tuple[str, str]]:
    since = emulator.mark()
    sent: dict[int, float] = {}
    help_sent: list[float] = []
    stop = threading.Event()

    def ask_for_help() -> None:
        while not stop.is_set():
            help_sent.append(time.time())
            emulator.user_sends_text(HELP_CHAT, "/help")
            stop.wait(0.25)

    helper = threading.Thread(target=ask_for_help)
    helper.start()
    for number in range(shoppers):
        chat = FIRST_SHOPPER + number
        sent[chat] = time.time()
        emulator.user_sends_photo(chat, photos[number % len(photos)])
        time.sleep(1.0 / shoppers)
    albums = {}
    for chat in sent:
        call = emulator.wait_for_call("sendMediaGroup", _to(chat), TIMEOUT, since)
        albums[chat] = call.time - sent[chat]
    stop.set()
    helper.join()
    replies = emulator.wait_for_calls("sendMessage", len(help_sent), _to(HELP_CHAT), 60, since)
    help_waits = [reply.time - asked for reply, asked in zip(replies, help_sent, strict=True)]
    waits = sorted(albums.values())
    p95 = waits[min(len(waits) - 1, round(0.95 * (len(waits) - 1)))]
    slowest_help = f"{max(help_waits) * 1000:.0f} ms"
    return [
        (f"{label}: albums delivered", f"{len(albums)} of {shoppers}"),
        (f"{label}: time to album p50 / p95", f"{statistics.median(waits):.2f} s / {p95:.2f} s"),
        (f"{label}: slowest /help reply (of {len(help_waits)})", slowest_help),
    ]


def _to(chat_id: int):
    return lambda call: str(call.params.get("chat_id")) == str(chat_id)


def _text_to(chat_id: int, text: str):
    return lambda call: _to(chat_id)(call) and text in str(call.params.get("text", ""))


if __name__ == "__main__":
    sys.exit(main())
