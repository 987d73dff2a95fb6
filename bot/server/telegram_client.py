"""The bot's Telegram client: outgoing flood control and retries, updates it cannot read,
a revoked token.

python-telegram-bot's ``AIORateLimiter`` keeps under Telegram's limits and retries a 429
after ``retry_after``; :class:`FlowControl` adds what a shop's bot needs on top: an album
counts as its photos, and server errors and dropped connections are retried with backoff
where sending again cannot show the shopper a message twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from http import HTTPStatus
from typing import Any

import httpx
from telegram import Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

log = logging.getLogger(__name__)

RETRIES = 3
"""Attempts after the first, for a 429 (after ``retry_after``) and for errors worth retrying."""
BACKOFF_SECONDS = 0.5
"""Wait before the first retry of a server or network error; doubled for each next one."""

# Methods whose repetition changes nothing the shopper sees. Sending a message or an album is
# not one: when the answer is lost, the message may have been delivered all the same.
_REPEATABLE = frozenset(
    {
        "answerCallbackQuery",
        "deleteWebhook",
        "editMessageReplyMarkup",
        "editMessageText",
        "getFile",
        "getMe",
        "sendChatAction",
        "setMyCommands",
        "setWebhook",
    }
)
# Telegram's own answers that say the request was not carried out. Not 504 (a gateway that gave
# up waiting does not know whether Telegram sent the message), and not a proxy's own error page:
# nginx answers 502 when its upstream closed after it had the request.
_NOT_DONE = frozenset({HTTPStatus.INTERNAL_SERVER_ERROR, HTTPStatus.BAD_GATEWAY,
                       HTTPStatus.SERVICE_UNAVAILABLE})  # fmt: skip
_NEVER_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class ServerError(NetworkError):
    """A 5xx answer, with its ``status`` (python-telegram-bot's own NetworkError keeps only
    the description) and whether it came from Telegram (a JSON error) or a proxy."""

    def __init__(self, status: int, message: str, *, from_telegram: bool) -> None:
        super().__init__(message)
        self.status = status
        self.from_telegram = from_telegram


class _StatusKeepingRequest(HTTPXRequest):
    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if code >= 500:
            try:
                answer = json.loads(payload)
            except ValueError:
                answer = None
            from_telegram = isinstance(answer, dict) and "error_code" in answer
            description = answer.get("description") if from_telegram else None
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:  # 520-599 from CDNs and proxies
                phrase = "Server error"
            message = f"{description or phrase} ({code})"
            raise ServerError(code, message, from_telegram=from_telegram)
        return code, payload


def may_send_again(endpoint: str, error: NetworkError) -> bool:
    """Whether a request that failed with ``error`` can be made again without doubling it:
    Telegram said it did nothing, the connection never opened, or the method is repeatable."""
    if isinstance(error, BadRequest):  # the request itself is wrong: the same again fails
        return False
    if isinstance(error, ServerError) and error.from_telegram and error.status in _NOT_DONE:
        return True
    if isinstance(error.__cause__, _NEVER_CONNECTED):
        return True
    return endpoint in _REPEATABLE


class FlowControl(AIORateLimiter):
    """``AIORateLimiter`` (30 messages/s overall, 20/min per group, 429s retried) with albums
    counted as their photos against both and bounded retries of server and network errors."""

    def __init__(self, retries: int = RETRIES, backoff: float = BACKOFF_SECONDS) -> None:
        super().__init__(max_retries=retries)
        self._backoff = backoff

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict | list[dict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict | list[dict]:
        photos = len(data.get("media") or ()) if endpoint == "sendMediaGroup" else 0
        if photos > 1:
            await self._take_for_album(data.get("chat_id"), photos - 1)
        attempt = 0
        while True:
            try:
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
            except NetworkError as error:
                if attempt >= self._max_retries or not may_send_again(endpoint, error):
                    raise
                delay = self._backoff * 2**attempt
                attempt += 1
                log.warning(
                    "%s failed (%s); attempt %d of %d in %.1f s",
                    endpoint, error, attempt + 1, self._max_retries + 1, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)

    async def _take_for_album(self, chat_id: object, extra: int) -> None:
        """An album's photos beyond the first, from the overall limit and a group's (the send
        itself takes one more of each)."""
        if self._base_limiter is not None:
            await self._base_limiter.acquire(extra)
        with contextlib.suppress(TypeError, ValueError):
            if int(chat_id) < 0 and self._group_max_rate:
                await self._get_group_limiter(int(chat_id)).acquire(extra)


class ResilientBot(ExtBot):
    """``ExtBot`` that never stalls on an update it cannot read and reports a revoked token.

    python-telegram-bot drops a batch of updates it fails to parse without confirming it, so
    the same batch came back ~20 times a second, for ever and across restarts. Here each
    update is read on its own and an unreadable one is logged once and passed on empty (the
    poller confirms it; no handler takes it).
    """

    __slots__ = ("_polled", "_token_revoked")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with self._unfrozen():
            self._token_revoked = asyncio.Event()
            self._polled = [float("-inf")]  # mutable: the bot object itself is frozen

    @property
    def token_revoked(self) -> asyncio.Event:
        """Set once Telegram refuses the token (401): nothing but a new token helps."""
        return self._token_revoked

    def seconds_since_poll(self) -> float:
        """Since Telegram last answered a long poll (infinite before the first)."""
        return time.monotonic() - self._polled[0]

    async def _do_post(self, *args: Any, **kwargs: Any) -> Any:
        """Every request, polling or not, webhook mode included: notice a refused token."""
        try:
            return await super()._do_post(*args, **kwargs)
        except InvalidToken as error:
            if not wrong_base_url(error):
                self._token_revoked.set()
            raise

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        try:
            updates = await super().get_updates(*args, **kwargs)
        except TelegramError:
            raise
        except Exception:  # python-telegram-bot could not read what Telegram sent
            updates = await self._each_readable(*args, **kwargs)
        self._polled[0] = time.monotonic()
        return updates

    async def _each_readable(
        self,
        offset: int | None = None,
        limit: int = 100,
        timeout: Any = None,
        allowed_updates: Sequence[str] | None = None,
        **_: Any,
    ) -> tuple[Update, ...]:
        data = {"offset": offset, "limit": limit, "timeout": 0, "allowed_updates": allowed_updates}
        updates = []
        for raw in await self._post("getUpdates", data):
            update = read_update(raw, self)
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            if update is None and isinstance(update_id, int):
                update = Update(update_id=update_id)  # confirmed by the poller, taken by none
            if update is not None:
                updates.append(update)
        return tuple(updates)


def read_update(raw: object, bot: ExtBot) -> Update | None:
    """The update in ``raw`` (polled or posted to the webhook), or None, logged once, when
    this version of python-telegram-bot cannot read it."""
    try:
        update = Update.de_json(raw, bot)
        if update is None:
            raise ValueError("no update in it")
        return update
    except Exception as error:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        log.error("skipped unreadable update %s: %r", update_id, error)
        return None


def wrong_base_url(error: InvalidToken) -> bool:
    """python-telegram-bot reports a 404 as a bad token too; it means a wrong base URL."""
    return "Not Found" in str(error)


def make_bot(token: str, base_url: str, base_file_url: str) -> ResilientBot:
    """The bot with flow control and timeouts for a shop: albums may take a while to upload
    (a slow answer is waited for, not apologised for and then delivered)."""
    requests = _StatusKeepingRequest(
        connection_pool_size=256,
        connect_timeout=10,
        read_timeout=30,
        write_timeout=30,
        media_write_timeout=60,
        pool_timeout=10,
    )
    return ResilientBot(
        token,
        base_url=base_url,
        base_file_url=base_file_url,
        request=requests,
        get_updates_request=_StatusKeepingRequest(connection_pool_size=1, read_timeout=10),
        rate_limiter=FlowControl(),
    )
