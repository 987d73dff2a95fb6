"""Everything python-telegram-bot: the application's wiring (:mod:`.app`), shoppers' and
admins' handlers, the album sender, what the bot says and its buttons."""
