"""The typed context every handler gets (python-telegram-bot's ``contexttypesbot`` pattern):
``context.settings`` and ``context.recommender`` instead of string keys in ``bot_data``."""

from __future__ import annotations

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from bot.core.recommender import Recommender
from bot.settings import Settings


class BotData:
    """What the whole bot shares: set up by :mod:`bot.chat.app` before polling starts."""

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.recommender: Recommender | None = None


class ChatContext(CallbackContext[ExtBot, dict, dict, BotData]):
    @property
    def settings(self) -> Settings:
        settings = self.bot_data.settings
        if settings is None:
            raise RuntimeError("the bot's settings are not set up")
        return settings

    @property
    def recommender(self) -> Recommender:
        """Opened in ``post_init``, so it is there before the first update is handled."""
        recommender = self.bot_data.recommender
        if recommender is None:
            raise RuntimeError("the recommender is not open yet")
        return recommender


CONTEXT_TYPES = ContextTypes(context=ChatContext, bot_data=BotData)
