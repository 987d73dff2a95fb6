"""Product feed readers (storage.feeds): Merchant RSS/Atom/TSV, Shopify's CSV export, any
CSV/TSV, Fashion Product Images; small hand-written feeds, no network."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from storage.feeds import (
    FORMATS,
    Feed,
    FeedRow,
    ListedItem,
    detect_format,
    fields,
    parse_mapping,
    read_feed,
)
from storage.source import CatalogSourceError


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _listed(feed: Feed) -> dict[str, ListedItem]:
    return {row.listed.item.id: row.listed for row in feed.rows if row.listed is not None}


def _problems(feed: Feed) -> list[tuple[str, str | None]]:
    return [(row.where, row.problem) for row in feed.rows if row.listed is None]


def _one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(CatalogSourceError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- shared field rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "age", "expected"),
    [
        ("male", None, "Men"),
        ("M", None, "Men"),
        ("Women", None, "Women"),
        ("f", "adult", "Women"),
        ("unisex", None, "Unisex"),
        ("male", "kids", "Boys"),
        ("female", "Toddler", "Girls"),
        ("unisex", "infant", "Kids"),
        (None, "newborn", "Kids"),
        (None, "adult", None),
        ("non-binary", None, "Non-Binary"),
    ],
)
def test_gender_uses_the_fashion_vocabulary(value, age, expected) -> None:
    assert fields.gender(value, age) == expected


def test_colour_is_the_first_of_several_title_cased() -> None:
    assert fields.colour("navy blue") == "Navy Blue"
    assert fields.colour("Blue/White") == "Blue"
    assert fields.colour("red, black") == "Red"
    assert fields.colour("  ") is None


def test_category_path_gives_master_sub_and_article_type() -> None:
    path = "Apparel & Accessories > Clothing > Shirts & Tops"
    assert fields.category(path) == ("Apparel & Accessories", "Clothing", "Shirts & Tops")
    assert fields.category("Dresses") == (None, None, "Dresses")
    assert fields.category("1604") == (None, None, None)


def test_price_text_shows_a_sale_against_the_regular_price() -> None:
    assert fields.price_text("19.99 USD") == "19.99 USD"
    assert fields.price_text("19.99 USD", "14.99 USD") == "14.99 USD (was 19.99 USD)"
    assert fields.price_text("19.99", None) == "19.99"
    assert fields.price_text("19.99 USD", "24.99 USD") == "19.99 USD"  # not a sale


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("19.99 USD", "19.99"), ("$1,299.00", "1299.00"), ("19,99 EUR", "19.99"),
        ("1 299 ₽", "1299"), ("12\u00a0990 руб.", "12990"), ("1 299,99 ₽", "1299.99"),
        ("$1,299", "1299"), ("1.299,00 EUR", "1299.00"), ("1.299 EUR", "1299"),
        ("1'299.50 CHF", "1299.50"), ("1,234,567.89", "1234567.89"), ("0.999", "0.999"),
        ("1,5", "1.5"), ("EUR 10", "10"), ("2 for 30", "2"), ("free", None), (None, None),
        ("12.500 KWD", "12.500"), ("1299.00", "1299.00"), ("1 299.- CHF", "1299"),
        ("19.99 24.99", "19.99"), ("19.99, 24.99", "19.99"), ("1.299.99", "1299"),
        ("-5 EUR", "-5"),
    ],
)  # fmt: skip
def test_a_price_is_read_in_the_shops_own_notation(text: str | None, number: str | None) -> None:
    """Thousands grouped in threes by spaces (as Russian shops write them), dots or commas;
    a second number in the text is not run into the first."""
    assert fields.amount(text) == (None if number is None else Decimal(number))


def test_availability_values() -> None:
    assert fields.available("in_stock") and fields.available("in stock")
    assert fields.available("preorder") and fields.available("backorder")
    assert not fields.available("out_of_stock") and not fields.available("Out of stock")
    assert fields.available(None)
    assert not fields.available("no", generic=True) and fields.available("TRUE", generic=True)
    assert fields.available("3", generic=True) and not fields.available("0", generic=True)
    with pytest.raises(fields.RowProblem, match="availability 'maybe'"):
        fields.available("maybe", generic=True)
    with pytest.raises(fields.RowProblem):
        fields.available("yes")  # Merchant's own values only


def test_ids_are_printable_and_at_most_100_characters() -> None:
    assert fields.item_id("  SKU 1/a  ") == "SKU 1/a"
    assert fields.item_id("x" * 100) == "x" * 100
    for bad, message in (("", "missing id"), ("x" * 101, "longer than 100"), ("a\tb", "control")):
        with pytest.raises(fields.RowProblem, match=message):
            fields.item_id(bad)


def test_image_references(tmp_path: Path) -> None:
    assert fields.image("https://cdn.example.com/a.jpg", tmp_path) == (
        "https://cdn.example.com/a.jpg"
    )
    assert fields.image("pics/a.jpg", tmp_path) == str(tmp_path / "pics" / "a.jpg")
    assert fields.image("/srv/a.jpg", tmp_path) == "/srv/a.jpg"
    with pytest.raises(fields.RowProblem, match="file://"):
        fields.image("file:///srv/a.jpg", tmp_path)
    with pytest.raises(fields.RowProblem, match="neither"):
        fields.image("ftp://example.com/a.jpg", tmp_path)
    with pytest.raises(fields.RowProblem, match="no scheme"):
        fields.image("//cdn.example.com/a.jpg", tmp_path)


# -- Google Merchant ---------------------------------------------------------------------------

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">
  <channel>
    <title>Example shop</title>
    <link>https://shop.example.com</link>
    <item>
      <g:id>TS-RED-M</g:id>
      <title>Cotton T-shirt</title>
      <link>https://shop.example.com/p/ts?colour=red</link>
      <description><![CDATA[<!DOCTYPE html><p>Soft cotton.</p>]]></description>
      <g:image_link>https://cdn.example.com/ts-red.jpg</g:image_link>
      <g:additional_image_link>https://cdn.example.com/ts-red-back.jpg</g:additional_image_link>
      <g:additional_image_link>https://cdn.example.com/ts-red-side.jpg</g:additional_image_link>
      <g:price>19.99 USD</g:price>
      <g:sale_price>14.99 USD</g:sale_price>
      <g:availability>in_stock</g:availability>
      <g:color>red/white</g:color>
      <g:gender>male</g:gender>
      <g:age_group>adult</g:age_group>
      <g:product_type>Apparel &amp; Accessories &gt; Clothing &gt; Shirts &amp; Tops
      </g:product_type>
      <g:google_product_category>212</g:google_product_category>
      <g:brand>Acme</g:brand>
      <g:item_group_id>TS</g:item_group_id>
      <g:shipping><g:country>US</g:country><g:price>4.99 USD</g:price></g:shipping>
    </item>
    <item>
      <g:id>TS-BLUE-M</g:id>
      <g:title>Cotton T-shirt (blue)</g:title>
      <title>ignored: g:title wins</title>
      <g:link>https://shop.example.com/p/ts?colour=blue</g:link>
      <g:image_link>images/ts-blue.jpg</g:image_link>
      <g:price>19.99 USD</g:price>
      <g:availability>out of stock</g:availability>
      <g:color>navy blue</g:color>
      <g:gender>female</g:gender>
      <g:age_group>kids</g:age_group>
      <g:google_product_category>Apparel &amp; Accessories &gt; Clothing</g:google_product_category>
      <g:item_group_id>TS</g:item_group_id>
    </item>
    <item>
      <g:id>SOCKS-1</g:id>
      <title>Socks</title>
      <g:price>5.00 EUR</g:price>
    </item>
    <item>
      <title>No id at all</title>
      <g:image_link>https://cdn.example.com/x.jpg</g:image_link>
    </item>
  </channel>
</rss>
"""


