"""The part of Fivetran's published OpenAPI description the sandbox serves, and its known gaps.

The description is read where this workplace keeps it, beside the checkout (never copied into
the repo); `subset` takes the operations below and the schemas they reference (per-service
schemas only for SERVICES), and `as_the_live_api_answers` then applies, explicitly, what the
live API is known to do differently.
"""

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from pipeline.settings import REPO_ROOT

# Where a checkout of this workplace keeps the full description; absent elsewhere.
PUBLISHED = [REPO_ROOT.parent / "shared/specs/fivetran-openapi.yaml",
             Path("/work/shared/specs/fivetran-openapi.yaml")]  # fmt: skip
SERVED = {
    "/v1/groups": ["get"],
    "/v1/groups/{groupId}/connectors": ["get"],
    "/v1/destinations/{destinationId}": ["get"],
    "/v1/connectors/{connectorId}": ["get", "patch"],
    "/v1/connectors/{connectorId}/schemas": ["get"],
    "/v1/connectors/{connectorId}/schemas/{schema}/tables/{table}/columns": ["get"],
    "/v1/connectors/{connectorId}/sync": ["post"],
    "/v1/connectors/{connectorId}/resync": ["post"],
    "/v1/connectors/{connectorId}/schemas/tables/resync": ["post"],
}
# Services the sandbox's connectors use (and Snowflake's destination); the description maps
# about 200 others to their own schemas, which the excerpt leaves out.
SERVICES = {"stripe", "hubspot", "snowflake"}
# What the live API does that its description does not say, each applied explicitly below.
DEVIATIONS = {
    "nullable timestamps": "succeeded_at, failed_at and status.rescheduled_for are null until "
    "a sync succeeded, failed or was rescheduled (the description says string, date-time)",
    "string enums": "integer fields whose enum lists strings ('5', '15', ...): the API sends "
    "and takes numbers",
    "legacy /force": "dagster-fivetran starts syncs with POST /v1/connectors/{id}/force, which "
    "the description no longer lists; it answers as POST .../sync does",
    "destination service": "the sandbox's destination is DuckDB, which is not among the "
    "destination services the description's discriminator maps",
}


def subset(spec: dict[str, Any]) -> dict[str, Any]:
    """The served operations and every component schema they reach, nothing else."""
    paths = {
        path: {method: spec["paths"][path][method] for method in methods}
        for path, methods in SERVED.items()
    }
    schemas = copy.deepcopy(spec["components"]["schemas"])
    for schema in schemas.values():
        mapping = schema.get("discriminator", {}).get("mapping")
        if mapping:
            schema["discriminator"]["mapping"] = {
                service: ref for service, ref in mapping.items() if service in SERVICES
            }
    wanted: set[str] = set()
    todo = _refs(paths)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo |= _refs(schemas[name])
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec["servers"],
        "security": spec["security"],
        "paths": paths,
        "components": {
            "schemas": {name: schemas[name] for name in sorted(wanted)},
            "securitySchemes": spec["components"]["securitySchemes"],
        },
    }


def _refs(node: Any) -> set[str]:
    text = json.dumps(node)
    prefix = '"#/components/schemas/'
    return {part.split('"', 1)[0] for part in text.split(prefix)[1:]}


def as_the_live_api_answers(spec: dict[str, Any]) -> dict[str, Any]:
    """The description with DEVIATIONS applied."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    for schema, field in (("ConnectorResponseV1", "succeeded_at"),
                          ("ConnectorResponseV1", "failed_at"),
                          ("ConnectorResponse", "succeeded_at"),
                          ("ConnectorResponse", "failed_at"),
                          ("ConnectorStatusResponse", "rescheduled_for")):  # fmt: skip
        schemas[schema]["properties"][field]["nullable"] = True
    for node in _walk(spec):
        if node.get("type") == "integer" and all(isinstance(v, str) for v in node.get("enum", [1])):
            node["enum"] = [int(v) for v in node["enum"]]
    sync = spec["paths"]["/v1/connectors/{connectorId}/sync"]
    spec["paths"]["/v1/connectors/{connectorId}/force"] = {"post": copy.deepcopy(sync["post"])}
    spec["paths"]["/v1/connectors/{connectorId}/force"]["post"]["operationId"] = "force_legacy"
    schemas["DestinationResponse"].pop("discriminator", None)
    return spec


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def published() -> dict[str, Any] | None:
    """Fivetran's full description where this checkout has it, else None."""
    found = next((path for path in PUBLISHED if path.exists()), None)
    return yaml.safe_load(found.read_text()) if found else None
