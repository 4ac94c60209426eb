"""Scope: faults in Fivetran, the warehouse and Looker — each run fails closed, then recovers."""

import dataclasses

from dagster import AssetKey, DagsterInstance
from sqlglot import exp

from pipeline import environment
from pipeline.checks import factory
from pipeline.definitions import build_definitions
from pipeline.sandbox import fivetran_sync, looker_api
from pipeline.warehouse import DuckDBWarehouse
from pipeline_tests.gate import LOOKER_KEYS, PUBLISHED_KEYS, failed_checks, materialized, run_gate

PAYMENTS_LOOKER = {
    AssetKey(["looker", "payments_etl"]),
    AssetKey(["looker", "revenue_by_customer"]),
}
CRM_LOOKER = {AssetKey(["looker", "crm_etl"])}


def step_errors(result) -> dict[str, str]:
    return {e.step_key: e.step_failure_data.error.message for e in result.get_step_failure_events()}


def checks_and_refreshes(instance=None):
    """Run only the checks, publish and Looker refreshes (no sync): the warehouse as it is now."""
    defs = build_definitions()
    job = defs.resolve_implicit_global_asset_job_def()
    subset = job.get_subset(
        asset_selection=LOOKER_KEYS | PUBLISHED_KEYS,
        asset_check_selection=set(defs.resolve_asset_graph().asset_check_keys),
    )
    return subset.execute_in_process(raise_on_error=False, instance=instance)


def test_fivetran_5xx_and_429_bursts_are_retried_and_the_gate_passes():
    fivetran_sync.set_faults(http_5xx=2, rate_limit=1)
    result = run_gate()
    assert result.success
    assert materialized(result) >= LOOKER_KEYS


def test_fivetran_sync_failure_names_the_connector_and_fivetrans_reason():
    fivetran_sync.set_faults(sync_failure=["crm"])
    result = run_gate()
    errors = step_errors(result)
    assert set(errors) == {"fivetran_crm"}
    assert (
        "crm_sandbox" in errors["fivetran_crm"]
        and "Fivetran says: source refused" in (errors["fivetran_crm"])
    )
    assert not any(e.asset_key.path[1] == "crm" for e in result.get_asset_check_evaluations())
    assert materialized(result) & LOOKER_KEYS == PAYMENTS_LOOKER


def test_paused_connector_fails_instead_of_checking_old_data():
    run_gate()  # an earlier good sync: the tables exist and would pass
    fivetran_sync.set_faults(paused=["payments"])
    result = run_gate()
    assert "paused" in step_errors(result)["fivetran_payments"]
    assert not any(e.asset_key.path[1] == "payments" for e in result.get_asset_check_evaluations())
    assert materialized(result) & LOOKER_KEYS == CRM_LOOKER


def test_rescheduled_sync_is_retried_then_lands():
    fivetran_sync.set_faults(reschedule=["crm"], reschedule_seconds=0.2, reschedule_times=1)
    result = run_gate()
    assert result.success
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert [e.step_key for e in retried] == ["fivetran_crm"]


def test_sync_rescheduled_for_good_fails_with_the_connector_named():
    fivetran_sync.set_faults(reschedule=["crm"], reschedule_seconds=0.1)
    result = run_gate()
    assert "rescheduled connector crm_sandbox" in step_errors(result)["fivetran_crm"]
    assert materialized(result) & LOOKER_KEYS == PAYMENTS_LOOKER


def test_never_synced_connector_has_no_assets_and_no_refresh():
    fivetran_sync.set_faults(never_synced=["crm"])
    defs = build_definitions()
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert not any(k.path[:2] in (["fivetran", "crm"], ["published", "crm"]) for k in keys)
    assert AssetKey(["looker", "payments_etl"]) in keys
    # crm_etl loads, but nothing could gate what it reads, so it refuses to run, naming why.
    job = defs.resolve_implicit_global_asset_job_def()
    subset = job.get_subset(asset_selection=CRM_LOOKER, asset_check_selection=set())
    result = subset.execute_in_process(raise_on_error=False)
    message = step_errors(result)["looker__crm_etl"]
    assert "Refusing to refresh looker/crm_etl" in message
    assert (
        "crm_published.deals, which nothing publishes: crm.yaml contracts it, but connector "
        "'crm' is not in the Fivetran workspace, so no check audits it" in message
    )
    assert not [r for r in looker_api.requests_seen() if r["method"] == "PATCH"]


def test_warehouse_down_fails_every_check_and_refreshes_nothing(monkeypatch):
    assert run_gate().success
    monkeypatch.setattr(environment, "warehouse", lambda: UnreachableWarehouse(path="unused"))
    result = checks_and_refreshes()
    evaluations = result.get_asset_check_evaluations()
    table_checks = [e for e in evaluations if e.asset_key.path[0] == "fivetran"]
    assert table_checks and not any(e.passed for e in table_checks)
    assert all("Connection refused" in (e.description or "") for e in table_checks)
    assert not materialized(result) & LOOKER_KEYS


def test_a_broken_rule_fails_alone(monkeypatch):
    broken = [
        dataclasses.replace(r, metrics=lambda *a: {"x": exp.Anonymous(this="no_such_fn")})
        if r.check_name == "data_is_fresh"
        else r
        for r in factory.RULES
    ]
    monkeypatch.setattr(factory, "RULES", tuple(broken))
    result = run_gate()
    failures = failed_checks(result)
    assert {check for *_, check in failures} == {"data_is_fresh"}
    assert len(failures) == 6  # every table's freshness, nothing else
    assert all("no_such_fn" in d.lower() for d in failures.values())
    assert not materialized(result) & LOOKER_KEYS


def test_table_dropped_between_sync_and_check(monkeypatch):
    instance = DagsterInstance.ephemeral()
    assert run_gate(instance=instance).success
    environment.warehouse().query('DROP TABLE "payments"."invoices"')
    result = checks_and_refreshes(instance)
    failures = failed_checks(result)
    invoices = {check: d for (_, table, check), d in failures.items() if table == "invoices"}
    assert invoices and all("does not exist" in d for d in invoices.values())
    # charges.invoice_id can no longer be resolved either; everything else still reports.
    assert set(failures) - {("payments", "invoices", c) for c in invoices} == {
        ("payments", "charges", "foreign_keys_resolve")
    }
    assert materialized(result) & LOOKER_KEYS == CRM_LOOKER


def test_looker_outage_fails_the_refresh_and_a_rerun_recovers():
    looker_api.set_faults(login_5xx=1000)
    result = run_gate()
    errors = step_errors(result)
    # lookml/<model> is the first step to call Looker: it fails, so no refresh is attempted.
    assert {k for k in errors if k.startswith(("looker__", "lookml__"))} == {
        "lookml__payments",
        "lookml__crm",
    }
    assert all("503" in m or "Service Unavailable" in m for m in errors.values())
    assert not materialized(result) & LOOKER_KEYS
    looker_api.clear_faults()
    assert run_gate().success


class UnreachableWarehouse(DuckDBWarehouse):
    """A warehouse whose every connection is refused, sessions included."""

    def _open(self):
        raise ConnectionRefusedError(111, "Connection refused")
