"""What the bot says to shoppers, in every language it speaks: message texts, button labels
and album captions (no I/O here; the buttons themselves: :mod:`.buttons`).

All shopper-facing texts live here, one :class:`Texts` per language; a shopper gets the one of
their Telegram app's language (``language_code``), English otherwise. Catalog data (names,
types, colours) is shown as the shop wrote it; what the trained model saw is said in the
shopper's language (:attr:`Texts.words`). Admins' replies (:mod:`.admin`) are English.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from storage.models import CatalogItem


@dataclass(frozen=True)
class Texts:
    help: str
    too_large: str
    unsupported_file: str
    image_rejected: str | None
    """Said for a photo that cannot be read; None: the decoder's own (English) reason."""
    catalog_empty: str
    no_matches: str
    no_more: str
    nothing_matches_filters: str
    no_other_colours: str
    search_expired: str
    item_gone: str
    one_moment: str
    failed: str
    not_admin: str
    results_header: str
    colours_hint: str
    looks_like: str
    look: str
    """What the model saw: ``{kind}`` and ``{colour}``, the model's labels in :attr:`words`."""
    look_colour: str
    """What the model saw when it is only sure of the colour."""
    not_close: str
    filtered_by: str
    not_colour: str
    under_price: str
    view_in_shop: str
    more_like_this: str
    same_colour: str
    other_colours: str
    only_type: str
    men: str
    women: str
    kids: str
    cheaper: str
    clear_filters: str
    thanks_up: str
    thanks_down: str
    vote_changed: str
    command_help: str
    command_start: str
    megabytes: str
    kilobytes: str
    over_download_limit: str
    """The size of a photo too large for the Bot API to hand over (over 20 MB)."""
    decimal_mark: str = "."
    thousands_mark: str = ","
    words: Mapping[str, str] = field(default_factory=dict)
    """The trained model's labels (garment types, colours) in this language; a label it lacks
    is said lower-cased, as the model has it."""

    def look_of(self, kind: str | None, colour: str | None) -> str | None:
        """What the model saw, in words ("navy blue jeans"); None when it is sure of nothing."""
        kind, colour = self._word(kind), self._word(colour)
        if kind and colour:
            return self.look.format(kind=kind, colour=colour)
        if colour:
            return self.look_colour.format(colour=colour)
        return kind

    def _word(self, label: str | None) -> str | None:
        return None if label is None else self.words.get(label, label.lower())

    def size(self, size: int | None) -> str:
        """A file size, in this language's units; None: one the Bot API would not hand over."""
        if size is None:
            return self.over_download_limit
        if size >= 1024 * 1024:
            return f"{self._number(f'{size / (1024 * 1024):.1f}')} {self.megabytes}"
        return f"{size // 1024} {self.kilobytes}"

    def price(self, value: float) -> str:
        """A price limit as a shopper reads it: "14.99", "1,234,567", never "1.2e+06"."""
        return self._number(f"{value:,.2f}".removesuffix(".00"))

    def _number(self, text: str) -> str:
        """``text`` as Python writes numbers ("1,234.5") in this language's marks."""
        marks = {",": self.thousands_mark, ".": self.decimal_mark}
        return "".join(marks.get(char, char) for char in text)

    def gender(self, name: str) -> str:
        """A gender filter's name (:data:`bot.core.filters.GENDERS`) in this language."""
        return {"Men": self.men, "Women": self.women, "Kids": self.kids}[name]


ENGLISH = Texts(
    help=(
        "👗 Send me a photo of a piece of clothing (or anything whose look you like) and I'll "
        "show you the five most similar items from our shop.\n"
        "Tap a number under the results to search from that item, 🛒 to open it in the shop, "
        "or “More like this” for the next five; the buttons below narrow the results by "
        "colour, type, gender or price. A photo or an image file (JPEG, PNG, WebP) both work."
    ),
    too_large="That image is too large for me ({size}). Please send one under {limit}.",
    unsupported_file=(
        "I can't read that kind of file. Please send a photo, or an image file (JPEG, PNG or WebP)."
    ),
    image_rejected=None,
    catalog_empty=(
        "The shop's catalog isn't loaded yet, so I have nothing to compare with. "
        "Please try again later."
    ),
    no_matches="I couldn't find anything similar in the catalog.",
    no_more="That's everything similar I have for this search.",
    nothing_matches_filters=(
        "Nothing in the catalog fits that. The buttons above still work, or send another photo."
    ),
    no_other_colours="That item has no other colours in stock right now.",
    search_expired=(
        "This search has expired (the catalog was updated). Please send the photo again."
    ),
    item_gone="That item is no longer in the catalog. Please send a photo to search again.",
    one_moment=(
        "One moment, please: that's a lot of searches at once. Send your next photo in about "
        "{seconds} s."
    ),
    failed="Sorry, something went wrong on my side. Please try again in a moment.",
    not_admin="Sorry, that command is only for the shop's admins.",
    results_header="Tap a number to see items like it, or ask for more.",
    colours_hint="🎨 and a number: the same item in its other colours.",
    looks_like="Looks like: {what}",
    look="{colour} {kind}",
    look_colour="{colour}",
    not_close="Nothing in our catalog looks very close — here are the nearest.",
    filtered_by="Showing only: {filters}",
    not_colour="not {colour}",
    under_price="under {price}",
    view_in_shop="View in shop",
    more_like_this="More like this",
    same_colour="Same colour: {colour}",
    other_colours="Other colours",
    only_type="Only {type}",
    men="Men",
    women="Women",
    kids="Kids",
    cheaper="Cheaper",
    clear_filters="✖ Clear filters",
    thanks_up="Thanks! Glad these fit.",
    thanks_down="Thanks, that helps us improve.",
    vote_changed="Thanks, your vote is updated.",
    command_help="How to search by photo",
    command_start="How to search by photo",
    megabytes="MB",
    kilobytes="KB",
    over_download_limit="over 20 MB",
)

