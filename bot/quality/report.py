"""The evaluation's table: one row per configuration, as text or Markdown."""

from __future__ import annotations

from bot.quality.runner import Evaluation

# The table's columns: (heading, key in ConfigResult.metrics, digits).
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("type P@5", "catalog type", 3),
    ("colour P@5", "catalog colour", 3),
    ("type+colour P@5", "catalog type+colour", 3),
    ("gender P@5", "catalog gender", 3),
    ("phone R@1", "phone R@1", 3),
    ("phone R@5", "phone R@5", 3),
    ("phone type P@5", "phone type", 3),
    ("query ms", "query ms", 1),
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
