"""The Looker sandbox, driven by the real looker-sdk (through dagster-looker), and the LookML it serves."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import lkml
import pytest
import yaml
from dagster_looker import LookerResource, build_looker_asset_specs
from looker_sdk.error import SDKError
from looker_sdk.sdk.api40.models import WriteDatagroup

from pipeline.looker import pdt_state, reset_datagroup
from pipeline.sandbox import looker_project
from pipeline.sandbox.looker_api import clear_faults, requests_seen, sandbox_url, set_faults
from pipeline.settings import REPO_ROOT, sandbox_dir

LOOKML = REPO_ROOT / "pipeline" / "lookml"
SECRET = "s3cret-never-logged"


@pytest.fixture(autouse=True)
def shipped_lookml(monkeypatch):
    monkeypatch.delenv("TOLLGATE_LOOKML_DIR", raising=False)


@pytest.fixture
def sdk():
    return LookerResource(
        base_url=sandbox_url(), client_id="tollgate", client_secret=SECRET
    ).get_sdk()


def call(method: str, path: str, token: str | None = None, data: bytes | None = None):
    """A raw HTTP request to the sandbox: (status, decoded JSON body or None)."""
    request = urllib.request.Request(sandbox_url() + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as failed:
        status, raw = failed.code, failed.read()
    return status, json.loads(raw) if raw else None


def login(client_id: str = "tollgate", client_secret: str = SECRET) -> tuple[int, dict]:
    form = urlencode({"client_id": client_id, "client_secret": client_secret}).encode()
    return call("POST", "/api/4.0/login", data=form)


def statuses(path: str, method: str = "GET") -> list[int]:
    return [r["status"] for r in requests_seen() if r["path"] == path and r["method"] == method]


def datagroup_id(sdk, model: str, name: str) -> str:
    return next(d.id for d in sdk.all_datagroups() if (d.model_name, d.name) == (model, name))


def test_login_issues_a_bearer_token_that_every_other_request_needs(sdk):
    status, token = login()
    assert status == 200
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    assert call("GET", "/api/4.0/datagroups", token["access_token"])[0] == 200
    assert call("GET", "/api/4.0/datagroups")[0] == 401
    status, body = call("GET", "/api/4.0/datagroups", "not-a-token")
    assert status == 401 and body["message"]

    status, body = login(client_secret="")
    assert status == 401 and "client_secret" in body["message"]

    sdk.all_datagroups()
    token = sdk.auth.token.access_token
    sdk.auth.logout()
    assert call("GET", "/api/4.0/datagroups", token)[0] == 401


def test_datagroups_come_from_the_lookml_and_can_be_reset(sdk):
    found = {(d.model_name, d.name): d for d in sdk.all_datagroups()}
    assert set(found) == {("payments", "payments_etl"), ("crm", "crm_etl")}
    assert all(d.stale_before == 0 and d.trigger_error is None for d in found.values())

    now = int(time.time())
    payments_id = found["payments", "payments_etl"].id
    updated = sdk.update_datagroup(payments_id, WriteDatagroup(stale_before=now, triggered_at=now))
    assert (updated.id, updated.stale_before, updated.triggered_at) == (payments_id, now, now)
    assert sdk.datagroup(payments_id).stale_before == now
    assert sdk.datagroup(found["crm", "crm_etl"].id).stale_before == 0

    with pytest.raises(SDKError, match="future"):
        sdk.update_datagroup(payments_id, WriteDatagroup(stale_before=now + 3600))
    assert sdk.datagroup(payments_id).stale_before == now
    with pytest.raises(SDKError, match="not found"):
        sdk.datagroup("999")
    assert statuses(f"/api/4.0/datagroups/{payments_id}", "PATCH") == [200, 422]


@pytest.fixture
def published_payments():
    """The published payments tables a PDT build reads, as one clean sync lands them."""
    from datetime import UTC, datetime

    from pipeline.sandbox.sources import sources
    from pipeline.settings import duckdb_path
    from pipeline.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path=str(duckdb_path()))
    [payments] = [s for s in sources() if s.schema == "payments"]
    for table, frame in payments.land(frozenset(), datetime.now(UTC)).items():
        warehouse.write_table("payments_published", table, frame)
    sandbox_url(warehouse)  # the sandbox builds PDTs in the warehouse it is handed


def test_a_pdt_build_runs_for_the_configured_polls_then_completes(sdk, published_payments):
    started = sdk.start_pdt_build(
        "payments", "revenue_by_customer", force_rebuild="true", source="tollgate"
    )
    texts = [sdk.check_pdt_build(started.materialization_id).resp_text for _ in range(4)]
    assert [pdt_state(t)[0] for t in texts] == ["running", "running", "complete", "complete"]
    assert [json.loads(t)["status"] for t in texts] == [
        "running",
        "running",
        "complete",
        "complete",
    ]
    assert "revenue_by_customer" in texts[0]
    start = next(r for r in requests_seen() if r["path"].endswith("/start"))
    assert start["query"] == {"force_rebuild": ["true"], "source": ["tollgate"]}

    set_faults(pdt_polls_until_done=0)
    quick = sdk.start_pdt_build("payments", "revenue_by_customer")
    assert quick.materialization_id != started.materialization_id
    assert pdt_state(sdk.check_pdt_build(quick.materialization_id).resp_text)[0] == "complete"


def test_a_failing_pdt_build_reports_lookers_error(sdk):
    set_faults(pdt_outcome="fail", pdt_polls_until_done=1)
    started = sdk.start_pdt_build("payments", "revenue_by_customer")
    texts = [sdk.check_pdt_build(started.materialization_id).resp_text for _ in range(3)]
    assert [pdt_state(t)[0] for t in texts] == ["running", "failed", "failed"]
    failure = json.loads(texts[1])
    assert failure["status"] == "error"
    assert "Looker" in failure["message"] and "warehouse" in failure["message"]


def test_a_hanging_pdt_build_never_leaves_running(published_payments, sdk):
    set_faults(pdt_outcome="hang", pdt_polls_until_done=0)
    started = sdk.start_pdt_build("payments", "revenue_by_customer")
    states = {
        pdt_state(sdk.check_pdt_build(started.materialization_id).resp_text)[0] for _ in range(25)
    }
    assert states == {"running"}

    clear_faults()  # the fault is fixed when a build starts: new builds complete again
    fresh = sdk.start_pdt_build("payments", "revenue_by_customer")
    polls = [sdk.check_pdt_build(fresh.materialization_id).resp_text for _ in range(3)]
    assert pdt_state(polls[-1])[0] == "complete"
    assert pdt_state(sdk.check_pdt_build(started.materialization_id).resp_text)[0] == "running"


def test_only_persistent_views_of_the_model_can_be_built(sdk):
    for model, view in [("payments", "nope"), ("crm", "revenue_by_customer"), ("nope", "x")]:
        with pytest.raises(SDKError, match="not found"):
            sdk.start_pdt_build(model, view)
    with pytest.raises(SDKError, match="not a persistent derived table"):
        sdk.start_pdt_build("payments", "customers")
    with pytest.raises(SDKError, match="not found"):
        sdk.check_pdt_build("424242")
    starts = [r["status"] for r in requests_seen() if r["path"].endswith("/start")]
    assert starts == [404, 404, 404, 422]


def test_5xx_faults_fail_requests_until_used_up(sdk):
    set_faults(login_5xx=2, refresh_5xx=2)
    for _ in range(2):
        with pytest.raises(SDKError, match="Service Unavailable"):
            sdk.all_datagroups()
    payments_id = datagroup_id(sdk, "payments", "payments_etl")  # logs in; reads are not faulted
    assert statuses("/api/4.0/login", "POST") == [503, 503, 200]

    with pytest.raises(SDKError, match="Service Unavailable"):
        sdk.update_datagroup(payments_id, WriteDatagroup(stale_before=int(time.time())))
    assert sdk.datagroup(payments_id).stale_before == 0
    with pytest.raises(SDKError, match="Service Unavailable"):
        sdk.start_pdt_build("payments", "revenue_by_customer")

    now = int(time.time())
    assert sdk.update_datagroup(payments_id, WriteDatagroup(stale_before=now)).stale_before == now
    started = sdk.start_pdt_build("payments", "revenue_by_customer")
    assert pdt_state(sdk.check_pdt_build(started.materialization_id).resp_text)[0] == "running"
    assert [r["status"] for r in requests_seen() if r["status"] >= 500] == [503] * 4


def test_project_validation_reports_the_configured_errors(sdk):
    clean = sdk.validate_project("tollgate")
    assert clean.errors == [] and clean.models_not_validated == []
    assert len(clean.project_digest) == 40

    set_faults(
        validation_errors=[
            'Unknown or inaccessible field "customers.nme" referenced in "charges".',
            {"message": "Unknown view", "file_path": "tollgate/crm.model.lkml", "line_number": 24},
        ]
    )
    found = sdk.validate_project("tollgate").errors
    assert [e.severity for e in found] == ["error", "error"]
    assert "customers.nme" in found[0].message and found[0].model_id
    assert (found[1].file_path, found[1].line_number) == ("tollgate/crm.model.lkml", 24)
    cached = sdk.project_validation_results("tollgate")
    assert len(cached.errors) == 2 and cached.stale is False
    with pytest.raises(SDKError, match="not found"):
        sdk.validate_project("other_project")


def test_each_request_lists_the_lookml_project_once(sdk, monkeypatch):
    """The sandbox lists the project's files once per request (each listing stats every file)."""
    listed, signature = [], looker_project._signature
    monkeypatch.setattr(
        looker_project, "_signature", lambda root: listed.append(root) or signature(root)
    )
    answers = {
        "validate": lambda: sdk.validate_project("tollgate").errors,
        "model": lambda: sdk.lookml_model("payments").explores,
        "datagroups": lambda: sdk.all_datagroups(),
    }
    per_request = {}
    for name, ask in answers.items():
        listed.clear()
        assert ask() is not None
        per_request[name] = len(listed)
    assert per_request == {"validate": 1, "model": 1, "datagroups": 1}


