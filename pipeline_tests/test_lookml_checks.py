"""Scope: the Looker checks on lookml/<model>, in-process against the sandboxes: they run before
any refresh and withhold it; SQL validation, join fan-out, data tests, PDTs built in the warehouse."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, define_asset_job

from pipeline import environment, looker_lineage
from pipeline.contract import CONTRACTS_DIR
from pipeline.definitions import build_definitions
from pipeline.looker_lineage import LOOKML_DIR, REFRESHES_FILE
from pipeline.sandbox import looker_api
from pipeline_tests.gate import LOOKER_KEYS, SHOP_HEADER, failed_checks, materialized, run_gate

SHOP = (
    SHOP_HEADER
    + """
team: {name: shop-data}
schema:
  - name: orders
    properties:
      - {name: id, physicalType: BIGINT, primaryKey: true}
"""
)
FAST_PDT = {"ops": {"looker__revenue_by_customer": {"config": {"poll_interval_seconds": 0.05}}}}
REFRESH_CALLS = ("PATCH /api/4.0/datagroups/", "GET /api/4.0/derived_table/")


def refresh_calls() -> list[str]:
    seen = [f"{r['method']} {r['path']}" for r in looker_api.requests_seen()]
    return [call for call in seen if call.startswith(REFRESH_CALLS)]


def lookml_copy(tmp_path: Path, monkeypatch) -> Path:
    project = tmp_path / "lookml"
    shutil.copytree(LOOKML_DIR, project)
    monkeypatch.setenv("TOLLGATE_LOOKML_DIR", str(project))
    return project


def keyed_view(name: str, table: str) -> str:
    """LookML of a view `name` over `table`, with its id as primary key."""
    return (
        f"view: {name} {{\n  sql_table_name: {table} ;;\n"
        "  dimension: id { primary_key: yes  sql: ${TABLE}.id ;; }\n}\n"
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def run_model(model: str, instance: DagsterInstance):
    """Materialize lookml/<model> and its checks only, on the tables the last run published."""
    job = define_asset_job("lookml_only", selection=AssetSelection.assets(["lookml", model]))
    defs = Definitions.merge(build_definitions(), Definitions(jobs=[job]))
    return defs.resolve_job_def("lookml_only").execute_in_process(
        instance=instance, raise_on_error=False
    )


def republish(table: str, select: str) -> None:
    """Replace what Looker reads, payments_published.<table> (a view), with SELECT <select>."""
    warehouse = environment.warehouse()
    warehouse.query(f"CREATE TABLE main.old_{table} AS SELECT * FROM payments_published.{table}")
    warehouse.query(f"DROP VIEW payments_published.{table}")
    warehouse.query(
        f"CREATE TABLE payments_published.{table} AS SELECT {select} FROM main.old_{table}"
    )


def lookml_failures(result) -> dict[tuple[str, str], str]:
    return {k: v for k, v in failed_checks(result).items() if len(k) == 2}


def test_a_lookml_validation_error_withholds_every_refresh_until_fixed():
    looker_api.set_faults(validation_errors=["Unknown or inaccessible field customers.nmae"])
    result = run_gate(FAST_PDT)
    assert not result.success
    assert set(lookml_failures(result)) == {
        ("payments", "lookml_is_valid"),
        ("crm", "lookml_is_valid"),
    }
    assert "customers.nmae" in lookml_failures(result)["payments", "lookml_is_valid"]
    assert refresh_calls() == []  # no Looker call that refreshes anything was made
    assert not materialized(result) & LOOKER_KEYS

    looker_api.clear_faults()
    rerun = run_gate(FAST_PDT)
    assert rerun.success
    assert materialized(rerun) >= LOOKER_KEYS
    assert sum(c.startswith("PATCH") for c in refresh_calls()) == 2


def test_an_ungranted_pii_dimension_withholds_its_models_refreshes_until_fixed(
    tmp_path, monkeypatch
):
    project = lookml_copy(tmp_path, monkeypatch)
    view = project / "views" / "payments" / "customers.view.lkml"
    granted = view.read_text()
    edit(view, "required_access_grants: [can_see_pii]", "")
    result = run_gate(FAST_PDT)
    failures = lookml_failures(result)
    assert set(failures) == {("payments", "no_pii_shown_without_access_grant")}
    assert (
        "customers.name shows payments_published.customers.name"
        in failures["payments", "no_pii_shown_without_access_grant"]
    )
    # The crm model is not affected and refreshes; nothing of the payments model does.
    assert materialized(result) & LOOKER_KEYS == {AssetKey(["looker", "crm_etl"])}
    assert len(refresh_calls()) == 1 and "/derived_table/" not in refresh_calls()[0]

    view.write_text(granted)
    rerun = run_gate(FAST_PDT)
    assert rerun.success
    assert materialized(rerun) >= LOOKER_KEYS
    assert any("/derived_table/payments/revenue_by_customer/start" in c for c in refresh_calls())


def test_looker_reading_a_landing_table_outside_every_refresh_withholds_its_models_refreshes(
    tmp_path, monkeypatch
):
    """An explore cached by a datagroup tollgate does not refresh, and that datagroup's trigger,
    read Fivetran's landing table: no refresh's lineage covers them, yet Looker queries them."""
    project = lookml_copy(tmp_path, monkeypatch)
    (project / "views" / "payments" / "raw_charges.view.lkml").write_text(
        keyed_view("raw_charges", "payments.charges")
    )
    edit(
        project / "payments.model.lkml",
        "persist_with: payments_etl\n",
        "persist_with: payments_etl\n\n"
        "datagroup: hourly {\n  sql_trigger: SELECT max(_fivetran_synced) FROM payments.invoices ;;\n}\n\n"
        "explore: raw_charges {\n  persist_with: hourly\n}\n",
    )
    result = run_gate(FAST_PDT)
    failures = lookml_failures(result)
    warned = {("payments", "deleted_rows_are_filtered")}  # raw_charges keeps deleted rows: a WARN
    assert set(failures) - warned == {("payments", "looker_reads_only_published_tables")}
    found = failures["payments", "looker_reads_only_published_tables"]
    assert (
        "views/payments/raw_charges.view.lkml: view raw_charges reads payments.charges, "
        "Fivetran's landing table: read payments_published.charges, the audited version, instead"
    ) in found
    assert (
        "payments.model.lkml: datagroup hourly reads payments.invoices, Fivetran's landing table"
    ) in found
    assert materialized(result) & LOOKER_KEYS == {AssetKey(["looker", "crm_etl"])}
    assert len(refresh_calls()) == 1 and "/derived_table/" not in refresh_calls()[0]


def test_a_model_no_refresh_belongs_to_is_held_to_published_tables_too(tmp_path, monkeypatch):
    """A model tollgate refreshes nothing of is still served from the warehouse: it gets its own
    lookml/<model> asset, judged on what it reads and on the raw PII it shows. So is one on a connection looker_refreshes.yaml
    does not name (before: left alone, though it may be a second connection to the warehouse);
    only a connection declared `warehouse: false` is not tollgate's to judge."""
    project = lookml_copy(tmp_path, monkeypatch)
    (project / "raw.model.lkml").write_text(
        'connection: "warehouse"\ninclude: "/views/raw/*.view.lkml"\n'
        "explore: raw_charges {}\nexplore: people {}\n"
    )
    (project / "views" / "raw").mkdir()
    (project / "views" / "raw" / "people.view.lkml").write_text(
        "view: people {\n  sql_table_name: payments_published.customers ;;\n"
        "  dimension: name { sql: ${TABLE}.name ;; }\n}\n"
    )
    (project / "views" / "raw" / "raw_charges.view.lkml").write_text(
        keyed_view("raw_charges", "payments.charges")
    )
    (project / "app.model.lkml").write_text(
        'connection: "reporting"\ninclude: "/views/raw/*.view.lkml"\nexplore: raw_charges {}\n'
    )
    result = run_gate(FAST_PDT)
    assert not result.success
    landing = (
        "views/raw/raw_charges.view.lkml: view raw_charges reads payments.charges, "
        "Fivetran's landing table: read payments_published.charges, the audited version, instead"
    )
    assert lookml_failures(result) == {
        ("raw", "looker_reads_only_published_tables"): landing,
        ("raw", "no_pii_shown_without_access_grant"): (
            "people.name shows payments_published.customers.name (name, owner team:payments-data)"
        ),
        ("app", "looker_reads_only_published_tables"): landing + "; model app's connection "
        "'reporting' is not declared in looker_refreshes.yaml, so it is judged as the "
        "warehouse's: if it is another database, declare it under connections: with "
        "warehouse: false",
    }
    # The refreshed models are judged on their own: every refresh still runs.
    assert materialized(result) >= LOOKER_KEYS

    refreshes = tmp_path / "looker_refreshes.yaml"
    refreshes.write_text(
        REFRESHES_FILE.read_text() + "connections:\n  reporting: {warehouse: false}\n"
    )
    monkeypatch.setattr(looker_lineage, "REFRESHES_FILE", refreshes)
    keys = {spec.key for a in build_definitions().assets for spec in a.specs}
    assert AssetKey(["lookml", "raw"]) in keys and AssetKey(["lookml", "app"]) not in keys


