"""Scope: the Fivetran sandbox's answers, validated against Fivetran's published API description.

The description is read from beside the checkout, never copied into the repo, and its served
part taken by pipeline_tests/fivetran_spec.py; where it is absent the tests are skipped, saying
so. What the live API is known to do differently is applied to it explicitly (fivetran_spec.DEVIATIONS) and nothing else is relaxed. Every answer the sandbox gives
the real dagster-fivetran client is validated with openapi-core.
"""

import json

import dagster_fivetran.resources
import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from pipeline import environment
from pipeline.sandbox import fivetran_api, fivetran_sync
from pipeline_tests import fivetran_spec

PAYMENTS = "payments_sandbox"
HOST = "https://api.fivetran.com"  # the description's server; the sandbox answers for it


@pytest.fixture
def exchanges(monkeypatch):
    """Every request the sandbox answers in this test, with its answer."""
    seen = []
    answer = fivetran_api.FivetranHandler.answer

    def recorded(handler, method, path, query, raw):
        reply = answer(handler, method, path, query, raw)
        seen.append((method, path, query, raw, reply))
        return reply

    monkeypatch.setattr(fivetran_api.FivetranHandler, "answer", recorded)
    return seen


@pytest.fixture(scope="module")
def served_spec() -> dict:
    """The served part of Fivetran's published description, read from beside the checkout."""
    published = fivetran_spec.published()
    if published is None:
        pytest.skip(
            "Fivetran's published OpenAPI description is not beside this checkout "
            "(../shared/specs/fivetran-openapi.yaml); the repo does not copy it"
        )
    return fivetran_spec.subset(published)


@pytest.fixture(scope="module")
def openapi(served_spec):
    return OpenAPI.from_dict(fivetran_spec.as_the_live_api_answers(served_spec))


def validate(openapi: OpenAPI, exchanges) -> set[str]:
    """Validate every recorded request and answer; the set of 'METHOD path' exercised."""
    covered = set()
    for method, path, query, raw, (status, payload, headers) in exchanges:
        assert status < 400, f"{method} {path} answered {status}: {payload}"
        request = MockRequest(
            HOST, method, path, args={k: v[-1] for k, v in query.items()},
            headers={"Authorization": "Basic a2V5OnNlY3JldA=="}, data=raw or None,
        )  # fmt: skip
        if raw:
            openapi.validate_request(request)
        response = MockResponse(json.dumps(payload).encode(), status, headers)
        openapi.validate_response(request, response)
        covered.add(f"{method} {path}")
    return covered


def test_read_only_walk_conforms(openapi, exchanges):
    workspace = environment.fivetran_workspace()
    data = workspace.fetch_fivetran_workspace_data()
    client = workspace.get_client()
    for connector_id, config in data.schema_configs_by_connector_id.items():
        for schema in config.schemas.values():
            for table in schema.tables.values():
                client.get_columns_config_for_table(connector_id, schema.name_in_destination,
                                                    table.name_in_destination)  # fmt: skip
    covered = validate(openapi, exchanges)
    assert {"GET /v1/groups", "GET /v1/destinations/tollgate_sandbox",
            "GET /v1/groups/tollgate_sandbox/connectors",
            "GET /v1/connectors/payments_sandbox/schemas",
            "GET /v1/connectors/crm_sandbox/schemas/crm/tables/contacts/columns"} <= covered  # fmt: skip


def test_sync_and_schedule_change_conform(openapi, exchanges):
    client = environment.fivetran_workspace().get_client()
    client.update_schedule_type_for_connector(PAYMENTS, "manual")
    output = client.sync_and_poll(PAYMENTS, poll_interval=0.05)
    assert output.connector_details["succeeded_at"]
    url = f"{fivetran_api.sandbox_url()}/v1/connectors/{PAYMENTS}/sync"
    assert requests.post(url, json={"force": False}, auth=("k", "s"), timeout=30).ok
    covered = validate(openapi, exchanges)
    assert {f"PATCH /v1/connectors/{PAYMENTS}", f"POST /v1/connectors/{PAYMENTS}/force",
            f"POST /v1/connectors/{PAYMENTS}/sync", f"GET /v1/connectors/{PAYMENTS}"} <= covered  # fmt: skip


def test_resyncs_conform(openapi, exchanges):
    client = environment.fivetran_workspace().get_client()
    client.resync_and_poll(PAYMENTS, poll_interval=0.05)
    client.resync_and_poll(
        PAYMENTS, poll_interval=0.05, resync_parameters={"payments": ["charges"]}
    )
    covered = validate(openapi, exchanges)
    assert {f"POST /v1/connectors/{PAYMENTS}/resync",
            f"POST /v1/connectors/{PAYMENTS}/schemas/tables/resync"} <= covered  # fmt: skip


def test_paging_with_limit_1_conforms(openapi, exchanges, monkeypatch):
    monkeypatch.setattr(
        dagster_fivetran.resources, "DAGSTER_FIVETRAN_LIST_CONNECTIONS_FOR_GROUP_INDIVIDUAL_REQUEST_LIMIT", 1
    )  # fmt: skip
    client = environment.fivetran_workspace().get_client()
    connectors = client.list_connectors_for_group(fivetran_sync.GROUP_ID)
    assert {c["id"] for c in connectors} == {PAYMENTS, "crm_sandbox"}
    pages = [e for e in exchanges if e[1].endswith("/connectors")]
    assert [e[2].get("limit") for e in pages] == [["1"], ["1"]]
    assert "nextCursor" in pages[0][4][1]["data"] and "nextCursor" not in pages[1][4][1]["data"]
    validate(openapi, exchanges)


def test_the_deviations_are_needed(openapi, served_spec):
    """Each documented exception is one the sandbox's real answers need (else it goes)."""
    strict = OpenAPI.from_dict(served_spec)
    details = fivetran_sync.connector_details(fivetran_sync.source(PAYMENTS))  # never synced
    request = MockRequest(HOST, "GET", f"/v1/connectors/{PAYMENTS}")
    response = MockResponse(json.dumps({"code": "Success", "data": details}).encode())
    openapi.validate_response(request, response)
    with pytest.raises(Exception, match="None is not of type 'string'|nullable|None"):
        strict.validate_response(request, response)
    patch = MockRequest(HOST, "PATCH", f"/v1/connectors/{PAYMENTS}", data=b'{"sync_frequency": 360}',
                        headers={"Authorization": "Basic a2V5OnNlY3JldA=="})  # fmt: skip
    openapi.validate_request(patch)
    with pytest.raises(Exception, match="360"):
        strict.validate_request(patch)
    force = MockRequest(HOST, "POST", f"/v1/connectors/{PAYMENTS}/force")
    answer = MockResponse(b'{"code": "Success", "message": "Sync has been successfully triggered"}')
    openapi.validate_response(force, answer)
    with pytest.raises(Exception, match="force"):
        strict.validate_response(force, answer)


def test_the_served_part_is_closed(served_spec):
    assert set(served_spec["paths"]) == set(fivetran_spec.SERVED)
    assert fivetran_spec._refs(served_spec) <= set(served_spec["components"]["schemas"])
