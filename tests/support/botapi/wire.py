"""Requests as they arrive: body decoding, parameter checks and the photo re-encoding."""

from __future__ import annotations

import io
import json
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from PIL import Image, ImageOps

from tests.support.botapi.api import (
    MAX_BUTTONS_PER_ROW,
    MAX_CALLBACK_DATA_BYTES,
    MAX_INLINE_BUTTONS,
    PHOTO_MAX_SIDE,
    PHOTO_THUMBNAIL_SIDES,
    ApiError,
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


def as_int(value: Any, error: str) -> int:
    """``int(value)``, or ``ApiError(error)`` when the parameter is not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(error) from None


BUTTON_ACTIONS = frozenset(
    {"callback_data", "url", "web_app", "login_url", "switch_inline_query",
     "switch_inline_query_current_chat", "callback_game", "pay", "copy_text"}
)  # fmt: skip


def _button_url(url: Any) -> bool:
    """What Telegram takes for a URL button: http(s) with a host, or a tg:// link."""
    if not isinstance(url, str) or any(character.isspace() for character in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(host)) or (
        parts.scheme == "tg" and bool(parts.netloc)
    )


def inline_markup(markup: Any) -> dict[str, Any] | None:
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
    if any(len(row) > MAX_BUTTONS_PER_ROW for row in rows):
        raise ApiError("Bad Request: BUTTONS_TOO_MUCH")
    for button in buttons:
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise ApiError(
                'Bad Request: can\'t parse inline keyboard button: Field "text" '
                "must be of type String"
            )
        if len(set(button) & BUTTON_ACTIONS) > 1:
            raise ApiError("Bad Request: can't parse inline keyboard button: one action only")
        if "url" in button:
            if not _button_url(button["url"]):
                raise ApiError("Bad Request: BUTTON_URL_INVALID")
        elif "callback_data" in button:
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


def photo_renditions(data: bytes) -> list[tuple[int, int, bytes]]:
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


def parse_request(request: BaseHTTPRequestHandler) -> tuple[dict[str, Any], dict[str, bytes]]:
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
