"""The test-facing side: what the user does in Telegram, and what tests observe and await."""

from __future__ import annotations

import asyncio
import copy
import io
import secrets
import time
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw

from tests.support.botapi.api import (
    CALLBACK_QUERY_LIFETIME,
    MAX_TEXT_LENGTH,
    ApiCall,
    ApiError,
)
from tests.support.botapi.entities import user_text_entities, utf16_len
from tests.support.botapi.state import EmulatorState


class Driver(EmulatorState):
    """Injects user updates and exposes the recorded calls and chat histories."""

    # ------------------------------------------------------------------ user actions

    def user_sends_text(
        self,
        chat_id: int,
        text: str,
        user_id: int | None = None,
        *,
        reply_to_message_id: int | None = None,
    ) -> dict:
        """Deliver a text message, optionally replying to a message of the chat.

        A leading ``/command`` gets a ``bot_command`` entity, each ``@username`` a
        ``mention``, as the Telegram clients mark them.
        """
        content = self._typed("text", text)
        return self._user_message(chat_id, user_id, content, reply_to_message_id)

    def user_sends_photo(
        self,
        chat_id: int,
        image_bytes: bytes,
        user_id: int | None = None,
        caption: str | None = None,
        *,
        reply_to_message_id: int | None = None,
    ) -> dict:
        """Deliver a photo as Telegram would: JPEG renditions, smallest first.

        The bot sees 90/320/800 px thumbnails (those smaller than the image) and the image
        itself re-encoded as JPEG with its longest side capped at 1280 px, so downloaded
        bytes differ from ``image_bytes`` (compare via ``file_bytes``).
        """
        content: dict[str, Any] = {"photo": self._user_photo(image_bytes)}
        if caption:
            content.update(self._typed("caption", caption))
        return self._user_message(chat_id, user_id, content, reply_to_message_id)

    def user_sends_album(
        self,
        chat_id: int,
        images: list[bytes],
        user_id: int | None = None,
        caption: str | None = None,
    ) -> list[dict]:
        """Deliver 2-10 photos sent at once: one ``message`` update each, one media group.

        Telegram clients put the album's caption on its first photo only.
        """
        if not 2 <= len(images) <= 10:
            raise ValueError("a Telegram album has 2-10 items")
        photos = [self._user_photo(data) for data in images]  # all valid before any is sent
        media_group_id = str(secrets.randbits(63))
        with self._cond:  # consecutive message ids, as the album arrives at once
            messages = []
            for index, photo in enumerate(photos):
                content: dict[str, Any] = {"media_group_id": media_group_id, "photo": photo}
                if caption and index == 0:
                    content.update(self._typed("caption", caption))
                messages.append(self._user_message(chat_id, user_id, content))
            return messages

    def user_edits_message(
        self,
        chat_id: int,
        message_id: int,
        *,
        text: str | None = None,
        caption: str | None = None,
        user_id: int | None = None,
    ) -> dict:
        """The user edits a message of theirs; the bot gets an ``edited_message`` update.

        The update holds the whole message as edited, with ``edit_date`` set, as Telegram
        sends it: a photo keeps its photo, only the caption changes (``caption=""`` removes
        it). Raises ``ValueError`` for a missing message or one the user did not send.
        """
        if (text is None) == (caption is None):
            raise ValueError("pass either text (text messages) or caption (media messages)")
        user = self._user(chat_id, user_id)
        with self._cond:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise ValueError(f"chat {chat_id} has no message {message_id}")
            if message.get("from", {}).get("id") != user["id"]:
                raise ValueError(f"message {message_id} was not sent by user {user['id']}")
            field = "text" if text is not None else "caption"
            if (field == "text") != ("text" in message):
                raise ValueError(f"message {message_id} has no {field} to edit")
            for key in (field, "entities", "caption_entities"):
                message.pop(key, None)
            if text is not None or caption:
                message.update(self._typed(field, text if text is not None else caption))
            message["edit_date"] = int(time.time())
            self._push_update("edited_message", copy.deepcopy(message))
            return copy.deepcopy(message)

    def channel_posts_text(self, chat_id: int, text: str) -> dict:
        """A text post in a channel the bot administers, delivered as ``channel_post``."""
        return self._channel_post(chat_id, self._typed("text", text))

    def channel_posts_photo(
        self, chat_id: int, image_bytes: bytes, caption: str | None = None
    ) -> dict:
        """A photo post in a channel; re-encoded like ``user_sends_photo``."""
        content: dict[str, Any] = {"photo": self._user_photo(image_bytes)}
        if caption:
            content.update(self._typed("caption", caption))
        return self._channel_post(chat_id, content)

    def take_updates(self) -> list[dict]:
        """Remove and return the queued updates: what Telegram would post to the webhook."""
        with self._cond:
            updates, self._updates = self._updates, []
            return copy.deepcopy(updates)

    def push_raw_update(self, payload: dict) -> int:
        """Queue an arbitrary update body and return the ``update_id`` it was given.

        For what the other methods cannot build, e.g. an update the bot's library fails to
        parse such as ``{"message": {"message_id": "x"}}``.
        """
        if not payload or "update_id" in payload:
            raise ValueError("give the update's body (e.g. {'message': ...}) without update_id")
        with self._cond:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **copy.deepcopy(payload)})
            self._cond.notify_all()
            return update_id

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
        self,
        chat_id: int,
        message_id: int,
        callback_data: str,
        user_id: int | None = None,
        *,
        stale: bool = False,
    ) -> str:
        """Press an inline button of a bot message; returns the callback query id.

        Raises ``ValueError`` if the message (in its current, possibly edited state) has no
        button with that ``callback_data`` - a user could not press it either - unless
        ``stale``: a button the message showed before (e.g. one an older bot version sent).
        """
        user = self._user(chat_id, user_id)
        with self._cond:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise ValueError(f"chat {chat_id} has no message {message_id}")
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            data = [button.get("callback_data") for row in rows for button in row]
            if callback_data not in data and not stale:
                raise ValueError(
                    f"message {message_id} has no button with callback_data="
                    f"{callback_data!r}; its buttons: {data}"
                )
            query_id = str(secrets.randbits(62))
            self._callback_answers[query_id] = None
            self._callback_deadlines[query_id] = time.monotonic() + CALLBACK_QUERY_LIFETIME
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

    def expire_callback_query(self, query_id: str) -> None:
        """Make a pending callback query older than Telegram's 15 minutes to answer it."""
        with self._cond:
            if query_id not in self._callback_deadlines:
                raise KeyError(f"unknown callback query {query_id}")
            self._callback_deadlines[query_id] = float("-inf")

    def user_language(self, user_id: int, language_code: str | None) -> None:
        """From now on every update from this user carries ``from.language_code`` =
        ``language_code`` (the Telegram app's language; None: the field is left out, as
        Telegram does for some users). Users start with "en"."""
        with self._cond:
            self._languages[user_id] = language_code

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
        with self._cond:
            return [
                copy.deepcopy(message)
                for key, message in sorted(self._messages.items())
                if key[0] == chat_id and key in self._bot_messages
            ]

    def commands(self, language_code: str = "") -> list[dict]:
        """The command menu the bot set for ``language_code`` ("": for every language)."""
        with self._cond:
            return copy.deepcopy(self._commands.get(language_code, []))

    def button_url(self, chat_id: int, message_id: int, text: str) -> str | None:
        """Where the URL button labelled ``text`` of a bot message points; None when the
        message has no such button."""
        with self._cond:
            message = self._messages.get((chat_id, message_id), {})
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            return next((b.get("url") for row in rows for b in row if b["text"] == text), None)

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

    # ------------------------------------------------------------------ internals

    def _user(self, chat_id: int, user_id: int | None) -> dict[str, Any]:
        if user_id is None:
            if chat_id < 0:
                raise ValueError("user_id is required for group chats")
            user_id = chat_id
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": "Test",
            "last_name": f"User{user_id}",
            "username": f"user{user_id}",
        }
        language = self._languages.get(user_id, "en")
        if language is not None:
            user["language_code"] = language
        return user

    @staticmethod
    def _typed(field: str, text: str) -> dict[str, Any]:
        """``text`` or ``caption`` as a client sends it, with the entities it marks."""
        if field == "text" and (not text or utf16_len(text) > MAX_TEXT_LENGTH):
            raise ValueError("Telegram clients send 1-4096 characters of text")
        content: dict[str, Any] = {field: text}
        if entities := user_text_entities(text):
            content["entities" if field == "text" else "caption_entities"] = entities
        return content

    def _user_photo(self, image_bytes: bytes) -> list[dict[str, Any]]:
        try:
            return self._store_photo(image_bytes)
        except ApiError as error:
            raise ValueError(f"not a usable photo: {error.description}") from None

    def _channel_post(self, chat_id: int, content: dict) -> dict:
        if not str(chat_id).startswith("-100"):
            raise ValueError("channel ids look like -100...")
        chat = {"id": chat_id, "type": "channel", "title": f"Test channel {chat_id}"}
        with self._cond:
            known = self._chats.setdefault(chat_id, chat)
            if known["type"] != "channel":
                raise ValueError(f"chat {chat_id} is a {known['type']}, not a channel")
            message = self._new_message(chat_id, None, content)
            self._push_update("channel_post", copy.deepcopy(message))
            return copy.deepcopy(message)

    def _user_message(
        self,
        chat_id: int,
        user_id: int | None,
        content: dict,
        reply_to_message_id: int | None = None,
    ) -> dict:
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
            if self._chats.get(chat_id, chat)["type"] == "channel":
                raise ValueError(f"chat {chat_id} is a channel: use channel_posts_*")
            if reply_to_message_id is not None:
                quoted = self._quoted(chat_id, reply_to_message_id)
                if quoted is None:
                    raise ValueError(f"chat {chat_id} has no message {reply_to_message_id}")
                content = {**content, "reply_to_message": quoted}
            self._chats.setdefault(chat_id, chat)
            message = self._new_message(chat_id, user, content)
            self._push_update("message", copy.deepcopy(message))
            return copy.deepcopy(message)

    def _push_update(self, kind: str, payload: dict[str, Any]) -> None:
        self.push_raw_update({kind: payload})

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
