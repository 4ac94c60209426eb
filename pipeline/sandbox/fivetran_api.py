"""A Fivetran-API-compatible server on 127.0.0.1 for the real dagster-fivetran client."""

import json
import re
from typing import Any

from pipeline.sandbox import fivetran_sync, server
from pipeline.sandbox.paging import BadPage, page
from pipeline.sandbox.server import Answer, Route, SandboxHandler, route, serve
from pipeline.sandbox.sources import sources
from pipeline.settings import duckdb_path


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
    return 200, page(items, query)


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
    members = [s for s in sources() if s.group_id == group_id]
    found = page(members, query)
    found["items"] = [fivetran_sync.connector_details(s) for s in found["items"]]
    return 200, found


def details(body, query, connector_id):
    return 200, fivetran_sync.connector_details(_connector(connector_id))


def patch(body, query, connector_id):
    src = _connector(connector_id)
    fivetran_sync.update_connector(src, body or {})
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


def sync(body, query, connector_id):
    src = _connector(connector_id)
    if src.schema in fivetran_sync.faults().get("paused", []):
        return 400, {"code": "InvalidState", "message": f"Connection '{connector_id}' is paused"}
    fivetran_sync.start_sync(src)
    return 200, {"code": "Success", "message": "Sync has been successfully triggered"}


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
    ("POST", re.compile(_CONNECTOR + r"/(?:force|sync)"), sync),
]


class FivetranHandler(SandboxHandler):
    """Authenticates and routes requests, wrapping answers as Fivetran does ({code, data})."""

    name = "fivetran"

    def answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Answer:
        body = json.loads(raw) if raw else None
        if not (self.headers.get("Authorization") or "").startswith("Basic "):
            return 401, {"code": "AuthFailed", "message": "Missing API key and secret"}, {}
        fault = fivetran_sync.take_http_fault()
        if fault == 429:
            return 429, {"code": "TooManyRequests", "message": "Rate limit exceeded"}, {
                "Retry-After": "1"
            }  # fmt: skip
        if fault:
            return fault, {"code": "ServiceUnavailable", "message": "Injected outage"}, {}
        found = route(ROUTES, method, path)
        if found is None:
            return 404, {"code": "NotFound", "message": f"No route {method} {path}"}, {}
        handler, params = found
        try:
            status, data = handler(body, query, **params)
        except LookupError as error:
            return 404, {"code": "NotFound", "message": str(error)}, {}
        except BadPage as error:
            return 400, {"code": "InvalidInput", "message": str(error)}, {}
        except Exception as error:  # answer like an API would, never drop the connection
            return 500, {"code": "InternalError", "message": repr(error)}, {}
        if status >= 400:
            return status, data, {}
        return status, {"code": "Success", "data": data}, {}
