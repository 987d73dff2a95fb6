"""``wardrobe ingest --feed``: real shops' feeds and images by URL, from a local web server with
the faults real ones have. Each failure is reported and the rest kept; a second ingest of the
unchanged feed downloads and re-embeds nothing; out-of-stock items and a product's other
colours are not shown."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from bot.cli.main import main
from tests.support.catalog import garment_image, jpeg_bytes, photo_of
from tests.support.shop_server import ShopServer, shop_server

pytestmark = pytest.mark.usefixtures("no_env_file")

# (id, title, article type, colour, group, availability, image path on the shop server)
MERCHANT_ITEMS = [
    ("tee-red", "Cotton tee", "Tshirts", "Red", "tee", "in_stock", "/images/tee-red.jpg"),
    ("tee-blue", "Cotton tee", "Tshirts", "Blue", "tee", "in_stock", "/images/tee-blue.jpg"),
    ("tee-green", "Cotton tee", "Tshirts", "Green", "tee", "in_stock", "/images/tee-green.jpg"),
    ("polo-yellow", "Polo", "Tshirts", "Yellow", "", "in_stock", "/images/polo.jpg"),
    ("tee-black", "Black tee", "Tshirts", "Black", "", "out_of_stock", "/images/tee-black.jpg"),
    ("dress-red", "Midi dress", "Dresses", "Red", "", "in_stock", "/images/dress.jpg"),
    ("chinos", "Chinos", "Trousers", "Purple", "", "in_stock", "/images/chinos.jpg"),
    ("sneaker", "Sneaker", "Casual Shoes", "Black", "", "in_stock", "/images/sneaker.jpg"),
    ("flaky", "Flaky", "Dresses", "Green", "", "in_stock", "/faults/flaky.jpg"),
    ("busy", "Busy", "Dresses", "Blue", "", "in_stock", "/faults/busy.jpg"),
    ("moved", "Moved", "Trousers", "Blue", "", "in_stock", "/faults/moved.jpg"),
    ("slow", "Slow", "Trousers", "Green", "", "in_stock", "/faults/slow.jpg"),
    ("missing", "Missing", "Dresses", "Black", "", "in_stock", "/faults/missing.jpg"),
    ("page", "Page", "Dresses", "Yellow", "", "in_stock", "/faults/page.jpg"),
    ("page-jpeg", "Page", "Dresses", "Purple", "", "in_stock", "/faults/page-as-jpeg.jpg"),
    ("wrong-type", "Text", "Dresses", "Red", "", "in_stock", "/faults/wrong-type.jpg"),
    ("huge", "Huge", "Dresses", "Blue", "", "in_stock", "/faults/huge.jpg"),
]
FAILING = {
    "missing": "HTTP 404",
    "page": "not an image (Content-Type text/html)",
    "page-jpeg": "not a readable image",
    "wrong-type": "not an image (Content-Type text/plain)",
    "huge": "too large",
}


def _merchant_rss(shop: ShopServer) -> bytes:
    entries = []
    for item_id, title, kind, colour, group, stock, image in MERCHANT_ITEMS:
        entries.append(
            f"""<item><g:id>{item_id}</g:id><title>{title}</title>
            <link>https://shop.example/p/{item_id}</link>
            <g:image_link>{shop.url(image)}</g:image_link>
            <g:price>29.99 EUR</g:price><g:availability>{stock}</g:availability>
            <g:color>{colour}</g:color><g:gender>female</g:gender>
            <g:product_type>Apparel &gt; {kind}</g:product_type><g:brand>Acme</g:brand>
            {f"<g:item_group_id>{group}</g:item_group_id>" if group else ""}</item>"""
        )
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">'
        f"<channel><title>Acme</title>{''.join(entries)}</channel></rss>"
    ).encode()


@pytest.fixture(scope="module")
def shop():
    with shop_server() as server:
        server.fault_image = jpeg_bytes(garment_image("Dresses", "Green", 3))
        moved = jpeg_bytes(garment_image("Trousers", "Blue"))
        server.serve("/images/moved-target.jpg", moved, "image/jpeg")
        for _, _, kind, colour, _, _, image in MERCHANT_ITEMS:
            if image.startswith("/images/"):
                server.serve(image, jpeg_bytes(garment_image(kind, colour)), "image/jpeg")
        server.serve("/feed.xml", _merchant_rss(server), "application/rss+xml")
        yield server


def _ingest(data: Path, *args: str) -> int:
    return main(["--data-dir", str(data), "ingest", *args])


def _items(data: Path) -> dict[str, dict]:
    with sqlite3.connect(data / "catalog.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return {row["id"]: dict(row) for row in db.execute("SELECT * FROM items")}


@pytest.fixture(scope="module")
def merchant(shop: ShopServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The Merchant feed ingested once by URL, with what the CLI said."""
    data = tmp_path_factory.mktemp("merchant") / "data"
    capture = pytest.MonkeyPatch()
    out, err = io.StringIO(), io.StringIO()
    capture.setattr("sys.stdout", out)
    capture.setattr("sys.stderr", err)
    capture.setenv("IMAGE_DOWNLOAD_TIMEOUT", "2")
    try:
        code = _ingest(data, "--feed", shop.url("/feed.xml"))
    finally:
        capture.undo()
    return {"data": data, "code": code, "out": out.getvalue(), "err": err.getvalue()}


