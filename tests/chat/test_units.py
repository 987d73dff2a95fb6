"""Small pure pieces of the chat: captions, keyboards and their patterns, photo-size choice."""

from __future__ import annotations

import re

import pytest
from telegram import PhotoSize

from bot.chat import buttons, deep_links, replies
from bot.chat.admin import CaptionError, parse_add_caption
from bot.chat.handlers import pick_photo_size
from storage.models import CatalogItem


def test_caption_escapes_html_and_only_links_web_urls() -> None:
    item = CatalogItem(
        id="1", name="Tee <b>&</b> co", image_path="x", article_type="Tshirts",
        base_colour="Red", gender="Men", price="19.99 EUR", url="https://shop.example/1?a=1&b=2",
    )  # fmt: skip
    text = replies.caption(3, item)
    assert text.startswith("<b>3. Tee &lt;b&gt;&amp;&lt;/b&gt; co</b>")
    assert "Tshirts · Red · Men" in text
    assert '19.99 EUR · <a href="https://shop.example/1?a=1&amp;b=2">' in text
    sneaky = CatalogItem(id="2", name="x", image_path="x", url="javascript:alert(1)")
    assert "href" not in replies.caption(1, sneaky)


def test_caption_is_cut_to_telegrams_limit() -> None:
    item = CatalogItem(id="1", name="n" * 5000, image_path="x")
    assert len(replies.caption(1, item)) <= 1024


def test_keyboard_has_item_buttons_and_more_within_64_bytes() -> None:
    keyboard = buttons.results_keyboard(2**62, [2**62 + i for i in range(5)])
    rows = keyboard.inline_keyboard
    assert [button.text for button in rows[0]] == ["1", "2", "3", "4", "5"]
    assert rows[1][0].text == "More like this"
    assert all(len(b.callback_data.encode()) <= 64 for row in rows for b in row)


def test_each_button_kind_is_routed_by_its_own_pattern() -> None:
    keyboard = buttons.results_keyboard(7, [11, 12])
    item_data = keyboard.inline_keyboard[0][1].callback_data
    more_data = keyboard.inline_keyboard[1][0].callback_data
    assert buttons.SEARCH_FROM_ITEM.match(item_data).group(1) == "12"
    assert buttons.MORE_LIKE_THIS.match(more_data).group(1) == "7"
    assert not buttons.MORE_LIKE_THIS.match(item_data)
    assert not buttons.SEARCH_FROM_ITEM.match(more_data)
    for stale in ("more:", "more:x", "item:1:2", "other:3", ""):
        assert not buttons.MORE_LIKE_THIS.match(stale) and not buttons.SEARCH_FROM_ITEM.match(stale)


def _size(width: int, height: int) -> PhotoSize:
    return PhotoSize(f"id{width}", f"u{width}", width, height)


def test_pick_photo_size_prefers_the_smallest_big_enough() -> None:
    sizes = (_size(90, 67), _size(320, 240), _size(800, 600), _size(1280, 960))
    assert pick_photo_size(sizes).width == 1280  # 600 < 640 on the short side
    assert pick_photo_size((_size(90, 90), _size(800, 800), _size(1280, 1280))).width == 800
    assert pick_photo_size((_size(90, 90), _size(320, 320))).width == 320


@pytest.mark.parametrize(
    "item_id, payload",
    [
        ("1163", "item_1163"),
        ("blue-denim_jacket", "item_blue-denim_jacket"),
        ("linen-tee:Red", "itemx_bGluZW4tdGVlOlJlZA"),
        ("sku 12/3 ü", None),
    ],
)
def test_deep_link_payloads_round_trip(item_id: str, payload: str | None) -> None:
    made = deep_links.item_payload(item_id)
    if payload is not None:
        assert made == payload
    assert made is not None and len(made) <= 64
    assert re.fullmatch(r"[A-Za-z0-9_-]+", made)
    assert deep_links.item_id_from(made) == item_id


def test_deep_links_that_name_no_item() -> None:
    assert deep_links.item_payload("x" * 60) is None  # no start parameter can hold it
    for payload in ("", "item_", "hello", "itemx_%%%", "item_a.b", "itemx_/w=="):
        assert deep_links.item_id_from(payload) is None
    assert deep_links.item_link("shop_bot", "42") == "https://t.me/shop_bot?start=item_42"


def test_add_captions_give_the_fields_in_order() -> None:
    assert parse_add_caption("/add") == {}
    assert parse_add_caption("/add@shop_bot Linen   shirt | Shirts") == {
        "name": "Linen shirt",
        "article_type": "Shirts",
    }
    full = parse_add_caption("/add Tee | Tshirts | Blue | 19 EUR | https://x.example/t")
    assert full == {"name": "Tee", "article_type": "Tshirts", "base_colour": "Blue",
                    "price": "19 EUR", "url": "https://x.example/t"}  # fmt: skip
    assert parse_add_caption("/add | | Red") == {"base_colour": "Red"}
    with pytest.raises(CaptionError, match="at most 5 parts"):
        parse_add_caption("/add a|b|c|d|e|f")
    with pytest.raises(CaptionError, match="https://"):
        parse_add_caption("/add a|b|c|d|javascript:alert(1)")
