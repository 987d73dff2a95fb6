"""``BotAPIEmulator`` itself: the server, the Bot API methods and the test driver on one state."""

from __future__ import annotations

from tests.support.botapi.driver import Driver
from tests.support.botapi.faults import FaultInjection
from tests.support.botapi.methods import BotApiMethods
from tests.support.botapi.server import ApiServer


class BotAPIEmulator(Driver, FaultInjection, BotApiMethods, ApiServer):
    """Fake ``api.telegram.org`` for one bot token, plus the test-side controls.

    Updates are injected with ``user_sends_*`` / ``user_presses_button`` and delivered to the
    bot through ``getUpdates``; ``fail_next``, ``delay_next`` and ``revoke_token`` make
    Telegram misbehave on purpose. Everything the bot requests is recorded in ``calls`` and can
    be awaited with ``wait_for_call``. Messages live in per-chat histories whose message ids
    are shared by user and bot messages, as in a private chat. A chat becomes known (so the
    bot may write to it, otherwise "chat not found") once the user sent something there.

    ``url_fetcher`` is how photos given by HTTP URL are downloaded (Telegram fetches them
    server-side); pass a function mapping URL to bytes when the tests have no network.
    All public methods are thread-safe.
    """