def test_an_edited_project_is_served_at_the_next_request(sdk, tmp_path, monkeypatch):
    """Listing once per request never serves a project older than the request."""
    shutil.copytree(LOOKML, tmp_path / "lookml")
    monkeypatch.setenv("TOLLGATE_LOOKML_DIR", str(tmp_path / "lookml"))
    assert [e.name for e in sdk.lookml_model("crm").explores] == ["deals"]
    model = tmp_path / "lookml" / "crm.model.lkml"
    model.write_text(model.read_text() + "\nexplore: companies {}\n")
    assert [e.name for e in sdk.lookml_model("crm").explores] == ["deals", "companies"]


def test_lookml_models_list_the_explores_of_the_shipped_project(sdk):
    models = {m.name: m for m in sdk.all_lookml_models()}
    assert {name: [e.name for e in m.explores] for name, m in models.items()} == {
        "payments": ["charges", "revenue_by_customer"],
        "crm": ["deals"],
    }
    payments = sdk.lookml_model("payments")
    assert payments.project_name == "tollgate"
    assert payments.allowed_db_connection_names == ["warehouse"]
    with pytest.raises(SDKError, match="not found"):
        sdk.lookml_model("marketing")


def test_unknown_routes_answer_404_with_a_message(sdk):
    token = login()[1]["access_token"]
    status, body = call("GET", "/api/4.0/dashboards", token)
    assert status == 404 and body["message"] and body["documentation_url"]
    assert call("PUT", "/api/4.0/datagroups/1", token, data=b"{}")[0] == 404