def test_merchant_feed_by_url_reports_each_failure_and_keeps_the_rest(merchant) -> None:
    assert merchant["code"] == 0, merchant["err"]
    assert "read a merchant feed: 17 rows" in merchant["out"]
    indexed = len(MERCHANT_ITEMS) - len(FAILING)
    assert f"{indexed} items indexed: {indexed} embedded" in merchant["out"]
    assert f"{len(FAILING)} failed" in merchant["out"]
    assert "1 out of stock (kept, not shown)" in merchant["out"]
    for item_id, reason in FAILING.items():
        assert f"skipped {item_id}: " in merchant["err"] and reason in merchant["err"], item_id
    items = _items(merchant["data"])
    assert set(items) == {row[0] for row in MERCHANT_ITEMS} - set(FAILING)
    tee = items["tee-red"]
    assert (tee["name"], tee["article_type"], tee["base_colour"]) == (
        "Cotton tee",
        "Tshirts",
        "Red",
    )
    assert (tee["gender"], tee["brand"], tee["group_id"]) == ("Women", "Acme", "tee")
    assert (tee["price"], tee["url"]) == ("29.99 EUR", "https://shop.example/p/tee-red")
    assert items["tee-black"]["available"] == 0 and tee["available"] == 1


def test_a_second_ingest_of_the_unchanged_feed_downloads_and_embeds_nothing(
    shop: ShopServer, merchant, capsys: pytest.CaptureFixture
) -> None:
    shop.reset_counts()
    assert _ingest(merchant["data"], "--feed", shop.url("/feed.xml")) == 0
    out = capsys.readouterr().out
    indexed = len(MERCHANT_ITEMS) - len(FAILING)
    assert f"{indexed} items indexed: 0 embedded, {indexed} unchanged" in out
    assert "images: 0 downloaded" in out
    # Only the URLs that failed the first time are asked for a body again.
    refused = {path for *_, path in MERCHANT_ITEMS if path.rsplit("/", 1)[1] in {
        "missing.jpg", "page.jpg", "page-as-jpeg.jpg", "wrong-type.jpg", "huge.jpg"}}  # fmt: skip
    assert set(shop.bodies_sent) <= refused, shop.bodies_sent


