"""Faults, abuse and odd updates, against the real bot through the Bot API emulator.

One bot serves the module (LOG_LEVEL=DEBUG, so the secret check at the end reads every line
it wrote); each test uses chats of its own, because searches are limited per user.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator

import pytest
from PIL import Image

from bot.chat import replies
from tests.support.bot_process import (
    REPLY_TIMEOUT,
    BotProcess,
    bot_env,
    button_data,
    catalog_settings,
    ingest,
    is_preamble,
    reply_text,
    to,
    wait_for_album,
    wait_until_polling,
)
from tests.support.botapi import BotAPIEmulator
from tests.support.catalog import jpeg_bytes, photo_of, write_catalog, write_styles
from tests.support.no_torch import torchless_pythonpath
from tests.support.paths import REPO_ROOT

ADMIN = 42
SEARCHES_PER_USER = 3
TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("reliability")
    products = write_catalog(root / "catalog")
    emulator = BotAPIEmulator()
    emulator.start()
    env = bot_env(
        emulator,
        root / "data",
        PYTHONPATH=torchless_pythonpath(root),
        ADMIN_IDS=str(ADMIN),
        LOG_LEVEL="DEBUG",
        SEARCHES_PER_USER=str(SEARCHES_PER_USER),
        **catalog_settings(root),
    )
    ingest(root, env)
    bot = BotProcess(root, env)
    since = emulator.mark()
    bot.start()
    try:
        wait_until_polling(emulator, bot, since)
        yield {"emulator": emulator, "bot": bot, "products": products, "root": root}
    finally:
        bot.stop()
        emulator.stop()


def _photo(colour: str = "Red", kind: str = "Dresses") -> bytes:
    return jpeg_bytes(photo_of(kind, colour))


def _said(emulator: BotAPIEmulator, chat: int, since: int) -> list[str]:
    return [
        call.params["text"]
        for call in emulator.calls[since:]
        if call.method == "sendMessage" and to(chat)(call) and call.ok
    ]


def _albums(emulator: BotAPIEmulator, chat: int, since: int) -> int:
    return sum(
        1
        for call in emulator.calls[since:]
        if call.method == "sendMediaGroup" and to(chat)(call) and call.ok
    )


def _settle(seconds: float = 1.5) -> None:
    """Time for an answer that should not come to show up."""
    time.sleep(seconds)


@pytest.mark.parametrize(
    ("method", "code", "retry_after"),
    [("sendMediaGroup", 500, None), ("sendMediaGroup", 502, None), ("getFile", 500, None),
     ("sendMediaGroup", 429, 1), ("sendMessage", 429, 1)],
    ids=["album 500", "album 502", "getFile 500", "album 429", "buttons 429"],
)  # fmt: skip
def test_telegram_errors_are_retried_and_the_album_is_sent_once(
    world: dict, method: str, code: int, retry_after: int | None
) -> None:
    emulator = world["emulator"]
    chat = 2000 + code + len(method)
    since = emulator.mark()
    emulator.fail_next(method, code=code, retry_after=retry_after)
    emulator.user_sends_photo(chat, _photo())
    ids, _ = wait_for_album(emulator, chat, since)
    _settle()
    assert len(ids) == 5
    assert _albums(emulator, chat, since) == 1
    assert not any("Sorry" in text for text in _said(emulator, chat, since))


def test_a_slow_album_is_waited_for_not_apologised_for(world: dict) -> None:
    emulator = world["emulator"]
    chat = 2101
    since = emulator.mark()
    emulator.delay_next("sendMediaGroup", 7.0)  # past python-telegram-bot's default 5 s
    emulator.user_sends_photo(chat, _photo("Blue"))
    wait_for_album(emulator, chat, since)
    _settle()
    assert _albums(emulator, chat, since) == 1
    said = [text for text in _said(emulator, chat, since) if not is_preamble(text)]
    assert said == [replies.ENGLISH.results_header]


def test_a_request_that_keeps_failing_ends_in_one_clear_message(world: dict) -> None:
    emulator = world["emulator"]
    chat = 2102
    since = emulator.mark()
    emulator.fail_next("sendMediaGroup", code=500, times=4)  # all tries
    emulator.user_sends_photo(chat, _photo("Green"))
    emulator.wait_for_call(
        "sendMessage", lambda c: to(chat)(c) and "Sorry" in c.params["text"], REPLY_TIMEOUT, since
    )
    _settle()
    said = [text for text in _said(emulator, chat, since) if not is_preamble(text)]
    assert said == [replies.ENGLISH.failed]
    tries = [c for c in emulator.calls[since:] if c.method == "sendMediaGroup" and to(chat)(c)]
    assert len(tries) == 4, "one try and three retries"


def test_more_like_this_works_when_telegram_refuses_the_button_answer(world: dict) -> None:
    emulator = world["emulator"]
    chat = 2103
    since = emulator.mark()
    emulator.user_sends_photo(chat, _photo("Yellow", "Tshirts"))
    first, buttons = wait_for_album(emulator, chat, since)
    more = button_data(buttons, "more:")
    since = emulator.mark()
    emulator.fail_next("answerCallbackQuery", code=400, description=TOO_OLD)
    emulator.user_presses_button(chat, buttons.result["message_id"], more)
    ids, _ = wait_for_album(emulator, chat, since)
    assert ids and not set(ids) & set(first)
    assert not any("Sorry" in text for text in _said(emulator, chat, since))


def test_another_chats_search_cannot_be_read_or_advanced(world: dict) -> None:
    emulator = world["emulator"]
    owner, intruder = 2104, 2105
    since = emulator.mark()
    emulator.user_sends_photo(owner, _photo("Black", "Trousers"))
    first, buttons = wait_for_album(emulator, owner, since)
    more = button_data(buttons, "more:")
    emulator.user_sends_text(intruder, "hi")
    help_message = emulator.wait_for_call("sendMessage", to(intruder), REPLY_TIMEOUT, since)
    since = emulator.mark()
    emulator.user_presses_button(intruder, help_message.result["message_id"], more, stale=True)
    assert "expired" in reply_text(emulator, intruder, since)
    assert _albums(emulator, intruder, since) == 0
    emulator.user_presses_button(owner, buttons.result["message_id"], more)
    ids, _ = wait_for_album(emulator, owner, since)
    assert ids and not set(ids) & set(first), "the owner's search went on where it was"


@pytest.mark.parametrize(
    "data",
    [
        "item:" + "9" * 30,
        "more:" + "9" * 19,
        "more:²",
        "item:-1",
        "more:1e5",
        "x" * 64,
        "refine:1:0:zz",
        "refine:" + "9" * 19 + ":0:t",
        "refine:1:t",
        "vote:1:0:x",
        "vote:1:1234:u",
        "vote:" + "9" * 18 + ":0:d",
    ],
)
def test_forged_button_data_is_answered_quietly(world: dict, data: str) -> None:
    emulator, bot = world["emulator"], world["bot"]
    chat = 2106
    logged = len(bot.log.read_text())
    since = emulator.mark()
    emulator.user_sends_text(chat, "hi")
    message = emulator.wait_for_call("sendMessage", to(chat), REPLY_TIMEOUT, since)
    since = emulator.mark()
    query = emulator.user_presses_button(chat, message.result["message_id"], data, stale=True)
    emulator.wait_for_call(
        "answerCallbackQuery",
        lambda call: call.params.get("callback_query_id") == query,
        REPLY_TIMEOUT,
        since,
    )
    _settle(0.5)
    assert _said(emulator, chat, since) == []
    assert "Traceback" not in bot.log.read_text()[logged:]


def test_one_users_flood_is_limited_and_others_are_still_served(world: dict) -> None:
    emulator = world["emulator"]
    flooder, other = 2107, 2108
    since = emulator.mark()
    for number in range(20):
        emulator.user_sends_photo(flooder, _photo(["Red", "Blue", "Green", "Black"][number % 4]))
    emulator.user_sends_photo(other, _photo("Purple"))
    wait_for_album(emulator, other, since)
    deadline = time.monotonic() + REPLY_TIMEOUT
    while _albums(emulator, flooder, since) < SEARCHES_PER_USER:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    _settle()
    said = _said(emulator, flooder, since)
    assert _albums(emulator, flooder, since) == SEARCHES_PER_USER
    waits = [text for text in said if text.startswith("One moment")]
    assert len(waits) == 1, said


def test_an_album_of_photos_gets_one_answer(world: dict) -> None:
    emulator = world["emulator"]
    chat = 2109
    since = emulator.mark()
    emulator.user_sends_album(chat, [_photo("Red"), _photo("Blue"), _photo("Green")])
    wait_for_album(emulator, chat, since)
    _settle()
    assert _albums(emulator, chat, since) == 1


def test_in_a_group_only_messages_addressed_to_the_bot_are_answered(world: dict) -> None:
    emulator = world["emulator"]
    group, user = -1002110, 2110
    since = emulator.mark()
    emulator.user_sends_text(group, "what do you all think of my new coat?", user_id=user)
    emulator.user_sends_photo(group, _photo("Red"), user_id=user, caption="mine")
    _settle()
    assert _said(emulator, group, since) == [] and _albums(emulator, group, since) == 0
    emulator.user_sends_photo(group, _photo("Red"), user_id=user, caption="@test_bot like this?")
    _, buttons = wait_for_album(emulator, group, since)
    since = emulator.mark()
    emulator.user_sends_photo(
        group, _photo("Blue"), user_id=user + 1, reply_to_message_id=buttons.result["message_id"]
    )
    wait_for_album(emulator, group, since)
    since = emulator.mark()
    emulator.user_sends_text(group, "/help@test_bot", user_id=user)
    assert "Send me a photo" in reply_text(emulator, group, since)


def test_edits_channel_posts_and_senderless_updates_get_no_answer(world: dict) -> None:
    emulator, bot = world["emulator"], world["bot"]
    chat, channel = 2111, -1002111
    logged = len(bot.log.read_text())
    since = emulator.mark()
    sent = emulator.user_sends_photo(chat, _photo("Green"), caption="this one")
    wait_for_album(emulator, chat, since)
    since = emulator.mark()
    emulator.user_edits_message(chat, sent["message_id"], caption="this one, in blue?")
    emulator.channel_posts_photo(channel, _photo("Yellow"), caption="new in")
    emulator.channel_posts_text(channel, "sale!")
    emulator.user_sends_photo(chat, _photo("Black", "Trousers"))
    wait_for_album(emulator, chat, since)  # later updates still flow
    _settle()
    assert _albums(emulator, chat, since) == 1
    assert _said(emulator, channel, since) == [] and _albums(emulator, channel, since) == 0
    assert "error while handling" not in bot.log.read_text()[logged:]


def test_an_update_the_library_cannot_read_is_skipped_once(world: dict) -> None:
    emulator, bot = world["emulator"], world["bot"]
    chat = 2112
    since = emulator.mark()
    bad = emulator.push_raw_update({"message": {"message_id": "x"}})
    emulator.user_sends_photo(chat, _photo("Blue", "Tshirts"))
    wait_for_album(emulator, chat, since)
    _settle(2)
    delivered = [
        call
        for call in emulator.calls[since:]
        if call.method == "getUpdates" and any(u["update_id"] == bad for u in call.result or [])
    ]
    assert len(delivered) <= 2, f"fetched {len(delivered)} times"
    assert bot.log.read_text().count(f"skipped unreadable update {bad}") == 1


def test_a_reindex_whose_source_is_empty_is_refused(world: dict) -> None:
    emulator, root = world["emulator"], world["root"]
    styles = root / "catalog" / "styles.csv"
    kept = styles.read_text()
    write_styles(styles, [])  # a header-only styles.csv
    try:
        since = emulator.mark()
        emulator.user_sends_text(ADMIN, "/reindex")
        refused = emulator.wait_for_call(
            "editMessageText", lambda c: "Reindex" in c.params.get("text", ""), REPLY_TIMEOUT,
            since,
        )  # fmt: skip
        assert "Reindex refused" in refused.params["text"]
        assert "remove 24 of the 24" in refused.params["text"]
        since = emulator.mark()
        emulator.user_sends_text(ADMIN, "/stats")
        assert "Catalog: 24 items" in reply_text(emulator, ADMIN, since)
    finally:
        styles.write_text(kept)


def test_health_reports_the_polling_bot_alive(world: dict) -> None:
    env = {**world["bot"].env, "PYTHONPATH": str(REPO_ROOT)}
    health = subprocess.run(
        [sys.executable, "-m", "bot.cli", "health"],
        cwd=world["root"], env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert health.returncode == 0, health.stderr
    env["WARDROBE_DATA_DIR"] = str(world["root"] / "elsewhere")
    health = subprocess.run(
        [sys.executable, "-m", "bot.cli", "health"],
        cwd=world["root"], env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert health.returncode != 0 and "no heartbeat" in health.stderr


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise
    return _encoded(photo_of("Tshirts", "Red", size=400).rotate(90, expand=True), "JPEG", exif=exif)


def _rgba() -> bytes:
    garment = photo_of("Dresses", "Blue", size=400).convert("RGBA")
    garment.putalpha(Image.new("L", garment.size, 255))
    return _encoded(garment, "PNG")


def _animated_webp() -> bytes:
    frames = [photo_of("Dresses", colour, size=300) for colour in ("Green", "Red")]
    return _encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=200)


def _zip_named_jpeg() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", _photo())
    return buffer.getvalue()


ODD_IMAGES = {
    "EXIF-rotated JPEG": (_exif_rotated, "rotated.jpg", "image/jpeg"),
    "CMYK JPEG": (lambda: _encoded(photo_of("Trousers", "Black", 400).convert("CMYK"), "JPEG"),
                  "cmyk.jpg", "image/jpeg"),
    "16-bit PNG": (lambda: _encoded(photo_of("Dresses", "Red", 400).convert("I;16"), "PNG"),
                   "deep.png", "image/png"),
    "RGBA PNG": (_rgba, "alpha.png", "image/png"),
    "animated WebP": (_animated_webp, "moving.webp", "image/webp"),
}  # fmt: skip
BAD_FILES = {
    "decompression bomb": (lambda: _encoded(Image.new("1", (20_000, 20_000)), "PNG"),
                           "bomb.png", "image/png", "too large"),
    "zip named .jpg": (_zip_named_jpeg, "photo.jpg", "image/jpeg", "JPEG, PNG"),
    "truncated JPEG": (lambda: _photo()[:600], "cut.jpg", "image/jpeg", "JPEG, PNG"),
    "empty file": (lambda: b"", "empty.jpg", "image/jpeg", "JPEG, PNG"),
    "HEIC": (lambda: b"\x00\x00\x00\x18ftypheic" + bytes(64), "x.heic", "image/heic",
             "can't read that kind"),
}  # fmt: skip


@pytest.mark.parametrize("case", ODD_IMAGES, ids=list(ODD_IMAGES))
def test_odd_but_real_images_get_an_album(world: dict, case: str) -> None:
    emulator = world["emulator"]
    chat = 2200 + list(ODD_IMAGES).index(case)
    make, name, mime = ODD_IMAGES[case]
    since = emulator.mark()
    emulator.user_sends_document(chat, make(), name, mime)
    ids, _ = wait_for_album(emulator, chat, since)
    assert len(ids) == 5


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_files_that_are_no_usable_image_get_a_friendly_reason(world: dict, case: str) -> None:
    emulator, bot = world["emulator"], world["bot"]
    chat = 2300 + list(BAD_FILES).index(case)
    make, name, mime, expected = BAD_FILES[case]
    logged = len(bot.log.read_text())
    since = emulator.mark()
    emulator.user_sends_document(chat, make(), name, mime)
    text = reply_text(emulator, chat, since)
    assert expected in text, text
    assert "Sorry" not in text and "Traceback" not in bot.log.read_text()[logged:]


def test_no_secret_in_any_log_line(world: dict) -> None:
    """Last: reads everything the bot logged at DEBUG while the module ran."""
    emulator, bot = world["emulator"], world["bot"]
    log = bot.log.read_text()
    assert "search photo user=" in log, "the per-search line is there to be checked"
    secret = emulator.token.partition(":")[2]
    assert emulator.token not in log
    assert secret not in log
