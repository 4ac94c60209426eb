"""What the Fivetran sandbox knows and does: connector state, faults, and syncs that land data."""

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.sandbox import disk
from pipeline.sandbox.sources import Source, requested_defects, sources

FAULT_KINDS = {
    "http_5xx": "the next N API requests answer 503",
    "rate_limit": "the next N API requests answer 429 with Retry-After",
    "sync_failure": "syncs of these connectors fail (failed_at advances, nothing lands)",
    "reschedule": "syncs of these connectors are rescheduled by Fivetran (quota), not run",
    "reschedule_seconds": "how far ahead a rescheduled sync is set (default 3600)",
    "reschedule_times": "how many syncs are rescheduled before one runs (default: all)",
    "paused": "these connectors are paused",
    "never_synced": "these connectors have no schema yet (never synced)",
}


def _state_file():
    return disk.folder("fivetran") / "connectors.json"


def _faults_file():
    return disk.folder("fivetran") / "faults.json"


def set_faults(**faults: Any) -> None:
    """Switch sandbox faults on (see FAULT_KINDS); they persist on disk for every process."""
    unknown = set(faults) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown Fivetran sandbox faults {sorted(unknown)}; known: {FAULT_KINDS}")
    with disk.edit_json(_faults_file(), {}) as current:
        current.update(faults)


def clear_faults() -> None:
    with disk.edit_json(_faults_file(), {}) as current:
        current.clear()


def faults() -> dict[str, Any]:
    return disk.read_json(_faults_file(), {})


def take_http_fault() -> int | None:
    """Status code of the next injected HTTP fault, consuming one; None when there is none."""
    with disk.edit_json(_faults_file(), {}) as current:
        for kind, status in (("http_5xx", 503), ("rate_limit", 429)):
            if current.get(kind, 0) > 0:
                current[kind] -= 1
                return status
    return None


def source(connector_id: str) -> Source | None:
    return next((s for s in sources() if s.connector_id == connector_id), None)


def connector_details(src: Source) -> dict[str, Any]:
    """The connection as Fivetran's API describes it (ConnectorResponseV1)."""
    state = disk.read_json(_state_file(), {}).get(src.connector_id, {})
    active = faults()
    rescheduled_for = state.get("rescheduled_for")
    return {
        "id": src.connector_id,
        "group_id": src.group_id,
        "service": src.service,
        "service_version": 1,
        "schema": src.schema,
        "connected_by": "tollgate_sandbox",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "succeeded_at": state.get("succeeded_at"),
        "failed_at": state.get("failed_at"),
        "paused": src.schema in active.get("paused", []),
        "pause_after_trial": False,
        "sync_frequency": 360,
        "schedule_type": state.get("schedule_type", "auto"),
        "status": {
            "setup_state": "connected",
            "schema_status": "ready",
            "sync_state": "rescheduled" if rescheduled_for else "scheduled",
            "update_state": "delayed" if rescheduled_for else "on_schedule",
            "is_historical_sync": state.get("succeeded_at") is None,
            "rescheduled_for": rescheduled_for,
            "tasks": state.get("tasks", []),
            "warnings": [],
        },
        "config": {},
        "source_sync_details": {},
    }


def update_connector(src: Source, changes: dict[str, Any]) -> None:
    with disk.edit_json(_state_file(), {}) as state:
        entry = state.setdefault(src.connector_id, {})
        if "schedule_type" in changes:
            entry["schedule_type"] = changes["schedule_type"]


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


def start_sync(src: Source) -> None:
    """Run one sync to completion: land every table, then advance succeeded_at (or failed_at)."""
    if _rescheduled(src):
        delay = float(faults().get("reschedule_seconds", 3600))
        with disk.edit_json(_state_file(), {}) as state:
            entry = state.setdefault(src.connector_id, {})
            entry["rescheduled_for"] = _stamp(datetime.now(UTC) + timedelta(seconds=delay))
        return
    tasks: list[dict[str, str]] = []
    succeeded = src.schema not in faults().get("sync_failure", [])
    if succeeded:
        try:
            land(src)
        except Exception as error:  # Fivetran reports a failed sync; the error goes in its tasks
            succeeded = False
            tasks = [{"code": "sync_failed", "message": f"{type(error).__name__}: {error}"}]
    else:
        tasks = [{"code": "sync_failed", "message": "source refused the connection (injected)"}]
    with disk.edit_json(_state_file(), {}) as state:
        entry = state.setdefault(src.connector_id, {})
        previous = max(entry.get("succeeded_at") or "", entry.get("failed_at") or "")
        entry["succeeded_at" if succeeded else "failed_at"] = _after(previous)
        entry["rescheduled_for"] = None
        entry["tasks"] = tasks


def _rescheduled(src: Source) -> bool:
    """Whether this sync is rescheduled, consuming one of `reschedule_times` when it is set."""
    with disk.edit_json(_faults_file(), {}) as current:
        if src.schema not in current.get("reschedule", []):
            return False
        if "reschedule_times" not in current:
            return True
        if current["reschedule_times"] <= 0:
            return False
        current["reschedule_times"] -= 1
        return True


def land(src: Source) -> None:
    from pipeline.environment import warehouse

    target = warehouse().process_config_and_initialize()
    frames = src.land(requested_defects(), datetime.now(UTC))
    for table, frame in frames.items():
        target.write_table(src.schema, table, frame)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _after(previous: str) -> str:
    """Now, or just after the previous completion: the client polls for a strictly later time."""
    now = datetime.now(UTC)
    if previous:
        last = datetime.strptime(previous, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        now = max(now, last + timedelta(milliseconds=1))
    return _stamp(now)
