"""Product feeds on local disk (Google Merchant Center, Shopify's CSV export, any CSV/TSV,
Fashion Product Images) read into rows the ingest consumes. Nothing here downloads."""

from storage.feeds.generic import parse_mapping
from storage.feeds.reader import FORMATS, detect_format, read_feed
from storage.feeds.rows import Feed, FeedRow, ListedItem

__all__ = [
    "FORMATS",
    "Feed",
    "FeedRow",
    "ListedItem",
    "detect_format",
    "parse_mapping",
    "read_feed",
]
