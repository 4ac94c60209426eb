"""Scope: across runs — automation conditions, the Fivetran sync sensor and the gate schedule."""

from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterInstance,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
)

from pipeline.definitions import build_definitions
from pipeline.sandbox import fivetran_sync
from pipeline_tests.gate import run_gate

PAYMENTS_TABLES = {
    AssetKey(["fivetran", "payments", t]) for t in ("customers", "charges", "invoices")
}
PAYMENTS_PUBLISHED = {
    AssetKey(["published", "payments", t]) for t in ("customers", "charges", "invoices")
}
PAYMENTS_REFRESHES = {
    AssetKey(["looker", "payments_etl"]),
    AssetKey(["looker", "revenue_by_customer"]),
}


def requested(result) -> set:
    return {r.key for r in result.results if r.true_subset.size > 0}


def test_a_failed_check_never_lets_a_later_tick_refresh_looker(monkeypatch):
    instance = DagsterInstance.ephemeral()
    defs = build_definitions()
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", "null_ids")
    assert not run_gate(instance=instance).success
    first = evaluate_automation_conditions(defs=defs, instance=instance)
    held = {k for k in requested(first) if isinstance(k, AssetKey)}
    assert not any(k.path[0] == "looker" for k in held)
    assert not held & {
        AssetKey(["published", "crm", "deals"]),
        AssetKey(["published", "payments", "charges"]),
    }

    # Payments syncs again, clean, outside the gate: its checks are requested, and the payments
    # publish and refreshes with them (the run then blocks them if the checks fail); the CRM,
    # whose last checks failed and which did not sync, stays held back.
    monkeypatch.delenv("TOLLGATE_SANDBOX_DEFECTS")
    job = defs.resolve_implicit_global_asset_job_def()
    job.get_subset(asset_selection=PAYMENTS_TABLES, asset_check_selection=set()).execute_in_process(
        instance=instance
    )
    second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    # lookml/payments and its Looker checks run with them, ahead of the refreshes.
    keys = requested(second)
    lookml = AssetKey(["lookml", "payments"])
    assert {k for k in keys if isinstance(k, AssetKey)} == (
        PAYMENTS_PUBLISHED | PAYMENTS_REFRESHES | {lookml}
    )
    assert {k.asset_key for k in keys if isinstance(k, AssetCheckKey)} == PAYMENTS_TABLES | {lookml}


def test_sensor_turns_syncs_fivetran_ran_itself_into_materializations():
    defs = build_definitions()
    sensor = defs.get_sensor_def("fivetran_syncs")
    instance = DagsterInstance.ephemeral()
    first = sensor(build_sensor_context(instance=instance, definitions=defs))
    src = fivetran_sync.source("crm_sandbox")
    fivetran_sync.sync_now(src)  # Fivetran's own schedule, not Dagster
    second = sensor(build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs))
    synced = {event.asset_key for event in second.asset_events}
    assert synced == {AssetKey(["fivetran", "crm", t]) for t in ("companies", "contacts", "deals")}


def test_gate_schedule_runs_the_whole_gate_hourly():
    defs = build_definitions()
    schedule = defs.get_schedule_def("tollgate_gate_hourly")
    assert schedule.cron_schedule == "0 * * * *"
    [request] = schedule.evaluate_tick(build_schedule_context()).run_requests
    assert request.job_name in (None, "tollgate_gate")
    gate = defs.resolve_job_def(schedule.job_name)
    assert {key for key in gate.asset_layer.executable_asset_keys} == set(
        defs.resolve_asset_graph().executable_asset_keys
    )
