"""The running bot's sign of life, and ``wardrobe health`` reading it (no Telegram code here:
the health check must start fast).

The bot writes the time into ``<data dir>/heartbeat`` every :data:`BEAT_SECONDS` while it
receives updates (a long poll answered recently, or the webhook server up) with its catalog
open. A check fails when the file is older than :data:`STALE_SECONDS`, and in webhook mode also
when ``GET /healthz`` does not answer 200.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path

BEAT_SECONDS = 15.0
STALE_SECONDS = 60.0
HEALTH_PATH = "/healthz"


def heartbeat_path(data_dir: Path) -> Path:
    """Where the bot serving ``data_dir`` writes its heartbeat (removed when it stops)."""
    return data_dir / "heartbeat"


def beat(path: Path) -> None:
    """Write the time now, atomically: the check never reads half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{time.time():.0f}\n")
    os.replace(tmp, path)


def problem(path: Path, webhook_port: int | None = None) -> str | None:
    """What is wrong with the running bot, or None when it is healthy."""
    try:
        age = time.time() - float(path.read_text())
    except (OSError, ValueError):
        return f"no heartbeat in {path}: the bot is not running (or not yet started)"
    if age > STALE_SECONDS:
        return f"the last heartbeat is {age:.0f} s old: the bot is not receiving updates"
    if webhook_port is not None:
        url = f"http://127.0.0.1:{webhook_port}{HEALTH_PATH}"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # not via a proxy
        try:
            with direct.open(url, timeout=5):
                pass
        except urllib.error.HTTPError as error:
            return f"{url} answered {error.code}"
        except OSError as error:
            return f"{url} did not answer: {error}"
    return None
