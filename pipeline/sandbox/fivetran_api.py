"""A Fivetran-API-compatible server on 127.0.0.1 for the real dagster-fivetran client.

Answers follow Fivetran's published API description: `{code, data}` or `{code, message}`,
cursor paging, 400 InvalidInput for malformed requests. Syncs run asynchronously
(pipeline.sandbox.fivetran_sync).
"""

import json
import re
from typing import Any

from pipeline.sandbox import fivetran_faults, fivetran_sync, server
from pipeline.sandbox.paging import BadRequest, page
from pipeline.sandbox.server import Answer, Route, SandboxHandler, route, serve
from pipeline.sandbox.sources import sources
from pipeline.settings import duckdb_path


class Message(str):
    """A successful answer that carries a message instead of data: {code, message}."""


def sandbox_url() -> str:
    """Base URL of this process's sandbox server (started on first use)."""
    return serve("fivetran", FivetranHandler)


def requests_seen() -> list[dict[str, Any]]:
    """Every request any process's sandbox answered, in order: method, path, query, status."""
    return server.requests_seen("fivetran")


def _connector(connector_id: str):
    src = fivetran_sync.source(connector_id)
    if src is None:
        raise LookupError(f"Connection with id '{connector_id}' doesn't exist")
    return src


def _group_ids() -> list[str]:
    return list(dict.fromkeys(s.group_id for s in sources()))


def groups(body, query):
    items = [
        {"id": g, "name": g.replace("_", " "), "created_at": "2026-01-01T00:00:00Z"}
        for g in _group_ids()
    ]
    return 200, page(items, query, "groups")


def destination(body, query, group_id):
    if group_id not in _group_ids():
        raise LookupError(f"Destination with id '{group_id}' doesn't exist")
    return 200, {
        "id": group_id,
        "group_id": group_id,
        "service": "duckdb",
        "region": "GCP_US_EAST4",
        "setup_status": "connected",
        "time_zone_offset": "0",
        "config": {"database": duckdb_path().stem},
    }


def group_connectors(body, query, group_id):
    if group_id not in _group_ids():
        raise LookupError(f"Group with id '{group_id}' doesn't exist")
    found = [
        s
        for s in sources()
        if s.group_id == group_id and s.schema in query.get("schema", [s.schema])
    ]
    # Paged before the details are read: each reads the connector's sync state.
    listed = page(found, query, f"connectors:{group_id}")
    listed["items"] = [fivetran_sync.connector_details(s) for s in listed["items"]]
    return 200, listed


def details(body, query, connector_id):
    return 200, fivetran_sync.connector_details(_connector(connector_id))


def patch(body, query, connector_id):
    src = _connector(connector_id)
    fivetran_sync.update_connector(src, body if body is not None else {})
    return 200, fivetran_sync.connector_details(src)


def schemas(body, query, connector_id):
    config = fivetran_sync.schema_config(_connector(connector_id))
    if "schemas" not in config:
        raise LookupError(f"Schema config for connection '{connector_id}' doesn't exist")
    return 200, config


def columns(body, query, connector_id, schema, table):
    config = fivetran_sync.schema_config(_connector(connector_id))
    found = config.get("schemas", {}).get(schema, {}).get("tables", {}).get(table)
    if found is None:
        raise LookupError(f"Table '{schema}.{table}' doesn't exist in connection '{connector_id}'")
    return 200, {"columns": found["columns"]}


def force(body, query, connector_id):
    """The legacy /force dagster-fivetran calls: always (re)starts a sync."""
    return _sync(connector_id, restart=True)


def sync(body, query, connector_id):
    """POST /sync ({force}): without force, a sync already running is left to finish."""
    restart = _object(body).get("force", False)
    if not isinstance(restart, bool):
        raise BadRequest("Field 'force' must be a boolean")
    return _sync(connector_id, restart=restart)


def _sync(connector_id: str, restart: bool):
    fivetran_sync.request_sync(_connector(connector_id), restart=restart)
    return 200, Message("Sync has been successfully triggered")


def resync(body, query, connector_id):
    """Historical re-sync of every table, or of `scope` ({schema: [tables]})."""
    src = _connector(connector_id)
    scope = _object(body).get("scope")
    scope = None if scope is None else fivetran_sync.check_scope(src, scope)
    fivetran_sync.request_sync(src, historical=True, scope=scope)
    return 200, Message("Re-sync has been triggered successfully")


def resync_tables(body, query, connector_id):
    src = _connector(connector_id)
    scope = fivetran_sync.check_scope(src, body)
    fivetran_sync.request_sync(src, historical=True, scope=scope)
    return 200, Message("Re-sync has been triggered successfully")


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


_CONNECTOR = r"/v1/(?:connectors|connections)/(?P<connector_id>[^/]+)"
ROUTES: list[Route] = [
    ("GET", re.compile(r"/v1/groups"), groups),
    ("GET", re.compile(r"/v1/destinations/(?P<group_id>[^/]+)"), destination),
    (
        "GET",
        re.compile(r"/v1/groups/(?P<group_id>[^/]+)/(?:connectors|connections)"),
        group_connectors,
    ),
    ("GET", re.compile(_CONNECTOR), details),
    ("PATCH", re.compile(_CONNECTOR), patch),
    ("GET", re.compile(_CONNECTOR + "/schemas"), schemas),
    (
        "GET",
        re.compile(_CONNECTOR + r"/schemas/(?P<schema>[^/]+)/tables/(?P<table>[^/]+)/columns"),
        columns,
    ),
    ("POST", re.compile(_CONNECTOR + r"/force"), force),
    ("POST", re.compile(_CONNECTOR + r"/sync"), sync),
    ("POST", re.compile(_CONNECTOR + r"/resync"), resync),
    ("POST", re.compile(_CONNECTOR + r"/schemas/tables/resync"), resync_tables),
]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    return status, {"code": code, "message": message}, headers or {}


class FivetranHandler(SandboxHandler):
    """Authenticates and routes requests, wrapping answers as Fivetran does ({code, data})."""

    name = "fivetran"

    def answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Answer:
        if not (self.headers.get("Authorization") or "").startswith("Basic "):
            return _error(401, "AuthFailed", "Missing API key and secret")
        fault = fivetran_faults.take_http_fault()
        if fault and fault[0] == 429:
            retry = {"Retry-After": fivetran_faults.retry_after(fault[1])}
            return _error(429, "TooManyRequests", "Rate limit exceeded", retry)
        if fault:
            return _error(fault[0], "ServiceUnavailable", "Injected outage")
        found = route(ROUTES, method, path)
        if found is None:
            return _error(404, "NotFound", f"No route {method} {path}")
        handler, params = found
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError as error:  # bad JSON, or bytes that are not UTF-8
            return _error(400, "InvalidInput", f"Malformed JSON body: {error}")
        try:
            status, data = handler(body, query, **params)
        except BadRequest as error:
            return _error(400, "InvalidInput", str(error))
        except fivetran_sync.Paused as error:
            return _error(400, "InvalidState", str(error))
        except LookupError as error:
            return _error(404, "NotFound", str(error))
        except Exception as error:  # answer like an API would, never drop the connection
            return _error(500, "InternalError", repr(error))
        if isinstance(data, Message):
            return status, {"code": "Success", "message": str(data)}, {}
        return status, {"code": "Success", "data": data}, {}
