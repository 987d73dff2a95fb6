"""Small pure pieces of the chat: captions, keyboards and their patterns, photo-size choice."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import replace

import pytest
from telegram import PhotoSize

from bot.chat import album, buttons, deep_links, replies
from bot.chat.admin import CaptionError, parse_add_caption
from bot.chat.handlers import pick_photo_size
from bot.core.filters import NO_FILTERS, Filters, Refinement, Seen, offered
from bot.core.recommender import Match, ResultPage
from embeddings import Embedder
from embeddings.weights import shipped_model
from storage.models import CatalogItem, Facets, StoredItem


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


def _page(search_id: int, keys: list[int], **fields: object) -> ResultPage:
    items = [
        StoredItem(key, CatalogItem(id=str(key), name="n", image_path="x", url=url), None, None)
        for key, url in zip(keys, fields.pop("urls", [None] * len(keys)), strict=True)
    ]
    return ResultPage(search_id, [Match(item, 0.5) for item in items], **fields)


def test_keyboard_has_item_buttons_more_and_votes_within_64_bytes() -> None:
    page = _page(
        2**62, [2**62 + i for i in range(5)], page=999,
        seen=Seen("Jeans", "Navy Blue"), filters=Filters(gender="Men"),
        refinements=tuple(Refinement),
    )  # fmt: skip
    rows = buttons.results_keyboard(page, replies.ENGLISH).inline_keyboard
    assert [button.text for button in rows[0]] == ["1", "2", "3", "4", "5"]
    assert [button.text for button in rows[-1]] == ["More like this", "👍", "👎"]
    labels = [button.text for row in rows[1:-1] for button in row]
    assert labels == [
        "Same colour: Navy Blue", "Other colours", "Only Jeans",
        "Men", "Women", "Kids", "Cheaper", "✖ Clear filters",
    ]  # fmt: skip
    assert all(len(b.callback_data.encode()) <= 64 for row in rows for b in row)


def test_url_buttons_only_for_links_telegram_accepts() -> None:
    urls = ["https://shop.example/a?x=1", None, "javascript:alert(1)", "http://", "ftp://x/y",
            "https://shop.example/a\tb", "HTTP://Shop.example/b"]  # fmt: skip
    page = _page(7, list(range(1, 8)), urls=urls)
    rows = buttons.results_keyboard(page, replies.ENGLISH).inline_keyboard
    links = [button for row in rows for button in row if button.url]
    assert [(button.text, button.url) for button in links] == [
        ("🛒 1", urls[0]), ("🛒 7", urls[6])
    ]  # fmt: skip
    captions = [replies.caption(1, match.item.item) for match in page.matches]
    assert ["href" in caption for caption in captions] == [True, *[False] * 5, True]


def test_ten_results_make_rows_telegram_takes() -> None:
    keys = list(range(1, 11))
    page = _page(7, keys, urls=[f"https://shop.example/{key}" for key in keys])
    rows = buttons.results_keyboard(page, replies.ENGLISH).inline_keyboard
    assert all(len(row) <= 8 for row in rows)
    assert [len(row) for row in rows[:4]] == [5, 5, 5, 5], "numbers and 🛒, five by five"


def test_each_button_kind_is_routed_by_its_own_pattern() -> None:
    page = _page(7, [11, 12], refinements=(Refinement.ONLY_TYPE,), seen=Seen("Jeans"))
    rows = buttons.results_keyboard(page, replies.ENGLISH).inline_keyboard
    item_data = rows[0][1].callback_data
    refine_data = rows[1][0].callback_data
    more_data, up_data, down_data = (button.callback_data for button in rows[-1])
    assert buttons.SEARCH_FROM_ITEM.match(item_data).group(1) == "12"
    assert buttons.MORE_LIKE_THIS.match(more_data).group(1) == "7"
    assert buttons.REFINE.match(refine_data).groups() == ("7", "0", "t")
    assert buttons.VOTE.match(up_data).groups() == ("7", "0", "u")
    assert buttons.VOTE.match(down_data).groups() == ("7", "0", "d")
    patterns = (buttons.MORE_LIKE_THIS, buttons.SEARCH_FROM_ITEM, buttons.REFINE, buttons.VOTE)
    for data in (item_data, refine_data, more_data, up_data):
        assert sum(bool(pattern.match(data)) for pattern in patterns) == 1
    stale = ("more:", "more:x", "item:1:2", "other:3", "", "refine:1:0:z", "refine:1:t",
             "vote:1:0:x", "vote:1:u")  # fmt: skip
    for data in stale:
        assert not any(pattern.match(data) for pattern in patterns)


def test_every_label_the_shipped_model_says_has_a_russian_word() -> None:
    heads = Embedder(trained=shipped_model("efficientnet_lite0")).label_heads
    assert heads is not None
    said = [*heads.vocabularies["article_type"], *heads.vocabularies["base_colour"]]
    assert [label for label in said if label not in replies.RUSSIAN.words] == []


def test_what_the_search_saw_is_said_above_a_photos_first_page_only() -> None:
    seen = Seen("Jeans", "Blue", looks_like_type="Jeans", looks_like_colour="Navy Blue")
    photo = _page(7, [1, 2], seen=seen, from_photo=True)
    assert album.preamble(photo, replies.ENGLISH) == "Looks like: navy blue jeans"
    assert album.preamble(photo, replies.RUSSIAN) == "Похоже на: джинсы, цвет тёмно-синий"
    colour_only = _page(7, [1], seen=Seen(looks_like_colour="Grey Melange"), from_photo=True)
    assert album.preamble(colour_only, replies.RUSSIAN) == "Похоже на: цвет серый меланж"
    unknown = _page(7, [1], seen=Seen(looks_like_type="Ponchos"), from_photo=True)
    assert album.preamble(unknown, replies.RUSSIAN) == "Похоже на: ponchos", "as the model has it"
    refined = _page(8, [1, 2], seen=seen, close=False)
    assert album.preamble(refined, replies.ENGLISH) == replies.ENGLISH.not_close
    assert (
        album.preamble(_page(7, [3], seen=seen, page=1, from_photo=True), replies.ENGLISH) is None
    )
    assert album.preamble(_page(9, [1], from_photo=True), replies.ENGLISH) is None
    filters = Filters("Jeans", not_colour="Blue", gender="Kids", max_price=24.5)
    assert album.describe(filters, replies.ENGLISH) == "Jeans · not Blue · Kids · under 24.50"
    assert (
        replies.ENGLISH.price(1234567.0) == "1,234,567" and replies.ENGLISH.price(19.99) == "19.99"
    )
    assert replies.RUSSIAN.price(1234567.5) == "1\u00a0234\u00a0567,50"


def test_every_language_has_the_same_placeholders_and_the_app_language_picks_it() -> None:
    placeholders = re.compile(r"{(\w+)}")
    for field in dataclasses.fields(replies.Texts):
        english = getattr(replies.ENGLISH, field.name)
        for texts in replies.LANGUAGES.values():
            text = getattr(texts, field.name)
            if isinstance(english, str) and isinstance(text, str):
                assert set(placeholders.findall(text)) == set(placeholders.findall(english))
    assert replies.texts_for("ru") is replies.RUSSIAN
    assert replies.texts_for("ru-RU") is replies.RUSSIAN
    assert replies.texts_for("de") is replies.ENGLISH
    assert replies.texts_for(None) is replies.ENGLISH
    assert "Открыть в магазине" in replies.caption(
        1, CatalogItem(id="1", name="n", image_path="x", url="https://s.example/1"), replies.RUSSIAN
    )


def test_filters_combine_and_narrow_by_the_catalogs_labels() -> None:
    jeans = CatalogItem("1", "a", "x", gender="Unisex", article_type="Jeans",
                        base_colour="Blue", price="20.00 EUR")  # fmt: skip
    shirt = CatalogItem("2", "b", "x", gender="Girls", article_type="Shirts",
                        base_colour="Blue", price="9,99 EUR")  # fmt: skip
    seen = Seen("Jeans", "Blue")
    only_jeans = NO_FILTERS.refined(Refinement.ONLY_TYPE, seen, [])
    assert only_jeans.admits(jeans) and not only_jeans.admits(shirt)
    other = only_jeans.refined(Refinement.OTHER_COLOURS, seen, [])
    assert not other.admits(jeans) and other.not_colour == "Blue"
    same = other.refined(Refinement.SAME_COLOUR, seen, [])
    assert same.admits(jeans) and same.not_colour is None and same.article_type == "Jeans"
    men = NO_FILTERS.refined(Refinement.MEN, seen, [])
    kids = men.refined(Refinement.KIDS, seen, [])
    assert men.admits(jeans) and not men.admits(shirt) and kids.admits(shirt)
    sock = CatalogItem("3", "c", "x", price="$5")
    cheaper = NO_FILTERS.refined(Refinement.CHEAPER, seen, [jeans, shirt, sock])
    assert cheaper.max_price == pytest.approx(9.99), "a price on the page, its median"
    assert cheaper.admits(sock) and not cheaper.admits(shirt) and not cheaper.admits(jeans)
    assert Filters(article_type="jeans").admits(jeans), "ASCII letters in any case"
    assert not Filters(article_type="джинсы").admits(replace(jeans, article_type="Джинсы")), (
        "other letters as SQLite's NOCASE compares them: exactly"
    )
    assert cheaper.refined(Refinement.CLEAR, seen, []) == NO_FILTERS
    assert Filters.from_json(kids.to_json()) == kids
    assert Filters.from_json({"gender": "Aliens"}) == NO_FILTERS


def test_refinements_offered_are_those_the_catalog_can_answer() -> None:
    facets = Facets(frozenset({
        ("Jeans", "Blue", "Men"), ("Jeans", "Black", "Men"), ("Shirts", "Blue", "Men"),
        ("Tshirts", "Red", "Boys"),
    }))  # fmt: skip
    page = [CatalogItem("1", "a", "x", price=None)]
    found = offered(Seen("Jeans", "Blue"), NO_FILTERS, facets, page)
    assert found == [
        Refinement.SAME_COLOUR, Refinement.OTHER_COLOURS, Refinement.ONLY_TYPE, Refinement.MEN,
        Refinement.KIDS,
    ]  # fmt: skip
    jeans = Filters(article_type="Jeans")
    assert offered(Seen("Jeans", "Blue"), jeans, facets, page) == [
        Refinement.SAME_COLOUR, Refinement.OTHER_COLOURS, Refinement.MEN, Refinement.CLEAR,
    ], "no Kids under Only Jeans: the shop has no children's jeans"  # fmt: skip
    black = Filters(article_type="Jeans", not_colour="Blue")
    assert Refinement.OTHER_COLOURS not in offered(Seen("Shirts", "Blue"), black, facets, page), (
        "shirts come in blue only"
    )
    narrowed = Filters(article_type="Jeans", gender="Men")
    assert offered(Seen("Dresses", "Red"), narrowed, facets, page) == [Refinement.CLEAR]
    priced = Facets(priced=True)
    assert offered(Seen(), NO_FILTERS, priced, [CatalogItem("1", "a", "x", price="5 USD")]) == [
        Refinement.CHEAPER
    ]


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
