"""What the Fivetran sandbox knows and does: connector state and asynchronous syncs.

A sync is requested (`scheduled`), claimed by a background thread of whichever process serves
the connector next (`syncing`), and recorded as `succeeded_at` or `failed_at`. State lives on
disk, so any process can poll it; a sync whose worker process died is taken over by the next
process that reads the connector.
"""

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.sandbox import disk, incremental, source_edits
from pipeline.sandbox.fivetran_faults import FAULT_KINDS, clear_faults, faults, set_faults
from pipeline.sandbox.paging import BadRequest
from pipeline.sandbox.sources import Source, requested_defects, sources

__all__ = ["FAULT_KINDS", "clear_faults", "faults", "set_faults"]

GROUP_ID = "tollgate_sandbox"
HOLD_LIMIT_SECONDS = 120  # a held sync gives up waiting for its fault to be cleared
SCHEDULE_TYPES = ("auto", "manual")
SYNC_FREQUENCIES = (5, 15, 30, 60, 120, 180, 360, 480, 720, 1440)
# Fields of Fivetran's UpdateConnectorRequest the sandbox accepts; it acts on the first three.
PATCHABLE = {"paused", "schedule_type", "sync_frequency", "pause_after_trial", "daily_sync_time",
             "trust_certificates", "trust_fingerprints", "config", "auth", "run_setup_tests",
             "paused_after_trial", "schema_status", "is_historical_sync"}  # fmt: skip

_running: set[tuple[str, str]] = set()  # (state file, connector id) synced by this process
_running_lock = threading.Lock()


class Paused(RuntimeError):
    """The connector is paused: Fivetran refuses to sync it."""


def _state_file() -> Path:
    return disk.folder("fivetran") / "connectors.json"


def source(connector_id: str) -> Source | None:
    return next((s for s in sources() if s.connector_id == connector_id), None)


def is_paused(src: Source, entry: dict[str, Any]) -> bool:
    return bool(entry.get("paused")) or src.schema in faults().get("paused", [])


def connector_details(src: Source) -> dict[str, Any]:
    """The connection as Fivetran's API describes it (ConnectorResponseV1), after due progress."""
    advance(src)
    entry = disk.read_json(_state_file(), {}).get(src.connector_id, {})
    sync = entry.get("sync")
    paused = is_paused(src, entry)
    rescheduled_for = entry.get("rescheduled_for")
    if paused:
        sync_state = "paused"
    elif sync and sync.get("worker"):
        sync_state = "syncing"
    elif rescheduled_for:
        sync_state = "rescheduled"
    else:
        sync_state = "scheduled"
    return {
        "id": src.connector_id,
        "group_id": GROUP_ID,
        "service": src.service,
        "service_version": 1,
        "schema": src.schema,
        "connected_by": "tollgate_sandbox",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "succeeded_at": entry.get("succeeded_at"),
        "failed_at": entry.get("failed_at"),
        "paused": paused,
        "pause_after_trial": False,
        "sync_frequency": entry.get("sync_frequency", 360),
        "schedule_type": entry.get("schedule_type", "auto"),
        "status": {
            "setup_state": "connected",
            "schema_status": "ready",
            "sync_state": sync_state,
            "update_state": "delayed" if rescheduled_for else "on_schedule",
            "is_historical_sync": bool(sync and sync.get("historical"))
            or not entry.get("succeeded_at"),
            "rescheduled_for": rescheduled_for,
            "tasks": entry.get("tasks", []),
            "warnings": [],
        },
        "config": {},
        "source_sync_details": {},
    }


def update_connector(src: Source, changes: Any) -> None:
    """PATCH a connector: `paused`, `schedule_type` and `sync_frequency`, validated as Fivetran does."""
    if not isinstance(changes, dict):
        raise BadRequest("Request body must be a JSON object")
    unknown = sorted(set(changes) - PATCHABLE)
    if unknown:
        raise BadRequest(f"Unrecognized field(s): {', '.join(unknown)}")
    for field in ("paused", "pause_after_trial", "trust_certificates", "trust_fingerprints"):
        if field in changes and not isinstance(changes[field], bool):
            raise BadRequest(f"Field '{field}' must be a boolean")
    if "schedule_type" in changes and changes["schedule_type"] not in SCHEDULE_TYPES:
        raise BadRequest(
            f"Invalid value '{changes['schedule_type']}' for field 'schedule_type': "
            f"expected one of {', '.join(SCHEDULE_TYPES)}"
        )
    frequency = changes.get("sync_frequency")
    if "sync_frequency" in changes and (
        isinstance(frequency, bool) or frequency not in SYNC_FREQUENCIES
    ):
        raise BadRequest(
            f"Invalid value '{frequency}' for field 'sync_frequency': "
            f"expected one of {', '.join(map(str, SYNC_FREQUENCIES))}"
        )
    with disk.edit_json(_state_file(), {}) as state:
        entry = state.setdefault(src.connector_id, {})
        for field in ("paused", "schedule_type", "sync_frequency"):
            if field in changes:
                entry[field] = changes[field]


