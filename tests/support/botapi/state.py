"""The emulator's shared state (chats, messages, files, updates, calls) and how it grows."""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.botapi.api import ApiCall, ApiError
from tests.support.botapi.wire import photo_renditions

DEFAULT_TOKEN = "123456:TEST-TOKEN"


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


def _fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


class EmulatorState:
    """Everything the emulator knows, guarded by one condition variable ``_cond``.

    The mixins that make up ``BotAPIEmulator`` (server, methods, driver) all work on this
    state; ``_method_table`` is provided by the Bot API methods.
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
        self.webhook: dict[str, Any] | None = None
        """What ``setWebhook`` set (url, secret_token, allowed_updates); None while polling."""
        self._poll_generation = 0
        self._chats: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._callback_answers: dict[str, dict[str, Any] | None] = {}
        # Monotonic time after which a callback query can no longer be answered.
        self._callback_deadlines: dict[str, float] = {}
        # Which stored messages the bot sent: channel posts have no ``from`` to tell.
        self._bot_messages: set[tuple[int, int]] = set()
        # Injected by the test driver, keyed by lower-cased method name; consumed in order.
        self._faults: dict[str, deque[ApiError]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._revoked = False
        # The command menu per language code ("": every language without its own).
        self._commands: dict[str, list[dict[str, Any]]] = {}
        # The language code the updates of a user carry (absent: "en"; None: no field).
        self._languages: dict[int, str | None] = {}
        self._stopping = False
        self._methods = self._method_table()

    def _method_table(self) -> dict[str, tuple[str, Callable[..., Any]]]:
        """Bot API method name (lower-cased) to its exact name and handler."""
        raise NotImplementedError

    def _new_message(
        self, chat_id: int, sender: dict[str, Any] | None, content: dict
    ) -> dict[str, Any]:
        """Store a message; in a channel the channel itself signs it (no ``from``)."""
        with self._cond:
            message_id = self._last_message_id.get(chat_id, 0) + 1
            self._last_message_id[chat_id] = message_id
            chat = self._chats[chat_id]
            author = (
                {"sender_chat": copy.deepcopy(chat)}
                if chat["type"] == "channel"
                else {"from": copy.deepcopy(sender)}
            )
            message = {
                "message_id": message_id,
                **author,
                "chat": copy.deepcopy(chat),
                "date": int(time.time()),
                **content,
            }
            self._messages[(chat_id, message_id)] = message
            return message

    def _quoted(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """A stored message as ``reply_to_message`` shows it: without its own reply."""
        with self._cond:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                return None
            return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}

    def _take_fault(self, method: str) -> ApiError | None:
        """The error injected for the next call of ``method``, if any (consumed)."""
        with self._cond:
            pending = self._faults.get(method.lower())
            return pending.popleft() if pending else None

    def _take_delay(self, method: str) -> float:
        """Seconds to hold back the answer to this call of ``method`` (consumed)."""
        with self._cond:
            pending = self._delays.get(method.lower())
            return pending.popleft() if pending else 0.0

    def _check_token(self) -> None:
        """401 once the token was revoked, as Telegram answers a token reset in @BotFather."""
        with self._cond:
            if self._revoked:
                raise ApiError("Unauthorized", 401)

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
        renditions = photo_renditions(data)
        photo: list[dict[str, Any]] = []
        with self._cond:
            for width, height, jpeg in renditions:
                stored = self._store_file("photo", jpeg, "photos", "jpg")
                stored.photo = photo
                photo.append({**self._file_fields(stored), "width": width, "height": height})
        return copy.deepcopy(photo)