def test_a_contracted_table_nothing_publishes_fails_the_model_reading_it(tmp_path, monkeypatch):
    """A contract for a connector the Fivetran workspace lacks loads no check and no publish
    asset: Looker reading its published schema reads whatever is there, never audited. Before,
    the check judged reads against the contracts and passed it."""
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    (contracts / "shop.yaml").write_text(SHOP)
    monkeypatch.setenv("TOLLGATE_CONTRACTS_DIR", str(contracts))
    project = lookml_copy(tmp_path, monkeypatch)
    (project / "views" / "payments" / "orders.view.lkml").write_text(
        keyed_view("orders", "shop_published.orders")
    )
    edit(
        project / "payments.model.lkml",
        "persist_with: payments_etl\n",
        'persist_with: payments_etl\n\ndatagroup: hourly { max_cache_age: "1 hour" }\n\n'
        "explore: orders {\n  persist_with: hourly\n}\n",
    )
    warehouse = environment.warehouse()
    warehouse.query("CREATE SCHEMA IF NOT EXISTS shop_published")
    warehouse.query("CREATE TABLE shop_published.orders AS SELECT 1 AS id")
    result = run_gate(FAST_PDT)
    found = lookml_failures(result)["payments", "looker_reads_only_published_tables"]
    assert found == (
        "views/payments/orders.view.lkml: view orders reads shop_published.orders, which nothing "
        "publishes: shop.yaml contracts it, but connector 'shop' is not in the Fivetran "
        "workspace, so no check audits it"
    )
    assert materialized(result) & LOOKER_KEYS == {AssetKey(["looker", "crm_etl"])}


