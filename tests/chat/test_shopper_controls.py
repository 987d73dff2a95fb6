"""End to end, what a shopper can do with a page: refine it (type, gender, price, colours), open
an item in the shop (🛒), vote 👍/👎, and get it all in Russian; through the real bot process
and the Bot API emulator, on a Merchant feed with genders, prices and links."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
from tests.support.botapi import BotAPIEmulator
from tests.support.catalog import Product, jpeg_bytes, photo_of, write_catalog
from tests.support.no_torch import torchless_pythonpath

ADMIN = 42
SHOPPER = 4001
RUSSIAN_SHOPPER = 4002
KIDS_COLOURS = ("Yellow", "Black", "Purple")
"""T-shirts in these colours are children's."""


def _price(number: int) -> str:
    return f"{10 + 3 * number}.00 EUR"


def _write_feed(root: Path, products: list[Product]) -> Path:
    feed = root / "feed.tsv"
    with feed.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["id", "title", "image_link", "price", "color", "product_type",
                         "gender", "age_group", "link"])  # fmt: skip
        for number, product in enumerate(products):
            gender = "female" if product.article_type == "Dresses" else "male"
            kids = product.article_type == "Tshirts" and product.colour in KIDS_COLOURS
            writer.writerow([product.id, product.name, f"catalog/images/{product.id}.jpg",
                             _price(number), product.colour, product.article_type, gender,
                             "kids" if kids else "adult",
                             f"https://shop.example/p/{product.id}"])  # fmt: skip
    return feed


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("controls")
    products = write_catalog(root / "catalog")
    feed = _write_feed(root, products)
    emulator = BotAPIEmulator()
    emulator.start()
    env = bot_env(
        emulator, root / "data", ADMIN_IDS=str(ADMIN), CATALOG_FEED=str(feed),
        SEARCHES_PER_USER="100", MAX_IMAGE_BYTES=str(1000 * 1024),
    )  # fmt: skip
    assert f"{len(products)} items indexed" in ingest(root, env)
    bot = BotProcess(root, {**env, "PYTHONPATH": torchless_pythonpath(root)})
    since = emulator.mark()
    bot.start()
    try:
        wait_until_polling(emulator, bot, since)
        prices = {product.id: 10 + 3 * n for n, product in enumerate(products)}
        yield {"emulator": emulator, "bot": bot, "root": root, "prices": prices,
               "products": {product.id: product for product in products}}  # fmt: skip
    finally:
        bot.stop()
        emulator.stop()


class Page:
    """An album as the shopper saw it: the items' ids and the buttons message under it."""

    def __init__(self, emulator: BotAPIEmulator, chat: int, since: int) -> None:
        self.buttons = emulator.wait_for_call(
            "sendMessage", lambda c: to(chat)(c) and "reply_markup" in c.params, REPLY_TIMEOUT,
            since,
        )  # fmt: skip
        photos = ("sendMediaGroup", "sendPhoto")
        calls = emulator.calls[since:]
        album_at = max(i for i, c in enumerate(calls) if c.method in photos and to(chat)(c))
        media = calls[album_at].params.get("media") or [calls[album_at].params]
        self.captions = [entry["caption"] for entry in media]
        self.ids = [re.search(r"no\. (\d+)", caption).group(1) for caption in self.captions]
        self.before = [
            c.params["text"] for c in calls[:album_at]
            if c.method == "sendMessage" and to(chat)(c) and c.ok
        ]  # fmt: skip
        """What the bot said above the album ("Looks like: …", nothing close)."""
        self.message_id = self.buttons.result["message_id"]
        self.text = self.buttons.params["text"]

    def button(self, text: str) -> dict:
        found = [b for row in keyboard(self.buttons) for b in row if b["text"] == text]
        assert found, f"no button {text!r} among {self.labels()}"
        return found[0]

    def labels(self) -> list[str]:
        return [b["text"] for row in keyboard(self.buttons) for b in row]


def _photo(shop: dict, article_type: str, colour: str, chat: int = SHOPPER) -> Page:
    emulator = shop["emulator"]
    since = emulator.mark()
    emulator.user_sends_photo(chat, jpeg_bytes(photo_of(article_type, colour)))
    return Page(emulator, chat, since)


def _press(shop: dict, page: Page, text: str, chat: int = SHOPPER) -> Page:
    emulator = shop["emulator"]
    since = emulator.mark()
    emulator.user_presses_button(chat, page.message_id, page.button(text)["callback_data"])
    return Page(emulator, chat, since)


def _first(shop: dict) -> Page:
    """The shopper's search for blue trousers, sent once for the module's tests."""
    if "first" not in shop:
        shop["first"] = _photo(shop, "Trousers", "Blue")
    return shop["first"]


def _women(shop: dict) -> Page:
    """That search narrowed to Women (dresses only, in this catalog)."""
    if "women" not in shop:
        shop["women"] = _press(shop, _first(shop), "Women")
    return shop["women"]