def test_merchant_rss(tmp_path: Path) -> None:
    feed = read_feed(_write(tmp_path, "feed.xml", RSS))
    assert feed.format == "merchant"
    assert [row.where for row in feed.rows] == ["item 1", "item 2", "item 3", "item 4"]
    listed = _listed(feed)
    red = listed["TS-RED-M"]
    assert red.images == (
        "https://cdn.example.com/ts-red.jpg",
        "https://cdn.example.com/ts-red-back.jpg",
        "https://cdn.example.com/ts-red-side.jpg",
    )
    item = red.item
    assert item.name == "Cotton T-shirt"
    assert item.image_path == ""
    assert item.url == "https://shop.example.com/p/ts?colour=red"
    assert item.price == "14.99 USD (was 19.99 USD)"
    assert item.available is True
    assert item.base_colour == "Red"
    assert item.gender == "Men"
    assert (item.master_category, item.sub_category, item.article_type) == (
        "Apparel & Accessories",
        "Clothing",
        "Shirts & Tops",
    )
    assert item.brand == "Acme" and item.group_id == "TS" and item.origin == "feed"

    blue = listed["TS-BLUE-M"]
    assert blue.images == (str(tmp_path / "images" / "ts-blue.jpg"),)
    assert blue.item.name == "Cotton T-shirt (blue)"
    assert blue.item.url == "https://shop.example.com/p/ts?colour=blue"
    assert blue.item.available is False
    assert blue.item.price == "19.99 USD"
    assert blue.item.base_colour == "Navy Blue"
    assert blue.item.gender == "Girls"
    assert blue.item.article_type == "Clothing"
    assert blue.item.group_id == "TS"
    assert _problems(feed) == [
        ("item 3", "id SOCKS-1: missing image_link"),
        ("item 4", "missing id"),
    ]


