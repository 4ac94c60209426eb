"""The Fivetran sandbox's connectors as its API describes them, and what a PATCH may change."""

from pathlib import Path
from typing import Any

from pipeline.sandbox import disk
from pipeline.sandbox.fivetran_faults import faults
from pipeline.sandbox.paging import BadRequest
from pipeline.sandbox.sources import Source, requested_defects, sources

SCHEDULE_TYPES = ("auto", "manual")
SYNC_FREQUENCIES = (5, 15, 30, 60, 120, 180, 360, 480, 720, 1440)
# Fields of Fivetran's UpdateConnectorRequest the sandbox accepts; it acts on the first three.
PATCHABLE = {"paused", "schedule_type", "sync_frequency", "pause_after_trial", "daily_sync_time",
             "trust_certificates", "trust_fingerprints", "config", "auth", "run_setup_tests",
             "paused_after_trial", "schema_status", "is_historical_sync"}  # fmt: skip


class Paused(RuntimeError):
    """The connector is paused: Fivetran refuses to sync it."""


def state_file() -> Path:
    return disk.folder("fivetran") / "connectors.json"


def source(connector_id: str) -> Source | None:
    return next((s for s in sources() if s.connector_id == connector_id), None)


def is_paused(src: Source, entry: dict[str, Any]) -> bool:
    return bool(entry.get("paused")) or src.schema in faults().get("paused", [])


def details(src: Source) -> dict[str, Any]:
    """The connection as Fivetran's API describes it (ConnectorResponseV1), as it stands."""
    entry = disk.read_json(state_file(), {}).get(src.connector_id, {})
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
        "group_id": src.group_id,
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
    with disk.edit_json(state_file(), {}) as state:
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
