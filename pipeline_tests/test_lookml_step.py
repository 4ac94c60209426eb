"""Scope: lookml/<model> and its Looker checks as one step, in-process against the sandboxes: one
step and one Looker login a model, either part selectable alone, no check passing on a model Looker
did not describe, and every refresh verifying its model's checks itself."""

import pytest
from dagster import (
    AssetCheckKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    define_asset_job,
)

from pipeline.definitions import build_definitions
from pipeline.gate import GateIndex
from pipeline.locking import read_lines
from pipeline.looker import load_refreshes
from pipeline.lookml_model import (
    DELETED_FILTERED,
    DESCRIPTIONS,
    build_lookml_asset,
    check_severities,
    lookml_key,
    lookml_models,
)
from pipeline.report import RESULTS, run_folder
from pipeline.run_summary import CHECK_FAILED, summarize
from pipeline.sandbox import looker_api
from pipeline_tests.gate import LOOKER_KEYS, LOOKML_KEYS, materialized, run_gate

FAST_PDT = {"ops": {"looker__revenue_by_customer": {"config": {"poll_interval_seconds": 0.05}}}}
PAYMENTS, CRM = lookml_key("payments"), lookml_key("crm")
REFRESHES = {
    "payments": {"looker/payments_etl", "looker/revenue_by_customer"},
    "crm": {"looker/crm_etl"},
}
BLOCKING = set(DESCRIPTIONS) - {DELETED_FILTERED}
REFRESH_CALLS = ("PATCH /api/4.0/datagroups/", "GET /api/4.0/derived_table/")


def run_selection(instance: DagsterInstance, selection: AssetSelection, run_config=None):
    job = define_asset_job("selected", selection=selection)
    defs = Definitions.merge(build_definitions(), Definitions(jobs=[job]))
    return defs.resolve_job_def("selected").execute_in_process(
        run_config=run_config, instance=instance, raise_on_error=False
    )


def steps_started(result) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]


def looker_calls(since: int = 0) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in looker_api.requests_seen()[since:]]


def refreshed(result) -> set[str]:
    return {k.to_user_string() for k in materialized(result) & LOOKER_KEYS}


def run_summary(instance: DagsterInstance, result) -> dict:
    return summarize(instance, result.run_id, build_definitions().resolve_asset_graph())


@pytest.fixture
def gated() -> DagsterInstance:
    """An instance after one clean gate: everything published, every model described."""
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    return instance


def test_a_models_asset_and_its_checks_run_in_one_step_and_are_reported():
    result = run_gate(FAST_PDT)
    assert result.success
    assert sorted(s for s in steps_started(result) if s.startswith("lookml")) == [
        "lookml__crm",
        "lookml__payments",
    ]
    events = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    checked_in = {
        e.event_specific_data.check_name: e.step_key
        for e in events
        if e.event_specific_data.asset_key == PAYMENTS
    }
    assert checked_in == dict.fromkeys(DESCRIPTIONS, "lookml__payments")
    [materialization] = [
        e for e in result.get_asset_materialization_events() if e.asset_key == PAYMENTS
    ]
    assert materialization.step_key == "lookml__payments"
    # The run report has each result, with the blocking flag of its spec.
    records = [
        r
        for r in read_lines(run_folder(result.run_id) / RESULTS)
        if r["asset_key"] == "lookml/payments"
    ]
    assert {r["check_name"]: (r["step"], r["blocking"]) for r in records} == {
        name: ("lookml__payments", name in BLOCKING) for name in DESCRIPTIONS
    }


def test_a_model_logs_in_to_looker_once_for_its_description_and_all_its_checks(gated):
    instance = gated
    before = len(looker_api.requests_seen())
    result = run_selection(instance, AssetSelection.assets(PAYMENTS))
    assert result.success and steps_started(result) == ["lookml__payments"]
    assert materialized(result) == {PAYMENTS}
    assert len(result.get_asset_check_evaluations()) == len(DESCRIPTIONS)
    assert looker_calls(before).count("POST /api/4.0/login") == 1


def test_a_models_checks_run_without_it_and_it_runs_without_them(gated):
    instance = gated
    before = len(looker_api.requests_seen())

    checks_only = run_selection(instance, AssetSelection.checks_for_assets(PAYMENTS))
    assert checks_only.success and steps_started(checks_only) == ["lookml__payments"]
    assert materialized(checks_only) == set()
    evaluations = checks_only.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations if e.passed} == set(DESCRIPTIONS)
    assert "GET /api/4.0/lookml_models/payments" in looker_calls(before)  # the checks' session

    one = run_selection(instance, AssetSelection.checks(AssetCheckKey(PAYMENTS, "lookml_is_valid")))
    assert [(e.check_name, e.passed) for e in one.get_asset_check_evaluations()] == [
        ("lookml_is_valid", True)
    ]
    assert materialized(one) == set()

    asset_only = run_selection(instance, AssetSelection.assets(PAYMENTS).without_checks())
    assert asset_only.success and materialized(asset_only) == {PAYMENTS}
    assert asset_only.get_asset_check_evaluations() == []
    assert not (run_folder(asset_only.run_id) / RESULTS).exists()  # nothing to report


