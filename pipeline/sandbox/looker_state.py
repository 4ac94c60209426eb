"""Looker sandbox state on disk, shared by every process: faults, tokens, datagroups, PDT builds."""

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.sandbox import disk
from pipeline.sandbox.looker_project import project

FAULTS: dict[str, Any] = {
    "login_5xx": 0,  # the next N logins answer 503
    "refresh_5xx": 0,  # the next N datagroup updates / PDT starts answer 503
    "pdt_outcome": "complete",  # complete | fail | hang, fixed for a build when it starts
    "pdt_polls_until_done": 2,  # status checks that answer running before the outcome
    "validation_errors": [],  # messages (or ProjectError fields) project validation reports
}
PDT_OUTCOMES = ("complete", "fail", "hang")
TOKEN_SECONDS = 3600


class NotFound(Exception):
    """The API answers 404 with this message."""


class Invalid(Exception):
    """The API answers 422 Validation Failed, naming the field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _folder() -> Path:
    return disk.folder("looker")


def faults() -> dict[str, Any]:
    return {**FAULTS, **disk.read_json(_folder() / "faults.json", {})}


def set_faults(**faults: Any) -> None:
    """Switch sandbox faults on for every process; unnamed faults keep their current value."""
    if unknown := set(faults) - set(FAULTS):
        raise TypeError(
            f"unknown Looker sandbox faults: {sorted(unknown)}; known: {sorted(FAULTS)}"
        )
    if faults.get("pdt_outcome", "complete") not in PDT_OUTCOMES:
        raise ValueError(f"pdt_outcome must be one of {PDT_OUTCOMES}")
    with disk.edit_json(_folder() / "faults.json", {}) as current:
        current.update(faults)


def clear_faults() -> None:
    with disk.edit_json(_folder() / "faults.json", {}) as current:
        current.clear()


def take_fault(name: str) -> bool:
    """Use up one of a counted fault (login_5xx, refresh_5xx); True if this request must fail."""
    with disk.edit_json(_folder() / "faults.json", {}) as current:
        left = int(current.get(name, 0))
        current[name] = max(left - 1, 0)
        return left > 0


def _edit_state():
    return disk.edit_json(_folder() / "state.json", _new_state())


def _new_state() -> dict[str, Any]:
    return {"created_at": int(time.time()), "tokens": {}, "datagroups": {}, "builds": {}}


def ensure_state() -> None:
    """Write the initial state once, so every process sees the same created_at."""
    if not (_folder() / "state.json").exists():
        with _edit_state():
            pass


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # the state file never holds a usable token


def issue_token() -> str:
    token = secrets.token_urlsafe(30)
    now = time.time()
    with _edit_state() as state:
        state["tokens"] = {k: exp for k, exp in state["tokens"].items() if exp > now}
        state["tokens"][_token_key(token)] = now + TOKEN_SECONDS
    return token


def token_is_valid(token: str) -> bool:
    state = disk.read_json(_folder() / "state.json", _new_state())
    return state["tokens"].get(_token_key(token), 0) > time.time()


def revoke_token(token: str) -> None:
    with _edit_state() as state:
        state["tokens"].pop(_token_key(token), None)


def _datagroup(state: dict[str, Any], datagroup_id: str, key: tuple[str, str]) -> dict[str, Any]:
    model, name = key
    saved = state["datagroups"].get(datagroup_id, {})
    return {
        "can": {"show": True, "update": True},
        "created_at": state["created_at"],
        "id": datagroup_id,
        "model_name": model,
        "name": name,
        "stale_before": saved.get("stale_before", 0),
        "trigger_check_at": saved.get("trigger_check_at", state["created_at"]),
        "trigger_error": None,
        "trigger_value": None,
        "triggered_at": saved.get("triggered_at", 0),
    }


def datagroups() -> list[dict[str, Any]]:
    state = disk.read_json(_folder() / "state.json", _new_state())
    return [_datagroup(state, i, key) for i, key in project().datagroups.items()]


def datagroup(datagroup_id: str) -> dict[str, Any]:
    key = _datagroup_key(datagroup_id)
    return _datagroup(disk.read_json(_folder() / "state.json", _new_state()), datagroup_id, key)


def _datagroup_key(datagroup_id: str) -> tuple[str, str]:
    if (key := project().datagroups.get(datagroup_id)) is None:
        raise NotFound(f"Datagroup {datagroup_id} not found")
    return key


def update_datagroup(datagroup_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Apply a WriteDatagroup (stale_before, triggered_at); Looker refuses times in the future."""
    key = _datagroup_key(datagroup_id)
    now = int(time.time())
    changes = {f: body[f] for f in ("stale_before", "triggered_at") if body.get(f) is not None}
    for field, value in changes.items():
        if not isinstance(value, int) or value > now + 5:
            raise Invalid(field, "must be a UNIX timestamp, not in the future")
    with _edit_state() as state:
        state["datagroups"].setdefault(datagroup_id, {}).update(changes, trigger_check_at=now)
        return _datagroup(state, datagroup_id, key)


