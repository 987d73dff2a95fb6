"""Where a catalog comes from: a feed file or URL, in which format, read how."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from storage.feeds import parse_mapping


@dataclass(frozen=True)
class CatalogSource:
    """What ``wardrobe ingest`` and ``/reindex`` read (``storage.feeds`` does the reading)."""

    location: str
    """A local path or an http(s) URL: a product feed, a Shopify export, a CSV, styles.csv."""
    format: str = "auto"
    mapping: Mapping[str, str] = field(default_factory=dict)
    """Our field → the file's column, for CSVs whose columns have other names."""
    images_dir: Path | None = None
    """The Fashion Product Images format's ``images/`` folder (default: beside styles.csv)."""
    shop_url: str | None = None
    """The shop's address, for product links a Shopify export does not hold."""

    @classmethod
    def fashion(cls, styles_csv: Path, images_dir: Path) -> CatalogSource:
        """``styles.csv`` + ``images/<id>.jpg``: the Fashion Product Images format."""
        return cls(str(styles_csv), "fashion", images_dir=images_dir)

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    def __str__(self) -> str:
        return self.location


def load_mapping(value: str) -> dict[str, str]:
    """A column mapping given as ``field=column,...`` or as the path of a mapping file (one
    ``field = column`` per line); empty for none. Raises ``CatalogSourceError``."""
    if not value.strip():
        return {}
    path = Path(value)
    return parse_mapping(path.read_text(encoding="utf-8") if path.is_file() else value)
