"""Asynchronous Fivetran sandbox syncs: requested, run by a background worker, recorded.

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

from pipeline.sandbox import disk
from pipeline.sandbox.fivetran_connectors import (
    Paused,
    check_scope,
    details,
    is_paused,
    schema_config,
    source,
    state_file,
    update_connector,
)
from pipeline.sandbox.fivetran_faults import (
    FAULT_KINDS,
    clear_faults,
    faults,
    set_faults,
    take_reschedule,
)
from pipeline.sandbox.sources import GROUP_ID, Source, requested_defects

__all__ = ["FAULT_KINDS", "GROUP_ID", "Paused", "check_scope", "clear_faults", "faults",
           "schema_config", "set_faults", "source", "update_connector"]  # fmt: skip

HOLD_LIMIT_SECONDS = 120  # a held sync gives up waiting for its fault to be cleared

_running: set[tuple[str, str]] = set()  # (state file, connector id) synced by this process
_running_lock = threading.Lock()


def connector_details(src: Source) -> dict[str, Any]:
    """The connection as Fivetran's API describes it, after whatever progress is due."""
    advance(src)
    return details(src)


def request_sync(
    src: Source, historical: bool = False, scope: dict[str, list[str]] | None = None,
    restart: bool = True,
) -> None:  # fmt: skip
    """Queue a sync (a historical re-sync of `scope`, or of every table); answers at once.

    A sync already running is re-run when it ends if `restart` (Fivetran's force), else kept.
    """
    with disk.edit_json(state_file(), {}) as state:
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
    path = state_file()
    with disk.edit_json(path, {}) as state:
        entry = state.get(src.connector_id, {})
        sync = entry.get("sync")
        if not sync or _alive(path, src, sync.get("worker")):
            return
        if sync.get("not_before") and _parse(sync["not_before"]) > datetime.now(UTC):
            return
        if take_reschedule(src.schema):
            delay = float(faults().get("reschedule_seconds", 3600))
            sync["not_before"] = _stamp(datetime.now(UTC) + timedelta(seconds=delay))
            entry["rescheduled_for"] = sync["not_before"]
            return
        sync["worker"], sync["not_before"], entry["rescheduled_for"] = os.getpid(), None, None
        job = _job(path, src, sync)
        with _running_lock:  # before the lock is released: no other thread may claim it too
            _running.add((str(path), src.connector_id))
    threading.Thread(target=job, name=f"fivetran-sync-{src.connector_id}", daemon=True).start()


def sync_now(src: Source, historical: bool = False) -> None:
    """Request one sync and wait for it (Fivetran's own schedule, in tests and benchmarks)."""
    request_sync(src, historical=historical)
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while disk.read_json(state_file(), {}).get(src.connector_id, {}).get("sync"):
        if time.monotonic() > deadline:  # another process is running it and does not finish
            raise TimeoutError(f"sync of {src.connector_id} did not finish")
        time.sleep(0.05)


def _alive(path: Path, src: Source, worker: int | None) -> bool:
    if not worker:
        return False
    if worker == os.getpid():
        with _running_lock:
            return (str(path), src.connector_id) in _running
    try:
        os.kill(worker, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job(path: Path, src: Source, sync: dict[str, Any]) -> Callable[[], None]:
    """The sync's work, bound to this moment's data folder, warehouse and defects."""
    from pipeline.environment import warehouse

    configured = warehouse()  # chosen now; initialised (EnvVars read) in the worker thread
    defects = requested_defects()
    folder = path.parent
    fail_it = src.schema in faults().get("sync_failure", [])
    held = src.schema in faults().get("hold_sync", [])

    def run() -> None:
        try:
            plan = dict(sync)
            while True:
                if held:
                    _wait_for_release(folder, src)
                tasks = _land_or_fail(src, configured, defects, folder, plan, fail_it)
                with disk.edit_json(path, {}) as state:
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
                _running.discard((str(path), src.connector_id))

    return run


def _wait_for_release(folder: Path, src: Source) -> None:
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if src.schema not in disk.read_json(folder / "faults.json", {}).get("hold_sync", []):
            return
        time.sleep(0.05)


def _land_or_fail(src, configured, defects, folder, plan, fail_it) -> list[dict[str, str]]:
    """Land the sync; the tasks Fivetran reports for a failed one (none when it succeeded)."""
    if fail_it:
        return [{"code": "sync_failed", "message": "source refused the connection (injected)"}]
    from pipeline.environment import open_warehouse, sandbox_may_write

    try:
        sandbox_may_write(configured)  # generated rows never reach a warehouse not the sandbox's
        with open_warehouse(configured) as target:
            land(src, target, defects, folder, plan.get("historical", False), plan.get("scope"))
    except Exception as error:  # Fivetran reports a failed sync; the error goes in its tasks
        return [{"code": "sync_failed", "message": f"{type(error).__name__}: {error}"}]
    return []


def land(src, target, defects, folder, historical: bool, scope) -> None:
    """Write each table: merged incrementally, or rewritten whole by a historical re-sync."""
    import pandas as pd  # with the first sync, not with the API (see sources.py)

    from pipeline.sandbox import incremental, source_edits

    synced_at = pd.Timestamp(datetime.now(UTC))
    edits = disk.read_json(source_edits.edits_file(folder), {}).get(src.connector_id)
    frames = src.land(defects, synced_at.to_pydatetime(), edits)
    with target.session():  # one connection for the connector's tables, each its own write
        for table, fresh in frames.items():
            if scope is not None and table not in scope.get(src.schema, []):
                continue  # a table re-sync touches only the tables it names
            memory = folder / "landed" / src.connector_id / f"{table}.parquet"
            previous = None if historical else incremental.read_landed(memory)
            merged = incremental.merge(previous, fresh, synced_at, src.tables[table].key)
            target.write_table(src.schema, table, merged)
            incremental.remember(memory, merged)


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
