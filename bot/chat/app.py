"""Wiring at the edge: settings → the Telegram client → handlers → PTB Application.

Shoppers' messages are answered in private chats; in groups only photos and messages addressed
to the bot (a mention, or a reply to it) and commands. Edited messages, channel posts and
updates without a message are not searches: no handler takes them.
"""

from __future__ import annotations

from telegram import BotCommand, Message
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ExtBot,
    MessageHandler,
    filters,
)

from bot.chat import admin, buttons, handlers, replies
from bot.chat.context import CONTEXT_TYPES, BotData
from bot.chat.throttle import SearchThrottle
from bot.settings import Settings

# Updates handled at once. A search mostly waits (download, the embedder's queue, upload), so
# a small number let 30 waiting searches hold every slot and a /help waited 0.7–1.5 s behind
# them (docs/BENCHMARKS.md); the embedder itself still runs one query at a time.
CONCURRENT_UPDATES = 128


def commands(texts: replies.Texts) -> list[BotCommand]:
    """The command menu shoppers see, in one language (Telegram picks it by the app's)."""
    return [BotCommand("start", texts.command_start), BotCommand("help", texts.command_help)]


class AddressedToBot(filters.MessageFilter):
    """A private chat's message, or a group message that mentions the bot or replies to it."""

    def filter(self, message: Message) -> bool:
        if message.chat.type == "private":
            return True
        bot = message.get_bot()
        replied = message.reply_to_message
        if replied is not None and replied.from_user and replied.from_user.id == bot.id:
            return True
        mention = f"@{bot.username}".lower()
        entities = message.parse_entities(["mention"]) or message.parse_caption_entities(
            ["mention"]
        )
        return any(text.lower() == mention for text in entities.values())


# New messages only: an edited caption is not a new search, a channel post not a shopper.
NEW_MESSAGE = filters.UpdateType.MESSAGE
ADDRESSED = NEW_MESSAGE & AddressedToBot()
ADD_ITEM = (
    NEW_MESSAGE
    & (filters.PHOTO | filters.Document.IMAGE)
    & filters.CaptionRegex(r"^/add(@\w+)?(\s|$)")
)


def build_application(settings: Settings, bot: ExtBot) -> Application:
    """The application around ``bot`` (the Telegram client, made by :mod:`bot.server`)."""
    application = (
        ApplicationBuilder()
        .bot(bot)
        .context_types(CONTEXT_TYPES)
        .concurrent_updates(CONCURRENT_UPDATES)
        .build()
    )
    bot_data: BotData = application.bot_data
    bot_data.settings = settings
    bot_data.throttle = SearchThrottle(settings.searches_per_user, settings.search_limit_seconds)
    add_handlers(application)
    return application


def add_handlers(application: Application) -> None:
    application.add_handler(CommandHandler("start", handlers.start, filters=NEW_MESSAGE))
    application.add_handler(CommandHandler("help", handlers.help_command, filters=NEW_MESSAGE))
    application.add_handler(CommandHandler("reindex", admin.reindex, filters=NEW_MESSAGE))
    application.add_handler(CommandHandler("stats", admin.stats, filters=NEW_MESSAGE))
    application.add_handler(CommandHandler("add", admin.add_usage, filters=NEW_MESSAGE))
    application.add_handler(CommandHandler("remove", admin.remove, filters=NEW_MESSAGE))
    application.add_handler(CommandHandler("restore", admin.restore, filters=NEW_MESSAGE))
    # A photo (or image file) whose caption is /add: a command that CommandHandler, which
    # reads message texts only, never sees. Before the search handlers, which would take it.
    application.add_handler(MessageHandler(ADD_ITEM, admin.add))
    application.add_handler(MessageHandler(ADDRESSED & filters.PHOTO, handlers.photo))
    application.add_handler(
        MessageHandler(ADDRESSED & filters.Document.ALL, handlers.image_document)
    )
    application.add_handler(
        CallbackQueryHandler(handlers.more_like_this, pattern=buttons.MORE_LIKE_THIS)
    )
    application.add_handler(
        CallbackQueryHandler(handlers.search_from_item, pattern=buttons.SEARCH_FROM_ITEM)
    )
    application.add_handler(CallbackQueryHandler(handlers.colours_of, pattern=buttons.COLOURS_OF))
    application.add_handler(CallbackQueryHandler(handlers.refine, pattern=buttons.REFINE))
    application.add_handler(CallbackQueryHandler(handlers.vote, pattern=buttons.VOTE))
    application.add_handler(CallbackQueryHandler(handlers.unknown_button))
    application.add_handler(MessageHandler(ADDRESSED, handlers.help_command))
    application.add_error_handler(handlers.error_handler)
