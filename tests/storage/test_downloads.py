"""Downloading catalog images from a shop's server: each fault is reported, never fatal, and a
second round downloads nothing that did not change."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.downloads import DownloadCache, DownloadFailed, DownloadLimits, Fetched
from tests.support.catalog import garment_image, jpeg_bytes
from tests.support.shop_server import ShopServer, shop_server

LIMITS = DownloadLimits(concurrency=4, seconds=1.0, max_image_bytes=5 * 1024 * 1024)
FAST_BACKOFF = (0.05, 0.05, 0.05)


@pytest.fixture
def shop():
    with shop_server() as server:
        server.fault_image = jpeg_bytes(garment_image("Tshirts", "Red"))
        server.serve("/images/moved-target.jpg", server.fault_image, "image/jpeg")
        yield server


def _cache(folder: Path) -> DownloadCache:
    return DownloadCache(folder, LIMITS, backoff=FAST_BACKOFF)


async def _fetch(folder: Path, urls: list[str]) -> dict[str, Fetched | DownloadFailed]:
    async with _cache(folder) as cache:
        return await cache.fetch_images(urls)


async def test_each_fault_is_reported_and_the_good_images_kept(shop: ShopServer, tmp_path) -> None:
    good = [
        shop.serve(f"/images/{n}.jpg", jpeg_bytes(garment_image("Trousers", colour)), "image/jpeg")
        for n, colour in enumerate(["Blue", "Black"])
    ]
    faults = {path: shop.url(path) for path in (
        "/faults/missing.jpg", "/faults/flaky.jpg", "/faults/busy.jpg", "/faults/slow.jpg",
        "/faults/stalled.jpg", "/faults/wrong-type.jpg", "/faults/page.jpg",
        "/faults/page-as-jpeg.jpg", "/faults/huge.jpg", "/faults/huge-chunked.jpg",
        "/faults/moved.jpg", "/faults/loop.jpg",
    )}  # fmt: skip
    results = await _fetch(tmp_path, [*good, *faults.values()])

    def reason(path: str) -> str:
        result = results[faults[path]]
        assert isinstance(result, DownloadFailed), path
        return result.reason

    for url in good:
        assert isinstance(results[url], Fetched) and results[url].path.read_bytes()
    for path in ("/faults/flaky.jpg", "/faults/busy.jpg", "/faults/slow.jpg", "/faults/moved.jpg"):
        fetched = results[faults[path]]
        assert isinstance(fetched, Fetched), path
        assert fetched.path.read_bytes() == shop.fault_image
    assert shop.requests["/faults/flaky.jpg"] == 2  # a 500, retried once
    assert shop.requests["/faults/busy.jpg"] == 2  # a 429, retried after Retry-After
    assert reason("/faults/missing.jpg") == "HTTP 404"
    assert shop.requests["/faults/missing.jpg"] == 1  # a 404 is not retried
    assert reason("/faults/stalled.jpg") == "timed out"
    assert shop.requests["/faults/stalled.jpg"] == 4  # the first try and 3 retries
    assert reason("/faults/wrong-type.jpg") == "not an image (Content-Type text/plain)"
    assert reason("/faults/page.jpg") == "not an image (Content-Type text/html)"
    assert reason("/faults/page-as-jpeg.jpg") == "not a readable image (image/jpeg)"
    assert reason("/faults/huge.jpg").startswith("too large (30720 KB")
    assert reason("/faults/huge-chunked.jpg").startswith("too large (over 5120 KB")
    assert reason("/faults/loop.jpg") == "more than 5 redirects"


async def test_a_second_round_revalidates_and_downloads_nothing(shop: ShopServer, tmp_path) -> None:
    urls = [
        shop.serve(
            f"/images/{n}.jpg", jpeg_bytes(garment_image("Dresses", "Green", n)), "image/jpeg"
        )
        for n in range(5)
    ]
    async with _cache(tmp_path) as cache:
        first = await cache.fetch_images(urls)
        assert cache.report.downloaded == 5
    shop.reset_counts()
    async with _cache(tmp_path) as cache:
        second = await cache.fetch_images(urls)
        assert (cache.report.downloaded, cache.report.revalidated) == (0, 5)
    assert shop.downloaded() == 0 and sum(shop.requests.values()) == 5
    for url in urls:
        assert first[url].path == second[url].path and not second[url].downloaded

    changed = jpeg_bytes(garment_image("Dresses", "Red"))
    shop.serve("/images/0.jpg", changed, "image/jpeg")
    async with _cache(tmp_path) as cache:
        third = await cache.fetch_images(urls)
        assert (cache.report.downloaded, cache.report.revalidated) == (1, 4)
    assert third[urls[0]].path.read_bytes() == changed


async def test_a_failing_url_keeps_the_copy_of_the_last_round(shop: ShopServer, tmp_path) -> None:
    url = shop.serve("/images/a.jpg", shop.fault_image, "image/jpeg")
    await _fetch(tmp_path, [url])
    del shop.files["/images/a.jpg"]  # now a 404
    result = (await _fetch(tmp_path, [url]))[url]
    assert isinstance(result, Fetched)
    assert result.stale == "HTTP 404" and result.path.read_bytes() == shop.fault_image


async def test_prune_keeps_what_the_catalog_uses(shop: ShopServer, tmp_path) -> None:
    urls = [shop.serve(f"/images/{n}.jpg", shop.fault_image, "image/jpeg") for n in range(3)]
    async with _cache(tmp_path) as cache:
        fetched = await cache.fetch_images(urls)
        assert cache.prune([fetched[urls[0]].path]) == 2
    assert sorted(tmp_path.iterdir()) == sorted(
        [fetched[urls[0]].path, fetched[urls[0]].path.with_suffix(".json")]
    )


async def test_a_feed_document_is_fetched_without_the_image_checks(shop, tmp_path) -> None:
    url = shop.serve("/feed.xml", b"<rss></rss>", "application/rss+xml")
    async with _cache(tmp_path) as cache:
        assert (await cache.fetch_document(url)).read_bytes() == b"<rss></rss>"
        with pytest.raises(DownloadFailed, match="HTTP 404"):
            await cache.fetch_document(shop.url("/nope.xml"))