def test_sandbox_answers_every_refresh_the_pipeline_configures(sdk):
    config = yaml.safe_load((REPO_ROOT / "pipeline" / "looker_refreshes.yaml").read_text())
    for refresh in config["refreshes"]:
        if "datagroup" in refresh:
            model, name = refresh["datagroup"]["model"], refresh["datagroup"]["name"]
            reset_datagroup(sdk, model, name)
            assert sdk.datagroup(datagroup_id(sdk, model, name)).stale_before > 0
        if "pdt" in refresh:
            started = sdk.start_pdt_build(refresh["pdt"]["model"], refresh["pdt"]["view"])
            assert started.materialization_id


def test_requests_and_state_are_shared_with_other_processes(sdk):
    payments_id = datagroup_id(sdk, "payments", "payments_etl")
    child = textwrap.dedent(
        f"""
        import os
        from dagster_looker import LookerResource
        from looker_sdk.sdk.api40.models import WriteDatagroup
        from pipeline.sandbox.looker_api import sandbox_url

        url = sandbox_url()
        sdk = LookerResource(base_url=url, client_id="child", client_secret="child").get_sdk()
        sdk.update_datagroup("{payments_id}", WriteDatagroup(stale_before=1700000000))
        print(os.getpid(), url)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    child_pid, child_url = done.stdout.split()
    assert child_url != sandbox_url()  # the child served itself, from the same files

    seen = [(r["pid"], r["method"], r["path"]) for r in requests_seen()]
    mine, theirs = os.getpid(), int(child_pid)
    assert seen == [
        (mine, "POST", "/api/4.0/login"),
        (mine, "GET", "/api/4.0/datagroups"),
        (theirs, "POST", "/api/4.0/login"),
        (theirs, "PATCH", f"/api/4.0/datagroups/{payments_id}"),
    ]
    assert sdk.datagroup(payments_id).stale_before == 1700000000


def test_no_secret_or_token_is_written_to_disk(sdk):
    sdk.all_datagroups()
    token = sdk.auth.token.access_token
    sdk.update_datagroup(
        datagroup_id(sdk, "crm", "crm_etl"), WriteDatagroup(triggered_at=int(time.time()))
    )
    query = urlencode({"client_id": "tollgate", "client_secret": SECRET})
    assert call("POST", f"/api/4.0/login?{query}")[0] == 200  # older clients send a query string

    logged = requests_seen()
    assert logged[-1]["query"] == {"client_id": ["tollgate"], "client_secret": ["***"]}
    files = [p for p in Path(sandbox_dir(), "looker").rglob("*") if p.is_file()]
    assert any(p.name == "requests.jsonl" for p in files)
    for path in files:
        text = path.read_text()
        assert SECRET not in text and token not in text and "Bearer" not in text, path


def test_unknown_faults_are_refused():
    with pytest.raises(TypeError, match="login_500"):
        set_faults(login_500=1)
    with pytest.raises(ValueError, match="pdt_outcome"):
        set_faults(pdt_outcome="slow")


def test_lookml_is_standard_enough_for_dagster_looker_lineage():
    deps = {
        spec.key.to_user_string(): sorted(d.asset_key.to_user_string() for d in spec.deps)
        for spec in build_looker_asset_specs(project_dir=LOOKML)
    }
    assert deps["view/revenue_by_customer"] == [
        "payments_published/charges",
        "payments_published/customers",
    ]
    assert deps["view/contacts"] == ["crm_published/contacts"]
    assert deps["explore/charges"] == ["view/charges", "view/customers", "view/invoices"]
    assert deps["dashboard/revenue"] == ["explore/charges", "explore/revenue_by_customer"]


def test_raw_pii_dimensions_require_the_can_see_pii_grant():
    def dimensions(view_file: str) -> dict[str, dict]:
        (view,) = lkml.load((LOOKML / "views" / view_file).read_text())["views"]
        return {d["name"]: d for d in view["dimensions"]}

    customers, contacts = (
        dimensions("payments/customers.view.lkml"),
        dimensions("crm/contacts.view.lkml"),
    )
    assert customers["name"]["required_access_grants"] == ["can_see_pii"]
    assert contacts["first_name"]["required_access_grants"] == ["can_see_pii"]
    assert "required_access_grants" not in customers["email"]  # hashed: shown as-is
    for model in ("payments", "crm"):
        grants = lkml.load((LOOKML / f"{model}.model.lkml").read_text())["access_grants"]
        assert [g["name"] for g in grants] == ["can_see_pii"]
