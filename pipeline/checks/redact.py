"""Redact values before they reach Dagster metadata: the event log must not copy the PII it guards."""

import re
from typing import Any

from pipeline.checks.patterns import pii_kinds


def mask(text: str) -> str:
    """Keep the shape, hide the content: j***@e***.com, 1**-**-***9."""
    if "@" in text:
        local, _, domain = text.partition("@")
        host, dot, tld = domain.rpartition(".")
        return f"{local[:1]}***@{(host or tld)[:1]}***{dot}{tld if host else ''}"
    if len(text) <= 4:
        return "*" * len(text)
    middle = re.sub(r"[A-Za-z0-9]", "*", text[1:-1])
    return f"{text[0]}{middle}{text[-1]}"


def redact(value: Any, classification: str | None = None) -> Any:
    """A value safe for metadata: masked when classified as PII or when it looks like PII."""
    if value is None:
        return None
    text = str(value)
    if classification in (None, "public", "internal") and not pii_kinds(text):
        if isinstance(value, int | float):
            return value
        return text if len(text) <= 80 else text[:80] + "…"  # a 1 MB value stays out of the log
    return mask_all(text)


def mask_all(text: str) -> str:
    """Mask every word of a free-text value that could carry PII."""
    if len(text) > 80:
        text = text[:80] + "…"
    return " ".join(
        mask(word) if any(c.isalnum() for c in word) else word for word in text.split(" ")
    )
