"""Switchable faults and the rate limit of the Fivetran sandbox, on disk for every process."""

import math
import time
from typing import Any

from pipeline.sandbox import disk

FAULT_KINDS = {
    "http_5xx": "the next N API requests answer 503",
    "rate_limit": "the next N API requests answer 429 with Retry-After",
    "requests_per_second": "more than N requests in one second (all processes) answer 429 "
    "with Retry-After; off unless set",
    "sync_failure": "syncs of these connectors fail (failed_at advances, nothing lands)",
    "hold_sync": "syncs of these connectors stay `syncing` until this fault is cleared",
    "reschedule": "syncs of these connectors are rescheduled by Fivetran (quota), not run",
    "reschedule_seconds": "how far ahead a rescheduled sync is set (default 3600)",
    "reschedule_times": "how many syncs are rescheduled before one runs (default: all)",
    "paused": "these connectors are paused",
    "never_synced": "these connectors have no schema yet (never synced)",
    "latency_seconds": "every API request waits this long before its answer (a distant API)",
}


def _faults_file():
    return disk.folder("fivetran") / "faults.json"


def _rate_file():
    return disk.folder("fivetran") / "rate.json"


def set_faults(**faults: Any) -> None:
    """Switch sandbox faults on (see FAULT_KINDS); they persist on disk for every process."""
    unknown = set(faults) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown Fivetran sandbox faults {sorted(unknown)}; known: {FAULT_KINDS}")
    with disk.edit_json(_faults_file(), {}) as current:
        current.update(faults)


def clear_faults(*names: str) -> None:
    """Switch the named faults off, or every fault when none is named."""
    with disk.edit_json(_faults_file(), {}) as current:
        for name in names or list(current):
            current.pop(name, None)


def faults() -> dict[str, Any]:
    return disk.read_json(_faults_file(), {})


def take_http_fault() -> tuple[int, float] | None:
    """(status, retry-after seconds) of the next injected or rate-limited answer; None if none."""
    injected = None
    with disk.edit_json(_faults_file(), {}) as current:
        for kind, status in (("http_5xx", 503), ("rate_limit", 429)):
            if current.get(kind, 0) > 0:
                current[kind] -= 1
                injected = status, 1.0
                break
        limit = current.get("requests_per_second")
        latency = float(current.get("latency_seconds") or 0)
    time.sleep(latency)  # outside the lock: requests in flight wait side by side
    if injected:
        return injected
    return _over_rate(int(limit)) if limit else None


def take_reschedule(schema: str) -> bool:
    """Whether Fivetran reschedules this connector's due sync, consuming one `reschedule_times`."""
    with disk.edit_json(_faults_file(), {}) as current:
        if schema not in current.get("reschedule", []):
            return False
        if "reschedule_times" not in current:
            return True
        if current["reschedule_times"] <= 0:
            return False
        current["reschedule_times"] -= 1
        return True


def _over_rate(limit: int) -> tuple[int, float] | None:
    """429 when `limit` requests were answered in the last second (a sliding window)."""
    now = time.time()
    with disk.edit_json(_rate_file(), {"answered": []}) as rate:
        recent = [t for t in rate["answered"] if now - t < 1.0]
        if len(recent) >= limit:
            rate["answered"] = recent
            return 429, 1.0 - (now - min(recent))
        rate["answered"] = [*recent, now]
    return None


def retry_after(seconds: float) -> str:
    """Retry-After is whole seconds (RFC 9110): round up, never 0."""
    return str(max(1, math.ceil(seconds)))
