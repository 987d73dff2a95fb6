"""The Bot API methods the bot may call, with Telegram's checks and error texts."""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from tests.support.botapi.api import (
    MAX_CAPTION_LENGTH,
    MAX_GETFILE_BYTES,
    MAX_TEXT_LENGTH,
    ApiError,
)
from tests.support.botapi.entities import format_text
from tests.support.botapi.state import EmulatorState
from tests.support.botapi.wire import as_int, inline_markup

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


class BotApiMethods(EmulatorState):
    """The ``_api_*`` handlers behind ``getUpdates``, ``sendMessage`` and the rest."""

    def _method_table(self) -> dict[str, tuple[str, Callable[..., Any]]]:
        return {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": lambda p, f: copy.deepcopy(self.bot_user),
                "logOut": lambda p, f: True,
                "close": lambda p, f: True,
                "deleteWebhook": self._api_delete_webhook,
                "setWebhook": self._api_set_webhook,
                "getWebhookInfo": lambda p, f: {
                    "url": (self.webhook or {}).get("url", ""),
                    "has_custom_certificate": False,
                    "pending_update_count": len(self._updates),
                },
                "setMyCommands": self._api_set_my_commands,
                "getMyCommands": self._api_get_my_commands,
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

    # ------------------------------------------------------------------ shared checks

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
        chat_id = as_int(raw, "Bad Request: chat not found")
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
        quoted = self._quoted(
            chat_id, as_int(message_id, "Bad Request: message to be replied not found")
        )
        if quoted is None and not allow_missing:
            raise ApiError("Bad Request: message to be replied not found")
        return quoted

    def _send(self, chat_id: int, params: dict[str, Any], contents: list[dict]) -> list[dict]:
        """Store bot messages (replies and keyboards applied) and return them as sent."""
        markup = inline_markup(params.get("reply_markup"))
        sender = {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        with self._cond:
            reply_to = self._reply_to(chat_id, params)
            sent = []
            for content in contents:
                if reply_to is not None:
                    content["reply_to_message"] = reply_to
                if markup is not None:
                    content["reply_markup"] = markup
                message = self._new_message(chat_id, sender, content)
                self._bot_messages.add((chat_id, message["message_id"]))
                sent.append(copy.deepcopy(message))
            return sent

    def _editable(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("inline_message_id"):
            raise ApiError("Bad Request: the emulator does not support inline messages")
        chat_id = self._chat_id(params)
        message_id = as_int(params.get("message_id"), "Bad Request: message to edit not found")
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise ApiError("Bad Request: message to edit not found")
        if (chat_id, message_id) not in self._bot_messages:
            raise ApiError("Bad Request: message can't be edited")
        return message

    # ------------------------------------------------------------------ Bot API methods

    def _api_delete_webhook(self, params: dict, files: dict) -> bool:
        with self._cond:
            self.webhook = None
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return True

    def _api_set_webhook(self, params: dict, files: dict) -> bool:
        """Recorded, not called: tests post the updates (``take_updates``) themselves, as the
        reverse proxy in front of the bot would."""
        url = params.get("url") or ""
        if not url.startswith("https://"):
            raise ApiError("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError("Bad Request: secret token contains unallowed characters")
        with self._cond:
            self.webhook = {
                "url": url,
                "secret_token": secret,
                "allowed_updates": params.get("allowed_updates"),
            }
        return True

    def _api_set_my_commands(self, params: dict, files: dict) -> bool:
        language = _language_code(params)
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
            self._commands[language] = copy.deepcopy(commands)
        return True

    def _api_get_my_commands(self, params: dict, files: dict) -> list[dict]:
        """The menu set for exactly that language (Telegram falls back only in the clients)."""
        language = _language_code(params)
        with self._cond:
            return copy.deepcopy(self._commands.get(language, []))

    def _api_delete_my_commands(self, params: dict, files: dict) -> bool:
        language = _language_code(params)
        with self._cond:
            self._commands.pop(language, None)
        return True

    def _api_get_updates(self, params: dict, files: dict) -> list[dict]:
        """Long polling: answer as soon as an update is pending or ``timeout`` expires."""
        offset = as_int(params.get("offset") or 0, "Bad Request: invalid offset")
        limit = min(max(as_int(params.get("limit") or 100, "Bad Request: invalid limit"), 1), 100)
        try:
            timeout = max(float(params.get("timeout") or 0), 0.0)
        except (TypeError, ValueError):
            raise ApiError("Bad Request: invalid timeout") from None
        allowed = params.get("allowed_updates")
        if allowed is not None and not isinstance(allowed, list):
            raise ApiError("Bad Request: can't parse allowed updates")
        deadline = time.monotonic() + timeout
        with self._cond:
            if self.webhook is not None:
                raise ApiError(
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                    409,
                )
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
                self._check_token()  # a revoked token ends a pending poll at once
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
        text, entities = format_text(
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
        caption, entities = format_text(
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
        inline_markup(params.get("reply_markup"))  # validate before storing anything
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
        text, entities = format_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="Bad Request: MESSAGE_TOO_LONG",
        )
        if not text.strip():
            raise ApiError("Bad Request: message text is empty")
        # Telegram drops the inline keyboard when an edit does not repeat it.
        markup = inline_markup(params.get("reply_markup"))
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
        markup = inline_markup(params.get("reply_markup"))
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
        message_id = as_int(params.get("message_id"), "Bad Request: message to delete not found")
        with self._cond:
            if self._messages.pop((chat_id, message_id), None) is None:
                raise ApiError("Bad Request: message to delete not found")
            self._bot_messages.discard((chat_id, message_id))
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
            if time.monotonic() > self._callback_deadlines[query_id]:
                raise ApiError(QUERY_INVALID)  # too old: Telegram allows 15 minutes
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


def _language_code(params: dict[str, Any]) -> str:
    """``language_code`` of the command-menu methods: empty, or two lower-case letters."""
    language = params.get("language_code") or ""
    if not isinstance(language, str) or not re.fullmatch(r"([a-z]{2})?", language):
        raise ApiError("Bad Request: LANGUAGE_CODE_INVALID")
    return language
