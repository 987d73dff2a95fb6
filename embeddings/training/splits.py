"""A stable train / held-out split of catalog items, shared by training and evaluation.

Membership depends only on the product id (a salted hash), so it is the same on every machine,
for every run, and does not shift when items are added to or removed from the catalog.
"""

from __future__ import annotations

import hashlib

DEFAULT_HELD_OUT_FRACTION = 0.2
DEFAULT_SALT = "wardrobe-split-v1"


def is_held_out(
    item_id: str, fraction: float = DEFAULT_HELD_OUT_FRACTION, salt: str = DEFAULT_SALT
) -> bool:
    """Whether ``item_id`` belongs to the held-out part (never trained on)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    digest = hashlib.sha256(f"{salt}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction
