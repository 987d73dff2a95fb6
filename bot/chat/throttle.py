"""What a burst of messages gets: a per-user limit on searches, so one user's flood cannot
slow everyone else down, and one answer per album.

Searches past the limit are refused before anything is downloaded or embedded; the user is
told once per window (a flood of refusals would be a flood too).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import Enum


class Verdict(Enum):
    GO = "go"
    WAIT = "wait"
    """Over the limit, and not told yet in this window: say "one moment"."""
    QUIET = "quiet"
    """Over the limit and already told: say nothing."""


class SearchThrottle:
    """At most ``limit`` searches per user in any ``seconds``-long window."""

    def __init__(
        self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.seconds = seconds
        self._clock = clock
        self._starts: dict[int, deque[float]] = {}
        self._told: dict[int, float] = {}
        self._swept = self._clock()

    def check(self, user_id: int) -> Verdict:
        now = self._clock()
        if now - self._swept > self.seconds:  # users who went quiet, at most once a window
            self._swept = now
            for other in {*self._starts, *self._told}:
                self._forget(other, now - self.seconds)
        self._forget(user_id, now - self.seconds)
        starts = self._starts.setdefault(user_id, deque())
        if len(starts) < self.limit:
            starts.append(now)
            self._told.pop(user_id, None)  # served again: a next refusal is news
            return Verdict.GO
        if user_id in self._told:
            return Verdict.QUIET
        self._told[user_id] = now
        return Verdict.WAIT

    def retry_in(self, user_id: int) -> float:
        """Seconds until ``user_id`` may search again."""
        starts = self._starts.get(user_id)
        if not starts or len(starts) < self.limit:
            return 0.0
        return max(0.0, starts[0] + self.seconds - self._clock())

    def _forget(self, user_id: int, cutoff: float) -> None:
        """Drop ``user_id``'s searches (and refusal) older than ``cutoff``."""
        starts = self._starts.get(user_id)
        while starts and starts[0] <= cutoff:
            starts.popleft()
        if not starts:
            self._starts.pop(user_id, None)
        if self._told.get(user_id, cutoff) <= cutoff:
            self._told.pop(user_id, None)


class RecentAlbums:
    """Albums (``media_group_id``) already answered: an album of several photos arrives as
    one message per photo and gets one answer, for its first photo."""

    def __init__(self, remembered: int = 1000) -> None:
        self._seen: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
        self._remembered = remembered

    def first_of(self, media_group_id: str | None) -> bool:
        """Whether this message starts an answer: it is no album's, or its album's first."""
        if media_group_id is None:
            return True
        if media_group_id in self._seen:
            return False
        self._seen[media_group_id] = None
        if len(self._seen) > self._remembered:
            del self._seen[next(iter(self._seen))]
        return True
