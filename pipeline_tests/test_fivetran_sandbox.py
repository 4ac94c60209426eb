"""Scope: the Fivetran sandbox, driven by dagster-fivetran's real client and workspace."""

import subprocess
import threading
import time

import pytest
import requests
from dagster import Failure
from dagster_fivetran.resources import FivetranClient

from pipeline import environment
from pipeline.sandbox import disk, fivetran_api, fivetran_sync, source_edits
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


def test_loading_the_workspace_fetches_a_groups_schema_configs_at_once(monkeypatch):
    """Both sample connectors' schema configs are asked for before either answers (one after
    the other, the first would wait at the barrier until it broke)."""
    both_asked = threading.Barrier(2, timeout=120)
    fetch = FivetranClient.get_schema_config_for_connector

    def wait_for_the_other(self, connector_id, raise_on_not_found_error=True):
        both_asked.wait()
        return fetch(self, connector_id, raise_on_not_found_error)

    monkeypatch.setattr(FivetranClient, "get_schema_config_for_connector", wait_for_the_other)
    data = environment.fivetran_workspace().fetch_fivetran_workspace_data()
    assert {c.name for c in data.connectors_by_id.values()} == {"payments", "crm"}
    assert len(data.schema_configs_by_connector_id) == 2
    asked = [r for r in fivetran_api.requests_seen() if r["path"].endswith("/schemas")]
    assert len(asked) == 2  # each once: the workspace's own calls read the fetched ones


def test_a_schema_config_the_concurrent_fetch_could_not_get_is_asked_for_again(monkeypatch):
    """Retries used up while 8 fetches were in flight (e.g. rate-limited) do not fail the load:
    the connector's schema config is asked for again, one by one, as dagster-fivetran does."""
    fetch = FivetranClient.get_schema_config_for_connector
    asked: list[str] = []

    def first_time_fails(self, connector_id, raise_on_not_found_error=True):
        asked.append(connector_id)
        if asked.count(connector_id) == 1 and connector_id == PAYMENTS:
            raise Failure("Max retries (3) exceeded")
        return fetch(self, connector_id, raise_on_not_found_error)

    monkeypatch.setattr(FivetranClient, "get_schema_config_for_connector", first_time_fails)
    data = environment.fivetran_workspace().fetch_fivetran_workspace_data()
    assert {c.name for c in data.connectors_by_id.values()} == {"payments", "crm"}
    assert sorted(asked) == sorted([PAYMENTS, PAYMENTS, "crm_sandbox"])


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
    answer = requests.get(f"{fivetran_api.sandbox_url()}/v1/groups", timeout=5)
    assert answer.status_code == 401


# --- asynchronous syncs, incremental landing, re-syncs, paging, errors, limits ---

WAIT_SECONDS = 120  # generous: the machine is shared; every wait ends as soon as the state is there


