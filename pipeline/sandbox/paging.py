"""Fivetran's cursor paging: `limit` (1..1000, default 100) and an opaque `cursor` per list."""

import base64
from collections.abc import Sequence
from typing import Any

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class BadRequest(ValueError):
    """The request is malformed: answered 400 with Fivetran's InvalidInput body."""


def page(items: Sequence[Any], query: dict[str, list[str]], listing: str) -> dict[str, Any]:
    """One page of `items`; `nextCursor` only when more follow (the last page leaves it out)."""
    limit = _limit(query)
    start = _offset(query, listing, len(items))
    found: dict[str, Any] = {"items": list(items[start : start + limit])}
    if start + limit < len(items):
        found["nextCursor"] = _cursor(listing, start + limit)
    return found


def _limit(query: dict[str, list[str]]) -> int:
    raw = (query.get("limit") or [str(DEFAULT_LIMIT)])[-1]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"Invalid 'limit' value '{raw}': expected a number in 1..{MAX_LIMIT}")
    return int(raw)


def _cursor(listing: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{listing}:{offset}".encode()).decode().rstrip("=")


def _offset(query: dict[str, list[str]], listing: str, total: int) -> int:
    raw = (query.get("cursor") or [""])[-1]
    if not raw:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        name, offset = decoded.rsplit(":", 1)
        if name == listing and offset.isdigit() and int(offset) <= total:
            return int(offset)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        pass
    raise BadRequest(f"Invalid 'cursor' value '{raw[:40]}'")