def test_sql_validation_names_explore_view_field_and_column_of_a_dropped_or_renamed_column():
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    # The table Looker reads changes under it (the contract checks are not part of this run).
    republish("charges", "* RENAME (currency AS currency_code)")
    result = run_model("payments", instance)
    failure = lookml_failures(result)["payments", "explores_compile_and_run"]
    assert "explore charges: view charges, field charges.currency, column currency:" in failure
    assert "explore revenue_by_customer" not in failure  # its PDT is built: Looker reads that

    republish("invoices", "* EXCLUDE (amount_paid)")
    failure = lookml_failures(run_model("payments", instance))[
        "payments", "explores_compile_and_run"
    ]
    assert "view invoices, field invoices.amount_paid, column amount_paid:" in failure
    assert "field invoices.total_outstanding, column amount_paid:" in failure
    assert "field charges.currency, column currency:" in failure


def test_a_contract_change_that_would_break_looker_fails_without_running_anything(tmp_path):
    from pipeline.contract import CONTRACTS_DIR, load_contracts
    from pipeline.lookml_project import load_model
    from pipeline.lookml_rules import columns_in_contracts, model_views

    lineage = load_model(LOOKML_DIR, "payments")
    views = model_views(lineage)
    assert columns_in_contracts(lineage, views, load_contracts()).passed

    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    edit(contracts / "payments.yaml", "{name: country,", "{name: country_code,")
    outcome = columns_in_contracts(lineage, views, load_contracts(contracts))
    assert not outcome.passed
    assert (
        "view customers, field country: column country is not in the contract of payments_published.customers"
        in outcome.summary
    )
    # The PDT's SQL is qualified against the contracts too.
    assert (
        "view revenue_by_customer: derived table SQL does not match the contracts"
        in outcome.summary
    )