RUSSIAN = Texts(
    help=(
        "👗 Пришлите фото одежды (или чего угодно, чей стиль вам нравится) — я покажу пять "
        "самых похожих товаров нашего магазина.\n"
        "Нажмите номер под результатами, чтобы искать похожее на этот товар, 🛒 — чтобы "
        "открыть его в магазине, или «Ещё похожие» — чтобы увидеть следующие пять; кнопки ниже "
        "сужают выбор по цвету, типу, полу и цене. Подойдёт фото или файл (JPEG, PNG, WebP)."
    ),
    too_large="Это изображение слишком большое ({size}). Пришлите, пожалуйста, меньше {limit}.",
    unsupported_file=(
        "Не могу прочитать такой файл. Пришлите фото или изображение (JPEG, PNG или WebP)."
    ),
    image_rejected=(
        "Не получается прочитать это изображение. Пришлите, пожалуйста, другое фото "
        "(JPEG, PNG или WebP)."
    ),
    catalog_empty=(
        "Каталог магазина ещё не загружен, мне не с чем сравнивать. Попробуйте чуть позже."
    ),
    no_matches="Не нашёл в каталоге ничего похожего.",
    no_more="Это всё похожее, что у меня есть для этого поиска.",
    nothing_matches_filters=(
        "В каталоге нет ничего подходящего. Кнопки выше по-прежнему работают, "
        "или пришлите другое фото."
    ),
    no_other_colours="Других цветов этого товара сейчас нет в наличии.",
    search_expired="Этот поиск устарел (каталог обновился). Пришлите фото ещё раз.",
    item_gone="Этого товара больше нет в каталоге. Пришлите фото, чтобы искать заново.",
    one_moment=(
        "Минутку: слишком много поисков сразу. Пришлите следующее фото примерно через {seconds} с."
    ),
    failed="Извините, у меня что-то пошло не так. Попробуйте ещё раз через минуту.",
    not_admin="Извините, эта команда только для администраторов магазина.",
    results_header="Нажмите номер, чтобы увидеть похожие товары, или попросите ещё.",
    colours_hint="🎨 и номер: тот же товар в других цветах.",
    looks_like="Похоже на: {what}",
    look="{kind}, цвет {colour}",
    look_colour="цвет {colour}",
    not_close="В нашем каталоге нет ничего очень похожего — вот самое близкое.",
    filtered_by="Показываю только: {filters}",
    not_colour="не {colour}",
    under_price="дешевле {price}",
    view_in_shop="Открыть в магазине",
    more_like_this="Ещё похожие",
    same_colour="Тот же цвет: {colour}",
    other_colours="Другие цвета",
    only_type="Только {type}",
    men="Мужское",
    women="Женское",
    kids="Детское",
    cheaper="Дешевле",
    clear_filters="✖ Сбросить фильтры",
    thanks_up="Спасибо! Рад, что подошло.",
    thanks_down="Спасибо, это поможет нам стать лучше.",
    vote_changed="Спасибо, ваша оценка обновлена.",
    command_help="Как искать по фото",
    command_start="Как искать по фото",
    megabytes="МБ",
    kilobytes="КБ",
    over_download_limit="больше 20 МБ",
    decimal_mark=",",
    thousands_mark="\u00a0",
    words={
        # garment types: what the photo looks like ("Похоже на: джинсы")
        "Accessory Gift Set": "подарочный набор аксессуаров",
        "Backpacks": "рюкзак",
        "Belts": "ремень",
        "Boxers": "боксёры",
        "Bra": "бюстгальтер",
        "Briefs": "трусы",
        "Capris": "капри",
        "Caps": "кепка",
        "Casual Shoes": "повседневная обувь",
        "Churidar": "чуридар",
        "Clutches": "клатч",
        "Cufflinks": "запонки",
        "Deodorant": "дезодорант",
        "Dresses": "платье",
        "Duffel Bag": "дорожная сумка",
        "Dupatta": "дупатта",
        "Flats": "балетки",
        "Flip Flops": "шлёпанцы",
        "Footballs": "футбольный мяч",
        "Formal Shoes": "классическая обувь",
        "Fragrance Gift Set": "парфюмерный набор",
        "Free Gifts": "подарок",
        "Gloves": "перчатки",
        "Handbags": "сумка",
        "Hat": "шляпа",
        "Headband": "повязка на голову",
        "Heels": "туфли на каблуке",
        "Innerwear Vests": "майка",
        "Jackets": "куртка",
        "Jeans": "джинсы",
        "Kurta Sets": "комплект с куртой",
        "Kurtas": "курта",
        "Kurtis": "курти",
        "Laptop Bag": "сумка для ноутбука",
        "Leggings": "леггинсы",
        "Lounge Pants": "домашние брюки",
        "Lounge Shorts": "домашние шорты",
        "Messenger Bag": "сумка-мессенджер",
        "Mobile Pouch": "чехол для телефона",
        "Mufflers": "шарф",
        "Perfume and Body Mist": "духи",
        "Sandals": "сандалии",
        "Sarees": "сари",
        "Scarves": "платок",
        "Shirts": "рубашка",
        "Shoe Accessories": "аксессуары для обуви",
        "Shorts": "шорты",
        "Skirts": "юбка",
        "Socks": "носки",
        "Sports Sandals": "спортивные сандалии",
        "Sports Shoes": "спортивная обувь",
        "Stockings": "чулки",
        "Stoles": "палантин",
        "Sunglasses": "солнцезащитные очки",
        "Sweaters": "свитер",
        "Sweatshirts": "толстовка",
        "Ties": "галстук",
        "Tights": "колготки",
        "Tops": "топ",
        "Track Pants": "спортивные брюки",
        "Tracksuits": "спортивный костюм",
        "Travel Accessory": "дорожный аксессуар",
        "Trousers": "брюки",
        "Trunk": "трусы-шорты",
        "Tshirts": "футболка",
        "Tunics": "туника",
        "Umbrellas": "зонт",
        "Waist Pouch": "поясная сумка",
        "Waistcoat": "жилет",
        "Wallets": "кошелёк",
        "Watches": "часы",
        # colours, after "цвет" ("цвет тёмно-синий")
        "Beige": "бежевый",
        "Black": "чёрный",
        "Blue": "синий",
        "Bronze": "бронзовый",
        "Brown": "коричневый",
        "Burgundy": "бордовый",
        "Charcoal": "тёмно-серый",
        "Coffee Brown": "кофейный",
        "Copper": "медный",
        "Cream": "кремовый",
        "Gold": "золотой",
        "Green": "зелёный",
        "Grey": "серый",
        "Grey Melange": "серый меланж",
        "Khaki": "хаки",
        "Lavender": "лавандовый",
        "Magenta": "пурпурный",
        "Maroon": "тёмно-бордовый",
        "Metallic": "металлик",
        "Multi": "разноцветный",
        "Mustard": "горчичный",
        "Navy Blue": "тёмно-синий",
        "Nude": "телесный",
        "Off White": "молочный",
        "Olive": "оливковый",
        "Orange": "оранжевый",
        "Peach": "персиковый",
        "Pink": "розовый",
        "Purple": "фиолетовый",
        "Red": "красный",
        "Rust": "терракотовый",
        "Sea Green": "морской волны",
        "Silver": "серебристый",
        "Steel": "стальной",
        "Tan": "рыжевато-коричневый",
        "Taupe": "серо-коричневый",
        "Teal": "сине-зелёный",
        "Turquoise Blue": "бирюзовый",
        "White": "белый",
        "Yellow": "жёлтый",
    },
)

