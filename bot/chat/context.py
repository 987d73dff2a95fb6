"""The typed context every handler gets (python-telegram-bot's ``contexttypesbot`` pattern):
``context.settings`` and ``context.recommender`` instead of string keys in ``bot_data``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from bot.chat.throttle import RecentAlbums, SearchThrottle
from bot.core.recommender import Recommender
from bot.settings import Settings

log = logging.getLogger(__name__)


class BotData:
    """What the whole bot shares: set up by :mod:`bot.chat.app` and :mod:`bot.server.run`
    before the first update is handled."""

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.recommender: Recommender | None = None
        self.throttle: SearchThrottle | None = None
        self.albums = RecentAlbums()
        self.reindex: asyncio.Task | None = None
        self.stopping = False
        self._background: set[asyncio.Task] = set()

    def run_in_background(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task | None:
        """Start ``work`` (a reindex, the first catalog load) so that stopping the bot
        cancels it instead of waiting for it (:meth:`cancel_background`). None, and nothing
        started, once the bot is stopping."""
        if self.stopping:
            work.close()
            return None
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def cancel_background(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ChatContext(CallbackContext[ExtBot, dict, dict, BotData]):
    @property
    def settings(self) -> Settings:
        settings = self.bot_data.settings
        if settings is None:
            raise RuntimeError("the bot's settings are not set up")
        return settings

    @property
    def recommender(self) -> Recommender:
        """Opened before polling starts, so it is there before the first update is handled."""
        recommender = self.bot_data.recommender
        if recommender is None:
            raise RuntimeError("the recommender is not open yet")
        return recommender

    @property
    def throttle(self) -> SearchThrottle:
        throttle = self.bot_data.throttle
        if throttle is None:
            raise RuntimeError("the search limit is not set up")
        return throttle


CONTEXT_TYPES = ContextTypes(context=ChatContext, bot_data=BotData)
