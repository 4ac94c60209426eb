"""Redact values before they reach Dagster metadata: the event log must not copy the PII it guards.

A PII-shaped span is shown as its class and its last two characters, `[ssn …20]`, with at most
three characters of the text on either side; the rest of the value is left out.
"""

import re
from typing import Any

from pipeline.checks.detect import Match, candidates

CONTEXT = 3  # characters of surrounding text shown next to a span: never four of anything
TOKEN = re.compile(r"\[[a-z]+ …[^\]]{0,2}\]")
_QUOTED = re.compile(r"'(?:[^']|'')*'?")  # SQL literals; "identifiers" stay, they name columns


def token(kind: str, text: str) -> str:
    return f"[{kind} …{text[-2:] if len(text) > 4 else ''}]"


def _spans(text: str) -> list[Match]:
    """Candidate spans, overlapping ones merged (the first class names the merged span)."""
    merged: list[Match] = []
    for m in candidates(text):
        if merged and m.start < merged[-1].end:
            last = merged.pop()
            m = Match(last.start, max(last.end, m.end), last.kind)
        merged.append(m)
    return merged


def redact_text(text: str) -> str:
    """Only the PII-shaped spans of a text, each as a token with a few characters around it."""
    out, shown = [], 0
    for i, m in enumerate(_spans(text)):
        out.append(_between(text[shown : m.start], first=i == 0))
        out.append(token(m.kind, text[m.start : m.end]))
        shown = m.end
    tail = text[shown:]
    out.append(tail if len(tail) <= CONTEXT else tail[:CONTEXT] + "…")
    return "".join(out)


def _between(gap: str, first: bool) -> str:
    """The text between two spans (or before the first), no more than CONTEXT characters in a row."""
    if len(gap) <= CONTEXT:
        return gap
    if first:
        return "…" + gap[-CONTEXT:]
    return gap[:CONTEXT] + "…" + gap[max(CONTEXT, len(gap) - CONTEXT) :]


def redact(value: Any, classification: str | None = None) -> Any:
    """A value safe for metadata: a classified PII value as its class, PII-shaped spans as tokens."""
    if value is None:
        return None
    text = str(value)
    if classification not in (None, "public", "internal"):
        return token(classification, text)
    if not _spans(text):
        if isinstance(value, int | float):
            return value
        return text if len(text) <= 80 else text[:80] + "…"  # a 1 MB value stays out of the log
    return redact_text(text)


def scrub_error(error: BaseException | str) -> str:
    """Database error text without the values it quotes, and with PII-shaped spans as tokens."""
    text = _QUOTED.sub("'…'", str(error))
    spans = _spans(text)
    for m in reversed(spans):
        text = text[: m.start] + token(m.kind, text[m.start : m.end]) + text[m.end :]
    return text
