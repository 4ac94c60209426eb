"""Scope: credentials never leak — the whole gate runs in-process with canary secrets.

The canaries go in through the same variables production uses, so the definitions take the
real-service path (dagster.EnvVar, the production workspace and LookerResource); only the
addresses point at the local sandboxes, which accept any credentials. Everything the run leaves
behind is then searched for the canaries, plain and as HTTP Basic auth encodes them.
"""

import base64
import logging

import dagster_fivetran.resources
import pytest
from dagster import DagsterInstance, serialize_value
from dagster_looker import LookerResource

from pipeline import environment
from pipeline.definitions import build_definitions
from pipeline.fivetran import GateFivetranWorkspace
from pipeline.sandbox import fivetran_api, fivetran_sync, looker_api, looker_state
from pipeline.settings import data_dir, duckdb_path
from pipeline.warehouse import DuckDBWarehouse
from pipeline_tests.gate import LOOKER_KEYS, materialized

CANARIES = {
    "FIVETRAN_API_KEY": "canary-fivetran-key-3b1f9e",
    "FIVETRAN_API_SECRET": "canary-fivetran-secret-77d0c4",
    "LOOKERSDK_CLIENT_ID": "canary-looker-id-5a2e81",
    "LOOKERSDK_CLIENT_SECRET": "canary-looker-secret-c90b13",
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


BASIC_AUTH = b64(f"{CANARIES['FIVETRAN_API_KEY']}:{CANARIES['FIVETRAN_API_SECRET']}")
# Each canary plain and in base64, and the Authorization header HTTP Basic auth builds from two.
NEEDLES = {
    **CANARIES,
    **{f"{name} in base64": b64(value) for name, value in CANARIES.items()},
    "Fivetran key:secret in Basic auth": BASIC_AUTH,
}


@pytest.fixture
def canary_env(monkeypatch):
    """Real-service configuration whose addresses are the sandboxes; spies record what arrived."""
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    # Real Fivetran and Looker clients, the local DuckDB as warehouse: setup() refuses that mix
    # for real services (their data is elsewhere), but here both are the sandboxes on that DuckDB.
    mix = environment.Setup("sandbox", frozenset({"fivetran", "looker"}))
    monkeypatch.setattr(environment, "setup", lambda: mix)
    # The sandbox runs Looker's SQL in the local warehouse (no Snowflake account is set).
    warehouse = DuckDBWarehouse(path=str(duckdb_path()))  # the file the pipeline's DuckDB uses
    monkeypatch.setenv("LOOKERSDK_BASE_URL", looker_api.sandbox_url(warehouse))
    # dagster-fivetran reads its API base from this module constant on every request.
    monkeypatch.setattr(dagster_fivetran.resources, "FIVETRAN_API_BASE", fivetran_api.sandbox_url())
    client = dagster_fivetran.resources.FivetranClient("k", "s", 0, 0, 1, False)
    assert client.api_base_url.startswith(fivetran_api.sandbox_url())  # never the real Fivetran
    received: dict[str, list[str]] = {"fivetran_auth": [], "looker_secret": []}
    answer, login = fivetran_api.FivetranHandler.answer, looker_api.login

    def spy_answer(handler, *request):
        received["fivetran_auth"].append(handler.headers.get("Authorization") or "")
        return answer(handler, *request)

    def spy_login(form):
        received["looker_secret"] += form.get("client_secret", [])
        return login(form)

    monkeypatch.setattr(fivetran_api.FivetranHandler, "answer", spy_answer)
    monkeypatch.setattr(looker_api, "login", spy_login)
    return received


def run_and_collect(capfd, caplog, faults: bool = False):
    """Run the gate; return the run's result and every text it left behind."""
    caplog.set_level(logging.DEBUG)
    defs = build_definitions()
    resources = defs.resources
    # The production resources (EnvVar credentials, stock clients), not the sandbox subclasses.
    assert type(resources["fivetran"]) is GateFivetranWorkspace
    assert type(resources["looker"]) is LookerResource
    if faults:
        # The first Fivetran request fails through all of its retries; the first Looker login
        # fails; everything after that works.
        fivetran_sync.set_faults(http_5xx=4)
        looker_state.set_faults(login_5xx=1)
    instance = DagsterInstance.ephemeral()
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    run = instance.get_run_by_id(result.run_id)
    out, err = capfd.readouterr()
    texts = {
        "event log": [serialize_value(entry) for entry in instance.all_logs(result.run_id)],
        "run and job snapshot": [
            serialize_value(run),
            serialize_value(instance.get_job_snapshot(run.job_snapshot_id)),
        ],
        "asset specs": [repr(spec) for spec in defs.resolve_all_asset_specs()],
        "python logging": [caplog.text],
        "stdout and stderr": [out, err],
        "fivetran sandbox requests": [repr(fivetran_api.requests_seen())],
        "looker sandbox requests": [repr(looker_api.requests_seen())],
        "data folder files": [
            path.read_bytes().decode("latin-1") for path in data_dir().rglob("*") if path.is_file()
        ],
    }
    return result, texts


def assert_no_canary(texts: dict[str, list[str]]) -> None:
    assert all(any(chunks) for chunks in texts.values())  # every place really holds something
    leaks = {
        (where, name)
        for where, chunks in texts.items()
        for name, needle in NEEDLES.items()
        if any(needle in chunk for chunk in chunks)
    }
    assert leaks == set()


def assert_canaries_were_used(received: dict[str, list[str]]) -> None:
    """The test would prove nothing if the canaries never reached the services."""
    assert set(received["fivetran_auth"]) == {f"Basic {BASIC_AUTH}"}
    assert set(received["looker_secret"]) == {CANARIES["LOOKERSDK_CLIENT_SECRET"]}


def test_a_clean_run_leaks_no_secret(canary_env, capfd, caplog):
    result, texts = run_and_collect(capfd, caplog)
    assert result.success and materialized(result) >= LOOKER_KEYS
    assert_canaries_were_used(canary_env)
    assert_no_canary(texts)


def test_failing_fivetran_and_looker_calls_leak_no_secret(canary_env, capfd, caplog):
    result, texts = run_and_collect(capfd, caplog, faults=True)
    assert not result.success
    errors = {  # step -> its error's message and stack trace
        e.step_key: e.event_specific_data.error.to_string()
        for e in result.get_step_failure_events()
    }
    fivetran = [m for step, m in errors.items() if step.startswith("fivetran")]
    looker = [m for step, m in errors.items() if step.startswith(("lookml", "looker"))]
    assert len(fivetran) == 1 and "Max retries (3) exceeded" in fivetran[0] and "503" in fivetran[0]
    assert looker and all("Service Unavailable" in m for m in looker)
    assert any("Request to Fivetran API failed" in chunk for chunk in texts["event log"])
    # The other connector synced and published; its LookML model, the first step to call Looker,
    # met the failed login, so nothing was refreshed (the clean run above covers the working Looker path).
    done = {key.path[0] for key in materialized(result)}
    assert done == {"fivetran", "published"}
    assert_canaries_were_used(canary_env)
    assert_no_canary({**texts, "failure messages": list(errors.values())})