ATOM = """<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
  <title>Example shop</title>
  <entry>
    <id>tag:shop.example.com,2024:DRESS-9</id>
    <title>Linen dress</title>
    <link rel="self" href="https://shop.example.com/feed/dress-9"/>
    <link href="https://shop.example.com/p/dress-9"/>
    <g:id>DRESS-9</g:id>
    <g:image_link>https://cdn.example.com/dress-9.jpg</g:image_link>
    <g:price>49.00 GBP</g:price>
    <g:availability>preorder</g:availability>
    <g:gender>Female</g:gender>
    <g:product_type>Dresses</g:product_type>
  </entry>
  <entry>
    <id>SCARF-2</id>
    <title>Wool scarf</title>
    <link rel="alternate" href="https://shop.example.com/p/scarf-2"/>
    <g:image_link>https://cdn.example.com/scarf-2.jpg</g:image_link>
    <g:gender>unisex</g:gender>
  </entry>
</feed>
"""


def test_merchant_atom_falls_back_on_atom_id_title_and_link(tmp_path: Path) -> None:
    feed = read_feed(_write(tmp_path, "feed.atom", ATOM))
    assert feed.format == "merchant"
    listed = _listed(feed)
    assert list(listed) == ["DRESS-9", "SCARF-2"]
    dress = listed["DRESS-9"].item
    assert dress.name == "Linen dress"
    assert dress.url == "https://shop.example.com/p/dress-9"
    assert dress.price == "49.00 GBP" and dress.available is True
    assert dress.gender == "Women" and dress.article_type == "Dresses"
    scarf = listed["SCARF-2"].item
    assert (scarf.name, scarf.url, scarf.gender) == (
        "Wool scarf",
        "https://shop.example.com/p/scarf-2",
        "Unisex",
    )
    assert [row.where for row in feed.rows] == ["item 1", "item 2"]


MERCHANT_TSV = (
    "id\ttitle\tlink\timage_link\tadditional_image_link\tprice\tsale_price\tavailability"
    "\tcolor\tgender\tproduct_type\tbrand\titem_group_id\n"
    "JK-1\tRain jacket\thttps://shop.example.com/jk-1\thttps://cdn.example.com/jk-1.jpg"
    "\thttps://cdn.example.com/jk-1b.jpg, https://cdn.example.com/jk-1c.jpg\t89.00 USD"
    "\t\tout_of_stock\tOlive Green\tmen\tOuterwear > Jackets\tNorth\tJK\n"
    "\t\t\t\t\t\t\t\t\t\t\t\t\n"
    "JK-2\tRain jacket\thttps://shop.example.com/jk-2\tfile:///srv/jk-2.jpg"
    "\t\t89.00 USD\t69.00 USD\tin stock\tblack\twomen\t\t\tJK\n"
    "JK-3\tRain jacket\t\thttps://cdn.example.com/jk-3.jpg\t\t89.00 USD\t\tsoon\t\t\t\t\t\n"
)


