"""End to end: the real bot process (``python -m bot``) against the local Bot API emulator.

A generated catalog is ingested with the real ``wardrobe ingest``; the bot then talks HTTP to
``tests/support/botapi`` exactly as it would to api.telegram.org (custom base URL).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.support.bot_process import (
    REPLY_TIMEOUT,
    BotProcess,
    bot_env,
    catalog_settings,
    ingest,
    is_preamble,
    keyboard,
    reply_text,
    to,
    wait_for_album,
    wait_until_polling,
)
from tests.support.botapi import BotAPIEmulator
from tests.support.catalog import Product, jpeg_bytes, photo_of, write_catalog, write_styles
from tests.support.no_torch import torchless_pythonpath

ADMIN = 42
MAX_IMAGE_BYTES = 400_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("e2e")
    products = write_catalog(root / "catalog")
    emulator = BotAPIEmulator()
    emulator.start()
    env = bot_env(
        emulator,
        root / "data",
        ADMIN_IDS=str(ADMIN),
        MAX_IMAGE_BYTES=str(MAX_IMAGE_BYTES),
        **catalog_settings(root),
    )
    assert f"{len(products)} items indexed" in ingest(root, env)
    # The bot serves with ONNX Runtime: it must never import torch (ingest made the export).
    bot = BotProcess(root, {**env, "PYTHONPATH": torchless_pythonpath(root)})
    since = emulator.mark()
    bot.start()
    try:
        wait_until_polling(emulator, bot, since)
        yield {"emulator": emulator, "bot": bot, "products": products, "root": root}
    finally:
        bot.stop()
        emulator.stop()


def _product(products: list[Product], product_id: str) -> Product:
    return next(product for product in products if product.id == product_id)


def test_photo_gets_album_of_five_similar_items_and_buttons(world: dict) -> None:
    emulator, products = world["emulator"], world["products"]
    chat = 1001
    since = emulator.mark()
    emulator.user_sends_photo(chat, jpeg_bytes(photo_of("Dresses", "Red")))
    action = emulator.wait_for_call("sendChatAction", to(chat), REPLY_TIMEOUT, since)
    assert action.params["action"] == "upload_photo"
    ids, buttons = wait_for_album(emulator, chat, since)
    assert len(ids) == 5 and len(set(ids)) == 5
    top = _product(products, ids[0])
    assert top.article_type == "Dresses", f"expected a dress first, got {top}"
    rows = keyboard(buttons)
    assert [button["text"] for button in rows[0]] == ["1", "2", "3", "4", "5"]
    assert rows[-1][0]["text"] == "More like this"
    assert all(len(b["callback_data"].encode()) <= 64 for row in rows for b in row)
    media = emulator.wait_for_call("sendMediaGroup", to(chat), since=since).params["media"]
    assert "Dresses" in media[0]["caption"] and top.colour in media[0]["caption"]
    world["first_search"] = (chat, buttons.result["message_id"], rows[-1][0]["callback_data"], ids)


def test_more_like_this_gives_five_new_items(world: dict) -> None:
    emulator = world["emulator"]
    chat, message_id, more, first_ids = world["first_search"]
    since = emulator.mark()
    query_id = emulator.user_presses_button(chat, message_id, more)
    ids, _ = wait_for_album(emulator, chat, since)
    assert len(ids) == 5
    assert not set(ids) & set(first_ids), "More like this repeated an item"
    assert emulator.answered_callback(query_id)
    world["shown"] = [*first_ids, *ids]


def test_item_button_starts_a_new_search_from_that_item(world: dict) -> None:
    emulator, products = world["emulator"], world["products"]
    chat, message_id, _, first_ids = world["first_search"]
    buttons = emulator.wait_for_call(
        "sendMessage", lambda c: to(chat)(c) and "reply_markup" in c.params
    )
    since = emulator.mark()
    emulator.user_presses_button(chat, message_id, keyboard(buttons)[0][1]["callback_data"])
    ids, _ = wait_for_album(emulator, chat, since)
    seed = _product(products, first_ids[1])
    assert seed.id not in ids, "the tapped item itself is not a recommendation"
    assert len(ids) == 5
    first = _product(products, ids[0])
    assert first.article_type == seed.article_type or first.colour == seed.colour
    album = emulator.wait_for_call("sendMediaGroup", to(chat), since=since)
    reused = [entry["media"] for entry in album.params["media"]
              if not entry["media"].startswith("attach://")]  # fmt: skip
    shown_before = set(world["shown"]) & set(ids)
    assert len(reused) >= len(shown_before), "photos already uploaded are re-sent by file id"


def test_buttons_of_an_older_version_are_answered_quietly(world: dict) -> None:
    emulator = world["emulator"]
    chat, message_id, _, _ = world["first_search"]
    since = emulator.mark()
    for data in ("more:abc", "item:", "other:3", "more:12\n", "item:1:2", ""):
        query_id = emulator.user_presses_button(chat, message_id, data, stale=True)
        emulator.wait_for_call(
            "answerCallbackQuery",
            lambda call, query_id=query_id: call.params.get("callback_query_id") == query_id,
            REPLY_TIMEOUT,
            since,
        )
    emulator.user_sends_photo(chat, jpeg_bytes(photo_of("Trousers", "Blue")))
    wait_for_album(emulator, chat, since)  # the bot went on serving
    # A button is answered before its search runs: what a stale press said would show by now.
    said = [
        c for c in emulator.calls[since:]
        if c.method == "sendMessage" and to(chat)(c) and not is_preamble(c.params["text"])
    ]  # fmt: skip
    assert ["reply_markup" in c.params for c in said] == [True], (
        f"a stale button made the bot say something: {[c.params['text'] for c in said]}"
    )


def test_image_sent_as_document_works(world: dict) -> None:
    emulator, products = world["emulator"], world["products"]
    chat = 1002
    buffer = io.BytesIO()
    photo_of("Casual Shoes", "Blue").save(buffer, "PNG")
    since = emulator.mark()
    emulator.user_sends_document(chat, buffer.getvalue(), "shoe.png", "image/png")
    ids, _ = wait_for_album(emulator, chat, since)
    assert _product(products, ids[0]).article_type == "Casual Shoes"


@pytest.mark.parametrize(
    "send",
    [
        lambda emu, chat: emu.user_sends_text(chat, "hello, can you find me a jacket?"),
        lambda emu, chat: emu.user_sends_sticker(chat),
        lambda emu, chat: emu.user_sends_video(chat),
        lambda emu, chat: emu.user_sends_text(chat, "/start"),
    ],
    ids=["text", "sticker", "video", "start"],
)
def test_non_photos_get_the_help_reply(world: dict, send) -> None:
    emulator = world["emulator"]
    chat = 1003
    since = emulator.mark()
    send(emulator, chat)
    assert "Send me a photo" in reply_text(emulator, chat, since)


def test_bad_files_get_a_friendly_reason(world: dict) -> None:
    emulator = world["emulator"]
    chat = 1004
    cases = [
        (b"%PDF-1.4 not an image", "catalog.pdf", "application/pdf", "can't read that kind"),
        (b"\xff\xd8\xff\xe0 this is not really a jpeg", "x.jpg", "image/jpeg", "JPEG, PNG"),
        (os.urandom(MAX_IMAGE_BYTES + 10), "huge.jpg", "image/jpeg", "too large"),
    ]
    for data, name, mime, expected in cases:
        since = emulator.mark()
        emulator.user_sends_document(chat, data, name, mime)
        text = reply_text(emulator, chat, since)
        assert expected in text, text
    gif = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(gif, "GIF")
    since = emulator.mark()
    emulator.user_sends_document(chat, gif.getvalue(), "anim.gif", "image/gif")
    assert "JPEG, PNG or WebP" in reply_text(emulator, chat, since)


def test_admin_commands_refused_for_shoppers(world: dict) -> None:
    emulator = world["emulator"]
    chat = 1005
    for command in ("/reindex", "/stats"):
        since = emulator.mark()
        emulator.user_sends_text(chat, command)
        assert "only for the shop's admins" in reply_text(emulator, chat, since)
    assert not any("Reindex" in str(call.params.get("text")) for call in emulator.calls)


def test_admin_reindex_swaps_in_the_new_catalog_while_serving(world: dict) -> None:
    emulator, root = world["emulator"], world["root"]
    products = world["products"]
    # The shop replaces its purple items with new orange-ish ones; the source is re-read.
    kept = [product for product in products if product.colour != "Purple"]
    write_styles(root / "catalog" / "styles.csv", kept)
    since = emulator.mark()
    emulator.user_sends_text(ADMIN, "/reindex")
    emulator.user_sends_photo(1006, jpeg_bytes(photo_of("Tshirts", "Green")))
    ids, _ = wait_for_album(emulator, 1006, since)  # shoppers keep getting answers meanwhile
    assert len(ids) == 5
    started = emulator.wait_for_call("sendMessage", to(ADMIN), REPLY_TIMEOUT, since)
    assert "Reindex started" in started.params["text"]
    done = emulator.wait_for_call(
        "editMessageText",
        lambda call: "Reindex complete" in call.params.get("text", ""),
        REPLY_TIMEOUT,
        since,
    )
    assert f"Items indexed: {len(kept)}" in done.params["text"]
    since = emulator.mark()
    emulator.user_sends_photo(1006, jpeg_bytes(photo_of("Dresses", "Purple")))
    ids, _ = wait_for_album(emulator, 1006, since)
    assert not any(_product(products, i).colour == "Purple" for i in ids), "removed items served"
    since = emulator.mark()
    emulator.user_sends_text(ADMIN, "/stats")
    stats = reply_text(emulator, ADMIN, since)
    assert f"Catalog: {len(kept)} items" in stats and f"Index: {len(kept)} vectors" in stats
    assert "-d, onnx)" in stats


def test_more_like_this_survives_a_restart(world: dict) -> None:
    emulator, bot = world["emulator"], world["bot"]
    chat, message_id, more, _ = world["first_search"]
    bot.stop()
    since = emulator.mark()
    bot.start()
    wait_until_polling(emulator, bot, since)
    emulator.user_presses_button(chat, message_id, more)
    ids, _ = wait_for_album(emulator, chat, since)
    assert len(ids) >= 2
    assert not set(ids) & set(world["shown"]), "a restart forgot what was already shown"