def test_when_looker_cannot_describe_a_model_none_of_its_checks_pass_and_nothing_refreshes():
    # Only the run's first login fails: the model whose step logs in first is not described,
    # while its checks, logging in again, could have run and passed on their own.
    looker_api.set_faults(login_5xx=1)
    instance = DagsterInstance.ephemeral()
    result = run_gate(FAST_PDT, instance)
    assert not result.success
    [failure] = [e for e in result.get_step_failure_events() if e.step_key.startswith("lookml")]
    model = failure.step_key.removeprefix("lookml__")
    other = ({"payments", "crm"} - {model}).pop()
    assert f"Looker did not describe model {model}: " in failure.step_failure_data.error.message
    assert "Service Unavailable" in failure.step_failure_data.error.message
    assert materialized(result) & LOOKML_KEYS == {lookml_key(other)}

    evaluations = [
        e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == "lookml"
    ]
    failed = {e.check_name: e.description for e in evaluations if e.asset_key == lookml_key(model)}
    assert set(failed) == set(DESCRIPTIONS)
    assert not any(e.passed for e in evaluations if e.asset_key == lookml_key(model))
    assert all(
        d.startswith(f"could not run: Looker did not describe model {model}: ")
        for d in failed.values()
    )
    assert all(e.passed for e in evaluations if e.asset_key == lookml_key(other))
    assert refreshed(result) == REFRESHES[other]

    summary = run_summary(instance, result)
    held = {h["asset_key"]: h["held_back_by"] for h in summary["held_back"]}
    assert {k for k in held if k.startswith("looker/")} == REFRESHES[model]
    assert [s["step"] for s in summary["failed_steps"]] == [f"lookml__{model}"]


def test_a_failed_lookml_check_fails_the_step_after_its_asset_and_holds_back_the_refreshes():
    looker_api.set_faults(validation_errors=["Unknown or inaccessible field customers.nmae"])
    instance = DagsterInstance.ephemeral()
    result = run_gate(FAST_PDT, instance)
    errors = {e.step_key: e.step_failure_data.error for e in result.get_step_failure_events()}
    assert set(errors) == {"lookml__payments", "lookml__crm"}
    assert {error.cls_name for error in errors.values()} == {CHECK_FAILED}
    assert materialized(result) & LOOKML_KEYS == LOOKML_KEYS  # described, then judged
    assert refreshed(result) == set()
    assert not [c for c in looker_calls() if c.startswith(REFRESH_CALLS)]

    summary = run_summary(instance, result)
    assert {h["asset_key"]: h["held_back_by"] for h in summary["held_back"]} == {
        **dict.fromkeys(REFRESHES["payments"], ["lookml/payments lookml_is_valid"]),
        **dict.fromkeys(REFRESHES["crm"], ["lookml/crm lookml_is_valid"]),
    }
    assert summary["failed_steps"] == []


def test_the_gate_index_counts_checks_defined_with_their_asset():
    [crm] = [m for m in lookml_models(load_refreshes()) if m.name == "crm"]
    index = GateIndex.build([build_lookml_asset(crm, {}, {}, check_severities())], [])
    assert {c.name for c in index.blocking[CRM]} == BLOCKING


def test_a_refresh_refuses_when_its_models_checks_never_ran():
    """lookml/crm materialized without its checks: its refresh, in the same run, verifies them
    itself and refuses."""
    without_lookml_checks = AssetSelection.all() - AssetSelection.checks_for_assets(*LOOKML_KEYS)
    result = run_selection(DagsterInstance.ephemeral(), without_lookml_checks, FAST_PDT)
    assert materialized(result) & LOOKML_KEYS == LOOKML_KEYS
    assert not [e for e in result.get_asset_check_evaluations() if e.asset_key in LOOKML_KEYS]
    errors = {
        e.step_key: e.step_failure_data.error.message for e in result.get_step_failure_events()
    }
    assert set(errors) == {"looker__crm_etl", "looker__payments_etl", "looker__revenue_by_customer"}
    message = errors["looker__crm_etl"]
    assert "Refusing to refresh looker/crm_etl" in message
    for name in BLOCKING:
        assert f"lookml/crm {name} has never run to a result" in message
    assert DELETED_FILTERED not in message  # a warning never withholds
    assert refreshed(result) == set()
    assert not [c for c in looker_calls() if c.startswith(REFRESH_CALLS)]


def test_a_refresh_refuses_when_its_models_check_failed_in_an_earlier_run(gated):
    instance = gated
    looker_api.set_faults(validation_errors=["Unknown or inaccessible field deals.amout"])
    judged = run_selection(instance, AssetSelection.checks_for_assets(CRM))
    assert [e.check_name for e in judged.get_asset_check_evaluations() if not e.passed] == [
        "lookml_is_valid"
    ]
    looker_api.clear_faults()
    before = len(looker_api.requests_seen())
    result = run_selection(instance, AssetSelection.assets(["looker", "crm_etl"]))
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert "Refusing to refresh looker/crm_etl" in message
    assert "lookml/crm lookml_is_valid failed" in message and "deals.amout" in message
    assert not [c for c in looker_calls(before) if c.startswith(REFRESH_CALLS)]