def test_merchant_tsv(tmp_path: Path) -> None:
    feed = read_feed(_write(tmp_path, "products.tsv", MERCHANT_TSV))
    assert feed.format == "merchant"
    listed = _listed(feed)
    jacket = listed["JK-1"]
    assert jacket.images == (
        "https://cdn.example.com/jk-1.jpg",
        "https://cdn.example.com/jk-1b.jpg",
        "https://cdn.example.com/jk-1c.jpg",
    )
    assert jacket.item.available is False
    assert jacket.item.price == "89.00 USD"
    assert jacket.item.base_colour == "Olive Green"
    assert (jacket.item.sub_category, jacket.item.article_type) == ("Outerwear", "Jackets")
    assert (jacket.item.brand, jacket.item.group_id) == ("North", "JK")
    assert _problems(feed) == [
        (
            "line 4",
            "id JK-2: image 'file:///srv/jk-2.jpg': file:// is not accepted, give a plain path",
        ),
        (
            "line 5",
            "id JK-3: availability 'soon' not understood "
            "(expected in_stock, out_of_stock, preorder, backorder)",
        ),
    ]


def test_merchant_csv_with_spaced_column_names(tmp_path: Path) -> None:
    text = "ID,Title,Image Link,Price,Google Product Category\nB-1,Belt,b.png,25 USD,167\n"
    feed = read_feed(_write(tmp_path, "merchant.csv", text))
    assert feed.format == "merchant"
    belt = _listed(feed)["B-1"]
    assert belt.images == (str(tmp_path / "b.png"),)
    assert belt.item.price == "25 USD"
    assert belt.item.article_type is None  # a numeric Google category alone gives nothing


# -- Shopify -----------------------------------------------------------------------------------

SHOPIFY_HEADER = (
    "Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,Published,"
    "Option1 Name,Option1 Value,Option2 Name,Option2 Value,Option3 Name,Option3 Value,"
    "Variant SKU,Variant Inventory Qty,Variant Inventory Policy,Variant Price,"
    "Variant Compare At Price,Image Src,Image Position,Variant Image,Gift Card,"
    "Google Shopping / Gender,Google Shopping / Age Group,Status\n"
)
CDN = "https://cdn.shopify.com/s/files/1/"
SHOPIFY = SHOPIFY_HEADER + (
    # A tee in two colours x two sizes, with product images and two variant images.
    f'tee,Classic Tee,"<p>Soft.</p>\n<p>Cotton.</p>",Acme,'
    "Apparel & Accessories > Clothing > Shirts & Tops,T-Shirts,summer,true,"
    "Size,S,Color,Red,,,TEE-S-R,0,deny,25.00,30.00,"
    f"{CDN}tee-front.jpg,1,{CDN}tee-red.jpg,false,male,adult,active\n"
    "tee,,,,,,,,,M,,Red,,,TEE-M-R,4,deny,22.00,30.00,,,,,,,\n"
    f"tee,,,,,,,,,S,,Blue,,,TEE-S-B,0,deny,25.00,,,,{CDN}tee-blue.jpg,,,,\n"
    "tee,,,,,,,,,M,,Blue,,,TEE-M-B,0,deny,25.00,20.00,,,,,,,\n"
    f"tee,,,,,,,,,,,,,,,,,,,{CDN}tee-back.jpg,3,,,,,\n"
    f"tee,,,,,,,,,,,,,,,,,,,{CDN}tee-red.jpg,2,,,,,\n"
    f"tee,,,,,,,,,,,,,,,,,,,{CDN}tee-blue.jpg,4,,,,,\n"
    "\n"
    # No colour option, stock not tracked, gender from the tags.
    "cap,Canvas Cap,,Hatters,Apparel & Accessories > Clothing Accessories > Hats,,"
    '"Womens, sale",true,Title,Default Title,,,,,CAP-1,,deny,15,,'
    "caps/cap.jpg,1,,false,,,active\n"
    # A draft product: read, but not available.
    f"scarf,Silk Scarf,,Acme,,Scarves,kids,true,Title,Default Title,,,,,SC-1,5,deny,40,,"
    f"{CDN}scarf.jpg,1,,false,,,draft\n"
    # A gift card: skipped silently.
    f"gift,Gift Card,,Acme,,Gift Cards,,true,Denominations,$25,,,,,,,deny,25,,"
    f"{CDN}gift.jpg,1,,true,,,active\n"
    # No image at all: one problem row.
    "belt,Leather Belt,,Acme,,Belts,men,true,Title,Default Title,,,,,BELT-1,2,deny,35,,"
    ",,,false,,,active\n"
    # Sold out, but the policy lets it sell on.
    f"sock,Wool Socks,,Acme,,Socks,,false,Colour,Grey,,,,,SOCK-1,0,continue,9,,"
    f"{CDN}sock.jpg,1,,false,,,active\n"
)