def start_build(model: str, view: str) -> dict[str, Any]:
    found = project().models.get(model)
    if found is None or view not in found.views:
        raise NotFound(f"View '{view}' not found in model '{model}'")
    if view not in found.pdts:
        raise Invalid("view_name", f"'{view}' in model '{model}' is not a persistent derived table")
    chosen = faults()
    with _edit_state() as state:
        materialization_id = str(len(state["builds"]) + 1)
        state["builds"][materialization_id] = {
            "model": model,
            "view": view,
            "outcome": chosen["pdt_outcome"],
            "polls_until_done": int(chosen["pdt_polls_until_done"]),
            "polls": 0,
        }
    message = f"Materialization of {view} in model {model} queued"
    return _materialization(materialization_id, "added", message)


def check_build(
    materialization_id: str, build_table: Callable[[str, str], str] | None = None
) -> dict[str, Any]:
    """Advance the build by one poll: running, then complete or error (or running for ever).

    On completion `build_table(model, view)` creates the PDT's table in the warehouse, once; a
    build whose SQL fails ends in error with the warehouse's message.
    """
    with _edit_state() as state:
        build = state["builds"].get(materialization_id)
        if build is None:
            raise NotFound(f"Materialization {materialization_id} not found")
        build["polls"] += 1
    view, model = build["view"], build["model"]
    if build["outcome"] == "hang" or build["polls"] <= build["polls_until_done"]:
        return _materialization(materialization_id, "running", f"Building {view} in model {model}")
    if build["outcome"] == "fail":
        connection = project().models[model].connection
        message = f"Looker could not build {view}: SQL error on connection '{connection}': relation does not exist"
        return _materialization(materialization_id, "error", message)
    if build_table is not None and "table" not in build and "error" not in build:
        try:
            build["table"] = build_table(model, view)
        except Exception as error:
            build["error"] = f"Looker could not build {view}: {' '.join(str(error).split())}"
        with _edit_state() as state:
            state["builds"][materialization_id].update(build)
    if "error" in build:
        return _materialization(materialization_id, "error", build["error"])
    return _materialization(materialization_id, "complete", f"Built {view} in model {model}")


def session(token: str) -> dict[str, Any]:
    """The API session of a token: workspace `production` or `dev`, and a dev branch if any."""
    state = disk.read_json(_folder() / "state.json", _new_state())
    return {"workspace_id": "production", **state.get("sessions", {}).get(_token_key(token), {})}


def update_session(token: str, changes: dict[str, Any]) -> dict[str, Any]:
    workspace = changes.get("workspace_id")
    if workspace not in (None, "production", "dev"):
        raise Invalid("workspace_id", "must be production or dev")
    with _edit_state() as state:
        saved = state.setdefault("sessions", {}).setdefault(_token_key(token), {})
        if workspace:
            saved["workspace_id"] = workspace
    return session(token)


def checkout(token: str, branch: str) -> None:
    """Check a branch out in a dev-mode session (Looker refuses branch changes in production)."""
    if session(token)["workspace_id"] != "dev":
        raise Invalid("name", "Switch to the dev workspace before checking out a branch")
    with _edit_state() as state:
        state.setdefault("sessions", {}).setdefault(_token_key(token), {})["branch"] = branch


def save_sql_query(body: dict[str, Any]) -> dict[str, Any]:
    """A SQL Runner query, stored under a slug for run_sql_query."""
    with _edit_state() as state:
        queries = state.setdefault("sql_queries", {})
        slug = secrets.token_hex(8)
        queries[slug] = {k: body.get(k) for k in ("model_name", "connection_name", "sql")}
    return {"slug": slug, **queries[slug], "can": {"run": True}}


def sql_query(slug: str) -> dict[str, Any]:
    state = disk.read_json(_folder() / "state.json", _new_state())
    found = state.get("sql_queries", {}).get(slug)
    if found is None:
        raise NotFound(f"SQL query {slug} not found")
    return found


def _materialization(materialization_id: str, status: str, message: str) -> dict[str, Any]:
    # Looker's resp_text is itself a JSON document with a status and a message.
    text = json.dumps(
        {"status": status, "message": message, "materialization_id": materialization_id}
    )
    return {"materialization_id": materialization_id, "resp_text": text}
