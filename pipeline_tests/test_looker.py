"""Scope: the Looker side of the gate in-process — refresh calls and PDT outcomes (the LookML
checks that run before them: test_lookml_checks.py)."""

import shutil
from types import SimpleNamespace

from dagster import AssetKey

from pipeline import looker
from pipeline.looker import RefreshConfig, build_pdt
from pipeline.looker_lineage import LOOKML_DIR
from pipeline.sandbox import looker_api
from pipeline_tests.gate import LOOKER_KEYS, failed_checks, materialized, run_gate

PDT = AssetKey(["looker", "revenue_by_customer"])


def calls() -> list[str]:
    return [f"{r['method']} {r['path']}" for r in looker_api.requests_seen()]


def pdt_config(**config) -> dict:
    return {"ops": {"looker__revenue_by_customer": {"config": config}}}


def test_clean_run_resets_datagroups_and_polls_the_pdt_to_complete():
    result = run_gate(pdt_config(poll_interval_seconds=0.05))
    assert result.success
    seen = calls()
    start = seen.index("GET /api/4.0/derived_table/payments/revenue_by_customer/start")
    polls = [c for c in seen[start:] if c.endswith("/status")]
    assert len(polls) >= 2  # the sandbox answers "running" before "complete"
    assert sum(c.startswith("PATCH /api/4.0/datagroups/") for c in seen) == 2
    assert seen[0] == "POST /api/4.0/login"
    [pdt] = [m for m in result.get_asset_materialization_events() if m.asset_key == PDT]
    assert "complete" in str(pdt.materialization.metadata["pdt_status"].value).lower()


def test_failed_pdt_build_fails_the_asset_with_lookers_message():
    looker_api.set_faults(pdt_outcome="fail")
    result = run_gate(pdt_config(poll_interval_seconds=0.05))
    assert not result.success
    assert PDT not in materialized(result)
    assert materialized(result) & LOOKER_KEYS == LOOKER_KEYS - {PDT}
    [failure] = [e for e in result.get_step_failure_events() if "revenue_by_customer" in e.step_key]
    message = failure.step_failure_data.error.message
    assert "revenue_by_customer failed" in message


def test_pdt_build_that_never_finishes_times_out():
    looker_api.set_faults(pdt_outcome="hang")
    result = run_gate(pdt_config(poll_interval_seconds=0.05, timeout_seconds=0.5))
    assert PDT not in materialized(result)
    [failure] = [e for e in result.get_step_failure_events() if "revenue_by_customer" in e.step_key]
    assert "not built after" in failure.step_failure_data.error.message


def test_refresh_reading_an_uncontracted_table_refuses_to_run(tmp_path, monkeypatch):
    from pipeline.contract import CONTRACTS_DIR

    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    crm = contracts / "crm.yaml"
    text = crm.read_text()
    crm.write_text(text[: text.index("  - name: deals")])  # the deals table loses its contract
    monkeypatch.setenv("TOLLGATE_CONTRACTS_DIR", str(contracts))
    result = run_gate(pdt_config(poll_interval_seconds=0.05))
    # lookml/crm's checks already hold the refresh back; it would refuse on its own as well.
    failures = failed_checks(result)
    assert (
        "crm_published.deals, which no contract publishes"
        in failures["crm", "no_pii_shown_without_access_grant"]
    )
    assert (
        "view deals reads crm_published.deals, which no contract covers"
        in failures["crm", "view_columns_are_in_contracts"]
    )
    assert materialized(result) & LOOKER_KEYS == LOOKER_KEYS - {AssetKey(["looker", "crm_etl"])}
    assert sum(c.startswith("PATCH /api/4.0/datagroups/") for c in calls()) == 1  # payments only


def test_lookml_reading_a_landing_table_refuses_to_refresh(tmp_path, monkeypatch):
    project = tmp_path / "lookml"
    shutil.copytree(LOOKML_DIR, project)
    view = project / "views" / "payments" / "charges.view.lkml"
    view.write_text(view.read_text().replace("payments_published.charges", "payments.charges"))
    monkeypatch.setenv("TOLLGATE_LOOKML_DIR", str(project))
    result = run_gate(pdt_config(poll_interval_seconds=0.05))
    # lookml/payments holds back every payments refresh (the PDT reads the published table, but
    # belongs to the same model).
    message = failed_checks(result)["payments", "no_pii_shown_without_access_grant"]
    assert "reads payments.charges, Fivetran's landing table" in message
    assert "payments_published.charges" in message
    assert materialized(result) & LOOKER_KEYS == {AssetKey(["looker", "crm_etl"])}


def test_pdt_status_checks_start_quick_and_back_off_to_the_interval(monkeypatch):
    """A build done in a second is seen in a fraction of one; a long one is asked every interval."""
    answers = iter(['{"status": "running"}'] * 6 + ['{"status": "complete"}'])
    sdk = SimpleNamespace(
        start_pdt_build=lambda *args, **kwargs: SimpleNamespace(materialization_id="7"),
        check_pdt_build=lambda _id: SimpleNamespace(resp_text=next(answers)),
    )
    waits = []
    monkeypatch.setattr(looker.time, "sleep", waits.append)
    context = SimpleNamespace(log=SimpleNamespace(info=lambda message: None))
    built = build_pdt(context, sdk, "payments", "revenue", RefreshConfig(poll_interval_seconds=1.0))
    assert built["pdt_status"] == "complete"
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
