"""The Telegram bot, the ``wardrobe`` CLI and the recommender core that both drive."""