def schema_config(src: Source) -> dict[str, Any]:
    """Fivetran's schema config (StandardConfigResponse), per-column enabled/hashed included."""
    if src.schema in faults().get("never_synced", []):
        return {"enable_new_by_default": True, "schema_change_handling": "ALLOW_COLUMNS"}
    config = src.column_config(requested_defects())
    return {
        "enable_new_by_default": True,
        "schema_change_handling": "ALLOW_COLUMNS",
        "schemas": {
            src.schema: {
                "name_in_destination": src.schema,
                "enabled": True,
                "tables": {
                    table: {
                        "name_in_destination": table,
                        "enabled": True,
                        "sync_mode": "SOFT_DELETE",
                        "columns": columns_config(config.get(table, {})),
                    }
                    for table in src.tables
                },
            }
        },
    }


def columns_config(columns: dict[str, dict[str, bool]]) -> dict[str, Any]:
    return {
        name: {
            "name_in_destination": name,
            "enabled": flags.get("enabled", True),
            "hashed": flags.get("hashed", False),
            "enabled_patch_settings": {"allowed": True},
        }
        for name, flags in columns.items()
    }


def check_scope(src: Source, scope: Any) -> dict[str, list[str]]:
    """A re-sync scope ({schema: [tables]}) naming only this connector's tables."""
    if not isinstance(scope, dict) or not scope:
        raise BadRequest("The re-sync scope must be a non-empty map of schema to tables")
    for schema, tables in scope.items():
        if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
            raise BadRequest(f"The re-sync scope of schema '{schema}' must be a list of tables")
        unknown = [t for t in tables if schema != src.schema or t not in src.tables]
        if unknown:
            raise BadRequest(
                f"Tables {', '.join(map(repr, unknown))} of schema '{schema}' are not in "
                f"connection '{src.connector_id}'"
            )
    return scope


def request_sync(
    src: Source, historical: bool = False, scope: dict[str, list[str]] | None = None,
    restart: bool = True,
) -> None:  # fmt: skip
    """Queue a sync (a historical re-sync of `scope`, or of every table); answers at once.

    A sync already running is re-run when it ends if `restart` (Fivetran's force), else kept.
    """
    with disk.edit_json(_state_file(), {}) as state:
        entry = state.setdefault(src.connector_id, {})
        if is_paused(src, entry):
            raise Paused(f"Connection '{src.connector_id}' is paused")
        wanted = {"historical": historical, "scope": scope if historical else None}
        sync = entry.get("sync")
        if sync is None:
            entry["sync"] = {**wanted, "worker": None, "not_before": None, "rerun": None}
        elif sync.get("worker"):
            if restart or historical:
                sync["rerun"] = _wider(sync.get("rerun"), wanted)
        else:
            sync.update(_wider(sync, wanted))
    advance(src)


def _wider(current: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, Any]:
    """Two queued syncs as one: historical if either is, over the union of their scopes."""
    if not current:
        return wanted
    if not (current.get("historical") or wanted["historical"]):
        return {"historical": False, "scope": None}
    scopes = [s.get("scope") if s.get("historical") else {} for s in (current, wanted)]
    if any(s is None for s in scopes):
        return {"historical": True, "scope": None}
    union: dict[str, list[str]] = {}
    for scope in scopes:
        for schema, tables in scope.items():
            union[schema] = sorted({*union.get(schema, []), *tables})
    return {"historical": True, "scope": union}


def advance(src: Source) -> None:
    """Make a queued sync progress: reschedule it, or start it in a worker of this process."""
    state_file = _state_file()
    with disk.edit_json(state_file, {}) as state:
        entry = state.get(src.connector_id, {})
        sync = entry.get("sync")
        if not sync or _alive(state_file, src, sync.get("worker")):
            return
        if sync.get("not_before") and _parse(sync["not_before"]) > datetime.now(UTC):
            return
        if _rescheduled(src):
            delay = float(faults().get("reschedule_seconds", 3600))
            sync["not_before"] = _stamp(datetime.now(UTC) + timedelta(seconds=delay))
            entry["rescheduled_for"] = sync["not_before"]
            return
        sync["worker"], sync["not_before"], entry["rescheduled_for"] = os.getpid(), None, None
        job = _job(state_file, src, sync)
        with _running_lock:  # before the lock is released: no other thread may claim it too
            _running.add((str(state_file), src.connector_id))
    threading.Thread(target=job, name=f"fivetran-sync-{src.connector_id}", daemon=True).start()