LANGUAGES: dict[str, Texts] = {"en": ENGLISH, "ru": RUSSIAN}
"""Telegram language code (ISO 639-1) → texts; the first is the default."""


def texts_for(language_code: str | None) -> Texts:
    """The texts for a Telegram ``language_code`` ("ru", "ru-RU", "pt-br"), English when the
    bot does not speak it."""
    primary = (language_code or "").split("-")[0].lower()
    return LANGUAGES.get(primary, ENGLISH)


def caption(position: int, item: CatalogItem, texts: Texts = ENGLISH) -> str:
    """An album caption (HTML): name, article type, colour, and price/link when known."""
    lines = [f"<b>{position}. {html.escape(item.name)}</b>"]
    details = [
        value for value in (item.brand, item.article_type, item.base_colour, item.gender) if value
    ]
    if details:
        lines.append(html.escape(" · ".join(details)))
    shop = []
    if item.price:
        shop.append(html.escape(item.price))
    if link := shop_link(item.url):
        shop.append(f'<a href="{html.escape(link, quote=True)}">{texts.view_in_shop}</a>')
    if shop:
        lines.append(" · ".join(shop))
    return "\n".join(lines)[:1024]


def shop_link(url: str | None) -> str | None:
    """``url`` when it is a web link Telegram takes (http(s) with a host, no whitespace), for
    a caption and a 🛒 button alike: one bad URL would make Telegram refuse the keyboard."""
    if not url or any(character.isspace() for character in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and host else None


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"
