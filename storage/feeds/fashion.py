"""The Fashion Product Images format (``styles.csv`` + images folder), through read_styles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from storage.feeds.rows import FeedRow, ListedItem
from storage.source import CatalogSourceError, read_styles


def read_fashion(path: Path, images_dir: Path | None) -> list[FeedRow]:
    folder = images_dir if images_dir is not None else path.parent / "images"
    rows = []
    try:
        for row in read_styles(path, folder):
            where = f"line {row.line}"
            if row.item is None:
                rows.append(FeedRow(None, where, row.problem))
                continue
            image = str(Path(row.item.image_path).absolute())
            item = dataclasses.replace(row.item, image_path="")
            rows.append(FeedRow(ListedItem(item, (image,)), where))
    except UnicodeDecodeError as error:
        raise CatalogSourceError(f"{path} is not UTF-8 text (byte {error.start})") from None
    return rows
