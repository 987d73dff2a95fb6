"""Running the bot as a service: the Telegram client, polling or webhook, signals, health."""
