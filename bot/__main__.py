"""``python -m bot`` starts the bot, like ``wardrobe run``."""

import sys

from bot.cli.main import main

sys.exit(main([*sys.argv[1:], "run"]))  # top-level options such as --data-dir first
