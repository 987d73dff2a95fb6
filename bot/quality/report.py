"""The evaluation's tables, as text or Markdown: one row per configuration, and real-photo
precision per garment class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.quality.runner import Evaluation

# The table's columns: (heading, key in ConfigResult.metrics, digits). Real photos first:
# they are what shoppers send.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("real type P@5", "real type", 3),
    ("real group P@5", "real group", 3),
    ("real exact type P@5", "real exact type", 3),
    ("real colour P@5", "real colour", 3),
    ("real ms", "real ms", 1),
    ("type P@5", "catalog type", 3),
    ("colour P@5", "catalog colour", 3),
    ("type+colour P@5", "catalog type+colour", 3),
    ("gender P@5", "catalog gender", 3),
    ("phone R@1", "phone R@1", 3),
    ("phone R@5", "phone R@5", 3),
    ("phone type P@5", "phone type", 3),
    ("phone ms", "phone ms", 1),
)


def format_table(evaluation: Evaluation, *, markdown: bool = False) -> str:
    """One row per configuration; Markdown for docs/BENCHMARKS.md, else aligned text."""
    headings = ["config", "model", *(heading for heading, _, _ in COLUMNS)]
    rows = [
        [
            result.name,
            result.model,
            *(_number(result.metrics.get(key), digits) for _, key, digits in COLUMNS),
        ]
        for result in evaluation.results
    ]
    return _table(headings, rows, markdown)


def format_class_table(evaluation: Evaluation, *, markdown: bool = False) -> str:
    """Real-photo type / group P@5 per garment class and configuration, with how many photos
    the class has and how many gallery items fit it (fewer than 5 caps its type P@5)."""
    headings = ["class", "photos", "gallery fits", *(r.name for r in evaluation.results)]
    rows = [
        [
            label,
            str(photos),
            str(fitting),
            *(
                f"{_number(result.per_class.get(label, {}).get('type'), 2)} / "
                f"{_number(result.per_class.get(label, {}).get('group'), 2)}"
                for result in evaluation.results
            ),
        ]
        for label, (photos, fitting) in evaluation.real_classes.items()
    ]
    return _table(headings, rows, markdown)


def _table(headings: list[str], rows: Sequence[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [headings, *rows]
    )


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