def test_shopify_export(tmp_path: Path) -> None:
    feed = read_feed(
        _write(tmp_path, "products_export.csv", SHOPIFY), shop_url="https://acme.shop/"
    )
    assert feed.format == "shopify"
    listed = _listed(feed)
    assert list(listed) == ["tee:Red", "tee:Blue", "cap", "scarf", "sock:Grey"]

    red = listed["tee:Red"]
    assert red.images == (CDN + "tee-red.jpg", CDN + "tee-front.jpg", CDN + "tee-back.jpg")
    assert red.item.name == "Classic Tee"
    assert red.item.group_id == "tee" and red.item.brand == "Acme"
    assert red.item.article_type == "T-Shirts"
    assert (red.item.master_category, red.item.sub_category) == (
        "Apparel & Accessories",
        "Clothing",
    )
    assert red.item.base_colour == "Red"
    assert red.item.gender == "Men"
    assert red.item.price == "22.00 (was 30.00)"  # the lowest variant price
    assert red.item.available is True  # size M has 4 in stock
    assert red.item.url == "https://acme.shop/products/tee"

    blue = listed["tee:Blue"]
    assert blue.images == (CDN + "tee-blue.jpg", CDN + "tee-front.jpg", CDN + "tee-back.jpg")
    assert blue.item.price == "25.00"  # compare-at 20.00 is below: no sale
    assert blue.item.available is False  # both sizes at 0, policy deny

    cap = listed["cap"].item
    assert listed["cap"].images == (str(tmp_path / "caps" / "cap.jpg"),)
    assert cap.group_id == "cap" and cap.base_colour is None
    assert cap.article_type == "Hats" and cap.sub_category == "Clothing Accessories"
    assert cap.gender == "Women"
    assert cap.price == "15"
    assert cap.available is True  # inventory not tracked

    scarf = listed["scarf"].item
    assert scarf.available is False and scarf.gender == "Kids"
    assert listed["sock:Grey"].item.available is False  # Published false

    assert _problems(feed) == [("line 14", "Handle belt: no image")]
    lines = {row.listed.item.id: row.where for row in feed.rows if row.listed}
    assert lines == {
        "tee:Red": "line 2",
        "tee:Blue": "line 5",
        "cap": "line 11",
        "scarf": "line 12",
        "sock:Grey": "line 15",
    }


def test_shopify_without_shop_url_has_no_links(tmp_path: Path) -> None:
    feed = read_feed(_write(tmp_path, "products_export.csv", SHOPIFY), "shopify")
    assert {listed.item.url for listed in _listed(feed).values()} == {None}


def test_shopify_colour_falls_back_on_google_shopping_color(tmp_path: Path) -> None:
    text = (
        "Handle,Title,Option1 Name,Option1 Value,Variant Price,Image Src,"
        "Google Shopping / Color,Google Shopping / Age Group,Google Shopping / Gender\n"
        "bag,Tote,Size,One,60,https://cdn.example.com/bag.jpg,dark green/black,kids,female\n"
    )
    feed = read_feed(_write(tmp_path, "shop.csv", text))
    bag = _listed(feed)["bag"].item
    assert (bag.base_colour, bag.gender, bag.price) == ("Dark Green", "Girls", "60")


