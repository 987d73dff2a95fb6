"""How the engine reports progress without knowing how it is shown: the caller passes a
factory of ``(done, total)`` callbacks (the CLI's progress bars), or nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from bot.core.indexing import ProgressCallback

_T = TypeVar("_T")


class Progress(Protocol):
    def __call__(self, desc: str, *, unit: str = "img") -> AbstractContextManager[ProgressCallback]:
        """A display named ``desc``, counting ``unit``; yields the callback to report to."""
        ...


def tracked(
    items: Sequence[_T], desc: str, progress: Progress | None, *, unit: str = "q"
) -> Iterator[_T]:
    """``items`` one by one, reporting each one done to a display made by ``progress``."""
    if progress is None:
        yield from items
        return
    with progress(desc, unit=unit) as advance:
        advance(0, len(items))
        for done, item in enumerate(items, start=1):
            yield item
            advance(done, len(items))