def test_out_of_stock_items_and_other_colours_are_not_shown(
    merchant, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    query = tmp_path / "red-tee.jpg"
    query.write_bytes(jpeg_bytes(photo_of("Tshirts", "Red")))
    capsys.readouterr()
    assert main(["--data-dir", str(merchant["data"]), "search", "--json", "--top", "8",
                 str(query)]) == 0  # fmt: skip
    ids = [result["id"] for result in json.loads(capsys.readouterr().out)["results"]]
    assert len(ids) == 8
    assert "tee-black" not in ids  # out of stock: the nearest tee by look, never shown
    assert sum(item_id.startswith("tee-") for item_id in ids) == 1  # one colour of the tee


def test_merchant_tsv_and_shopify_exports_by_url(shop: ShopServer, tmp_path: Path) -> None:
    tsv = io.StringIO()
    writer = csv.writer(tsv, delimiter="\t")
    writer.writerow(["id", "title", "link", "image_link", "additional_image_link", "price",
                     "sale_price", "availability", "color", "gender", "age_group",
                     "product_type"])  # fmt: skip
    writer.writerow(["k1", "Kids tee", "https://shop.example/k1", shop.url("/faults/missing.jpg"),
                     shop.url("/images/tee-blue.jpg"), "20.00 EUR", "15.00 EUR", "in stock",
                     "Blue", "male", "kids", "Apparel > Tops > Tshirts"])  # fmt: skip
    writer.writerow(["k2", "Kids dress", "", shop.url("/images/dress.jpg"), "", "25.00 EUR", "",
                     "in stock", "red", "female", "kids", "Dresses"])  # fmt: skip
    feed = shop.serve("/feed.tsv", tsv.getvalue().encode(), "text/tab-separated-values")
    assert _ingest(tmp_path / "tsv", "--feed", feed) == 0
    items = _items(tmp_path / "tsv")
    assert set(items) == {"k1", "k2"}  # k1's main image is a 404: its additional one stood in
    assert items["k1"]["price"] == "15.00 EUR (was 20.00 EUR)"
    assert (items["k1"]["gender"], items["k2"]["gender"]) == ("Boys", "Girls")
    assert items["k1"]["article_type"] == "Tshirts"

    header = ["Handle", "Title", "Vendor", "Type", "Tags", "Published", "Option1 Name",
              "Option1 Value", "Option2 Name", "Option2 Value", "Variant SKU",
              "Variant Inventory Qty", "Variant Price", "Variant Compare At Price", "Image Src",
              "Image Position", "Variant Image", "Status"]  # fmt: skip
    rows = [
        ["linen-tee", "Linen tee", "Acme", "T-Shirts", "women", "true", "Color", "Red", "Size",
         "S", "LT-R-S", "3", "30.00", "", shop.url("/images/tee-red.jpg"), "1",
         shop.url("/images/tee-red.jpg"), "active"],
        ["linen-tee", "", "", "", "", "", "", "Red", "", "M", "LT-R-M", "0", "30.00", "", "", "",
         "", ""],
        ["linen-tee", "", "", "", "", "", "", "Blue", "", "S", "LT-B-S", "0", "28.00", "35.00",
         "", "", shop.url("/images/tee-blue.jpg"), ""],
        ["chino", "Chino", "Acme", "Trousers", "men", "true", "Size", "32", "", "", "CH-32", "5",
         "60.00", "", shop.url("/images/chinos.jpg"), "1", "", "active"],
    ]  # fmt: skip
    export = io.StringIO()
    csv.writer(export).writerows([header, *rows])
    feed = shop.serve("/products_export.csv", export.getvalue().encode(), "text/csv")
    assert _ingest(tmp_path / "shopify", "--feed", feed, "--shop-url", "https://acme.shop") == 0
    items = _items(tmp_path / "shopify")
    assert set(items) == {"linen-tee:Red", "linen-tee:Blue", "chino"}
    red, blue = items["linen-tee:Red"], items["linen-tee:Blue"]
    assert red["group_id"] == blue["group_id"] == "linen-tee"
    assert (red["available"], blue["available"]) == (1, 0)  # no Blue left in stock
    assert blue["price"] == "28.00 (was 35.00)"
    assert red["url"] == "https://acme.shop/products/linen-tee"
    assert (red["gender"], items["chino"]["gender"]) == ("Women", "Men")


def test_a_csv_of_the_shops_own_making_with_a_column_mapping(
    shop: ShopServer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    images = tmp_path / "photos"
    images.mkdir()
    (images / "a.jpg").write_bytes(jpeg_bytes(garment_image("Dresses", "Red")))
    feed = tmp_path / "products.csv"
    feed.write_text(
        "code;label;shade;picture;cost\n"
        "sku-1;Red dress;red;photos/a.jpg;49\n"
        f"sku-2;Blue tee;blue;{shop.url('/images/tee-blue.jpg')};19\n"
    )
    mapping = "id=code,title=label,colour=shade,image=picture,price=cost"
    assert _ingest(tmp_path / "data", "--feed", str(feed), "--map", mapping) == 0
    out = capsys.readouterr().out
    assert "read a csv feed: 2 rows" in out and "title=label" in out
    items = _items(tmp_path / "data")
    assert (items["sku-1"]["name"], items["sku-1"]["base_colour"]) == ("Red dress", "Red")
    assert items["sku-2"]["price"] == "19"


def test_an_unreadable_feed_is_one_error_line(shop, tmp_path, capsys) -> None:
    assert _ingest(tmp_path / "a", "--feed", shop.url("/nope.xml")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wardrobe: error: the feed http") and err.endswith("HTTP 404")
    assert len(err.splitlines()) == 1
    feed = tmp_path / "x.csv"
    feed.write_text("title,color\nShirt,red\n")
    assert _ingest(tmp_path / "b", "--feed", str(feed)) == 2
    err = capsys.readouterr().err.strip()
    assert "--map id=" in err and len(err.splitlines()) == 1


def test_a_feed_by_url_may_not_name_local_files(shop, tmp_path, capsys) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(jpeg_bytes(garment_image("Dresses", "Red")))
    feed = shop.serve("/local.csv", f"id,title,image\nx,X,{secret}\n".encode(), "text/csv")
    assert _ingest(tmp_path / "data", "--feed", feed) == 0
    assert "skipped x: no image" in capsys.readouterr().err
