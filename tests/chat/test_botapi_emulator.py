"""The Bot API emulator must work with an unmodified python-telegram-bot, or e2e tests lie."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.support.botapi import MAX_GETFILE_BYTES, ApiCall, BotAPIEmulator

TOKEN = "123456:TEST-TOKEN"
CHAT = 42


def image_bytes(color: str, size: tuple[int, int] = (640, 480), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def rejected(description: str) -> AbstractContextManager[pytest.ExceptionInfo[BadRequest]]:
    """Expect a 400; PTB drops "Bad Request: " and ``capitalize()``s the rest of the text."""
    return pytest.raises(BadRequest, match=f"(?i){re.escape(description)}")


@pytest.fixture
def emu() -> Iterator[BotAPIEmulator]:
    with BotAPIEmulator(TOKEN) as emulator:
        yield emulator


@asynccontextmanager
async def running_app(emu: BotAPIEmulator, *handlers: BaseHandler) -> AsyncIterator[Application]:
    """A polling Application in this event loop, shut down cleanly afterwards."""
    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(emu.base_url)
        .base_file_url(emu.base_file_url)
        .build()
    )
    app.add_handlers(handlers)
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


@asynccontextmanager
async def plain_bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    """A bare Bot for checking single API calls; the chat is made known first."""
    emu.user_sends_text(CHAT, "hi")
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as bot:
        yield bot


async def greet(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("<b>Hi!</b> Send a photo", parse_mode=ParseMode.HTML)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text(f"echo: {update.effective_message.text}")


async def album(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    await context.bot.send_chat_action(message.chat_id, "upload_photo")
    colors = ("red", "green", "blue")
    await message.reply_media_group(
        [InputMediaPhoto(image_bytes(c), caption=f"item {i}") for i, c in enumerate(colors)]
    )
    buttons = [
        InlineKeyboardButton("More", callback_data="more"),
        InlineKeyboardButton("Stop", callback_data="stop"),
    ]
    await message.reply_text("Like them?", reply_markup=InlineKeyboardMarkup([buttons]))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer("noted")
    await query.edit_message_text(f"You chose {query.data}")


async def photo_size(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    photo_file = await update.effective_message.photo[-1].get_file()
    data = await photo_file.download_as_bytearray()
    await update.effective_message.reply_text(f"{len(data)} bytes")


async def test_command_and_text_round_trip(emu: BotAPIEmulator) -> None:
    async with running_app(
        emu,
        CommandHandler("start", greet),
        MessageHandler(filters.TEXT & ~filters.COMMAND, echo),
    ):
        first = emu.user_sends_text(CHAT, "/start")
        call = await emu.wait_for_call_async("sendMessage", timeout=5)
        assert call.ok
        assert call.params["parse_mode"] == "HTML"
        assert call.result["text"] == "Hi! Send a photo"
        assert call.result["entities"] == [{"type": "bold", "offset": 0, "length": 3}]

        since = emu.mark()
        emu.user_sends_text(CHAT, "hello")
        call = await emu.wait_for_call_async("sendMessage", since=since, timeout=5)
        assert call.result["text"] == "echo: hello"

    ids = [m["message_id"] for m in emu.messages_to(CHAT)]
    assert ids == [first["message_id"] + 1, first["message_id"] + 3]


async def test_album_keyboard_and_button_press(emu: BotAPIEmulator) -> None:
    async with running_app(
        emu, MessageHandler(filters.PHOTO, album), CallbackQueryHandler(on_button)
    ):
        incoming = emu.user_sends_photo(CHAT, image_bytes("white", (1600, 1200)))
        assert [p["width"] for p in incoming["photo"]] == [90, 320, 800, 1280]

        await emu.wait_for_call_async("sendChatAction", timeout=5)
        group = await emu.wait_for_call_async("sendMediaGroup", timeout=5)
        assert group.ok, group.error
        assert len(group.files) == 3
        assert [m["caption"] for m in group.result] == ["item 0", "item 1", "item 2"]
        assert len({m["media_group_id"] for m in group.result}) == 1
        assert all(m["photo"][-1]["width"] == 640 for m in group.result)

        keyboard = await emu.wait_for_call_async(
            "sendMessage", lambda c: "reply_markup" in c.params, timeout=5
        )
        message_id = keyboard.result["message_id"]
        query_id = emu.user_presses_button(CHAT, message_id, "more")
        edit = await emu.wait_for_call_async("editMessageText", timeout=5)
        assert edit.result["text"] == "You chose more"
        await emu.wait_for_call_async("answerCallbackQuery", timeout=5)

    assert emu.answered_callback(query_id)
    assert emu.callback_answer(query_id)["text"] == "noted"
    edited = emu.messages_to(CHAT)[-1]
    assert edited["message_id"] == message_id
    assert "reply_markup" not in edited  # an edit without reply_markup drops the keyboard
    with pytest.raises(ValueError, match="no button"):
        emu.user_presses_button(CHAT, message_id, "more")


async def test_bot_downloads_user_photo(emu: BotAPIEmulator) -> None:
    async with running_app(emu, MessageHandler(filters.PHOTO, photo_size)):
        incoming = emu.user_sends_photo(CHAT, image_bytes("purple", (500, 300), "JPEG"))
        size = len(emu.file_bytes(incoming["photo"][-1]["file_id"]))
        await emu.wait_for_call_async(
            "sendMessage", lambda c: c.params["text"] == f"{size} bytes", timeout=5
        )
    download = emu.wait_for_call("downloadFile", timeout=0)
    assert download.params["file_path"].startswith("photos/")


async def test_returned_file_ids_can_be_resent(emu: BotAPIEmulator) -> None:
    async with plain_bot(emu) as bot:
        first = await bot.send_media_group(
            CHAT, [InputMediaPhoto(image_bytes("red")), InputMediaPhoto(image_bytes("blue"))]
        )
        ids = [m.photo[-1].file_id for m in first]
        since = emu.mark()
        again = await bot.send_media_group(CHAT, [InputMediaPhoto(i) for i in ids])
        assert [m.photo[-1].file_id for m in again] == ids
        assert emu.calls[since].files == {}
        single = await bot.send_photo(CHAT, ids[0], caption="again")
        assert single.photo[-1].file_unique_id == first[0].photo[-1].file_unique_id

        with rejected("wrong file identifier"):
            await bot.send_media_group(
                CHAT, [InputMediaPhoto(ids[0]), InputMediaPhoto("AgACAgNoSuchFile")]
            )
        url = "https://cdn.example/shirt.jpg"
        emu.url_fetcher = {url: image_bytes("gray", (300, 400), "JPEG")}.__getitem__
        by_url = await bot.send_media_group(CHAT, [InputMediaPhoto(url), InputMediaPhoto(ids[1])])
        assert (by_url[0].photo[-1].width, by_url[0].photo[-1].height) == (300, 400)
        with rejected("failed to get HTTP URL content"):
            await bot.send_photo(CHAT, "https://cdn.example/missing.jpg")

        document = emu.user_sends_document(CHAT, b"%PDF-1.4", "a.pdf", "application/pdf")
        with rejected("type document as photo"):
            await bot.send_photo(CHAT, document["document"]["file_id"])


async def test_telegram_limits_are_enforced(emu: BotAPIEmulator) -> None:
    async with plain_bot(emu) as bot:
        ok_button = InlineKeyboardButton("ok", callback_data="x" * 64)
        await bot.send_message(CHAT, "fits", reply_markup=InlineKeyboardMarkup([[ok_button]]))
        too_long = InlineKeyboardButton("no", callback_data="x" * 65)
        with rejected("BUTTON_DATA_INVALID"):
            await bot.send_message(CHAT, "x", reply_markup=InlineKeyboardMarkup([[too_long]]))
        with rejected("message is too long"):
            await bot.send_message(CHAT, "x" * 4097)
        # The limit applies to the text after entity parsing.
        await bot.send_message(CHAT, f"<b>{'x' * 4096}</b>", parse_mode=ParseMode.HTML)
        with rejected("caption is too long"):
            await bot.send_photo(CHAT, image_bytes("red"), caption="c" * 1025)
        with rejected("2-10 items"):
            await bot.send_media_group(CHAT, [InputMediaPhoto(image_bytes("red"))])
        with rejected("too many messages"):
            await bot.send_media_group(CHAT, [InputMediaPhoto(image_bytes("red"))] * 11)
        with rejected("chat not found"):
            await bot.send_message(999, "nobody here")
        with rejected("can't parse entities"):
            await bot.send_message(CHAT, "<b>unclosed", parse_mode=ParseMode.HTML)
        with rejected("Character '.' is reserved"):
            await bot.send_message(CHAT, "Hello.", parse_mode=ParseMode.MARKDOWN_V2)


async def test_url_buttons_are_checked_and_can_be_read_back(emu: BotAPIEmulator) -> None:
    async with plain_bot(emu) as bot:
        shop = InlineKeyboardButton("🛒 1", url="https://shop.example/p/1?c=red")
        sent = await bot.send_message(CHAT, "x", reply_markup=InlineKeyboardMarkup([[shop]]))
        assert emu.button_url(CHAT, sent.message_id, "🛒 1") == "https://shop.example/p/1?c=red"
        assert emu.button_url(CHAT, sent.message_id, "🛒 2") is None
        with pytest.raises(ValueError, match="no button"):
            emu.user_presses_button(CHAT, sent.message_id, "https://shop.example/p/1?c=red")
        for bad in ("javascript:alert(1)", "http://", "shop.example/p/1", "https://a b/"):
            button = InlineKeyboardButton("bad", url=bad)
            with rejected("BUTTON_URL_INVALID"):
                await bot.send_message(CHAT, "x", reply_markup=InlineKeyboardMarkup([[button]]))
        nine = [InlineKeyboardButton(str(n), callback_data=str(n)) for n in range(9)]
        with rejected("BUTTONS_TOO_MUCH"):
            await bot.send_message(CHAT, "x", reply_markup=InlineKeyboardMarkup([nine]))
        await bot.send_message(CHAT, "x", reply_markup=InlineKeyboardMarkup([nine[:8], nine[8:]]))


async def test_users_languages_and_command_menus_per_language(emu: BotAPIEmulator) -> None:
    emu.user_language(7, "ru")
    emu.user_language(8, None)
    emu.user_sends_text(7, "привет")
    emu.user_sends_text(8, "hi")
    emu.user_sends_text(9, "hello")
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as bot:
        updates = await bot.get_updates(timeout=0)
        assert [u.effective_user.language_code for u in updates] == ["ru", None, "en"]
        await bot.set_my_commands([("help", "How to search")])
        await bot.set_my_commands([("help", "Как искать")], language_code="ru")
        assert [c.description for c in await bot.get_my_commands(language_code="ru")] == [
            "Как искать"
        ]
        assert [c.description for c in await bot.get_my_commands()] == ["How to search"]
        assert await bot.get_my_commands(language_code="de") == ()
        with rejected("LANGUAGE_CODE_INVALID"):
            await bot.set_my_commands([("help", "x")], language_code="russian")
        await bot.delete_my_commands(language_code="ru")
        assert await bot.get_my_commands(language_code="ru") == ()
    assert emu.commands("") == [{"command": "help", "description": "How to search"}]


async def test_parse_modes_produce_telegram_entities(emu: BotAPIEmulator) -> None:
    async with plain_bot(emu) as bot:
        html = await bot.send_message(
            CHAT,
            '<b>Top</b> &amp; <a href="https://shop/1">jeans</a> 😀 <i>x</i>',
            parse_mode=ParseMode.HTML,
        )
        assert html.text == "Top & jeans 😀 x"
        assert [(e.type, e.offset, e.length) for e in html.entities] == [
            ("bold", 0, 3),
            ("text_link", 6, 5),
            ("italic", 15, 1),  # 😀 is 2 UTF-16 units
        ]
        assert html.entities[1].url == "https://shop/1"
        markdown = await bot.send_message(CHAT, r"*Size* M\.", parse_mode=ParseMode.MARKDOWN_V2)
        assert (markdown.text, markdown.entities[0].type) == ("Size M.", "bold")


async def test_edit_errors_match_telegram(emu: BotAPIEmulator) -> None:
    async with plain_bot(emu) as bot:
        sent = await bot.send_message(CHAT, "v1")
        with rejected("message to edit not found"):
            await bot.edit_message_text("v2", chat_id=CHAT, message_id=sent.message_id + 50)
        with rejected("message is not modified"):
            await bot.edit_message_text("v1", chat_id=CHAT, message_id=sent.message_id)
        edited = await bot.edit_message_text("v2", chat_id=CHAT, message_id=sent.message_id)
        assert edited.text == "v2"
        assert edited.edit_date is not None
        with rejected("can't be edited"):
            await bot.edit_message_text("v3", chat_id=CHAT, message_id=1)  # the user's "hi"
        emu.user_blocks_bot(CHAT)
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(CHAT, "still there?")


async def test_get_file_size_limit(emu: BotAPIEmulator) -> None:
    async with plain_bot(emu) as bot:
        small = emu.user_sends_document(CHAT, b"a,b\n1,2\n", "t.csv", "text/csv")
        small_file = await bot.get_file(small["document"]["file_id"])
        assert small_file.file_path.endswith(".csv")
        assert await small_file.download_as_bytearray() == b"a,b\n1,2\n"

        big = emu.user_sends_document(
            CHAT, bytes(MAX_GETFILE_BYTES + 1), "big.bin", "application/octet-stream"
        )
        with rejected("file is too big"):
            await bot.get_file(big["document"]["file_id"])
        with rejected("invalid file_id"):
            await bot.get_file("nope")


async def test_other_update_kinds_reach_the_bot(emu: BotAPIEmulator) -> None:
    emu.user_sends_sticker(CHAT)
    emu.user_sends_video(CHAT)
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as bot:
        sticker, video = await bot.get_updates(timeout=0)
    assert sticker.message.sticker.width == 512
    assert video.message.video.mime_type == "video/mp4"
    assert video.message.message_id == sticker.message.message_id + 1


def test_long_poll_wakes_up_on_new_update(emu: BotAPIEmulator) -> None:
    url = f"{emu.base_url}{TOKEN}/getUpdates"
    threading.Timer(0.3, emu.user_sends_text, (CHAT, "ping")).start()
    started = time.monotonic()
    updates = httpx.post(url, json={"timeout": 10}, timeout=15).json()["result"]
    assert time.monotonic() - started < 2
    assert [u["message"]["text"] for u in updates] == ["ping"]

    # Unconfirmed updates come again; confirming by offset drops them.
    again = httpx.post(url, json={"timeout": 0}).json()["result"]
    assert again == updates
    offset = updates[0]["update_id"] + 1
    started = time.monotonic()
    assert httpx.post(url, json={"offset": offset, "timeout": 0.5}).json()["result"] == []
    assert time.monotonic() - started >= 0.45

    # allowed_updates is remembered; updates of other kinds are never delivered.
    emu.user_sends_text(CHAT, "filtered out")
    assert httpx.post(url, json={"allowed_updates": ["callback_query"]}).json()["result"] == []
    emu.user_sends_text(CHAT, "still filtered")
    assert httpx.post(url, json={}).json()["result"] == []


def test_newer_poll_terminates_older_one(emu: BotAPIEmulator) -> None:
    url = f"{emu.base_url}{TOKEN}/getUpdates"
    replies: list[httpx.Response] = []
    first = threading.Thread(
        target=lambda: replies.append(httpx.post(url, data={"timeout": "5"}, timeout=10))
    )
    first.start()
    time.sleep(0.3)  # let the first poll start waiting
    httpx.post(url, data={"timeout": "0"})
    first.join(timeout=5)
    assert replies[0].status_code == 409
    assert "terminated by other getUpdates" in replies[0].json()["description"]


def test_all_request_encodings(emu: BotAPIEmulator) -> None:
    emu.user_sends_text(CHAT, "hi")
    api = f"{emu.base_url}{TOKEN}"
    keyboard = '{"inline_keyboard": [[{"text": "a", "callback_data": "1"}]]}'
    httpx.post(f"{api}/sendMessage", json={"chat_id": CHAT, "text": "json"})
    httpx.post(
        f"{api}/sendMessage", data={"chat_id": str(CHAT), "text": "7", "reply_markup": keyboard}
    )
    httpx.get(f"{api}/SENDMESSAGE", params={"chat_id": CHAT, "text": "query"})
    png = image_bytes("orange")  # PNG signature contains \r\n, a multipart round-trip check
    httpx.post(f"{api}/sendPhoto", data={"chat_id": str(CHAT)}, files={"photo": ("p.png", png)})

    calls = [c for c in emu.calls if c.method != "getUpdates"]
    assert [c.params["text"] for c in calls[:3]] == ["json", "7", "query"]
    assert all(c.params["chat_id"] == CHAT and c.ok for c in calls)
    assert calls[1].params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "1"
    assert calls[3].files["photo"] == png

    assert httpx.post(f"{emu.base_url}1:WRONG/getMe").status_code == 401
    assert httpx.post(f"{api}/noSuchMethod").status_code == 404


async def test_wrong_token_is_rejected_like_telegram(emu: BotAPIEmulator) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("654321:OTHER", base_url=emu.base_url):
            pass


def test_wait_for_call_timeout_explains_what_happened(emu: BotAPIEmulator) -> None:
    emu.user_sends_text(CHAT, "hi")
    httpx.post(f"{emu.base_url}{TOKEN}/sendMessage", json={"chat_id": 7, "text": "lost"})
    with pytest.raises(AssertionError) as failure:
        emu.wait_for_call("sendPhoto", timeout=0.1)
    report = str(failure.value)
    assert "never called getUpdates" in report
    assert "sendMessage" in report
    assert "chat not found" in report


def test_run_polling_in_another_process(emu: BotAPIEmulator, tmp_path: Path) -> None:
    script = tmp_path / "bot.py"
    script.write_text(
        "import sys\n"
        "from telegram.ext import ApplicationBuilder, MessageHandler, filters\n"
        "async def shout(update, context):\n"
        "    await update.message.reply_text(update.message.text.upper())\n"
        "token, base_url, base_file_url = sys.argv[1:]\n"
        "app = ApplicationBuilder().token(token).base_url(base_url)"
        ".base_file_url(base_file_url).build()\n"
        "app.add_handler(MessageHandler(filters.TEXT, shout))\n"
        "app.run_polling(poll_interval=0, timeout=1)\n"
    )
    bot = subprocess.Popen(
        [sys.executable, str(script), TOKEN, emu.base_url, emu.base_file_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        emu.user_sends_text(CHAT, "quiet")
        reply: ApiCall = emu.wait_for_call("sendMessage", timeout=10)
        assert reply.result["text"] == "QUIET"
    finally:
        bot.send_signal(signal.SIGINT)
        output = bot.communicate(timeout=10)[0].decode()
    assert bot.returncode == 0, output


# PTB 22's own RetryAfter constructor reads its deprecated int-valued retry_after.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_fail_next_answers_errors_without_performing(emu: BotAPIEmulator) -> None:
    async with plain_bot(emu) as bot:
        album = [InputMediaPhoto(image_bytes("red")), InputMediaPhoto(image_bytes("blue"))]
        emu.fail_next("SENDMEDIAGROUP", times=2)
        for _ in range(2):
            with pytest.raises(NetworkError, match="Internal Server Error"):
                await bot.send_media_group(CHAT, album)
        assert emu.messages_to(CHAT) == []  # nothing was sent
        assert len(await bot.send_media_group(CHAT, album)) == 2

        emu.fail_next("sendMessage", code=429, retry_after=7)
        with pytest.raises(RetryAfter, match="Retry in 7 seconds"):
            await bot.send_message(CHAT, "flood")
        emu.fail_next("getFile", code=502)
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.get_file("whatever")
        emu.fail_next("answerCallbackQuery", code=400, description="Bad Request: custom")
        with rejected("custom"):
            await bot.answer_callback_query("1")
        emu.fail_next("getUpdates", code=502)
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.get_updates(timeout=0)
        assert len(await bot.get_updates(timeout=0)) == 1  # the "hi" of plain_bot

        document = emu.user_sends_document(CHAT, b"data", "d.txt", "text/plain")
        telegram_file = await bot.get_file(document["document"]["file_id"])
        emu.fail_next("downloadFile", code=502)
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await telegram_file.download_as_bytearray()
        assert await telegram_file.download_as_bytearray() == b"data"

    failed = [(c.method, c.error) for c in emu.calls if not c.ok]
    assert failed == [
        ("sendMediaGroup", "Internal Server Error"),
        ("sendMediaGroup", "Internal Server Error"),
        ("sendMessage", "Too Many Requests: retry after 7"),
        ("getFile", "Bad Gateway"),
        ("answerCallbackQuery", "Bad Request: custom"),
        ("getUpdates", "Bad Gateway"),
        ("downloadFile", "Bad Gateway"),
    ]
    body = httpx.post(f"{emu.base_url}{TOKEN}/getMe").json()
    assert body["ok"]
    emu.fail_next("getMe", code=429, retry_after=3)
    assert httpx.post(f"{emu.base_url}{TOKEN}/getMe").json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    with pytest.raises(ValueError, match="needs a description"):
        emu.fail_next("sendMessage", code=400)
    with pytest.raises(ValueError, match="no Bot API method"):
        emu.fail_next("sendMesage")


def test_delay_next_answers_late_without_blocking_others(emu: BotAPIEmulator) -> None:
    emu.user_sends_text(CHAT, "hi")
    api = f"{emu.base_url}{TOKEN}"
    emu.delay_next("sendMessage", 1.0)
    replies: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: replies.append(
            httpx.post(f"{api}/sendMessage", json={"chat_id": CHAT, "text": "slow"}, timeout=5)
        )
    )
    started = time.monotonic()
    slow.start()
    call = emu.wait_for_call("sendMessage", timeout=2)  # recorded when performed...
    assert call.ok and not replies  # ...before the answer goes out
    assert httpx.post(f"{api}/getMe").json()["ok"]  # other requests are served meanwhile
    assert time.monotonic() - started < 0.9
    slow.join(timeout=5)
    assert time.monotonic() - started >= 1.0
    assert replies[0].json()["result"]["text"] == "slow"
    assert [m["text"] for m in emu.messages_to(CHAT)] == ["slow"]

    started = time.monotonic()
    httpx.post(f"{api}/sendMessage", json={"chat_id": CHAT, "text": "fast again"})
    assert time.monotonic() - started < 0.5


async def test_revoked_token_gets_401_and_ends_long_polls(emu: BotAPIEmulator) -> None:
    document = emu.user_sends_document(CHAT, b"data", "d.txt", "text/plain")
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as bot:
        telegram_file = await bot.get_file(document["document"]["file_id"])
        # Confirm the document's update, so that the next poll waits.
        offset = (await bot.get_updates(timeout=0))[-1].update_id + 1
        url = f"{emu.base_url}{TOKEN}/getUpdates"
        polls: list[httpx.Response] = []
        poll = threading.Thread(
            target=lambda: polls.append(
                httpx.post(url, json={"offset": offset, "timeout": 10}, timeout=15)
            )
        )
        poll.start()
        time.sleep(0.3)  # let the poll start waiting
        started = time.monotonic()
        emu.revoke_token()
        poll.join(timeout=5)
        assert time.monotonic() - started < 2
        assert polls[0].status_code == 401
        with pytest.raises(InvalidToken):
            await bot.get_me()
        with pytest.raises(InvalidToken):
            await telegram_file.download_as_bytearray()
    assert httpx.post(f"{emu.base_url}{TOKEN}/noSuchMethod").status_code == 401
    assert emu.calls[-1].method == "downloadFile"
    assert emu.calls[-1].error == "Unauthorized"


async def test_user_edits_their_message(emu: BotAPIEmulator) -> None:
    text = emu.user_sends_text(CHAT, "helo @test_bot")
    photo = emu.user_sends_photo(CHAT, image_bytes("red"), caption="old")
    emu.user_edits_message(CHAT, text["message_id"], text="hello @test_bot")
    emu.user_edits_message(CHAT, photo["message_id"], caption="new caption")
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        updates = await bot.get_updates(timeout=0)
    edited_text, edited_photo = (u.edited_message for u in updates[2:])
    assert edited_text.text == "hello @test_bot"
    assert edited_text.parse_entities() == {edited_text.entities[0]: "@test_bot"}
    assert edited_text.edit_date is not None
    assert edited_photo.caption == "new caption"
    assert edited_photo.photo[-1].file_id == photo["photo"][-1]["file_id"]
    assert updates[1].message.caption == "old"  # the original update is unchanged
    with pytest.raises(ValueError, match="no message"):
        emu.user_edits_message(CHAT, 99, text="x")
    with pytest.raises(ValueError, match="no text"):
        emu.user_edits_message(CHAT, photo["message_id"], text="x")


async def test_channel_posts_reach_the_bot(emu: BotAPIEmulator) -> None:
    channel = -1001234567890
    emu.channel_posts_text(channel, "New drop")
    emu.channel_posts_photo(channel, image_bytes("green"), caption="look")
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        text, photo = await bot.get_updates(timeout=0)
        assert text.channel_post.text == "New drop"
        assert text.channel_post.chat.type == "channel"
        assert text.channel_post.sender_chat.id == channel
        assert text.channel_post.from_user is None
        assert photo.channel_post.caption == "look"
        assert photo.channel_post.photo
        sent = await bot.send_message(channel, "bot post")
        assert sent.sender_chat.id == channel
        assert sent.message_id == 3
    assert "from" not in emu.calls[-1].result
    assert [m["text"] for m in emu.messages_to(channel)] == ["bot post"]
    with pytest.raises(ValueError, match="-100"):
        emu.channel_posts_text(-5, "not a channel id")


async def test_user_sends_album(emu: BotAPIEmulator) -> None:
    sent = emu.user_sends_album(CHAT, [image_bytes(c) for c in ("red", "blue")], caption="two")
    assert [m["message_id"] for m in sent] == [1, 2]
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        first, second = await bot.get_updates(timeout=0)
    assert first.message.media_group_id == second.message.media_group_id is not None
    assert (first.message.caption, second.message.caption) == ("two", None)
    assert first.message.photo and second.message.photo
    with pytest.raises(ValueError, match="2-10"):
        emu.user_sends_album(CHAT, [image_bytes("red")])


async def test_mentions_and_replies_to_bot_messages(emu: BotAPIEmulator) -> None:
    group = -100777
    emu.user_sends_text(group, "hi", user_id=5)
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        await bot.get_updates(offset=-1)
        bot_message = await bot.send_message(group, "Send me a photo")
        emu.user_sends_text(group, "😀 @test_bot, mail a@b.cd", user_id=5)
        emu.user_sends_text(
            group, "this one", user_id=5, reply_to_message_id=bot_message.message_id
        )
        emu.user_sends_photo(
            group,
            image_bytes("red"),
            user_id=5,
            caption="@test_bot here",
            reply_to_message_id=bot_message.message_id,
        )
        updates = await bot.get_updates(offset=-3)
    mention, reply, photo = (u.message for u in updates)
    assert [(e.type, e.offset, e.length) for e in mention.entities] == [("mention", 3, 9)]
    assert list(mention.parse_entities().values()) == ["@test_bot"]
    assert reply.reply_to_message.message_id == bot_message.message_id
    assert reply.reply_to_message.from_user.is_bot
    assert photo.reply_to_message.text == "Send me a photo"
    assert list(photo.parse_caption_entities().values()) == ["@test_bot"]
    with pytest.raises(ValueError, match="no message 99"):
        emu.user_sends_text(group, "x", user_id=5, reply_to_message_id=99)


async def test_push_raw_update(emu: BotAPIEmulator) -> None:
    update_id = emu.push_raw_update({"message": {"message_id": "x"}})
    reply = httpx.post(f"{emu.base_url}{TOKEN}/getUpdates", json={"timeout": 0}).json()
    assert reply["result"] == [{"update_id": update_id, "message": {"message_id": "x"}}]
    with pytest.raises(ValueError, match="without update_id"):
        emu.push_raw_update({"update_id": 5})


async def test_expired_and_unknown_callback_queries_are_rejected(emu: BotAPIEmulator) -> None:
    async with plain_bot(emu) as bot:
        button = InlineKeyboardButton("Go", callback_data="go")
        sent = await bot.send_message(CHAT, "?", reply_markup=InlineKeyboardMarkup([[button]]))
        fresh = emu.user_presses_button(CHAT, sent.message_id, "go")
        old = emu.user_presses_button(CHAT, sent.message_id, "go")
        emu.expire_callback_query(old)
        with rejected("query is too old and response timeout expired"):
            await bot.answer_callback_query(old)
        with rejected("query ID is invalid"):
            await bot.answer_callback_query("12345")
        assert await bot.answer_callback_query(fresh)
    assert not emu.answered_callback(old)
    with pytest.raises(KeyError):
        emu.expire_callback_query("12345")
