"""Refinements, votes and the close-match verdict through the recommender (real default
model, generated catalog: 4 garment types × 6 colours, dresses for women, the rest for men)."""

from __future__ import annotations

import asyncio
import csv
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from bot.core.filters import Refinement
from bot.core.ranking import RankingConfig
from bot.core.recommender import Recommender, SearchExpired
from bot.core.sources import CatalogSource
from embeddings import AsyncEmbedder, Embedder
from storage.catalog import Catalog
from tests.support.catalog import jpeg_bytes, photo_of, stored_item


@pytest.fixture
async def opened(tmp_path: Path, embedder: Embedder, generated_catalog):
    catalog = await Catalog.open(tmp_path / "data" / "catalog.sqlite3")
    async_embedder = AsyncEmbedder(embedder)

    async def open_recommender(**options: float) -> Recommender:
        return await Recommender.open(catalog, async_embedder, tmp_path / "data", **options)

    recommender = await open_recommender()
    await recommender.ingest(
        CatalogSource.fashion(generated_catalog.styles, generated_catalog.images)
    )
    yield recommender, open_recommender, generated_catalog
    async_embedder.close()
    await catalog.close()


async def _key(recommender: Recommender, article_type: str, colour: str, products) -> int:
    product = next(p for p in products if (p.article_type, p.colour) == (article_type, colour))
    return (await stored_item(recommender.catalog, product.id)).key


def _labels(page) -> set[tuple[str, str]]:
    return {(m.item.item.article_type, m.item.item.base_colour) for m in page.matches}


async def test_refinements_narrow_the_page_and_still_fill_it(opened) -> None:
    recommender, _, catalog = opened
    key = await _key(recommender, "Tshirts", "Red", catalog.products)
    page = await recommender.search_from_item(key, chat_id=1)
    assert (page.seen.article_type, page.seen.base_colour) == ("Tshirts", "Red")
    assert {Refinement.SAME_COLOUR, Refinement.OTHER_COLOURS, Refinement.ONLY_TYPE} <= set(
        page.refinements
    )
    only = await recommender.refine(page.search_id, 1, Refinement.ONLY_TYPE)
    assert len(only.matches) == 5 and {t for t, _ in _labels(only)} == {"Tshirts"}
    assert key not in {m.item.key for m in only.matches}, "the item searched from stays out"
    assert Refinement.ONLY_TYPE not in only.refinements and Refinement.CLEAR in only.refinements
    others = await recommender.refine(only.search_id, 1, Refinement.OTHER_COLOURS)
    assert len(others.matches) == 5
    assert all(t == "Tshirts" and c != "Red" for t, c in _labels(others))
    same = await recommender.refine(others.search_id, 1, Refinement.SAME_COLOUR)
    assert _labels(same) == set(), "only the red t-shirt searched from is a red t-shirt"
    red = await recommender.refine(page.search_id, 1, Refinement.SAME_COLOUR)
    assert {c for _, c in _labels(red)} == {"Red"} and len(red.matches) == 3
    cleared = await recommender.refine(others.search_id, 1, Refinement.CLEAR)
    assert not cleared.filters.active and len(cleared.matches) == 5


async def test_filters_apply_to_more_like_this_after_a_restart(opened) -> None:
    recommender, open_recommender, _ = opened
    photo = jpeg_bytes(photo_of("Dresses", "Blue"))
    page = await recommender.search_image(photo, chat_id=2)
    assert Refinement.WOMEN in page.refinements and Refinement.KIDS not in page.refinements
    men = await recommender.refine(page.search_id, 2, Refinement.MEN)
    assert len(men.matches) == 5 and all(m.item.item.gender == "Men" for m in men.matches)
    restarted = await open_recommender()
    shown = [m.item.key for m in men.matches]
    while more := (await restarted.more(men.search_id, 2)).matches:
        assert all(m.item.item.gender == "Men" for m in more)
        shown += [m.item.key for m in more]
    assert len(shown) == len(set(shown)) == 18, "every men's item once, no dress"


async def test_cheaper_keeps_items_under_the_pages_median_price(tmp_path, opened) -> None:
    recommender, _, catalog = opened
    with catalog.styles.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for number, row in enumerate(rows):
        row["price"] = f"{10 + number}.00 EUR"
    with catalog.styles.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    await recommender.ingest(CatalogSource.fashion(catalog.styles, catalog.images))
    page = await recommender.search_image(jpeg_bytes(photo_of("Trousers", "Green")), chat_id=3)
    assert Refinement.CHEAPER in page.refinements
    prices = sorted(float(m.item.item.price.split()[0]) for m in page.matches)
    more = await recommender.more(page.search_id, 3)
    later = sorted(float(m.item.item.price.split()[0]) for m in more.matches)
    assert later[2] != prices[2], "the two pages' medians differ, or this tells nothing"
    cheaper = await recommender.refine(page.search_id, 3, Refinement.CHEAPER, page=0)
    assert cheaper.matches and cheaper.filters.max_price == prices[2], "the pressed page's"
    last = await recommender.refine(page.search_id, 3, Refinement.CHEAPER)
    assert last.filters.max_price == later[2], "without a page: the last one shown"
    assert all(float(m.item.item.price.split()[0]) < prices[2] for m in cheaper.matches)


