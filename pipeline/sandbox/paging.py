"""Cursor paging as Fivetran's list endpoints do it: `limit` and `cursor` in, `nextCursor` out."""

import base64
from collections.abc import Sequence
from typing import Any

DEFAULT_LIMIT = 100  # Fivetran's page size when a request names none
MAX_LIMIT = 1000


class BadPage(ValueError):
    """A `limit` or `cursor` the API refuses (answered 400)."""


def page(items: Sequence[Any], query: dict[str, list[str]]) -> dict[str, Any]:
    """One page of `items`; `nextCursor` only when more follow, as Fivetran omits it on the last."""
    raw_limit = query.get("limit", [str(DEFAULT_LIMIT)])[0]
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise BadPage(f"limit must be between 1 and {MAX_LIMIT}, got {raw_limit!r}")
    start = _offset(query["cursor"][0]) if query.get("cursor") else 0
    end = start + int(raw_limit)
    found: dict[str, Any] = {"items": list(items[start:end])}
    if end < len(items):
        found["nextCursor"] = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode()
    return found


def _offset(cursor: str) -> int:
    try:
        kind, _, offset = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind == "offset" and offset.isdigit():
            return int(offset)
    except ValueError:
        pass
    raise BadPage(f"cursor {cursor!r} is not one this API issued")
