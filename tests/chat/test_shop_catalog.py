"""End to end, a shop's own catalog: a Merchant feed (CATALOG_FEED) with colour variants and an
out-of-stock item, the 🎨 button, "find similar" deep links, and the admins' live edits (/add,
/remove, /restore) through the real bot process and the Bot API emulator."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.chat import replies
from tests.support.bot_process import (
    REPLY_TIMEOUT,
    BotProcess,
    bot_env,
    ingest,
    keyboard,
    reply_text,
    to,
    wait_until_polling,
)
from tests.support.botapi import ApiCall, BotAPIEmulator
from tests.support.catalog import Product, jpeg_bytes, photo_of, write_catalog
from tests.support.no_torch import torchless_pythonpath

ADMIN = 42
SHOPPER = 3001
COLOUR_GROUPS = (("Red", "Blue", "Green"), ("Yellow", "Black", "Purple"))


def _group(product: Product) -> str:
    family = next(i for i, colours in enumerate(COLOUR_GROUPS) if product.colour in colours)
    return f"{product.article_type.lower().replace(' ', '-')}-{family}"


def _write_feed(root: Path, products: list[Product], out_of_stock: str) -> Path:
    """A Merchant TSV of the generated catalog: three colours of each garment per product."""
    feed = root / "feed.tsv"
    with feed.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["id", "title", "image_link", "price", "availability", "color",
                         "product_type", "item_group_id", "link"])  # fmt: skip
        for product in products:
            stock = "out_of_stock" if product.id == out_of_stock else "in_stock"
            writer.writerow([product.id, product.name, f"catalog/images/{product.id}.jpg",
                             "19.99 EUR", stock, product.colour, product.article_type,
                             _group(product), f"https://shop.example/p/{product.id}"])  # fmt: skip
    return feed


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("shop")
    products = write_catalog(root / "catalog")
    red_dress = next(p for p in products if (p.article_type, p.colour) == ("Dresses", "Red"))
    feed = _write_feed(root, products, out_of_stock=red_dress.id)
    emulator = BotAPIEmulator()
    emulator.start()
    env = bot_env(
        emulator, root / "data", ADMIN_IDS=str(ADMIN), CATALOG_FEED=str(feed),
        REINDEX_PROGRESS_SECONDS="0.2", SEARCHES_PER_USER="100",
    )  # fmt: skip
    assert f"{len(products)} items indexed" in ingest(root, env)
    bot = BotProcess(root, {**env, "PYTHONPATH": torchless_pythonpath(root)})
    since = emulator.mark()
    bot.start()
    try:
        wait_until_polling(emulator, bot, since)
        yield {"emulator": emulator, "bot": bot, "products": {p.id: p for p in products},
               "root": root, "red_dress": red_dress}  # fmt: skip
    finally:
        bot.stop()
        emulator.stop()


def _album(emulator: BotAPIEmulator, chat: int, since: int) -> tuple[list[str], ApiCall]:
    """The captions of the next album (or single photo) to ``chat``, and its buttons message."""
    buttons = emulator.wait_for_call(
        "sendMessage", lambda c: to(chat)(c) and "reply_markup" in c.params, REPLY_TIMEOUT, since
    )
    photos = ("sendMediaGroup", "sendPhoto")
    sent = [c for c in emulator.calls[since:] if c.method in photos and to(chat)(c) and c.ok][-1]
    media = sent.params.get("media") or [sent.params]
    return [entry["caption"] for entry in media], buttons


def _ids(captions: list[str]) -> list[str]:
    return [caption.split("no. ")[1].split("<")[0] for caption in captions if "no. " in caption]


def _items(shop: dict) -> dict[str, sqlite3.Row]:
    with sqlite3.connect(shop["root"] / "data" / "catalog.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return {row["id"]: row for row in db.execute("SELECT * FROM items")}


def _admin_says(shop: dict, text: str) -> str:
    emulator = shop["emulator"]
    since = emulator.mark()
    emulator.user_sends_text(ADMIN, text, user_id=ADMIN)
    return reply_text(emulator, ADMIN, since)


def _add(shop: dict, photo: bytes, caption: str, user: int = ADMIN) -> str:
    emulator = shop["emulator"]
    since = emulator.mark()
    emulator.user_sends_photo(user, photo, user_id=user, caption=caption)
    return reply_text(emulator, user, since)


def _search(shop: dict, photo: bytes, chat: int = SHOPPER) -> tuple[list[str], ApiCall]:
    emulator = shop["emulator"]
    since = emulator.mark()
    emulator.user_sends_photo(chat, photo)
    return _album(emulator, chat, since)


def test_one_colour_per_product_and_nothing_out_of_stock(shop: dict) -> None:
    captions, buttons = _search(shop, jpeg_bytes(photo_of("Dresses", "Red")))
    ids = _ids(captions)
    products = shop["products"]
    assert len(ids) == 5
    assert shop["red_dress"].id not in ids, "an out-of-stock item was shown"
    groups = [_group(products[item_id]) for item_id in ids]
    assert len(set(groups)) == 5, f"two colours of one product on a page: {groups}"
    assert "Dresses" in {products[item_id].article_type for item_id in ids}
    assert "EUR" in captions[0] and "View in shop" in captions[0]
    rows = keyboard(buttons)
    colours = [b for row in rows for b in row if b["text"].startswith("🎨")]
    assert colours and rows[-1][0]["text"] == "More like this"
    assert replies.ENGLISH.colours_hint in buttons.params["text"]
    shop["colours_press"] = (buttons.result["message_id"], colours[0], ids)


def test_the_colours_button_shows_that_products_other_colours(shop: dict) -> None:
    emulator, products = shop["emulator"], shop["products"]
    message_id, button, shown = shop["colours_press"]
    position = int(button["text"].removeprefix("🎨 "))
    item = products[shown[position - 1]]
    since = emulator.mark()
    emulator.user_presses_button(SHOPPER, message_id, button["callback_data"])
    ids = _ids(_album(emulator, SHOPPER, since)[0])
    siblings = {
        p.id
        for p in products.values()
        if _group(p) == _group(item) and p.id not in (item.id, shop["red_dress"].id)
    }
    assert set(ids) == siblings and siblings


def test_a_deep_link_opens_items_like_that_product(shop: dict) -> None:
    emulator, products = shop["emulator"], shop["products"]
    trousers = next(
        p for p in products.values() if (p.article_type, p.colour) == ("Trousers", "Blue")
    )
    chat = 3002
    since = emulator.mark()
    emulator.user_sends_text(chat, f"/start item_{trousers.id}")
    ids = _ids(_album(emulator, chat, since)[0])
    assert len(ids) == 5 and trousers.id not in ids
    assert _group(trousers) not in {_group(products[i]) for i in ids}
    assert products[ids[0]].article_type == "Trousers"

    since = emulator.mark()
    emulator.user_sends_text(chat, f"/start item_{_group(trousers)}")  # a product group's link
    assert len(_ids(_album(emulator, chat, since)[0])) == 5
    since = emulator.mark()
    emulator.user_sends_text(chat, "/start item_no-such-thing")
    assert reply_text(emulator, chat, since) == replies.ENGLISH.item_gone
    since = emulator.mark()
    emulator.user_sends_text(chat, "/start")
    assert reply_text(emulator, chat, since) == replies.ENGLISH.help


def test_an_admin_adds_an_item_from_a_photo_and_shoppers_find_it(shop: dict) -> None:
    photo = jpeg_bytes(photo_of("Trousers", "Yellow", size=700))
    caption = "/add Linen trousers | Trousers | Yellow | 39 EUR | https://shop.example/linen"
    reply = _add(shop, photo, caption)
    assert reply.startswith("✅ Added chat-1: Linen trousers.")
    assert "https://t.me/test_bot?start=item_chat-1" in reply
    added = _items(shop)["chat-1"]
    assert (added["origin"], added["article_type"], added["price"]) == (
        "chat",
        "Trousers",
        "39 EUR",
    )
    captions, _ = _search(shop, photo)
    assert "Linen trousers" in captions[0] and "shop.example/linen" in captions[0]
    shop["added_photo"] = photo


def test_add_refuses_shoppers_and_explains_bad_captions(shop: dict) -> None:
    photo = jpeg_bytes(photo_of("Tshirts", "Red"))
    assert _add(shop, photo, "/add Sneaky", user=3003) == replies.ENGLISH.not_admin
    assert "Sneaky" not in {row["name"] for row in _items(shop).values()}
    assert "at most 5 parts" in _add(shop, photo, "/add a | b | c | d | e | f")
    assert "must start with https://" in _add(shop, photo, "/add Tee | | | 9 | ftp://x")
    assert "send its photo with the caption" in _admin_says(shop, "/add")
    assert set(_items(shop)) >= {"chat-1"} and "chat-2" not in _items(shop)


def test_remove_takes_an_item_out_now_and_a_reindex_keeps_it_out(shop: dict) -> None:
    emulator, products = shop["emulator"], shop["products"]
    assert _admin_says(shop, "/remove chat-1").startswith("🗑 Removed chat-1: Linen trousers.")
    captions, _ = _search(shop, shop["added_photo"])
    assert not any("Linen trousers" in caption for caption in captions)
    assert _admin_says(shop, "/remove chat-1") == "There is no item chat-1 in the catalog."

    kept = _add(shop, jpeg_bytes(photo_of("Casual Shoes", "Purple")), "/add Velvet loafer")
    assert kept.startswith("✅ Added chat-2: Velvet loafer.")
    feed_item = next(
        p for p in products.values() if (p.article_type, p.colour) == ("Tshirts", "Green")
    )
    reply = _admin_says(shop, f"/remove {feed_item.id}")
    assert "A /reindex of the feed keeps it out" in reply

    since = emulator.mark()
    emulator.user_sends_text(ADMIN, "/reindex", user_id=ADMIN)
    done = emulator.wait_for_call(
        "editMessageText", lambda c: "Reindex complete" in c.params.get("text", ""), 300, since
    ).params["text"]
    assert "Kept out (removed with /remove): 1" in done
    items = _items(shop)
    assert feed_item.id not in items, "the reindex brought a removed feed item back"
    assert items["chat-2"]["origin"] == "chat", "the reindex removed an item added with /add"
    assert len(items) == len(products) - 1 + 1
    shop["removed_feed_item"] = feed_item.id


def test_live_edits_survive_a_restart(shop: dict) -> None:
    emulator, bot = shop["emulator"], shop["bot"]
    assert bot.stop() == 0
    since = emulator.mark()
    bot.start()
    wait_until_polling(emulator, bot, since)
    captions, _ = _search(shop, jpeg_bytes(photo_of("Casual Shoes", "Purple")))
    assert "Velvet loafer" in captions[0]
    removed = shop["removed_feed_item"]
    assert "comes back with the next /reindex" in _admin_says(shop, f"/restore {removed}")
    assert "was not removed" in _admin_says(shop, f"/restore {removed}")