def sync_now(src: Source, historical: bool = False) -> None:
    """Request one sync and wait for it (Fivetran's own schedule, in tests and benchmarks)."""
    request_sync(src, historical=historical)
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while disk.read_json(_state_file(), {}).get(src.connector_id, {}).get("sync"):
        if time.monotonic() > deadline:  # another process is running it and does not finish
            raise TimeoutError(f"sync of {src.connector_id} did not finish")
        time.sleep(0.05)


def _alive(state_file: Path, src: Source, worker: int | None) -> bool:
    if not worker:
        return False
    if worker == os.getpid():
        with _running_lock:
            return (str(state_file), src.connector_id) in _running
    try:
        os.kill(worker, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job(state_file: Path, src: Source, sync: dict[str, Any]) -> Callable[[], None]:
    """The sync's work, bound to this moment's data folder, warehouse and defects."""
    from pipeline.environment import warehouse

    configured = warehouse()  # chosen now; initialised (EnvVars read) in the worker thread
    defects = requested_defects()
    folder = state_file.parent
    fail_it = src.schema in faults().get("sync_failure", [])
    held = src.schema in faults().get("hold_sync", [])

    def run() -> None:
        try:
            target = configured.process_config_and_initialize()
            plan = dict(sync)
            while True:
                if held:
                    _wait_for_release(folder, src)
                tasks = _land_or_fail(src, target, defects, folder, plan, fail_it)
                with disk.edit_json(state_file, {}) as state:
                    entry = state.setdefault(src.connector_id, {})
                    rerun = (entry.get("sync") or {}).get("rerun")
                    if rerun:
                        plan = {**plan, **rerun}
                        entry["sync"]["rerun"] = None
                        continue
                    previous = max(entry.get("succeeded_at") or "", entry.get("failed_at") or "")
                    entry["failed_at" if tasks else "succeeded_at"] = _after(previous)
                    entry["tasks"], entry["sync"] = tasks, None
                    break
        finally:
            with _running_lock:
                _running.discard((str(state_file), src.connector_id))

    return run


def _wait_for_release(folder: Path, src: Source) -> None:
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if src.schema not in disk.read_json(folder / "faults.json", {}).get("hold_sync", []):
            return
        time.sleep(0.05)


def _land_or_fail(src, target, defects, folder, plan, fail_it) -> list[dict[str, str]]:
    """Land the sync; the tasks Fivetran reports for a failed one (none when it succeeded)."""
    if fail_it:
        return [{"code": "sync_failed", "message": "source refused the connection (injected)"}]
    try:
        land(src, target, defects, folder, plan.get("historical", False), plan.get("scope"))
    except Exception as error:  # Fivetran reports a failed sync; the error goes in its tasks
        return [{"code": "sync_failed", "message": f"{type(error).__name__}: {error}"}]
    return []


def land(src, target, defects, folder, historical: bool, scope) -> None:
    """Write each table: merged incrementally, or rewritten whole by a historical re-sync."""
    synced_at = pd.Timestamp(datetime.now(UTC))
    edits = disk.read_json(source_edits.edits_file(folder), {}).get(src.connector_id)
    frames = src.land(defects, synced_at.to_pydatetime(), edits)
    for table, fresh in frames.items():
        if scope is not None and table not in scope.get(src.schema, []):
            continue  # a table re-sync touches only the tables it names
        memory = folder / "landed" / src.connector_id / f"{table}.parquet"
        previous = None if historical else incremental.read_landed(memory)
        merged = incremental.merge(previous, fresh, synced_at, src.tables[table].key)
        target.write_table(src.schema, table, merged)
        incremental.remember(memory, merged)


def _rescheduled(src: Source) -> bool:
    """Whether this sync is rescheduled, consuming one of `reschedule_times` when it is set."""
    from pipeline.sandbox.fivetran_faults import _faults_file

    with disk.edit_json(_faults_file(), {}) as current:
        if src.schema not in current.get("reschedule", []):
            return False
        if "reschedule_times" not in current:
            return True
        if current["reschedule_times"] <= 0:
            return False
        current["reschedule_times"] -= 1
        return True


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _after(previous: str) -> str:
    """Now, or just after the previous completion: the client polls for a strictly later time."""
    now = datetime.now(UTC)
    if previous:
        now = max(now, _parse(previous) + timedelta(milliseconds=1))
    return _stamp(now)