def test_each_item_has_a_shop_button_with_its_link(shop: dict) -> None:
    page = _first(shop)
    emulator = shop["emulator"]
    assert len(page.ids) == 5
    for position, item_id in enumerate(page.ids, start=1):
        url = emulator.button_url(SHOPPER, page.message_id, f"🛒 {position}")
        assert url == f"https://shop.example/p/{item_id}"
        assert f'href="https://shop.example/p/{item_id}"' in page.captions[position - 1]


def test_only_type_narrows_the_page_and_more_like_this_keeps_the_filter(shop: dict) -> None:
    page, products = _first(shop), shop["products"]
    only = next(label for label in page.labels() if label.startswith("Only "))
    kind = only.removeprefix("Only ")
    narrowed = _press(shop, page, only)
    assert len(narrowed.ids) == 5
    assert {products[item_id].article_type for item_id in narrowed.ids} == {kind}
    assert replies.ENGLISH.filtered_by.format(filters=kind) in narrowed.text
    assert "✖ Clear filters" in narrowed.labels() and only not in narrowed.labels()
    assert kind != "Tshirts" and "Kids" in page.labels() and "Kids" not in narrowed.labels(), (
        f"the shop's only children's items are t-shirts: no Kids button under {only}"
    )
    rest = _press(shop, narrowed, "More like this")
    assert len(rest.ids) == 1, "six items of each type: one left after the first five"
    assert products[rest.ids[0]].article_type == kind
    assert not set(rest.ids) & set(narrowed.ids)


def test_gender_and_price_filters_combine(shop: dict) -> None:
    page, products, prices = _first(shop), shop["products"], shop["prices"]
    women = _women(shop)
    assert len(women.ids) == 5
    assert {products[item_id].article_type for item_id in women.ids} == {"Dresses"}
    shown = sorted(prices[item_id] for item_id in women.ids)
    cheaper = _press(shop, women, "Cheaper")
    assert cheaper.ids, "some dresses cost less than the page's median"
    assert all(products[item_id].article_type == "Dresses" for item_id in cheaper.ids)
    assert all(prices[item_id] < shown[2] for item_id in cheaper.ids)
    assert f"under {replies.ENGLISH.price(shown[2])}" in cheaper.text
    kids = _press(shop, page, "Kids")
    assert {(products[i].article_type, products[i].colour in KIDS_COLOURS) for i in kids.ids} == {
        ("Tshirts", True)
    }
    assert len(kids.ids) == 3, "the catalog has three children's t-shirts"
    cleared = _press(shop, cheaper, "✖ Clear filters")
    assert len(cleared.ids) == 5 and "Showing only" not in cleared.text
    assert len({products[item_id].article_type for item_id in cleared.ids}) > 1
    men = _press(shop, cleared, "Men")
    assert len(men.ids) == 5 and "Dresses" not in {products[i].article_type for i in men.ids}
    boys = {i for i in men.ids if products[i].colour in KIDS_COLOURS
            and products[i].article_type == "Tshirts"}  # fmt: skip
    assert not boys, "children's t-shirts are not men's"


def test_colour_refinements_keep_or_change_the_colour(shop: dict) -> None:
    products = shop["products"]
    page = _photo(shop, "Dresses", "Green")
    same = next(label for label in page.labels() if label.startswith("Same colour: "))
    colour = same.removeprefix("Same colour: ")
    coloured = _press(shop, page, same)
    assert coloured.ids and {products[i].colour for i in coloured.ids} == {colour}
    others = _press(shop, page, "Other colours")
    kinds = {products[i].article_type for i in others.ids}
    assert len(kinds) == 1 and colour not in {products[i].colour for i in others.ids}


def test_a_double_tap_on_more_like_this_gets_two_different_pages(shop: dict) -> None:
    emulator = shop["emulator"]
    page = _photo(shop, "Casual Shoes", "Blue")
    more = page.button("More like this")["callback_data"]
    since = emulator.mark()
    for _ in range(2):
        emulator.user_presses_button(SHOPPER, page.message_id, more)
    emulator.wait_for_calls(
        "sendMessage", 2, lambda c: to(SHOPPER)(c) and "reply_markup" in c.params, REPLY_TIMEOUT,
        since,
    )  # fmt: skip
    albums = [c for c in emulator.calls[since:] if c.method == "sendMediaGroup" and to(SHOPPER)(c)]
    ids = [
        re.search(r"no\. (\d+)", entry["caption"]).group(1)
        for album in albums for entry in album.params["media"]
    ]  # fmt: skip
    assert len(albums) == 2 and len(ids) == len(set(ids)) == 10
    assert not set(ids) & set(page.ids)


def _vote(shop: dict, page: Page, text: str) -> str:
    """Press 👍 or 👎 under ``page``; what the button's answer said."""
    emulator = shop["emulator"]
    since = emulator.mark()
    query_id = emulator.user_presses_button(
        SHOPPER, page.message_id, page.button(text)["callback_data"]
    )
    return emulator.wait_for_call(
        "answerCallbackQuery", lambda c: c.params.get("callback_query_id") == query_id,
        REPLY_TIMEOUT, since,
    ).params["text"]  # fmt: skip


