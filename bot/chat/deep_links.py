"""``t.me/<bot>?start=item_<id>``: a web shop's "find similar" link to a catalog item.

Telegram carries at most 64 characters of ``A-Z a-z 0-9 _ -`` in a start parameter. A product
id made of those goes in as it is (``item_blue-shirt``); any other id (``sku 12/3``,
``shirt:Blue``) goes base64url-encoded after ``itemx_``. A product group id (a Shopify
handle, a Merchant ``item_group_id``) works as well: it opens the group's first variant.
"""

from __future__ import annotations

import base64
import binascii
import re

_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,59}\Z")
_MAX_PAYLOAD = 64


def item_payload(item_id: str) -> str | None:
    """The start parameter that opens ``item_id``; None when no link can hold it."""
    if _PLAIN.match(item_id):
        return f"item_{item_id}"
    encoded = base64.urlsafe_b64encode(item_id.encode()).decode().rstrip("=")
    payload = f"itemx_{encoded}"
    return payload if len(payload) <= _MAX_PAYLOAD else None


def item_link(bot_username: str, item_id: str) -> str | None:
    payload = item_payload(item_id)
    return None if payload is None else f"https://t.me/{bot_username}?start={payload}"


def item_id_from(payload: str) -> str | None:
    """The product id a start parameter names; None when it names none."""
    if payload.startswith("itemx_"):
        encoded = payload.removeprefix("itemx_")
        padded = (encoded + "=" * (-len(encoded) % 4)).encode()
        try:
            item_id = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return item_id or None
    if payload.startswith("item_") and _PLAIN.match(item_id := payload.removeprefix("item_")):
        return item_id
    return None
