"""``python -m bot.cli`` is ``wardrobe``."""

import sys

from bot.cli.main import main

sys.exit(main())
