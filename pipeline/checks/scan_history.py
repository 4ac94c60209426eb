"""What the last passing PII scan of a table covered, read back from Dagster's check history."""

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dagster import AssetCheckKey, DagsterInstance

# dagster 1.13 filters check history by this status but does not export it at the top level.
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

# A check's evaluations that ended, passed or failed (not those planned or skipped).
COMPLETED = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}


@dataclass(frozen=True)
class ScanHistory:
    """The seed of this run's sample, and where the last passing scan left off."""

    seed: int
    first: bool = False  # no passing scan on record: every row counts as new
    watermark: datetime | None = None  # max(_fivetran_synced) the last passing scan saw
    resampled: float = 0.0  # estimated share of old rows the samples since the full scan re-read
    scans: int = 0  # passing scans since the last full scan
    rows: int = 0  # rows scanned by them, together


def unseeded() -> ScanHistory:
    """No history at hand (a test, a benchmark): a fresh random sample, no watermark."""
    return ScanHistory(seed=secrets.randbits(31))


def seed_of(run_id: str) -> int:
    return int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16) % 2**31


def _evaluation(record: AssetCheckExecutionRecord) -> Any:
    event = record.event
    return event.dagster_event.event_specific_data if event and event.dagster_event else None


def record_metadata(record: AssetCheckExecutionRecord) -> Mapping[str, Any]:
    """An evaluation's metadata as stored (empty when the record holds no evaluation)."""
    return getattr(_evaluation(record), "metadata", None) or {}


def values(record: AssetCheckExecutionRecord) -> dict[str, Any] | None:
    """An evaluation's metadata as plain values; None when the record holds no evaluation."""
    evaluation = _evaluation(record)
    if not hasattr(evaluation, "metadata"):
        return None
    return {name: getattr(value, "value", value) for name, value in evaluation.metadata.items()}


def read(instance: DagsterInstance, check: AssetCheckKey, run_id: str) -> ScanHistory:
    """This run's seed, and the metadata of the check's latest passing evaluation."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        check, limit=1, status={AssetCheckExecutionRecordStatus.SUCCEEDED}
    )
    meta = values(records[0]) if records else None
    if meta is None:
        return ScanHistory(seed=seed_of(run_id), first=True)
    coverage = meta.get("coverage")
    if not isinstance(coverage, dict):  # a pass that recorded no coverage: scan everything
        return ScanHistory(seed=seed_of(run_id), first=True)
    watermark = coverage.get("watermark")
    return ScanHistory(
        seed=seed_of(run_id),
        watermark=datetime.fromisoformat(watermark) if watermark else None,
        resampled=float(coverage.get("resampled_since_full_scan") or 0.0),
        scans=int(coverage.get("scans_since_full_scan") or 0),
        rows=int(coverage.get("rows_scanned_since_full_scan") or 0),
    )