def test_shopify_colour_without_an_image_of_its_own(tmp_path: Path) -> None:
    text = (
        "Handle,Title,Option1 Name,Option1 Value,Variant Price,Image Src,Image Position,"
        "Variant Image\n"
        f"mug,Mug,Colour,White,12,{CDN}mug-white.jpg,1,{CDN}mug-white.jpg\n"
        f"mug,,,Black,12,{CDN}mug-black.jpg,2,{CDN}mug-black.jpg\n"
        "mug,,,Green,12,,,\n"
        "mug,,,,,,,\n"
    )
    feed = read_feed(_write(tmp_path, "shop.csv", text))
    assert {key: listed.images for key, listed in _listed(feed).items()} == {
        "mug:White": (CDN + "mug-white.jpg",),
        "mug:Black": (CDN + "mug-black.jpg",),
    }
    assert _problems(feed) == [
        ("line 4", "id mug:Green: no image of this colour (the others have their own)")
    ]


def test_shopify_tags_give_the_gender_google_shopping_leaves_out(tmp_path: Path) -> None:
    text = (
        "Handle,Title,Tags,Variant Price,Image Src,Google Shopping / Age Group\n"
        'hat,Sun Hat,"summer, Women\'s",30,https://cdn.example.com/hat.jpg,Adult\n'
        'bib,Bib,"baby, Boys",8,https://cdn.example.com/bib.jpg,\n'
        'tie,Tie,"menswear, formal",8,https://cdn.example.com/tie.jpg,\n'
    )
    feed = read_feed(_write(tmp_path, "shop.csv", text))
    genders = {item_id: listed.item.gender for item_id, listed in _listed(feed).items()}
    assert genders == {"hat": "Women", "bib": "Boys", "tie": None}  # whole words only


# -- any CSV/TSV -------------------------------------------------------------------------------

GENERIC = (
    "sku,title,color,picture,stock,category,Product URL\n"
    "A1,Denim Jacket,light blue,https://img.example.com/a1.jpg,3,Men > Outerwear > Jackets,"
    "https://example.com/a1\n"
    "A2,Chinos,Beige,img/a2.jpg,0,Trousers,javascript:alert(1)\n"
    ",No id,Red,https://img.example.com/x.jpg,1,,\n"
    "A4,No picture,Red,,1,,\n"
    "A1,Denim Jacket again,Blue,https://img.example.com/a1b.jpg,yes,,\n"
)


def test_generic_csv_guesses_its_columns(tmp_path: Path) -> None:
    feed = read_feed(_write(tmp_path, "shop.csv", GENERIC))
    assert feed.format == "csv"
    assert feed.columns == {
        "id": "sku",
        "title": "title",
        "image": "picture",
        "link": "Product URL",
        "colour": "color",
        "type": "category",
        "availability": "stock",
    }
    jacket = feed.rows[0].listed
    assert jacket is not None
    assert jacket.images == ("https://img.example.com/a1.jpg",)
    assert jacket.item.base_colour == "Light Blue"
    assert (jacket.item.master_category, jacket.item.sub_category) == ("Men", "Outerwear")
    assert jacket.item.article_type == "Jackets"
    assert jacket.item.url == "https://example.com/a1"
    assert jacket.item.available is True
    chinos = feed.rows[1].listed
    assert chinos is not None
    assert chinos.images == (str(tmp_path / "img" / "a2.jpg"),)
    assert chinos.item.available is False
    assert chinos.item.url is None  # not an http(s) link
    assert _problems(feed) == [("line 4", "missing id"), ("line 5", "id A4: missing image")]
    # The same id twice: both rows are kept, the ingest keeps the last.
    assert [row.listed.item.name for row in feed.rows if row.listed] == [
        "Denim Jacket",
        "Chinos",
        "Denim Jacket again",
    ]


def test_generic_csv_with_a_mapping(tmp_path: Path) -> None:
    text = "Code ; Label ; Main Photo ; Cost ; Sex\nX-1;Parka;x1.jpg;120 EUR;Female\n"
    path = _write(tmp_path, "export.csv", text)
    mapping = {"ID": " code", "name": "LABEL", "image": "main photo", "price": "Cost"}
    feed = read_feed(path, "csv", mapping)
    assert feed.columns == {
        "id": "Code",
        "title": "Label",
        "image": "Main Photo",
        "price": "Cost",
        "gender": "Sex",
    }
    parka = _listed(feed)["X-1"]
    assert parka.item.name == "Parka"
    assert parka.item.price == "120 EUR"
    assert parka.item.gender == "Women"
    assert parka.images == (str(tmp_path / "x1.jpg"),)


