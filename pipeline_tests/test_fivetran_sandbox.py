"""Scope: the Fivetran sandbox, driven by dagster-fivetran's real client and workspace."""

import pytest
from dagster import Failure

from pipeline import environment
from pipeline.sandbox import fivetran_api, fivetran_sync
from pipeline.settings import duckdb_path
from pipeline.warehouse import DuckDBWarehouse

PAYMENTS = "payments_sandbox"


@pytest.fixture
def client():
    return environment.fivetran_workspace().get_client()


def test_workspace_lists_both_connectors_with_their_tables():
    data = environment.fivetran_workspace().fetch_fivetran_workspace_data()
    names = {c.name: c for c in data.connectors_by_id.values()}
    assert set(names) == {"payments", "crm"}
    tables = {
        f"{schema.name_in_destination}.{table.name_in_destination}"
        for config in data.schema_configs_by_connector_id.values()
        for schema in config.schemas.values()
        for table in schema.tables.values()
    }
    assert tables == {
        "payments.customers", "payments.charges", "payments.invoices",
        "crm.companies", "crm.contacts", "crm.deals",
    }  # fmt: skip


def test_schema_config_reports_hashed_and_blocked_columns(client):
    columns = client.get_columns_config_for_table("crm_sandbox", "crm", "contacts")["columns"]
    assert columns["email"]["hashed"] is True and columns["email"]["enabled"] is True
    assert columns["last_name"]["enabled"] is False
    assert columns["job_title"]["hashed"] is False


def test_raw_pii_defect_shows_in_fivetran_config(client, monkeypatch):
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", "raw_pii")
    columns = client.get_columns_config_for_table("crm_sandbox", "crm", "contacts")["columns"]
    assert columns["email"]["hashed"] is False


def test_sync_lands_tables_and_advances_succeeded_at(client):
    before = client.get_connector_details(PAYMENTS)["succeeded_at"]
    output = client.sync_and_poll(PAYMENTS, poll_interval=0.1)
    after = output.connector_details["succeeded_at"]
    assert before is None and after is not None
    rows = DuckDBWarehouse(path=str(duckdb_path())).query(
        'SELECT COUNT(*) AS n, BOOL_OR("_fivetran_deleted") AS deleted, '
        'MIN("_fivetran_synced") AS synced FROM "payments"."invoices"'
    )
    assert rows[0]["n"] > 0 and rows[0]["deleted"] is False and rows[0]["synced"] is not None
    second = client.sync_and_poll(PAYMENTS, poll_interval=0.1)
    assert second.connector_details["succeeded_at"] > after


def test_5xx_and_429_are_retried_then_answered(client):
    fivetran_sync.set_faults(http_5xx=2, rate_limit=1)
    assert client.get_connector_details(PAYMENTS)["id"] == PAYMENTS
    statuses = [r["status"] for r in fivetran_api.requests_seen()]
    assert statuses == [503, 503, 429, 200]


def test_outage_longer_than_the_retries_fails_clearly(client):
    fivetran_sync.set_faults(http_5xx=50)
    with pytest.raises(Failure, match="503"):
        client.get_connector_details(PAYMENTS)


def test_failed_sync_advances_failed_at_and_lands_nothing(client):
    fivetran_sync.set_faults(sync_failure=["payments"])
    with pytest.raises(Failure, match=f"Sync for connector '{PAYMENTS}' failed"):
        client.sync_and_poll(PAYMENTS, poll_interval=0.1)
    details = client.get_connector_details(PAYMENTS)
    assert details["failed_at"] is not None and details["succeeded_at"] is None
    assert "injected" in details["status"]["tasks"][0]["message"]
    assert not (duckdb_path().exists() and DuckDBWarehouse(path=str(duckdb_path())).query(
        "SELECT * FROM information_schema.tables WHERE table_schema = 'payments'"
    ))  # fmt: skip


def test_paused_and_never_synced_connectors(client):
    fivetran_sync.set_faults(paused=["payments"], never_synced=["crm"])
    assert client.get_connector_details(PAYMENTS)["paused"] is True
    assert client.sync_and_poll(PAYMENTS, poll_interval=0.1) is None  # dagster-fivetran skips it
    data = environment.fivetran_workspace().fetch_fivetran_workspace_data()
    assert {c.name for c in data.connectors_by_id.values()} == {"payments"}


def test_requests_need_credentials():
    import requests

    answer = requests.get(f"{fivetran_api.sandbox_url()}/v1/groups", timeout=5)
    assert answer.status_code == 401
