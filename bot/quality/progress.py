"""How the engine reports progress without knowing how it is shown: the caller passes a
factory of ``(done, total)`` callbacks (the CLI's progress bars), or nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

from bot.core.indexing import ProgressCallback

Progress = Callable[[str], AbstractContextManager[ProgressCallback]]
"""Given a description, a context that yields the callback to report ``(done, total)`` to."""

_T = TypeVar("_T")


def tracked(items: Sequence[_T], desc: str, progress: Progress | None) -> Iterator[_T]:
    """``items`` one by one, reporting each one done to a display made by ``progress``."""
    if progress is None:
        yield from items
        return
    with progress(desc) as advance:
        advance(0, len(items))
        for done, item in enumerate(items, start=1):
            yield item
            advance(done, len(items))