def test_a_fan_out_join_fails_and_declaring_the_relationship_passes(tmp_path, monkeypatch):
    project = lookml_copy(tmp_path, monkeypatch)
    model = project / "payments.model.lkml"
    edit(
        model,
        "  join: invoices {",
        "  join: customer_invoices {\n    from: invoices\n    type: left_outer\n"
        "    relationship: many_to_one\n"
        "    sql_on: ${charges.customer_id} = ${customer_invoices.customer_id}"
        " AND NOT ${customer_invoices.is_deleted} ;;\n  }\n\n"
        "  join: invoices {",
    )
    instance = DagsterInstance.ephemeral()
    result = run_gate(FAST_PDT, instance)
    failure = lookml_failures(result)["payments", "joins_match_declared_relationship"]
    assert "explore charges, join customer_invoices: declared many_to_one but" in failure
    assert "invoices.customer_id repeat, so the join fans out" in failure
    assert materialized(result) & LOOKER_KEYS == {AssetKey(["looker", "crm_etl"])}

    edit(
        model,
        "    relationship: many_to_one\n    sql_on: ${charges.customer_id} = ${customer_invoices",
        "    relationship: one_to_many\n    sql_on: ${charges.customer_id} = ${customer_invoices",
    )
    rerun = run_model("payments", instance)
    assert lookml_failures(rerun) == {}
    evaluations = {e.check_name: e for e in rerun.get_asset_check_evaluations()}
    proofs = evaluations["joins_match_declared_relationship"].metadata["proofs"].value
    assert (
        "held by the blocking keys_are_unique"
        in proofs["explore charges, join customers (customers)"]
    )


def test_a_data_test_passes_on_clean_data_and_fails_when_the_metric_changes():
    instance = DagsterInstance.ephemeral()
    clean = run_gate(FAST_PDT, instance)
    assert clean.success
    [passed] = [
        e for e in clean.get_asset_check_evaluations()
        if e.asset_key == AssetKey(["lookml", "payments"]) and e.check_name == "lookml_data_tests_pass"
    ]  # fmt: skip
    assert passed.passed and "3 LookML data tests pass" in passed.description

    # Amounts arrive in a new unit (x100): types, keys and PII are all still as contracted.
    republish("charges", "* REPLACE (amount * 100 AS amount)")
    failure = lookml_failures(run_model("payments", instance))["payments", "lookml_data_tests_pass"]
    assert "test average_succeeded_charge_is_plausible" in failure
    assert 'Assertion "between_5_and_2000" failed' in failure
    assert "charge_ids_are_unique" not in failure


def test_a_data_test_in_the_lookml_that_looker_did_not_run_fails():
    """Looker answering with fewer tests than the LookML declares (a model deployed without
    them, a renamed test) is no pass: before, an empty answer read "0 LookML data tests pass"."""
    from pipeline.looker_sql import data_tests_pass
    from pipeline.lookml_project import load_model

    declared = load_model(LOOKML_DIR, "payments").tests
    assert len(declared) == 3 and "average_succeeded_charge_is_plausible" in declared

    class LookerWithoutTests:
        def run_lookml_test(self, project, model):
            return []

    outcome = data_tests_pass(LookerWithoutTests(), "tollgate", "payments", declared)
    assert not outcome.passed
    assert (
        "test average_succeeded_charge_is_plausible is in the LookML but Looker returned no "
        "result for it" in outcome.findings
    )
    assert len(outcome.findings) == 3
    assert data_tests_pass(LookerWithoutTests(), "tollgate", "crm", set()).passed  # none declared


def test_the_sandbox_built_pdt_holds_the_rows_of_the_tables_it_reads():
    assert run_gate(FAST_PDT).success
    warehouse = environment.warehouse()
    [table] = warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'looker_scratch'"
    )
    built = pd.DataFrame(
        warehouse.query(f"SELECT * FROM looker_scratch.{table['table_name']}")
    ).sort_values(["customer_id", "currency"], ignore_index=True)
    charges = pd.DataFrame(warehouse.query("SELECT * FROM payments_published.charges"))
    customers = pd.DataFrame(
        warehouse.query("SELECT id, country FROM payments_published.customers")
    )
    paid = charges[charges.status == "succeeded"].merge(
        customers, left_on="customer_id", right_on="id"
    )
    expected = (
        paid.assign(currency=paid.currency.str.upper())
        .groupby(["customer_id", "country", "currency"], as_index=False)
        .agg(charge_count=("amount", "size"), revenue=("amount", "sum"))
        .sort_values(["customer_id", "currency"], ignore_index=True)
    )
    assert len(built) == len(expected) > 1000
    assert built.customer_id.tolist() == expected.customer_id.tolist()
    assert built.charge_count.tolist() == expected.charge_count.tolist()
    assert (
        built.revenue.astype(float).round(2).tolist() == (expected.revenue / 100).round(2).tolist()
    )


