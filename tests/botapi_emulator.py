"""A local Telegram Bot API emulator for end-to-end tests.

Telegram is unreachable from the test machines, yet the bot should be tested exactly as it
runs in production: an unmodified python-telegram-bot ``Application`` doing long polling over
HTTP. ``BotAPIEmulator`` is a small HTTP server on 127.0.0.1 that speaks the real Bot API wire
protocol (JSON, form-urlencoded and multipart requests; ``{"ok": ..., "result": ...}`` replies
with real object shapes) and reproduces the Telegram behaviour that bots trip over: long
polling with offset confirmation, per-chat message ids, entity parsing for ``parse_mode``,
length limits, ``BUTTON_DATA_INVALID``, "message is not modified", file ids that can be reused,
``getFile`` with its 20 MB limit, and so on.

Point the bot at it with::

    ApplicationBuilder().token(emu.token).base_url(emu.base_url)
        .base_file_url(emu.base_file_url)

The test side (``user_sends_*``, ``wait_for_call`` ...) is synchronous and thread-safe, so it
works whether the bot runs in another process or in the test's own event loop (there use
``await wait_for_call_async(...)`` so the loop keeps serving the bot).

Only the standard library is used for HTTP; Pillow handles images, as Telegram's own servers
re-encode photos.
"""

from __future__ import annotations

import asyncio
import copy
import io
import itertools
import json
import re
import secrets
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from PIL import Image, ImageDraw, ImageOps

DEFAULT_TOKEN = "123456:TEST-TOKEN"

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_GETFILE_BYTES = 20 * 1024 * 1024
# Telegram keeps a photo as JPEG renditions: small thumbnails plus one capped at 1280 px.
PHOTO_THUMBNAIL_SIDES = (90, 320, 800)
PHOTO_MAX_SIDE = 1280
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
GETUPDATES_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)

# Form and multipart values arrive as strings; PTB JSON-encodes every non-string value, so
# these parameters are decoded back. Everything else (text, caption, ids...) stays a string.
_JSON_PARAMS = frozenset(
    {
        "chat_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "allow_sending_without_reply",
        "reply_parameters",
        "reply_markup",
        "entities",
        "caption_entities",
        "link_preview_options",
        "disable_web_page_preview",
        "disable_notification",
        "protect_content",
        "has_spoiler",
        "show_caption_above_media",
        "media",
        "offset",
        "limit",
        "timeout",
        "allowed_updates",
        "drop_pending_updates",
        "show_alert",
        "cache_time",
        "commands",
        "scope",
    }
)
_API_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)/?$")
_FILE_PATH = re.compile(r"^/file/bot(?P<token>[^/]+)/(?P<path>.+)$")


class ApiError(Exception):
    """A Bot API error reply: the HTTP status and Telegram's ``description``."""

    def __init__(self, description: str, code: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.code = code


@dataclass
class ApiCall:
    """One HTTP request the bot made, recorded once it was answered.

    ``params`` are decoded to JSON types whatever the encoding was; ``files`` holds the
    multipart file parts by field name. ``result`` is what the bot received on success,
    ``error`` the Telegram ``description`` on failure. File downloads are recorded with the
    pseudo-method ``downloadFile`` and ``params={"file_path": ...}``.
    """

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    time: float
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether Telegram would have answered ``"ok": true``."""
        return self.error is None


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_path: str
    # For photos: every PhotoSize of the photo this rendition belongs to, so any of its
    # file ids can be re-sent as the whole photo.
    photo: list[dict[str, Any]] | None = field(default=None, repr=False)


# --------------------------------------------------------------------------- text entities


def _utf16_len(text: str) -> int:
    """Telegram measures lengths and entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _entities_error(detail: str) -> ApiError:
    return ApiError(f"Bad Request: can't parse entities: {detail}")


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_TAG = re.compile(r"<(/?)([A-Za-z0-9-]*)([^<>]*)>")
_HTML_CHAR_REF = re.compile(r"&(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z]+);")
_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD2_MARKERS = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}


def _html_attr(attrs: str, name: str) -> str | None:
    match = re.search(rf"""{name}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", attrs)
    if match is None:
        return None
    return _html_unescape(next(g for g in match.groups() if g is not None))


def _html_unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref.startswith("#x"):
            return chr(int(ref[2:], 16))
        if ref.startswith("#"):
            return chr(int(ref[1:]))
        return _HTML_NAMED.get(ref, match.group(0))

    return _HTML_CHAR_REF.sub(replace, text)


def _parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML subset: only its tags, ``&lt; &gt; &amp; &quot;`` and numeric refs."""
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, dict[str, Any] | None]] = []
    i = 0
    while i < len(src):
        char = src[i]
        if char == "<":
            byte_offset = len(src[:i].encode())
            match = _HTML_TAG.match(src, i)
            if match is None:
                raise _entities_error(f"Unclosed start tag at byte offset {byte_offset}")
            closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
            i = match.end()
            if closing:
                if not stack:
                    raise _entities_error(f"Unexpected end tag at byte offset {byte_offset}")
                open_name, entity = stack.pop()
                if name != open_name:
                    raise _entities_error(
                        f"Unmatched end tag at byte offset {byte_offset}, expected "
                        f'"</{open_name}>", found "</{name}>"'
                    )
                if entity is not None and pos > entity["offset"]:
                    entity["length"] = pos - entity["offset"]
                    entities.append(entity)
                continue
            kind = _HTML_TAGS.get(name)
            if kind is None or (name == "span" and _html_attr(attrs, "class") != "tg-spoiler"):
                raise _entities_error(
                    f'Unsupported start tag "{name}" at byte offset {byte_offset}'
                )
            entity: dict[str, Any] | None = {"type": kind, "offset": pos}
            if name == "a":
                entity["url"] = _html_attr(attrs, "href") or ""
            elif name == "tg-emoji":
                entity["custom_emoji_id"] = _html_attr(attrs, "emoji-id") or ""
            elif name == "blockquote" and re.search(r"\bexpandable\b", attrs):
                entity["type"] = "expandable_blockquote"
            elif name == "code" and stack and stack[-1][0] == "pre":
                # <pre><code class="language-x"> is one pre entity with a language.
                language = (_html_attr(attrs, "class") or "").removeprefix("language-")
                pre_entity = stack[-1][1]
                if language and pre_entity is not None:
                    pre_entity["language"] = language
                entity = None
            stack.append((name, entity))
            continue
        if char == "&" and (ref := _HTML_CHAR_REF.match(src, i)):
            text = _html_unescape(ref.group(0))
            i = ref.end()
        else:
            text = char
            i += 1
        out.append(text)
        pos += _utf16_len(text)
    if stack:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


