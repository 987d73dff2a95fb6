"""What every layer shares: Telegram's limits, its error replies and the record of a call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_BUTTONS_PER_ROW = 8
MAX_GETFILE_BYTES = 20 * 1024 * 1024
# Telegram keeps a photo as JPEG renditions: small thumbnails plus one capped at 1280 px.
PHOTO_THUMBNAIL_SIDES = (90, 320, 800)
PHOTO_MAX_SIDE = 1280


CALLBACK_QUERY_LIFETIME = 15 * 60  # seconds Telegram accepts an answerCallbackQuery


class ApiError(Exception):
    """A Bot API error reply: the HTTP status, Telegram's ``description`` and ``parameters``.

    ``parameters`` is Telegram's ResponseParameters object (e.g. ``{"retry_after": 5}``),
    which clients such as PTB read to raise ``RetryAfter`` instead of a generic error.
    """

    def __init__(
        self, description: str, code: int = 400, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        self.code = code
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram sends with this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body


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