def test_deleted_rows_rule_is_a_warning_by_default_and_blocks_when_set_to_error(
    tmp_path, monkeypatch
):
    from pipeline.looker import load_refreshes
    from pipeline.looker_lineage import REFRESHES_FILE
    from pipeline.lookml_model import build_lookml_asset, check_severities, lookml_models

    project = lookml_copy(tmp_path, monkeypatch)
    edit(project / "payments.model.lkml", "  sql_always_where: NOT ${charges.is_deleted} ;;\n", "")
    result = run_gate(FAST_PDT)
    [finding] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "deleted_rows_are_filtered" and not e.passed
    ]  # fmt: skip
    assert finding.severity.value == "WARN"
    assert (
        "explore charges: view charges reads payments_published.charges, which has _fivetran_deleted"
        in finding.description
    )
    assert result.success and materialized(result) >= LOOKER_KEYS  # a warning does not withhold

    strict = tmp_path / "refreshes.yaml"
    strict.write_text(REFRESHES_FILE.read_text() + "checks:\n  deleted_rows_are_filtered: error\n")
    [payments] = [m for m in lookml_models(load_refreshes()) if m.name == "payments"]
    specs = {
        s.name: s
        for s in build_lookml_asset(payments, {}, {}, check_severities(strict)).check_specs
    }
    assert specs["deleted_rows_are_filtered"].blocking
    strict.write_text(REFRESHES_FILE.read_text() + "checks:\n  lookml_is_valid: warn\n")
    with pytest.raises(ValueError, match="only deleted_rows_are_filtered can be set"):
        check_severities(strict)


def run_keys(instance: DagsterInstance, *keys: list[str]):
    job = define_asset_job("selected", selection=AssetSelection.assets(*keys))
    defs = Definitions.merge(build_definitions(), Definitions(jobs=[job]))
    return defs.resolve_job_def("selected").execute_in_process(
        instance=instance, raise_on_error=False
    )


def test_a_lookml_branch_is_validated_in_dev_mode_and_never_refreshed(tmp_path, monkeypatch):
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success  # production LookML on the published tables
    branches = tmp_path / "branches"
    shutil.copytree(LOOKML_DIR, branches / "rename-currency")
    edit(
        branches / "rename-currency" / "views" / "payments" / "charges.view.lkml",
        "UPPER(${TABLE}.currency)",
        "UPPER(${TABLE}.currency_code)",
    )
    monkeypatch.setenv("TOLLGATE_LOOKER_BRANCHES_DIR", str(branches))
    monkeypatch.setenv("TOLLGATE_LOOKER_BRANCH", "rename-currency")
    seen_before, refreshed_before = len(looker_api.requests_seen()), refresh_calls()

    # Local LookML stays production here, so only Looker's side can see the branch's change.
    result = run_keys(instance, ["lookml", "payments"])
    failures = lookml_failures(result)
    assert set(failures) == {("payments", "explores_compile_and_run")}
    assert (
        "field charges.currency, column currency_code:"
        in failures["payments", "explores_compile_and_run"]
    )
    calls = [f"{r['method']} {r['path']}" for r in looker_api.requests_seen()[seen_before:]]
    assert "PATCH /api/4.0/session" in calls
    assert "PUT /api/4.0/projects/tollgate/git_branch" in calls
    [materialization] = result.get_asset_materialization_events()
    assert materialization.materialization.metadata["branch"].value == "rename-currency"

    refresh = run_keys(instance, ["looker", "crm_etl"])
    [failure] = refresh.get_step_failure_events()
    assert "TOLLGATE_LOOKER_BRANCH=rename-currency" in failure.step_failure_data.error.message
    assert refresh_calls() == refreshed_before  # nothing refreshed on the branch's behalf

    monkeypatch.delenv("TOLLGATE_LOOKER_BRANCH")
    assert lookml_failures(run_keys(instance, ["lookml", "payments"])) == {}


def test_looker_checks_that_passed_on_other_lookml_do_not_open_a_refresh(tmp_path, monkeypatch):
    """After a clean run the LookML changes: a Looker-only selection must not refresh on it."""
    project = lookml_copy(tmp_path, monkeypatch)
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    edit(
        project / "views" / "crm" / "deals.view.lkml",
        "sql_table_name: crm_published.deals ;;",
        "sql_table_name: crm_published.deals ;;\n  # edited after the checks passed",
    )
    before = len(refresh_calls())
    result = run_keys(instance, ["looker", "crm_etl"])
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert "Refusing to refresh looker/crm_etl" in message
    assert "lookml/crm lookml_is_valid passed on other LookML" in message
    assert refresh_calls()[before:] == []