def _scan_until(src: str, start: int, end_marker: str) -> tuple[str, int] | None:
    """Text up to an unescaped ``end_marker`` (backslash escapes removed) and its index."""
    out: list[str] = []
    i = start
    while i < len(src):
        if src[i] == "\\" and i + 1 < len(src):
            out.append(src[i + 1])
            i += 2
        elif src.startswith(end_marker, i):
            return "".join(out), i
        else:
            out.append(src[i])
            i += 1
    return None


def _parse_markdown_v2(src: str) -> tuple[str, list[dict[str, Any]]]:
    """MarkdownV2, including its rule that reserved characters must be escaped."""
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    open_markers: dict[str, tuple[int, int]] = {}
    links: list[int] = []
    quote_start: int | None = None
    i = 0

    def emit(text: str) -> None:
        nonlocal pos
        out.append(text)
        pos += _utf16_len(text)

    def add(entity_type: str, start: int, **extra: Any) -> None:
        if pos > start:
            entities.append({"type": entity_type, "offset": start, "length": pos - start, **extra})

    def byte_offset(index: int) -> int:
        return len(src[:index].encode())

    while i < len(src):
        char = src[i]
        if char == "\\":
            if i + 1 < len(src) and 0 < ord(src[i + 1]) <= 126:
                emit(src[i + 1])
                i += 2
                continue
            raise _entities_error(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if char == "`":
            fence = "```" if src.startswith("```", i) else "`"
            scanned = _scan_until(src, i + len(fence), fence)
            if scanned is None:
                name = "Pre" if fence == "```" else "Code"
                raise _entities_error(
                    f"Can't find end of {name} entity at byte offset {byte_offset(i)}"
                )
            body, end = scanned
            start = pos
            if fence == "```":
                language, newline, rest = body.partition("\n")
                if newline and language and " " not in language:
                    body = rest
                    emit(body)
                    add("pre", start, language=language)
                else:
                    emit(body)
                    add("pre", start)
            else:
                emit(body)
                add("code", start)
            i = end + len(fence)
            continue
        marker = next((m for m in ("__", "||") if src.startswith(m, i)), None)
        if marker is None and char in "*_~":
            marker = char
        if marker is not None:
            if marker in open_markers:
                add(_MD2_MARKERS[marker], open_markers.pop(marker)[0])
            else:
                open_markers[marker] = (pos, i)
            i += len(marker)
            continue
        if char == "[":
            links.append(pos)
            i += 1
            continue
        if char == "]" and links:
            scanned = _scan_until(src, i + 2, ")") if src.startswith("(", i + 1) else None
            if scanned is None:
                raise _entities_error(f"Can't find end of a URL at byte offset {byte_offset(i)}")
            url, end = scanned
            add("text_link", links.pop(), url=url)
            i = end + 1
            continue
        if char == ">" and (i == 0 or src[i - 1] == "\n"):
            if quote_start is None:
                quote_start = pos
            i += 1
            continue
        if char in _MD2_RESERVED:
            raise _entities_error(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        if char == "\n" and quote_start is not None and not src.startswith(">", i + 1):
            add("blockquote", quote_start)
            quote_start = None
        emit(char)
        i += 1
    if quote_start is not None:
        add("blockquote", quote_start)
    if open_markers:
        marker, (_, index) = next(iter(open_markers.items()))
        name = _MD2_MARKERS[marker].capitalize()
        raise _entities_error(
            f"Can't find end of {name} entity at byte offset {byte_offset(index)}"
        )
    if links:
        raise _entities_error("Can't find end of TextUrl entity")
    return "".join(out), entities


def _parse_markdown(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: ``*bold* _italic_ `code` ```pre``` [text](url)``, no nesting."""
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(src):
        char = src[i]
        if char == "\\" and i + 1 < len(src) and src[i + 1] in "_*`[":
            text = src[i + 1]
            i += 2
        elif char in "*_`[":
            marker = "```" if src.startswith("```", i) else char
            closing = "]" if marker == "[" else marker
            end = src.find(closing, i + len(marker))
            if end < 0:
                raise _entities_error(
                    f"Can't find end of the entity starting at byte offset {len(src[:i].encode())}"
                )
            text = src[i + len(marker) : end]
            entity: dict[str, Any] = {
                "type": {"*": "bold", "_": "italic", "`": "code", "```": "pre", "[": "text_link"}[
                    marker
                ],
                "offset": pos,
            }
            i = end + len(closing)
            if marker == "[":
                if not src.startswith("(", i) or (url_end := src.find(")", i)) < 0:
                    raise _entities_error("Can't find end of the URL")
                entity["url"] = src[i + 1 : url_end]
                i = url_end + 1
            if text:
                entity["length"] = _utf16_len(text)
                entities.append(entity)
        else:
            text = char
            i += 1
        out.append(text)
        pos += _utf16_len(text)
    return "".join(out), entities


_PARSERS = {"html": _parse_html, "markdownv2": _parse_markdown_v2, "markdown": _parse_markdown}


def _format(
    text: Any, parse_mode: Any, entities: Any, *, limit: int, too_long: str
) -> tuple[str, list[dict[str, Any]]]:
    """Apply ``parse_mode`` (or explicit entities) and the length limit, like Telegram."""
    text = "" if text is None else str(text)
    if entities is not None:
        if not isinstance(entities, list) or not all(
            isinstance(e, dict)
            and isinstance(e.get("offset"), int)
            and isinstance(e.get("length"), int)
            and isinstance(e.get("type"), str)
            for e in entities
        ):
            raise ApiError("Bad Request: can't parse entities JSON object")
        parsed = (text, entities)
    elif parse_mode:
        parser = _PARSERS.get(str(parse_mode).lower())
        if parser is None:
            raise ApiError(f'Bad Request: unsupported parse_mode "{parse_mode}"')
        parsed = parser(text)
    else:
        parsed = (text, [])
    if _utf16_len(parsed[0]) > limit:
        raise ApiError(too_long)
    return parsed[0], sorted(parsed[1], key=lambda e: (e["offset"], -e.get("length", 0)))


def _command_entities(text: str) -> list[dict[str, Any]]:
    """Telegram marks a leading ``/command`` (with optional ``@bot``) as ``bot_command``."""
    match = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]+)?", text)
    return [{"type": "bot_command", "offset": 0, "length": len(match.group(0))}] if match else []


# --------------------------------------------------------------------------- validation


def _as_int(value: Any, error: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(error) from None


def _inline_markup(markup: Any) -> dict[str, Any] | None:
    """Validate ``reply_markup``; return what Telegram shows on the message (inline only)."""
    if markup is None or markup == "":
        return None
    if not isinstance(markup, dict):
        raise ApiError("Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return None  # reply keyboards, removals and force_reply are not part of the message
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError('Bad Request: field "inline_keyboard" must be an Array of Array')
    buttons = [button for row in rows for button in row]
    if len(buttons) > MAX_INLINE_BUTTONS:
        raise ApiError("Bad Request: reply markup is too long")
    for button in buttons:
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise ApiError(
                'Bad Request: can\'t parse inline keyboard button: Field "text" '
                "must be of type String"
            )
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode()) <= (
                MAX_CALLBACK_DATA_BYTES
            ):
                raise ApiError("Bad Request: BUTTON_DATA_INVALID")
        elif set(button) == {"text"}:
            raise ApiError(
                "Bad Request: can't parse inline keyboard button: Text buttons are "
                "unallowed in the inline keyboard"
            )
    if not buttons:
        return None
    return {"inline_keyboard": rows}


def _photo_renditions(data: bytes) -> list[tuple[int, int, bytes]]:
    """Re-encode an image as Telegram does: JPEG thumbnails plus one capped at 1280 px."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        raise ApiError("Bad Request: IMAGE_PROCESS_FAILED") from None
    width, height = image.size
    if width + height > 10000 or max(width, height) > 20 * min(width, height):
        raise ApiError("Bad Request: PHOTO_INVALID_DIMENSIONS")
    longest = max(width, height)
    sides = [side for side in PHOTO_THUMBNAIL_SIDES if side < longest]
    sides.append(min(longest, PHOTO_MAX_SIDE))
    renditions = []
    for side in sides:
        rendition = image.copy()
        rendition.thumbnail((side, side))
        buffer = io.BytesIO()
        rendition.save(buffer, "JPEG", quality=87)
        renditions.append((*rendition.size, buffer.getvalue()))
    return renditions


def _fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


# --------------------------------------------------------------------------- HTTP plumbing


def _read_body(request: BaseHTTPRequestHandler) -> bytes:
    if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while size := int(request.rfile.readline().split(b";")[0], 16):
            chunks.append(request.rfile.read(size))
            request.rfile.readline()
        request.rfile.readline()
        return b"".join(chunks)
    return request.rfile.read(int(request.headers.get("Content-Length") or 0))


def _decode(name: str, value: str) -> Any:
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _parse_request(request: BaseHTTPRequestHandler) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Parameters from the query string plus a JSON, form-urlencoded or multipart body."""
    query = urlsplit(request.path).query
    params: dict[str, Any] = {k: _decode(k, v) for k, v in parse_qsl(query, True)}
    files: dict[str, bytes] = {}
    body = _read_body(request)
    content_type = request.headers.get_content_type()
    if not body:
        return params, files
    if content_type == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError("Bad Request: can't parse JSON request body") from None
        if not isinstance(data, dict):
            raise ApiError("Bad Request: JSON request body must be an object")
        params.update(data)
    elif content_type == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
        params.update({k: _decode(k, v) for k, v in pairs})
    elif content_type == "multipart/form-data":
        header = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                files[name] = payload
            else:
                params[name] = _decode(name, payload.decode())
    else:
        raise ApiError(f"Bad Request: unsupported Content-Type {content_type}")
    return params, files


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: BotAPIEmulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "BotAPIEmulator/1.0"

    def do_GET(self) -> None:
        self.server.emulator._handle(self)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; ``BotAPIEmulator.calls`` records everything."""


# --------------------------------------------------------------------------- the emulator


class BotAPIEmulator:
    """Fake ``api.telegram.org`` for one bot token, plus the test-side controls.

    Updates are injected with ``user_sends_*`` / ``user_presses_button`` and delivered to the
    bot through ``getUpdates``; everything the bot requests is recorded in ``calls`` and can
    be awaited with ``wait_for_call``. Messages live in per-chat histories whose message ids
    are shared by user and bot messages, as in a private chat. A chat becomes known (so the
    bot may write to it, otherwise "chat not found") once the user sent something there.

    ``url_fetcher`` is how photos given by HTTP URL are downloaded (Telegram fetches them
    server-side); pass a function mapping URL to bytes when the tests have no network.
    All public methods are thread-safe.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "test_bot",
        url_fetcher: Callable[[str], bytes] = _fetch_url,
    ) -> None:
        self.token = token
        self.url_fetcher = url_fetcher
        bot_id, _, _ = token.partition(":")
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id) if bot_id.isdigit() else 1,
            "is_bot": True,
            "first_name": "Test Bot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._cond = threading.Condition(threading.RLock())
        self._calls: list[ApiCall] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._allowed_updates: set[str] | None = None
        self._poll_generation = 0
        self._chats: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._callback_answers: dict[str, dict[str, Any] | None] = {}
        self._commands: list[dict[str, Any]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._methods: dict[str, tuple[str, Callable[..., Any]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": lambda p, f: copy.deepcopy(self.bot_user),
                "logOut": lambda p, f: True,
                "close": lambda p, f: True,
                "deleteWebhook": self._api_delete_webhook,
                "getWebhookInfo": lambda p, f: {
                    "url": "",
                    "has_custom_certificate": False,
                    "pending_update_count": len(self._updates),
                },
                "setMyCommands": self._api_set_my_commands,
                "getMyCommands": lambda p, f: copy.deepcopy(self._commands),
                "deleteMyCommands": self._api_delete_my_commands,
                "getUpdates": self._api_get_updates,
                "sendMessage": self._api_send_message,
                "editMessageText": self._api_edit_message_text,
                "editMessageReplyMarkup": self._api_edit_message_reply_markup,
                "deleteMessage": self._api_delete_message,
                "sendChatAction": self._api_send_chat_action,
                "answerCallbackQuery": self._api_answer_callback_query,
                "sendPhoto": self._api_send_photo,
                "sendMediaGroup": self._api_send_media_group,
                "getFile": self._api_get_file,
            }.items()
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._stopping = False
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.emulator = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="BotAPIEmulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Release pending long polls and shut the server down (idempotent)."""
        if self._server is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> BotAPIEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """TCP port the emulator listens on (only once started)."""
        if self._server is None:
            raise RuntimeError("emulator is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder.base_url``; PTB appends ``<token>/<method>``."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder.base_file_url``; PTB appends ``<token>/<file_path>``."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ------------------------------------------------------------------ user actions

    def user_sends_text(self, chat_id: int, text: str, user_id: int | None = None) -> dict:
        """Deliver a text message; a leading ``/command`` gets a ``bot_command`` entity."""
        if not text or _utf16_len(text) > MAX_TEXT_LENGTH:
            raise ValueError("Telegram clients send 1-4096 characters of text")
        content: dict[str, Any] = {"text": text}
        if entities := _command_entities(text):
            content["entities"] = entities
        return self._user_message(chat_id, user_id, content)

    def user_sends_photo(
        self,
        chat_id: int,
        image_bytes: bytes,
        user_id: int | None = None,
        caption: str | None = None,
    ) -> dict:
        """Deliver a photo as Telegram would: JPEG renditions, smallest first.

        The bot sees 90/320/800 px thumbnails (those smaller than the image) and the image
        itself re-encoded as JPEG with its longest side capped at 1280 px, so downloaded
        bytes differ from ``image_bytes`` (compare via ``file_bytes``).
        """
        try:
            photo = self._store_photo(image_bytes)
        except ApiError as error:
            raise ValueError(f"not a usable photo: {error.description}") from None
        content: dict[str, Any] = {"photo": photo}
        if caption:
            content["caption"] = caption
            if entities := _command_entities(caption):
                content["caption_entities"] = entities
        return self._user_message(chat_id, user_id, content)

    def user_sends_document(
        self,
        chat_id: int,
        data: bytes,
        file_name: str,
        mime_type: str,
        user_id: int | None = None,
    ) -> dict:
        """Deliver a file sent "as a document" (no recompression, any size)."""
        extension = file_name.rpartition(".")[2] if "." in file_name else "bin"
        stored = self._store_file("document", data, "documents", extension)
        document = {**self._file_fields(stored), "file_name": file_name, "mime_type": mime_type}
        return self._user_message(chat_id, user_id, {"document": document})

    def user_sends_sticker(self, chat_id: int, user_id: int | None = None) -> dict:
        """Deliver a static 512x512 WEBP sticker."""
        image = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
        ImageDraw.Draw(image).ellipse((32, 32, 480, 480), fill=(255, 200, 0, 255))
        buffer = io.BytesIO()
        image.save(buffer, "WEBP")
        stored = self._store_file("sticker", buffer.getvalue(), "stickers", "webp")
        sticker = {
            **self._file_fields(stored),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self._user_message(chat_id, user_id, {"sticker": sticker})

    def user_sends_video(self, chat_id: int, user_id: int | None = None) -> dict:
        """Deliver a short video (the bytes are a stub, not a playable MP4)."""
        data = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(4096)
        stored = self._store_file("video", data, "videos", "mp4")
        video = {
            **self._file_fields(stored),
            "width": 640,
            "height": 360,
            "duration": 3,
            "mime_type": "video/mp4",
        }
        return self._user_message(chat_id, user_id, {"video": video})

    def user_presses_button(
        self, chat_id: int, message_id: int, callback_data: str, user_id: int | None = None
    ) -> str:
        """Press an inline button of a bot message; returns the callback query id.

        Raises ``ValueError`` if the message (in its current, possibly edited state) has no
        button with that ``callback_data`` - a user could not press it either.
        """
        user = self._user(chat_id, user_id)
        with self._cond:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise ValueError(f"chat {chat_id} has no message {message_id}")
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            data = [button.get("callback_data") for row in rows for button in row]
            if callback_data not in data:
                raise ValueError(
                    f"message {message_id} has no button with callback_data="
                    f"{callback_data!r}; its buttons: {data}"
                )
            query_id = str(secrets.randbits(62))
            self._callback_answers[query_id] = None
            self._push_update(
                "callback_query",
                {
                    "id": query_id,
                    "from": user,
                    "message": copy.deepcopy(message),
                    "chat_instance": str(abs(chat_id) * 7919 + 1),
                    "data": callback_data,
                },
            )
        return query_id

    def user_blocks_bot(self, chat_id: int) -> None:
        """From now on the bot gets 403 "bot was blocked by the user" for this chat."""
        with self._cond:
            self._blocked.add(chat_id)

    # ------------------------------------------------------------------ observation

    @property
    def calls(self) -> list[ApiCall]:
        """Snapshot of every request the bot made, in the order they were answered."""
        with self._cond:
            return list(self._calls)

    def mark(self) -> int:
        """Current number of calls, to pass as ``since`` and ignore what came before."""
        with self._cond:
            return len(self._calls)

    def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 30.0,
        since: int = 0,
    ) -> ApiCall:
        """First call to ``method`` (failed ones included) at index >= ``since``.

        Raises ``AssertionError`` listing the recent calls if none shows up in time.
        """
        return self.wait_for_calls(method, 1, predicate, timeout, since)[0]

    def wait_for_calls(
        self,
        method: str,
        count: int,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 30.0,
        since: int = 0,
    ) -> list[ApiCall]:
        """The first ``count`` matching calls; see ``wait_for_call``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    call
                    for call in self._calls[since:]
                    if call.method.lower() == method.lower()
                    and (predicate is None or predicate(call))
                ]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    what = f"{count} x {method}" + (" matching the predicate" if predicate else "")
                    raise AssertionError(
                        f"Timed out after {timeout}s waiting for {what} (found {len(found)} "
                        f"since call #{since}).\n{self._recent_calls_report()}"
                    )
                self._cond.wait(remaining)

    async def wait_for_call_async(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 30.0,
        since: int = 0,
    ) -> ApiCall:
        """``wait_for_call`` for tests whose event loop also runs the bot."""
        return await asyncio.to_thread(self.wait_for_call, method, predicate, timeout, since)

    def messages_to(self, chat_id: int) -> list[dict]:
        """Messages the bot sent to the chat and has not deleted, oldest first, edits applied."""
        bot_id = self.bot_user["id"]
        with self._cond:
            return [
                copy.deepcopy(message)
                for (chat, _), message in sorted(self._messages.items())
                if chat == chat_id and message["from"]["id"] == bot_id
            ]

    def callback_answer(self, callback_query_id: str) -> dict | None:
        """Parameters of the bot's ``answerCallbackQuery`` for this query, or None."""
        with self._cond:
            if callback_query_id not in self._callback_answers:
                raise KeyError(f"unknown callback query {callback_query_id}")
            return copy.deepcopy(self._callback_answers[callback_query_id])

    def answered_callback(self, callback_query_id: str) -> bool:
        """Whether the bot answered the callback query (clients show a spinner until it does)."""
        return self.callback_answer(callback_query_id) is not None

    def file_bytes(self, file_id: str) -> bytes:
        """Content of any file known to the emulator (uploaded by the bot or the user)."""
        with self._cond:
            return self._files[file_id].data

    # ------------------------------------------------------------------ internals: state

    def _user(self, chat_id: int, user_id: int | None) -> dict[str, Any]:
        if user_id is None:
            if chat_id < 0:
                raise ValueError("user_id is required for group chats")
            user_id = chat_id
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": "Test",
            "last_name": f"User{user_id}",
            "username": f"user{user_id}",
            "language_code": "en",
        }

    def _user_message(self, chat_id: int, user_id: int | None, content: dict) -> dict:
        user = self._user(chat_id, user_id)
        if chat_id > 0:
            chat = {
                "id": chat_id,
                "type": "private",
                "first_name": user["first_name"],
                "last_name": user["last_name"],
                "username": user["username"],
            }
        else:
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            chat = {"id": chat_id, "type": kind, "title": f"Test group {chat_id}"}
        with self._cond:
            self._chats.setdefault(chat_id, chat)
            message = self._new_message(chat_id, user, content)
            self._push_update("message", copy.deepcopy(message))
            return copy.deepcopy(message)

    def _new_message(self, chat_id: int, sender: dict, content: dict) -> dict[str, Any]:
        with self._cond:
            message_id = self._last_message_id.get(chat_id, 0) + 1
            self._last_message_id[chat_id] = message_id
            message = {
                "message_id": message_id,
                "from": copy.deepcopy(sender),
                "chat": copy.deepcopy(self._chats[chat_id]),
                "date": int(time.time()),
                **content,
            }
            self._messages[(chat_id, message_id)] = message
            return message

    def _push_update(self, kind: str, payload: dict[str, Any]) -> None:
        with self._cond:
            self._updates.append({"update_id": next(self._update_ids), kind: payload})
            self._cond.notify_all()

    def _store_file(self, kind: str, data: bytes, folder: str, extension: str) -> _StoredFile:
        with self._cond:
            number = next(self._file_counter)
            stored = _StoredFile(
                file_id=f"{kind[:2].upper()}AC{secrets.token_urlsafe(30)}",
                file_unique_id=f"AQAD{secrets.token_urlsafe(10)}",
                kind=kind,
                data=data,
                file_path=f"{folder}/file_{number}.{extension}",
            )
            self._files[stored.file_id] = stored
            self._files_by_path[stored.file_path] = stored
            return stored

    @staticmethod
    def _file_fields(stored: _StoredFile) -> dict[str, Any]:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }

    def _store_photo(self, data: bytes) -> list[dict[str, Any]]:
        """Register the renditions of a new photo; returns its PhotoSize list."""
        renditions = _photo_renditions(data)
        photo: list[dict[str, Any]] = []
        with self._cond:
            for width, height, jpeg in renditions:
                stored = self._store_file("photo", jpeg, "photos", "jpg")
                stored.photo = photo
                photo.append({**self._file_fields(stored), "width": width, "height": height})
        return copy.deepcopy(photo)

    def _resolve_photo(self, reference: Any, files: dict[str, bytes]) -> list[dict[str, Any]]:
        """An ``attach://`` upload, HTTP URL or file_id turned into a PhotoSize list."""
        if not isinstance(reference, str) or not reference:
            raise ApiError("Bad Request: there is no photo in the request")
        if reference.startswith("attach://"):
            name = reference.removeprefix("attach://")
            if name not in files:
                raise ApiError(f"Bad Request: can't parse InputMedia: file {name} not found")
            return self._store_photo(files[name])
        if reference.startswith(("http://", "https://")):
            try:
                data = self.url_fetcher(reference)
            except Exception:
                raise ApiError("Bad Request: failed to get HTTP URL content") from None
            return self._store_photo(data)
        with self._cond:
            stored = self._files.get(reference)
            if stored is None:
                raise ApiError("Bad Request: wrong file identifier/HTTP URL specified")
            if stored.photo is None:
                raise ApiError(
                    f"Bad Request: can't use file of type {stored.kind.capitalize()} as Photo"
                )
            return copy.deepcopy(stored.photo)

    def _chat_id(self, params: dict[str, Any]) -> int:
        """The target chat, with Telegram's errors for missing, unknown or blocking chats."""
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise ApiError("Bad Request: chat_id is empty")
        chat_id = _as_int(raw, "Bad Request: chat not found")
        with self._cond:
            if chat_id not in self._chats:
                raise ApiError("Bad Request: chat not found")
            if chat_id in self._blocked:
                raise ApiError("Forbidden: bot was blocked by the user", 403)
        return chat_id

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        """The message replied to (``reply_parameters`` or legacy ``reply_to_message_id``)."""
        reply = params.get("reply_parameters") or {}
        if not isinstance(reply, dict):
            raise ApiError("Bad Request: can't parse reply parameters JSON object")
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        allow_missing = reply.get(
            "allow_sending_without_reply", params.get("allow_sending_without_reply", False)
        )
        with self._cond:
            message = self._messages.get(
                (chat_id, _as_int(message_id, "Bad Request: message to be replied not found"))
            )
            if message is None:
                if allow_missing:
                    return None
                raise ApiError("Bad Request: message to be replied not found")
            return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}

    def _send(self, chat_id: int, params: dict[str, Any], contents: list[dict]) -> list[dict]:
        """Store bot messages (replies and keyboards applied) and return them as sent."""
        markup = _inline_markup(params.get("reply_markup"))
        sender = {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        with self._cond:
            reply_to = self._reply_to(chat_id, params)
            sent = []
            for content in contents:
                if reply_to is not None:
                    content["reply_to_message"] = reply_to
                if markup is not None:
                    content["reply_markup"] = markup
                sent.append(copy.deepcopy(self._new_message(chat_id, sender, content)))
            return sent

    def _editable(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("inline_message_id"):
            raise ApiError("Bad Request: the emulator does not support inline messages")
        chat_id = self._chat_id(params)
        message_id = _as_int(params.get("message_id"), "Bad Request: message to edit not found")
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise ApiError("Bad Request: message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise ApiError("Bad Request: message can't be edited")
        return message

    def _recent_calls_report(self, limit: int = 20) -> str:
        polls = [call for call in self._calls if call.method == "getUpdates"]
        if polls:
            age = time.time() - polls[-1].time
            header = (
                f"getUpdates polled {len(polls)} times, last answered {age:.1f}s ago "
                "(omitted below)."
            )
        else:
            header = "The bot never called getUpdates - is it running against base_url?"
        lines = [header]
        others = [(i, c) for i, c in enumerate(self._calls) if c.method != "getUpdates"]
        if not others:
            lines.append("No other API calls were made.")
        for index, call in others[-limit:]:
            shown = ", ".join(f"{k}={str(v)[:80]!r}" for k, v in call.params.items())
            uploads = ", ".join(f"{k}<{len(v)} bytes>" for k, v in call.files.items())
            outcome = "ok" if call.ok else f"ERROR {call.error}"
            lines.append(
                f"  #{index} {call.method}({shown}{', ' if uploads else ''}{uploads}) -> {outcome}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ internals: HTTP

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = unquote(urlsplit(request.path).path)
        if match := _FILE_PATH.match(path):
            self._serve_file(request, match["token"], match["path"])
            return
        match = _API_PATH.match(path)
        if match is None:
            self._reply(
                request,
                HTTPStatus.NOT_FOUND,
                {"ok": False, "error_code": 404, "description": "Not Found"},
            )
            return
        if match["token"] != self.token:
            self._reply(
                request,
                HTTPStatus.UNAUTHORIZED,
                {"ok": False, "error_code": 401, "description": "Unauthorized"},
            )
            return
        method = self._methods.get(match["method"].lower())
        if method is None:
            self._reply(
                request,
                HTTPStatus.NOT_FOUND,
                {"ok": False, "error_code": 404, "description": "Not Found"},
            )
            return
        name, handler = method
        call = ApiCall(name, {}, {}, time.time())
        try:
            call.params, call.files = _parse_request(request)
            call.result = handler(call.params, call.files)
            status, payload = HTTPStatus.OK, {"ok": True, "result": call.result}
        except ApiError as error:
            call.error = error.description
            status = HTTPStatus(error.code)
            payload = {"ok": False, "error_code": error.code, "description": error.description}
        except Exception as error:  # an emulator bug: make it loud in the call log too
            traceback.print_exc(file=sys.stderr)
            call.error = f"emulator crashed: {error!r}"
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            payload = {"ok": False, "error_code": 500, "description": call.error}
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()
        self._reply(request, status, payload)

    def _serve_file(self, request: BaseHTTPRequestHandler, token: str, file_path: str) -> None:
        if token != self.token:
            self._reply(
                request,
                HTTPStatus.UNAUTHORIZED,
                {"ok": False, "error_code": 401, "description": "Unauthorized"},
            )
            return
        with self._cond:
            stored = self._files_by_path.get(file_path)
            call = ApiCall("downloadFile", {"file_path": file_path}, {}, time.time())
            if stored is None:
                call.error = "Not Found"
            else:
                call.result = len(stored.data)
            self._calls.append(call)
            self._cond.notify_all()
        if stored is None:
            self._reply(
                request,
                HTTPStatus.NOT_FOUND,
                {"ok": False, "error_code": 404, "description": "Not Found"},
            )
            return
        self._write(request, HTTPStatus.OK, "application/octet-stream", stored.data)

    def _reply(self, request: BaseHTTPRequestHandler, status: HTTPStatus, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self._write(request, status, "application/json", body)

    @staticmethod
    def _write(
        request: BaseHTTPRequestHandler, status: HTTPStatus, content_type: str, body: bytes
    ) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the bot gave up on the request (e.g. a cancelled long poll)

    # ------------------------------------------------------------------ Bot API methods

    def _api_delete_webhook(self, params: dict, files: dict) -> bool:
        if params.get("drop_pending_updates"):
            with self._cond:
                self._updates.clear()
        return True

    def _api_set_my_commands(self, params: dict, files: dict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise ApiError("Bad Request: can't parse commands JSON object")
        for command in commands:
            if not (
                isinstance(command, dict)
                and re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", "")))
                and 1 <= len(str(command.get("description", ""))) <= 256
            ):
                raise ApiError("Bad Request: BOT_COMMAND_INVALID")
        with self._cond:
            self._commands = copy.deepcopy(commands)
        return True

    def _api_delete_my_commands(self, params: dict, files: dict) -> bool:
        with self._cond:
            self._commands = []
        return True

    def _api_get_updates(self, params: dict, files: dict) -> list[dict]:
        """Long polling: answer as soon as an update is pending or ``timeout`` expires."""
        offset = _as_int(params.get("offset") or 0, "Bad Request: invalid offset")
        limit = min(max(_as_int(params.get("limit") or 100, "Bad Request: invalid limit"), 1), 100)
        try:
            timeout = max(float(params.get("timeout") or 0), 0.0)
        except (TypeError, ValueError):
            raise ApiError("Bad Request: invalid timeout") from None
        allowed = params.get("allowed_updates")
        if allowed is not None and not isinstance(allowed, list):
            raise ApiError("Bad Request: can't parse allowed updates")
        deadline = time.monotonic() + timeout
        with self._cond:
            # A newer getUpdates terminates an older one, as with two bot instances.
            self._poll_generation += 1
            generation = self._poll_generation
            self._cond.notify_all()
            if allowed is not None:  # Telegram remembers the setting until it is changed
                self._allowed_updates = set(allowed) or None
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            while True:
                if generation != self._poll_generation:
                    raise ApiError(GETUPDATES_CONFLICT, 409)
                if self._allowed_updates is not None:
                    self._updates = [
                        u
                        for u in self._updates
                        if next(k for k in u if k != "update_id") in self._allowed_updates
                    ]
                remaining = deadline - time.monotonic()
                if self._updates or remaining <= 0 or self._stopping:
                    return copy.deepcopy(self._updates[:limit])
                self._cond.wait(remaining)

    def _api_send_message(self, params: dict, files: dict) -> dict:
        chat_id = self._chat_id(params)
        text, entities = _format(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="Bad Request: message is too long",
        )
        if not text.strip():
            raise ApiError("Bad Request: message text is empty")
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self._send(chat_id, params, [content])[0]

    def _caption(self, item: dict[str, Any]) -> dict[str, Any]:
        caption, entities = _format(
            item.get("caption"),
            item.get("parse_mode"),
            item.get("caption_entities"),
            limit=MAX_CAPTION_LENGTH,
            too_long="Bad Request: message caption is too long",
        )
        content: dict[str, Any] = {}
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
        if item.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return content

    def _api_send_photo(self, params: dict, files: dict) -> dict:
        chat_id = self._chat_id(params)
        content = self._caption(params)
        _inline_markup(params.get("reply_markup"))  # validate before storing anything
        if "photo" in files:
            photo = self._store_photo(files["photo"])
        else:
            photo = self._resolve_photo(params.get("photo"), files)
        return self._send(chat_id, params, [{"photo": photo, **content}])[0]

    def _api_send_media_group(self, params: dict, files: dict) -> list[dict]:
        chat_id = self._chat_id(params)
        media = params.get("media")
        if not isinstance(media, list):
            raise ApiError("Bad Request: can't parse media JSON object")
        if len(media) > 10:
            raise ApiError("Bad Request: too many messages to send as an album")
        if len(media) < 2:
            raise ApiError("Bad Request: media group must include 2-10 items")
        captions = []
        for item in media:
            if not isinstance(item, dict):
                raise ApiError("Bad Request: can't parse InputMedia JSON object")
            if item.get("type") != "photo":
                raise ApiError(
                    f"Bad Request: the emulator supports only photo albums, got "
                    f"type {item.get('type')!r}"
                )
            captions.append(self._caption(item))
        self._reply_to(chat_id, params)  # fail before storing any photo
        media_group_id = str(secrets.randbits(63))
        contents = [
            {
                "media_group_id": media_group_id,
                "photo": self._resolve_photo(item.get("media"), files),
                **caption,
            }
            for item, caption in zip(media, captions, strict=True)
        ]
        return self._send(
            chat_id, {k: v for k, v in params.items() if k != "reply_markup"}, contents
        )

    def _api_edit_message_text(self, params: dict, files: dict) -> dict:
        text, entities = _format(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="Bad Request: MESSAGE_TOO_LONG",
        )
        if not text.strip():
            raise ApiError("Bad Request: message text is empty")
        # Telegram drops the inline keyboard when an edit does not repeat it.
        markup = _inline_markup(params.get("reply_markup"))
        with self._cond:
            message = self._editable(params)
            if "text" not in message:
                raise ApiError("Bad Request: there is no text in the message to edit")
            if (message["text"], message.get("entities", []), message.get("reply_markup")) == (
                text,
                entities,
                markup,
            ):
                raise ApiError(NOT_MODIFIED)
            message["text"] = text
            self._set_optional(message, "entities", entities)
            self._set_optional(message, "reply_markup", markup)
            message["edit_date"] = int(time.time())
            return copy.deepcopy(message)

    def _api_edit_message_reply_markup(self, params: dict, files: dict) -> dict:
        markup = _inline_markup(params.get("reply_markup"))
        with self._cond:
            message = self._editable(params)
            if message.get("reply_markup") == markup:
                raise ApiError(NOT_MODIFIED)
            self._set_optional(message, "reply_markup", markup)
            message["edit_date"] = int(time.time())
            return copy.deepcopy(message)

    @staticmethod
    def _set_optional(message: dict[str, Any], key: str, value: Any) -> None:
        """Telegram omits empty optional fields instead of sending nulls or empty lists."""
        if value:
            message[key] = value
        else:
            message.pop(key, None)

    def _api_delete_message(self, params: dict, files: dict) -> bool:
        chat_id = self._chat_id(params)
        message_id = _as_int(params.get("message_id"), "Bad Request: message to delete not found")
        with self._cond:
            if self._messages.pop((chat_id, message_id), None) is None:
                raise ApiError("Bad Request: message to delete not found")
        return True

    def _api_send_chat_action(self, params: dict, files: dict) -> bool:
        self._chat_id(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise ApiError("Bad Request: wrong parameter action in request")
        return True

    def _api_answer_callback_query(self, params: dict, files: dict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        with self._cond:
            answered = self._callback_answers.get(query_id)
            if query_id not in self._callback_answers or answered is not None:
                raise ApiError(QUERY_INVALID)  # unknown, or answered already
            self._callback_answers[query_id] = copy.deepcopy(params)
        return True

    def _api_get_file(self, params: dict, files: dict) -> dict:
        with self._cond:
            stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise ApiError("Bad Request: invalid file_id")
        if len(stored.data) > MAX_GETFILE_BYTES:
            raise ApiError("Bad Request: file is too big")
        return {**self._file_fields(stored), "file_path": stored.file_path}