def test_generic_semicolon_csv_with_bom_and_sale_price(tmp_path: Path) -> None:
    text = (
        "\ufeffproduct_id;product_name;image_link;price;sale_price;brand;item_group_id;"
        "gender;age_group;additional_images\n"
        "K-1;Kids Hoodie;https://img.example.com/k1.jpg;30,00 EUR;24,00 EUR;Tiny;K;;kids;"
        '"https://img.example.com/k1b.jpg, more/k1c.jpg"\n'
    )
    feed = read_feed(_write(tmp_path, "kids.csv", text), "csv")
    hoodie = _listed(feed)["K-1"]
    assert hoodie.item.price == "24,00 EUR (was 30,00 EUR)"
    assert (hoodie.item.brand, hoodie.item.group_id, hoodie.item.gender) == ("Tiny", "K", "Kids")
    assert hoodie.images == (
        "https://img.example.com/k1.jpg",
        "https://img.example.com/k1b.jpg",
        str(tmp_path / "more" / "k1c.jpg"),
    )


def test_generic_tsv_line_numbers_count_quoted_newlines(tmp_path: Path) -> None:
    text = (
        'id\tname\timage\tnotes\n1\tA\ta.jpg\t"two\nlines"\n\n2\tB\t\tx\n3\tC\tc.jpg\tx\tsurplus\n'
    )
    feed = read_feed(_write(tmp_path, "list.tsv", text))
    assert feed.rows[0].where == "line 2" and feed.rows[0].listed is not None
    assert _problems(feed) == [
        ("line 5", "id 2: missing image"),
        ("line 6", "5 fields but the header has 4 columns"),
    ]


def test_parse_mapping_inline_and_from_a_file() -> None:
    assert parse_mapping("title=name,image=image_url") == {"title": "name", "image": "image_url"}
    text = (
        "# columns of the supplier's export\n"
        "\n"
        "id = Article Number\n"
        "color = Colour, Main\n"
        "  link=Product Page  \n"
        "group=Parent SKU, brand=Maker\n"
    )
    assert parse_mapping(text) == {
        "id": "Article Number",
        "colour": "Colour, Main",
        "link": "Product Page",
        "group": "Parent SKU",
        "brand": "Maker",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title", "'title' is not 'field=column'"),
        ("=name", "is not 'field=column'"),
        ("title=", "is not 'field=column'"),
        ("title=a,name=b", "title is mapped twice"),
        ("colour_name=x", "unknown field 'colour_name'; known fields: id, title, image"),
    ],
)
def test_parse_mapping_refuses_malformed_pairs(text: str, message: str) -> None:
    assert message in _one_line_error(parse_mapping, text)


def test_mapping_errors_name_the_column_or_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "shop.csv", "sku,title,picture\nA,B,c.jpg\n")
    message = _one_line_error(read_feed, path, "csv", {"title": "Product Name"})
    assert "mapping title=Product Name: no such column (columns: sku, title, picture)" in message
    message = _one_line_error(read_feed, path, "csv", {"size": "title"})
    assert "unknown field 'size'" in message and "availability" in message


def test_generic_csv_without_id_or_image_column_says_to_map_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "shop.csv", "Article,Label,picture\nA,B,c.jpg\n")
    assert "map one with --map id=COLUMN" in _one_line_error(read_feed, path)
    assert _listed(read_feed(path, mapping=parse_mapping("id=Article")))["A"].item.name == "Item A"
    mapping = parse_mapping("id=Article,title=Label")
    assert _listed(read_feed(path, mapping=mapping))["A"].item.name == "B"
    path = _write(tmp_path, "shop.csv", "sku,title\nA,B\n")
    assert "no image column found; map one with --map image=COLUMN" in _one_line_error(
        read_feed, path
    )


# -- Fashion Product Images --------------------------------------------------------------------