def wait_for(condition, what: str):
    """Poll `condition` until it returns something truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def api(method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(
        method, f"{fivetran_api.sandbox_url()}/v1/{path}", auth=("k", "s"), timeout=30, **kwargs
    )


def landed(table: str) -> dict[str, dict]:
    """id -> row of payments.<table> as landed, system columns included."""
    rows = DuckDBWarehouse(path=str(duckdb_path())).query(f'SELECT * FROM "payments"."{table}"')
    return {row["id"]: row for row in rows}


def test_force_answers_at_once_and_the_real_client_polls_the_sync(client):
    fivetran_sync.set_faults(hold_sync=["payments"])  # keeps the sync running until released
    outcome = {}
    poller = threading.Thread(
        target=lambda: outcome.update(out=client.sync_and_poll(PAYMENTS, poll_interval=0.05))
    )
    poller.start()
    details = wait_for(
        lambda: (
            (d := client.get_connector_details(PAYMENTS))["status"]["sync_state"] == "syncing" and d
        ),
        "the sync to be running",
    )
    assert details["succeeded_at"] is None and details["status"]["is_historical_sync"] is True
    force = wait_for(  # the sandbox logs a request after answering it: the log may lag the state
        lambda: [
            i for i, r in enumerate(fivetran_api.requests_seen()) if r["path"].endswith("/force")
        ],
        "the force request in the sandbox's log",
    )
    assert len(force) == 1
    wait_for(  # the client keeps polling while the sync runs, from its own process
        lambda: sum(
            r["path"] == f"/v1/connectors/{PAYMENTS}" for r in fivetran_api.requests_seen()[force[0]:]
        ) >= 3,
        "the client to poll",
    )  # fmt: skip
    assert poller.is_alive()
    fivetran_sync.clear_faults("hold_sync")
    poller.join(WAIT_SECONDS)
    assert outcome["out"].connector_details["succeeded_at"] is not None
    assert outcome["out"].connector_details["status"]["sync_state"] == "scheduled"


def test_force_answer_is_a_plain_fivetran_message():
    answer = api("POST", f"connectors/{PAYMENTS}/force")
    assert answer.status_code == 200
    assert answer.json() == {"code": "Success", "message": "Sync has been successfully triggered"}


def test_incremental_sync_moves_synced_only_on_changed_rows_and_soft_deletes():
    src = fivetran_sync.source(PAYMENTS)
    fivetran_sync.sync_now(src)
    first = landed("customers")
    changed, removed = sorted(first)[:2]
    source_edits.edit_source(
        PAYMENTS, "customers",
        upsert=[{"id": changed, "country": "ZZ"},
                {**{k: v for k, v in first[changed].items() if not k.startswith("_")},
                 "id": "cus_New0000000001"}],
        delete=[removed],
    )  # fmt: skip
    fivetran_sync.sync_now(src)
    second = landed("customers")
    t1 = first[changed]["_fivetran_synced"]
    moved = {key for key, row in second.items() if row["_fivetran_synced"] != t1}
    assert moved == {changed, removed, "cus_New0000000001"}
    assert second[changed]["country"] == "ZZ" and second[changed]["_fivetran_deleted"] is False
    assert second[removed]["_fivetran_deleted"] is True
    assert sum(row["_fivetran_deleted"] for row in second.values()) == 1
    assert len(second) == len(first) + 1


def test_historical_resync_rewrites_every_table_and_a_table_resync_only_its_tables(client):
    src = fivetran_sync.source(PAYMENTS)
    fivetran_sync.sync_now(src)
    customers, charges = landed("customers"), landed("charges")
    source_edits.edit_source(PAYMENTS, "customers", delete=[sorted(customers)[0]])
    client.resync_and_poll(
        PAYMENTS, poll_interval=0.05, resync_parameters={"payments": ["customers"]}
    )
    after_tables = landed("customers")
    assert len(after_tables) == len(customers) - 1  # rewritten: the deleted row is gone
    assert len({row["_fivetran_synced"] for row in after_tables.values()}) == 1
    assert after_tables[sorted(after_tables)[0]]["_fivetran_synced"] > max(
        row["_fivetran_synced"] for row in customers.values()
    )
    assert landed("charges") == charges  # not in the scope: untouched
    output = client.resync_and_poll(PAYMENTS, poll_interval=0.05)
    assert output.connector_details["status"]["is_historical_sync"] is False
    assert {r["path"] for r in fivetran_api.requests_seen() if r["method"] == "POST"} == {
        f"/v1/connectors/{PAYMENTS}/schemas/tables/resync",
        f"/v1/connectors/{PAYMENTS}/resync",
    }
    rewritten = landed("charges")
    assert all(row["_fivetran_synced"] > charges[key]["_fivetran_synced"]
               for key, row in rewritten.items())  # fmt: skip


def test_resync_of_an_unknown_table_is_refused():
    answer = api(
        "POST", f"connectors/{PAYMENTS}/schemas/tables/resync", json={"payments": ["nope"]}
    )
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidInput"
    assert "'nope'" in answer.json()["message"]


def test_every_list_pages_with_limit_and_cursor():
    first = api("GET", f"groups/{fivetran_sync.GROUP_ID}/connectors", params={"limit": 1}).json()
    assert len(first["data"]["items"]) == 1 and first["data"]["nextCursor"]
    second = api(
        "GET",
        f"groups/{fivetran_sync.GROUP_ID}/connectors",
        params={"limit": 1, "cursor": first["data"]["nextCursor"]},
    ).json()
    assert len(second["data"]["items"]) == 1 and "nextCursor" not in second["data"]
    ids = {page["data"]["items"][0]["id"] for page in (first, second)}
    assert ids == {PAYMENTS, "crm_sandbox"}
    groups = api("GET", "groups", params={"limit": 1}).json()["data"]
    assert len(groups["items"]) == 1 and "nextCursor" not in groups


@pytest.mark.parametrize(
    "params", [{"cursor": "garbage"}, {"limit": 0}, {"limit": 1001}, {"limit": "ten"}]
)
def test_bad_paging_parameters_answer_400(params):
    answer = api("GET", f"groups/{fivetran_sync.GROUP_ID}/connectors", params=params)
    assert answer.status_code == 400
    assert answer.json()["code"] == "InvalidInput"


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"schedule_type": "bogus"}', b'{"paused": "yes"}', b'{"sync_frequency": 7}',
     b'{"schedul_type": "manual"}', b"[1, 2]"],
)  # fmt: skip
def test_bad_patch_bodies_answer_400_in_fivetrans_shape(body):
    answer = api("PATCH", f"connectors/{PAYMENTS}", data=body)
    assert answer.status_code == 400
    assert set(answer.json()) == {"code", "message"} and answer.json()["code"] == "InvalidInput"
    assert (
        fivetran_sync.connector_details(fivetran_sync.source(PAYMENTS))["schedule_type"] == "auto"
    )


def test_patch_pauses_and_resumes_a_connector(client):
    details = api("PATCH", f"connectors/{PAYMENTS}", json={"paused": True}).json()["data"]
    assert details["paused"] is True and details["status"]["sync_state"] == "paused"
    assert client.sync_and_poll(PAYMENTS, poll_interval=0.05) is None  # the client refuses it
    assert api("POST", f"connectors/{PAYMENTS}/force").status_code == 400
    client.update_schedule_type_for_connector(PAYMENTS, "manual")
    details = api("PATCH", f"connectors/{PAYMENTS}", json={"paused": False}).json()["data"]
    assert details["paused"] is False and details["status"]["sync_state"] == "scheduled"
    assert details["schedule_type"] == "manual"


def test_rescheduled_sync_runs_by_itself_when_its_time_comes():
    fivetran_sync.set_faults(reschedule=["payments"], reschedule_seconds=0.5, reschedule_times=1)
    assert api("POST", f"connectors/{PAYMENTS}/force").status_code == 200
    status = api("GET", f"connectors/{PAYMENTS}").json()["data"]["status"]
    assert status["sync_state"] == "rescheduled" and status["rescheduled_for"]
    done = wait_for(  # nobody forces it again: reading the connector is all it takes
        lambda: (d := api("GET", f"connectors/{PAYMENTS}").json()["data"])["succeeded_at"] and d,
        "the rescheduled sync to run",
    )
    assert done["status"]["rescheduled_for"] is None
    assert done["succeeded_at"] > status["rescheduled_for"]


def test_a_sync_whose_worker_died_is_taken_over_by_the_next_reader():
    dead = _dead_pid()
    src = fivetran_sync.source(PAYMENTS)
    fivetran_sync.request_sync(src)  # starts here; then pretend another process had claimed it
    wait_for(lambda: not fivetran_sync.connector_details(src)["status"]["is_historical_sync"],
             "the first sync")  # fmt: skip
    state_file = fivetran_sync.state_file()
    with disk.edit_json(state_file, {}) as state:
        state[PAYMENTS]["sync"] = {"historical": False, "scope": None, "worker": dead,
                                   "not_before": None, "rerun": None}  # fmt: skip
    before = fivetran_sync.connector_details(src)["succeeded_at"]
    wait_for(
        lambda: fivetran_sync.connector_details(src)["succeeded_at"] > before,
        "the orphaned sync to finish",
    )


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_calls_beyond_the_configured_rate_answer_429_with_retry_after():
    fivetran_sync.set_faults(requests_per_second=2)
    answers = [api("GET", "groups") for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and all(a.json()["code"] == "TooManyRequests" for a in limited)
    assert all(a.headers["Retry-After"].isdigit() and int(a.headers["Retry-After"]) >= 1
               for a in limited)  # fmt: skip
    time.sleep(int(limited[-1].headers["Retry-After"]))  # what the answer asked for
    assert api("GET", "groups").status_code == 200


def test_no_rate_limit_unless_configured():
    assert all(api("GET", "groups").status_code == 200 for _ in range(10))
