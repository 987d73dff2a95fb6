"""Scheduled work with python-telegram-bot's JobQueue: the heartbeat, pruning old searches
(a bot that runs for months must not keep every search), and WAL checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Callable

from telegram.ext import Application

from bot.chat.context import ChatContext
from bot.server import heartbeat

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 24 * 3600
CHECKPOINT_EVERY_SECONDS = 3600


def schedule(application: Application, healthy: Callable[[], bool]) -> None:
    """Start the jobs; the heartbeat is written while ``healthy()``."""
    jobs = application.job_queue
    if jobs is None:
        raise RuntimeError("python-telegram-bot's job-queue extra is not installed")
    path = heartbeat.heartbeat_path(application.bot_data.settings.data_dir)

    async def beat(context: ChatContext) -> None:
        if healthy():
            heartbeat.beat(path)

    jobs.run_repeating(beat, heartbeat.BEAT_SECONDS, first=0, name="heartbeat")
    jobs.run_repeating(prune_searches, PRUNE_EVERY_SECONDS, first=PRUNE_EVERY_SECONDS,
                       name="prune searches")  # fmt: skip
    jobs.run_repeating(checkpoint, CHECKPOINT_EVERY_SECONDS, first=CHECKPOINT_EVERY_SECONDS,
                       name="WAL checkpoint")  # fmt: skip


async def prune_searches(context: ChatContext) -> None:
    """Delete searches older than SEARCH_RETENTION_DAYS ("More like this" on them expires)."""
    days = context.settings.search_retention_days
    removed = await context.recommender.catalog.prune_searches(days * 86400)
    log.info("pruned %d searches older than %d days", removed, days)


async def checkpoint(context: ChatContext) -> None:
    """Keep the write-ahead log from growing while readers never let SQLite truncate it."""
    await context.recommender.catalog.checkpoint()