async def test_a_double_tap_on_more_like_this_gets_two_different_pages(opened) -> None:
    recommender, _, _ = opened
    page = await recommender.search_image(jpeg_bytes(photo_of("Dresses", "Red")), chat_id=7)
    first, second = await asyncio.gather(
        recommender.more(page.search_id, 7), recommender.more(page.search_id, 7)
    )
    assert sorted((first.page, second.page)) == [1, 2]
    keys = [m.item.key for p in (page, first, second) for m in p.matches]
    assert len(keys) == len(set(keys)) == 15
    stored = await recommender.catalog.get_search(page.search_id)
    assert [len(shown) for shown in stored.pages] == [5, 5, 5]


async def test_a_colours_page_of_a_product_in_many_colours_refines_from_its_item(
    tmp_path, opened
) -> None:
    """The search holds the item and the page, not every colour: the product's other colours
    stay out of "More like this" by its group, and a refinement starts from the item alone."""
    recommender, _, catalog = opened
    with sqlite3.connect(tmp_path / "data" / "catalog.sqlite3") as db:
        db.execute("UPDATE items SET group_id = 'basics' WHERE article_type = 'Tshirts'")
        db.execute("UPDATE items SET group_id = 'basics' WHERE article_type = 'Trousers'")
    key = await _key(recommender, "Tshirts", "Red", catalog.products)
    colours = await recommender.colours_of(key, chat_id=8)
    page = tuple(m.item.key for m in colours.matches)
    stored = await recommender.catalog.get_search(colours.search_id)
    assert len(page) == 5 and stored.shown == (key, *page)
    more = await recommender.more(colours.search_id, 8)
    kinds = {m.item.item.article_type for m in more.matches}
    assert more.matches and kinds <= {"Dresses", "Casual Shoes"}, "the product's other colours"
    refined = await recommender.refine(colours.search_id, 8, Refinement.MEN)
    session = await recommender.catalog.get_search(refined.search_id)
    assert session.shown == (key, *(m.item.key for m in refined.matches))


async def test_a_page_left_short_by_a_missing_photo_refines_from_the_same_query(opened) -> None:
    recommender, _, _ = opened
    page = await recommender.search_image(jpeg_bytes(photo_of("Trousers", "Blue")), chat_id=9)
    best, *sent = page.matches
    await recommender.record_sent(page, replace(page, matches=sent))
    stored = await recommender.catalog.get_search(page.search_id)
    assert stored.pages == (tuple(m.item.key for m in sent),) and best.item.key not in stored.shown
    again = await recommender.refine(page.search_id, 9, Refinement.CLEAR)
    assert again.matches[0].item.key == best.item.key, "the best match is no item searched from"


async def test_votes_are_stored_per_page_and_counted(opened) -> None:
    recommender, _, _ = opened
    page = await recommender.search_image(jpeg_bytes(photo_of("Tshirts", "Blue")), chat_id=4)
    more = await recommender.more(page.search_id, 4)
    assert (page.page, more.page) == (0, 1)
    assert await recommender.vote(page.search_id, 4, 0, up=True)
    assert await recommender.vote(page.search_id, 4, 1, up=True)
    assert not await recommender.vote(page.search_id, 4, 1, up=False), "a change, not a second"
    for search_id, chat, number in ((page.search_id, 5, 0), (page.search_id, 4, 2), (10**9, 4, 0)):
        with pytest.raises(SearchExpired):
            await recommender.vote(search_id, chat, number, up=True)
    votes = await recommender.catalog.votes()
    assert [(v.page, v.vote) for v in votes] == [(0, 1), (1, -1)]
    assert votes[1].items == tuple(m.item.item.id for m in more.matches)
    stats = await recommender.stats()
    assert (stats.votes, stats.votes_up) == (2, 1) and stats.feedback() == "50% 👍 (1 of 2 votes)"


async def test_a_page_says_whether_anything_is_close(opened) -> None:
    _, open_recommender, _ = opened
    photo = jpeg_bytes(photo_of("Casual Shoes", "Black"))
    strict = await open_recommender(close_similarity=1.01)
    page = await strict.search_image(photo, chat_id=6)
    assert not page.close
    refined = await strict.refine(page.search_id, 6, page.refinements[0])
    assert refined.close, "a narrowed page makes no claim about the whole catalog"
    lenient = await open_recommender(close_similarity=-1.0)
    page = await lenient.search_image(photo, chat_id=6)
    assert page.close and page.matches[0].similarity > 0


async def test_a_narrowed_search_finds_the_same_page_within_its_subset(opened) -> None:
    """A small first pool makes a narrowed search search the items its filters let through:
    the page is the one a pool of the whole catalog gives."""
    recommender, open_recommender, catalog = opened
    small_pool = await open_recommender(ranking=RankingConfig(pool=1))
    searched_within: list[Refinement] = []
    passing_keys = small_pool._passing_keys

    async def spy(*args: object) -> list[int]:
        searched_within.append(refinement)
        return await passing_keys(*args)

    small_pool._passing_keys = spy
    key = await _key(recommender, "Trousers", "Green", catalog.products)
    for refinement in (Refinement.ONLY_TYPE, Refinement.OTHER_COLOURS, Refinement.WOMEN):
        pages = []
        for searcher in (recommender, small_pool):
            page = await searcher.search_from_item(key, chat_id=7)
            refined = await searcher.refine(page.search_id, 7, refinement)
            pages.append([m.item.key for m in refined.matches])
        assert pages[0] == pages[1] and len(pages[0]) == 5, refinement
    assert Refinement.WOMEN in searched_within, "the subset was searched"
