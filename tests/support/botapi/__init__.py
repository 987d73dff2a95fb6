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

Layers, each importing only those before it: ``api``; ``entities`` and ``wire``; ``state``;
``server``, ``methods``, ``driver`` and ``faults`` (mixins on the state); ``emulator``, which
combines them into ``BotAPIEmulator``. Each module's docstring says why it exists.
"""

from tests.support.botapi.api import MAX_GETFILE_BYTES, ApiCall, ApiError
from tests.support.botapi.emulator import BotAPIEmulator
from tests.support.botapi.state import DEFAULT_TOKEN

__all__ = ["DEFAULT_TOKEN", "MAX_GETFILE_BYTES", "ApiCall", "ApiError", "BotAPIEmulator"]