def test_a_vote_is_stored_counted_and_thanked_without_a_message(shop: dict) -> None:
    emulator, page = shop["emulator"], _first(shop)
    since = emulator.mark()
    assert _vote(shop, page, "👍") == replies.ENGLISH.thanks_up
    assert not [c for c in emulator.calls[since:] if c.method == "sendMessage"]
    with sqlite3.connect(shop["root"] / "data" / "catalog.sqlite3") as db:
        rows = db.execute("SELECT vote, page, items, filters FROM feedback").fetchall()
    assert rows == [(1, 0, '["' + '", "'.join(page.ids) + '"]', None)]
    since = emulator.mark()
    emulator.user_sends_text(ADMIN, "/stats", user_id=ADMIN)
    assert "Feedback: 100% 👍 (1 of 1 votes)" in reply_text(emulator, ADMIN, since)


def test_a_changed_vote_replaces_the_first(shop: dict) -> None:
    page = _women(shop)
    answers = [_vote(shop, page, text) for text in ("👎", "👍")]
    assert answers == [replies.ENGLISH.thanks_down, replies.ENGLISH.vote_changed]
    with sqlite3.connect(shop["root"] / "data" / "catalog.sqlite3") as db:
        rows = db.execute("SELECT vote, filters FROM feedback WHERE filters IS NOT NULL").fetchall()
    assert rows == [(1, '{"gender": "Women"}')]


def test_a_vote_records_only_the_items_the_shopper_got(shop: dict) -> None:
    products = shop["products"]
    shoe = next(
        p for p in products.values() if (p.article_type, p.colour) == ("Casual Shoes", "Green")
    )
    database = shop["root"] / "data" / "catalog.sqlite3"
    with sqlite3.connect(database) as db:
        (image_path,) = db.execute(
            "SELECT image_path FROM items WHERE id = ?", (shoe.id,)
        ).fetchone()
        db.execute("UPDATE items SET telegram_file_id = NULL WHERE id = ?", (shoe.id,))
    image, aside = Path(image_path), Path(image_path + ".aside")
    image.rename(aside)  # the photo went missing from disk: the album leaves the shoe out
    try:
        page = _photo(shop, "Casual Shoes", "Green")
    finally:
        aside.rename(image)
    assert len(page.ids) == 4 and shoe.id not in page.ids
    _vote(shop, page, "👍")
    search_id = int(page.button("👍")["callback_data"].split(":")[1])
    with sqlite3.connect(database) as db:
        (items,) = db.execute(
            "SELECT items FROM feedback WHERE search_id = ?", (search_id,)
        ).fetchone()
    assert json.loads(items) == page.ids


def test_a_photo_like_nothing_in_the_catalog_is_told_so(shop: dict) -> None:
    assert not any(replies.ENGLISH.not_close in text for text in _first(shop).before)
    emulator = shop["emulator"]
    noise = np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8)
    since = emulator.mark()
    emulator.user_sends_photo(SHOPPER, jpeg_bytes(Image.fromarray(noise)))
    page = Page(emulator, SHOPPER, since)
    assert len(page.ids) == 5, "the nearest are still shown"
    assert any(replies.ENGLISH.not_close in text for text in page.before)


def test_a_russian_shopper_gets_russian(shop: dict) -> None:
    emulator = shop["emulator"]
    emulator.user_language(RUSSIAN_SHOPPER, "ru")
    since = emulator.mark()
    emulator.user_sends_text(RUSSIAN_SHOPPER, "/start")
    assert reply_text(emulator, RUSSIAN_SHOPPER, since) == replies.RUSSIAN.help
    page = _photo(shop, "Tshirts", "Red", chat=RUSSIAN_SHOPPER)
    assert page.text.startswith(replies.RUSSIAN.results_header)
    assert "Ещё похожие" in page.labels() and "Мужское" in page.labels()
    assert "Открыть в магазине" in page.captions[0]
    assert page.before and not [text for text in page.before if re.search("[A-Za-z]", text)], (
        f"what the model saw is said in Russian too: {page.before}"
    )
    since = emulator.mark()
    emulator.user_sends_document(RUSSIAN_SHOPPER, bytes(1_200_000), "big.jpg", "image/jpeg")
    assert reply_text(emulator, RUSSIAN_SHOPPER, since) == replies.RUSSIAN.too_large.format(
        size="1,1 МБ", limit="1000 КБ"
    )
    russian = [command["description"] for command in emulator.commands("ru")]
    assert russian and all(text == replies.RUSSIAN.command_help for text in russian)
    assert emulator.commands("")[0]["description"] == replies.ENGLISH.command_help


def test_a_narrowed_search_keeps_its_filters_after_a_restart(shop: dict) -> None:
    emulator, bot, products = shop["emulator"], shop["bot"], shop["products"]
    women = _women(shop)
    assert bot.stop() == 0
    since = emulator.mark()
    bot.start()
    wait_until_polling(emulator, bot, since)
    rest = _press(shop, women, "More like this")
    assert [products[item_id].article_type for item_id in rest.ids] == ["Dresses"]
    assert "Showing only: Women" in rest.text
    assert not set(rest.ids) & set(women.ids)