def test_fashion_styles_wraps_read_styles(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "15970.jpg").write_bytes(b"jpeg")
    text = (
        "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,"
        "productDisplayName\n"
        "15970,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Shirt\n"
        "39386,Men,Apparel,Bottomwear,Jeans,Blue,Summer,2012,Casual,Peter England Jeans\n"
    )
    path = _write(tmp_path, "styles.csv", text)
    assert detect_format(path) == "fashion"
    feed = read_feed(path)
    assert feed.format == "fashion"
    shirt = feed.rows[0].listed
    assert shirt is not None and feed.rows[0].where == "line 2"
    assert shirt.item.image_path == ""
    assert shirt.images == (str(tmp_path / "images" / "15970.jpg"),)
    assert (shirt.item.article_type, shirt.item.year) == ("Shirts", 2011)
    assert _problems(feed) == [("line 3", "no image for id 39386")]
    elsewhere = tmp_path / "pictures"
    elsewhere.mkdir()
    (elsewhere / "39386.png").write_bytes(b"png")
    other = read_feed(path, "fashion", images_dir=elsewhere)
    assert [row.listed.item.id for row in other.rows if row.listed] == ["39386"]


# -- detection and unreadable feeds ------------------------------------------------------------


def test_detect_format(tmp_path: Path) -> None:
    cases = {
        "rss.xml": "\n  " + RSS,
        "shopify.csv": SHOPIFY,
        "merchant.tsv": MERCHANT_TSV,
        "generic.csv": GENERIC,
        "styles.csv": "id,gender,articleType\n1,Men,Shirts\n",
    }
    found = {name: detect_format(_write(tmp_path, name, text)) for name, text in cases.items()}
    assert found == {
        "rss.xml": "merchant",
        "shopify.csv": "shopify",
        "merchant.tsv": "merchant",
        "generic.csv": "csv",
        "styles.csv": "fashion",
    }
    assert set(found.values()) < set(FORMATS)


def test_a_doctype_is_refused(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?>\n<!-- a comment first -->\n'
        '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        "<rss><channel><item><title>&b;</title></item></channel></rss>\n"
    )
    message = _one_line_error(read_feed, _write(tmp_path, "bomb.xml", bomb))
    assert "DOCTYPE or ENTITY declaration is refused" in message


def test_merchant_format_forced_on_a_generic_csv_needs_its_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "shop.csv", GENERIC)
    assert "no 'id' column for a Merchant feed" in _one_line_error(read_feed, path, "merchant")


def test_unreadable_feeds_raise_one_line_errors(tmp_path: Path) -> None:
    missing = _one_line_error(read_feed, tmp_path / "nope.xml")
    assert missing == f"feed file not found: {tmp_path / 'nope.xml'}"
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sku,title,picture\nA,Caf\xe9,a.jpg\n".encode("latin-1"))
    assert "is not UTF-8 text" in _one_line_error(read_feed, latin)
    assert "is not UTF-8 text" in _one_line_error(detect_format, latin)
    xml = _write(tmp_path, "broken.xml", "<rss><channel><item></channel></rss>")
    assert "malformed XML (mismatched tag: line 1" in _one_line_error(read_feed, xml)
    other = _write(tmp_path, "other.xml", "<catalog><product/></catalog>")
    assert "not a Merchant RSS or Atom feed (root element <catalog>)" in _one_line_error(
        read_feed, other
    )
    path = _write(tmp_path, "shop.csv", GENERIC)
    assert "unknown feed format 'json'; known: auto, merchant" in _one_line_error(
        read_feed, path, "json"
    )
    assert "takes no column mapping" in _one_line_error(
        read_feed, _write(tmp_path, "f.xml", RSS), mapping={"id": "sku"}
    )
    assert "is empty" in _one_line_error(read_feed, _write(tmp_path, "empty.csv", " \n\n"))
    assert "no 'Handle' column" in _one_line_error(read_feed, path, "shopify")


def test_feed_rows_are_frozen(tmp_path: Path) -> None:
    row = read_feed(_write(tmp_path, "feed.xml", RSS)).rows[0]
    assert isinstance(row, FeedRow)
    with pytest.raises(AttributeError):
        row.where = "line 1"  # type: ignore[misc]
