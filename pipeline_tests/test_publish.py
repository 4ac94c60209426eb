"""Scope: write-audit-publish in-process — Looker's tables change only to audited, passing versions."""

import dataclasses
import shutil

import lkml
import pytest
import sqlglot
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    DagsterInstance,
    Failure,
    evaluate_automation_conditions,
)
from sqlglot import exp

from pipeline import gate, publish
from pipeline.checks.factory import AUDITED_VERSION, fivetran_key
from pipeline.checks.keys import FOREIGN_KEYS_CHECK
from pipeline.contract import CONTRACTS_DIR, ColumnContract, TableContract, load_contracts
from pipeline.definitions import build_definitions
from pipeline.looker_lineage import LOOKML_DIR
from pipeline.published import (
    build_publish_assets,
    gated_parents,
    gating_parents,
    parents_first,
    publish_groups,
    published_key,
)
from pipeline.sandbox import fivetran_api, looker_api, source_edits
from pipeline.settings import duckdb_path
from pipeline.warehouse import DuckDBWarehouse
from pipeline_tests.gate import LOOKER_KEYS, materialized, run_gate

CHARGES = AssetKey(["fivetran", "payments", "charges"])
CUSTOMERS = AssetKey(["fivetran", "payments", "customers"])
PUBLISHED_CHARGES = AssetKey(["published", "payments", "charges"])
PUBLISHED_CUSTOMERS = AssetKey(["published", "payments", "customers"])
PARENTS = {CUSTOMERS, AssetKey(["fivetran", "payments", "invoices"])}  # what charges reference
PUBLISHED_PARENTS = {AssetKey(["published", *key.path[1:]]) for key in PARENTS}
CRM_TABLES = ("companies", "contacts", "deals")
FAST_PDT = {"ops": {"looker__revenue_by_customer": {"config": {"poll_interval_seconds": 0.05}}}}


def warehouse() -> DuckDBWarehouse:
    return DuckDBWarehouse(path=str(duckdb_path()))


def lookml_tables() -> set[str]:
    """Every table any LookML file names: sql_table_name and the tables in derived SQL."""
    tables = set()
    for path in LOOKML_DIR.rglob("*.lkml"):
        for view in lkml.load(path.read_text()).get("views", []):
            if "sql_table_name" in view:
                tables.add(view["sql_table_name"].strip())
            sql = view.get("derived_table", {}).get("sql")
            if sql:
                tables |= {f"{t.db}.{t.name}" for t in sqlglot.parse_one(sql).find_all(exp.Table)}
    return tables


def fingerprint(table: str) -> tuple:
    """Rows, null ids and the latest sync a table holds, as Looker would read it."""
    [row] = warehouse().query(
        f"SELECT count(*) AS n, count(*) - count(id) AS null_ids, max(_fivetran_synced) AS synced "
        f"FROM {table}"
    )
    return row["n"], row["null_ids"], row["synced"]


def sync_audit_publish(instance: DagsterInstance, keys: set[AssetKey]) -> None:
    """One gate run over just these Fivetran and publish assets (and the tables' checks)."""
    job = build_definitions().resolve_implicit_global_asset_job_def()
    assert job.get_subset(asset_selection=keys).execute_in_process(instance=instance).success


def refresh_calls() -> list[str]:
    return [
        f"{r['method']} {r['path']}"
        for r in looker_api.requests_seen()
        if r["method"] == "PATCH" or "/derived_table/" in r["path"]
    ]


def test_looker_tables_keep_the_last_clean_rows_until_a_sync_passes(monkeypatch):
    tables = lookml_tables()
    assert tables and all(t.split(".")[0].endswith("_published") for t in tables)
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    clean = {t: fingerprint(t) for t in tables}
    assert all(n > 0 and nulls == 0 for n, nulls, _ in clean.values())

    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", "null_ids")
    assert not run_gate(FAST_PDT, instance).success
    assert fingerprint("payments.charges")[1] == 12  # the landing table holds the defect
    for table in ("payments_published.charges", "crm_published.deals"):
        assert fingerprint(table) == clean[table]

    monkeypatch.delenv("TOLLGATE_SANDBOX_DEFECTS")
    assert run_gate(FAST_PDT, instance).success
    later = {t: fingerprint(t) for t in tables}
    # Syncs are incremental: only rows that changed move _fivetran_synced. The repaired rows of
    # the two damaged tables did; every table now shows exactly what landed, without nulls.
    assert all(later[t] == fingerprint(t.replace("_published.", ".")) for t in tables)
    assert all(later[t][1] == 0 for t in tables)
    for table in ("payments_published.charges", "crm_published.deals"):
        assert later[table][2] > clean[table][2]


@pytest.mark.parametrize("selected", ["looker", "published"])
def test_a_partial_selection_after_a_failed_check_refuses(monkeypatch, selected):
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    before = fingerprint("payments_published.charges")
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", "null_ids")
    assert not run_gate(FAST_PDT, instance).success
    seen = len(refresh_calls())

    job = build_definitions().resolve_implicit_global_asset_job_def()
    keys = LOOKER_KEYS if selected == "looker" else {PUBLISHED_CHARGES}
    result = job.get_subset(asset_selection=keys, asset_check_selection=set()).execute_in_process(
        instance=instance,
        run_config=FAST_PDT if selected == "looker" else None,
        raise_on_error=False,
    )
    assert not result.success
    assert not materialized(result)
    messages = " ".join(e.step_failure_data.error.message for e in result.get_step_failure_events())
    assert "Refusing to" in messages
    assert "fivetran/payments/charges required_columns_are_not_null failed" in messages
    assert "owner: team:payments-data" in messages
    assert refresh_calls()[seen:] == []  # Looker never heard of it
    assert fingerprint("payments_published.charges") == before


def test_a_failed_table_holds_back_its_connector_only_in_that_run(monkeypatch):
    """A connector's tables are checked in one step: one failed table fails it, so none of the
    connector is published in that run. Each table's own verdict still decides its publish."""
    instance = DagsterInstance.ephemeral()
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", "missing_column")  # payments.charges only
    result = run_gate(FAST_PDT, instance)
    assert not result.success
    published = {k for k in materialized(result) if k.path[0] == "published"}
    assert published == {AssetKey(["published", "crm", t]) for t in CRM_TABLES}
    job = build_definitions().resolve_implicit_global_asset_job_def()
    again = job.get_subset(
        asset_selection={PUBLISHED_CUSTOMERS, PUBLISHED_CHARGES}, asset_check_selection=set()
    ).execute_in_process(instance=instance, raise_on_error=False)
    assert not again.success
    assert materialized(again) == {PUBLISHED_CUSTOMERS}  # its checks passed in the failed run
    [failure] = again.get_step_failure_events()
    assert failure.step_key == "publish__payments"
    assert (
        "Refusing to publish payments_published.charges" in failure.step_failure_data.error.message
    )

    # The connector's contract step reads Fivetran's schema config once, not once per table.
    checks = {
        k
        for k in job.asset_layer.asset_graph.asset_check_keys
        if k.asset_key.path[1:2] == ["payments"]
    }
    started = len(fivetran_api.requests_seen())
    rerun = job.get_subset(asset_selection=set(), asset_check_selection=checks)
    assert not rerun.execute_in_process(instance=instance, raise_on_error=False).success
    reads = [r for r in fivetran_api.requests_seen()[started:] if r["path"].endswith("/schemas")]
    assert [r["path"] for r in reads] == ["/v1/connectors/payments_sandbox/schemas"]


def test_rows_landing_after_the_audit_began_are_not_published():
    instance = DagsterInstance.ephemeral()
    defs = build_definitions()
    job = defs.resolve_implicit_global_asset_job_def()
    # Its parents are audited and published: Looker must see every customer a charge names.
    audit = job.get_subset(asset_selection={CHARGES, *PARENTS, *PUBLISHED_PARENTS})
    assert audit.execute_in_process(instance=instance).success
    # Fivetran writes again after the checks froze their snapshot: 7 ids go null.
    warehouse().execute(
        [
            "UPDATE payments.charges SET id = NULL WHERE id IN (SELECT id FROM payments.charges LIMIT 7)"
        ]
    )
    publish_only = job.get_subset(asset_selection={PUBLISHED_CHARGES}, asset_check_selection=set())
    assert publish_only.execute_in_process(instance=instance).success
    n, null_ids, _ = fingerprint("payments_published.charges")
    assert (n, null_ids) == (fingerprint("payments.charges")[0], 0)


def test_verdicts_are_a_runs_own_and_read_in_one_query_when_it_judged_last(monkeypatch):
    """Publish and refresh read the verdict of every blocking check that counts for their run: a
    run's own evaluation even when a later run judged again, else the latest. When the run's
    own evaluations are the latest, one query reads them all (before: one per check, 110 per
    publish step of ten tables); only the others search their history."""
    from pipeline import gate

    instance = DagsterInstance.ephemeral()
    job = build_definitions().resolve_implicit_global_asset_job_def()
    audit = job.get_subset(asset_selection={CHARGES})
    first = audit.execute_in_process(instance=instance)
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", "null_ids")
    second = audit.execute_in_process(instance=instance, raise_on_error=False)
    checks = sorted(job.asset_layer.asset_graph.get(CHARGES).check_keys, key=str)
    searched: list[object] = []
    storage = instance.event_log_storage
    real = storage.get_asset_check_execution_history
    monkeypatch.setattr(
        storage,
        "get_asset_check_execution_history",
        lambda check, **kw: searched.append(check) or real(check, **kw),
    )

    latest = gate.verdicts(instance, checks, second.run_id)
    assert not searched
    assert {r.run_id for r in latest.values()} == {second.run_id}
    assert "required_columns_are_not_null failed" in " ".join(gate.not_passed(latest))
    own = gate.verdicts(instance, checks, first.run_id)
    assert {r.run_id for r in own.values()} == {first.run_id} and not gate.not_passed(own)
    assert sorted(searched, key=str) == checks
    assert {
        r.run_id for r in gate.verdicts(instance, checks, "a-run-that-judged-none").values()
    } == {second.run_id}


def test_checks_that_passed_on_different_snapshots_do_not_publish():
    instance = DagsterInstance.ephemeral()
    job = build_definitions().resolve_implicit_global_asset_job_def()
    assert job.get_subset(asset_selection={CHARGES}).execute_in_process(instance=instance).success
    [one] = [
        k
        for k in job.asset_layer.asset_graph.get(CHARGES).check_keys
        if k.name == "keys_are_unique"
    ]
    rerun = job.get_subset(asset_selection=set(), asset_check_selection={one})
    assert rerun.execute_in_process(instance=instance).success
    publish_only = job.get_subset(asset_selection={PUBLISHED_CHARGES}, asset_check_selection=set())
    result = publish_only.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "different snapshots" in failure.step_failure_data.error.message


def test_checks_passed_by_the_contract_as_it_was_do_not_publish(tmp_path, monkeypatch):
    """customers passed by its contract; the contract then caps it at 1,000 rows (it has 2,000).
    Before, a publish alone took the old verdicts as passes and showed Looker the 2,000 rows."""
    instance = DagsterInstance.ephemeral()
    sync_audit_publish(instance, {CUSTOMERS})
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    payments = contracts / "payments.yaml"
    payments.write_text(payments.read_text().replace("max: 5000000}", "max: 1000}", 1))
    monkeypatch.setenv("TOLLGATE_CONTRACTS_DIR", str(contracts))
    result = publish_only(instance, {PUBLISHED_CUSTOMERS})
    assert PUBLISHED_CUSTOMERS not in materialized(result)
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert "Refusing to publish payments_published.customers: its contract (payments.yaml) " in (
        message
    )
    assert "changed since its checks passed on version v" in message
    assert "run the table's checks again, then publish" in message
    # Judged again by the contract as it is, customers fails, and still does not publish.
    job = build_definitions().resolve_implicit_global_asset_job_def()
    rerun = job.get_subset(asset_selection={CUSTOMERS, PUBLISHED_CUSTOMERS})
    again = rerun.execute_in_process(instance=instance, raise_on_error=False)
    assert PUBLISHED_CUSTOMERS not in materialized(again)
    failed = {e.check_name for e in again.get_asset_check_evaluations() if not e.passed}
    assert "row_count_in_bounds" in failed


ORPHANS = """SELECT count(*) AS n FROM payments_published.charges c
WHERE c.customer_id IS NOT NULL AND c.customer_id NOT IN (
    SELECT id FROM payments_published.customers
    WHERE id IS NOT NULL AND NOT coalesce(_fivetran_deleted, false))"""


def publish_only(instance: DagsterInstance, keys: set[AssetKey]):
    job = build_definitions().resolve_implicit_global_asset_job_def()
    subset = job.get_subset(asset_selection=keys, asset_check_selection=set())
    return subset.execute_in_process(instance=instance, raise_on_error=False)


def test_a_child_publishes_only_rows_whose_parent_looker_reads(monkeypatch):
    """A charge moves to a customer that lands broken: charges pass, customers fail. Neither a
    later partial run nor automation may show Looker that charge without its customer; once
    the charge points to a customer Looker reads, charges publishes while customers is still
    held back."""
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    defs = build_definitions()
    before = evaluate_automation_conditions(defs=defs, instance=instance)
    [charge] = warehouse().query(
        "SELECT min(id) AS id, min(customer_id) AS was FROM payments.charges"
    )
    source_edits.edit_source("payments_sandbox", "customers", upsert=[{"id": "cus_new_parent"}])
    source_edits.edit_source(
        "payments_sandbox",
        "charges",
        upsert=[{"id": charge["id"], "customer_id": "cus_new_parent"}],
    )
    result = run_gate(FAST_PDT, instance)
    assert not result.success
    failed = {
        (e.asset_key, e.check_name) for e in result.get_asset_check_evaluations() if not e.passed
    }
    assert (CUSTOMERS, "required_columns_are_not_null") in failed
    assert not {key for key in failed if key[0] == CHARGES}  # its foreign key resolves in landing

    # Automation does not wait for the customers' checks: the publish verifies the keys itself.
    ticked = evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    requested = {r.key for r in ticked.results if r.true_subset.size > 0}
    assert PUBLISHED_CHARGES in requested and PUBLISHED_CUSTOMERS not in requested

    again = publish_only(instance, {PUBLISHED_CHARGES})
    assert not again.success and not materialized(again)
    [failure] = again.get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert (
        "Refusing to publish payments_published.charges: customer_id -> customers.id: 1 rows "
        "point nowhere in payments.customers version v"
    ) in message
    assert "which Looker reads (e.g. cus_new_parent)" in message
    assert (
        "its newer rows are held back (fivetran/payments/customers required_columns_are_not_null "
        "failed"
    ) in message
    assert warehouse().query(ORPHANS)[0]["n"] == 0

    # The charge moves back: every key resolves in the customers Looker reads.
    source_edits.edit_source(
        "payments_sandbox", "charges", upsert=[{"id": charge["id"], "customer_id": charge["was"]}]
    )
    job = build_definitions().resolve_implicit_global_asset_job_def()
    charges = job.get_subset(asset_selection={CHARGES, PUBLISHED_CHARGES})
    back = charges.execute_in_process(instance=instance, raise_on_error=False)
    assert back.success and PUBLISHED_CHARGES in materialized(back)
    assert verified_keys(back, PUBLISHED_CHARGES)["customer_id -> customers.id"].startswith(
        "checked again against payments.customers version v"
    )
    assert warehouse().query(ORPHANS)[0]["n"] == 0
    [shown] = warehouse().query(
        f"SELECT customer_id FROM payments_published.charges WHERE id = '{charge['id']}'"
    )
    assert shown["customer_id"] == charge["was"]


def test_a_child_waits_until_looker_reads_its_parents_audited_version():
    instance = DagsterInstance.ephemeral()
    job = build_definitions().resolve_implicit_global_asset_job_def()
    audit = job.get_subset(asset_selection={CHARGES, *PARENTS})  # audited, not published
    assert audit.execute_in_process(instance=instance).success

    alone = publish_only(instance, {PUBLISHED_CHARGES})
    assert not alone.success and not materialized(alone)
    message = alone.get_step_failure_events()[0].step_failure_data.error.message
    assert (
        "its foreign keys reference payments.customers, which Looker does not read yet "
        "(payments_published.customers shows nothing): publish payments_published.customers"
    ) in message

    together = publish_only(instance, {PUBLISHED_CHARGES, *PUBLISHED_PARENTS})
    assert together.success  # one step: the parents are published first
    assert materialized(together) == {PUBLISHED_CHARGES, *PUBLISHED_PARENTS}
    assert warehouse().query(ORPHANS)[0]["n"] == 0


def verified_keys(result, key: AssetKey) -> dict[str, str]:
    """How a publish found each foreign key to resolve, from its materialization."""
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return event.materialization.metadata["foreign_keys_verified"].value


def customer(customer_id: str) -> dict:
    return {"id": customer_id, "country": "NL", "created": "2026-11-28T00:00:00"}


def test_a_child_checked_against_rows_its_parents_audit_never_saw_does_not_publish():
    """Customers land after customers was audited and published, then charges alone is audited
    and published: its foreign keys were checked against landing, not what Looker reads."""
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    job = build_definitions().resolve_implicit_global_asset_job_def()
    charges_alone = job.get_subset(asset_selection={CHARGES, PUBLISHED_CHARGES})

    # A customer no charge references: the charges resolve in the published customers too.
    source_edits.edit_source("payments_sandbox", "customers", upsert=[customer("cus_spare")])
    spare = charges_alone.execute_in_process(instance=instance)
    assert PUBLISHED_CHARGES in materialized(spare)
    relation = "customer_id -> customers.id"
    assert verified_keys(spare, PUBLISHED_CHARGES)[relation].startswith(
        "checked again against payments.customers version v"
    )

    # A charge moves to a new customer: it resolves in landing only.
    [charge] = warehouse().query("SELECT min(id) AS id FROM payments.charges")
    source_edits.edit_source("payments_sandbox", "customers", upsert=[customer("cus_late")])
    source_edits.edit_source(
        "payments_sandbox", "charges", upsert=[{"id": charge["id"], "customer_id": "cus_late"}]
    )
    alone = charges_alone.execute_in_process(instance=instance, raise_on_error=False)
    checks = {e.check_name: e.passed for e in alone.get_asset_check_evaluations()}
    assert checks[FOREIGN_KEYS_CHECK] and all(checks.values())  # it resolves in landing
    assert not alone.success and PUBLISHED_CHARGES not in materialized(alone)
    message = alone.get_step_failure_events()[0].step_failure_data.error.message
    assert (
        f"Refusing to publish payments_published.charges: {relation}: 1 rows point nowhere in "
        "payments.customers version v" in message
    )
    assert "audit payments.customers again, then publish both" in message
    assert warehouse().query(ORPHANS)[0]["n"] == 0

    both = job.get_subset(asset_selection={CUSTOMERS, PUBLISHED_CUSTOMERS, PUBLISHED_CHARGES})
    result = both.execute_in_process(instance=instance)
    assert {PUBLISHED_CUSTOMERS, PUBLISHED_CHARGES} <= materialized(result)
    assert warehouse().query(ORPHANS)[0]["n"] == 0
    # Nothing landed since charges was checked: the new customers version holds those rows.
    assert verified_keys(result, PUBLISHED_CHARGES)[relation].startswith("as checked: ")


def test_a_parent_never_publishes_a_deletion_its_held_back_children_still_reference():
    """A customer is deleted while a charge still points to it: the charge's foreign key fails
    and charges is held back, so Looker keeps the old charges. Publishing the new customers
    beside them (say a later run of customers alone) would show Looker that charge without its
    customer: customers waits too."""
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    before = fingerprint("payments_published.customers")
    [row] = warehouse().query("SELECT min(customer_id) AS id FROM payments.charges")
    source_edits.edit_source("payments_sandbox", "customers", delete=[row["id"]])
    result = run_gate(FAST_PDT, instance)
    failed = {
        (e.asset_key, e.check_name) for e in result.get_asset_check_evaluations() if not e.passed
    }
    assert (CHARGES, FOREIGN_KEYS_CHECK) in failed
    assert not {key for key in failed if key[0] == CUSTOMERS}  # the deletion itself is fine

    alone = publish_only(instance, {PUBLISHED_CUSTOMERS})
    assert not alone.success and not materialized(alone)
    assert fingerprint("payments_published.customers") == before
    assert warehouse().query(ORPHANS)[0]["n"] == 0
    message = alone.get_step_failure_events()[0].step_failure_data.error.message
    assert (
        "Refusing to publish payments_published.customers: its version v" in message
        and " drops rows that payments_published.charges (version v" in message
        and "which Looker reads) still references: customer_id -> customers.id: 1 rows" in message
        and "payments.charges does not publish in this step: publish them together" in message
    )


def test_a_parent_waits_for_a_child_refused_later_in_the_same_step():
    """Customers and charges publish together: charges moved off a customer that customers
    deletes. Charges is refused in the step (an operator holds it), so the old charges stay,
    and customers must not drop their customer."""
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    [row] = warehouse().query(
        "SELECT min(customer_id) AS gone, max(customer_id) AS kept FROM payments.charges "
        "WHERE customer_id NOT IN (SELECT customer_id FROM payments.invoices "
        "WHERE customer_id IS NOT NULL)"
    )
    moved = warehouse().query(
        f"SELECT id FROM payments.charges WHERE customer_id = '{row['gone']}'"
    )
    source_edits.edit_source(
        "payments_sandbox",
        "charges",
        upsert=[{"id": charge["id"], "customer_id": row["kept"]} for charge in moved],
    )
    source_edits.edit_source("payments_sandbox", "customers", delete=[row["gone"]])
    job = build_definitions().resolve_implicit_global_asset_job_def()
    audit = job.get_subset(asset_selection={CHARGES, *PARENTS})  # audited, not published
    assert audit.execute_in_process(instance=instance).success
    publish.hold(warehouse(), load_contracts()["payments"].tables["charges"])

    both = publish_only(instance, {PUBLISHED_CUSTOMERS, PUBLISHED_CHARGES})
    assert not both.success and not materialized(both)
    message = both.get_step_failure_events()[0].step_failure_data.error.message
    assert "Refusing to publish payments_published.charges: an operator holds " in message
    assert (
        "Refusing to publish payments_published.customers: its version v" in message
        and "payments.charges does not publish in this step" in message
    )
    assert warehouse().query(ORPHANS)[0]["n"] == 0


def test_a_parent_key_changed_in_landing_without_a_new_sync_stamp_is_still_rechecked():
    """Someone edits the landing tables directly: a customer's id and the charge pointing to it
    change, rows and `_fivetran_synced` stay. The charge resolves in landing, not in the
    customers version Looker reads; only the keys themselves tell the two apart."""
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    [row] = warehouse().query("SELECT min(customer_id) AS id FROM payments.charges")
    warehouse().execute(
        [
            f"UPDATE payments.customers SET id = 'cus_edited' WHERE id = '{row['id']}'",
            f"UPDATE payments.charges SET customer_id = 'cus_edited' "
            f"WHERE customer_id = '{row['id']}'",
        ]
    )
    defs = build_definitions()
    job = defs.resolve_implicit_global_asset_job_def()
    checks = {c for c in defs.resolve_asset_graph().asset_check_keys if c.asset_key == CHARGES}
    audit = job.get_subset(asset_selection=set(), asset_check_selection=checks)  # no sync
    audited = audit.execute_in_process(instance=instance, raise_on_error=False)
    assert all(e.passed for e in audited.get_asset_check_evaluations())  # resolves in landing

    alone = publish_only(instance, {PUBLISHED_CHARGES})
    assert not alone.success and not materialized(alone)
    message = alone.get_step_failure_events()[0].step_failure_data.error.message
    assert "customer_id -> customers.id: " in message
    assert " rows point nowhere in payments.customers version v" in message
    assert warehouse().query(ORPHANS)[0]["n"] == 0


def test_a_full_run_publishes_children_as_checked_without_a_second_join():
    instance = DagsterInstance.ephemeral()
    verified = verified_keys(run_gate(FAST_PDT, instance), PUBLISHED_CHARGES)
    assert set(verified) == {"customer_id -> customers.id", "invoice_id -> invoices.id"}
    assert all(v.startswith("as checked: payments.") for v in verified.values())


def test_a_child_decided_beside_a_parent_that_fails_to_publish_is_refused(monkeypatch):
    instance = DagsterInstance.ephemeral()
    job = build_definitions().resolve_implicit_global_asset_job_def()
    assert (
        job.get_subset(asset_selection={CHARGES, *PARENTS})
        .execute_in_process(instance=instance)
        .success
    )
    real = publish.publish

    def failing(warehouse, table, version, run_id):
        if table.name == "customers":
            raise RuntimeError("the warehouse said no")
        return real(warehouse, table, version, run_id)

    monkeypatch.setattr(publish, "publish", failing)
    result = publish_only(instance, {PUBLISHED_CHARGES, *PUBLISHED_PARENTS})
    assert not materialized(result)  # invoices and charges reference customers
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "Could not publish payments_published.customers: the warehouse said no" in message
    assert (
        "Refusing to publish payments_published.invoices: payments.customers, which it "
        "references, did not publish" in message
    )
    assert (
        "Refusing to publish payments_published.charges: payments.customers, payments.invoices, "
        "which it references, did not publish" in message
    )


def with_foreign_key(table: TableContract, column: str, target: str) -> TableContract:
    extra = ColumnContract(name=column, physical_type="VARCHAR", references=(target,))
    return dataclasses.replace(table, columns=(*table.columns, extra))


def test_connectors_linked_by_foreign_keys_publish_in_one_step_even_in_a_cycle():
    """A parent in another connector is decided with its children, as one in the same connector
    is: in one step, with no order between steps to keep and so no cycle to refuse."""
    contracts = load_contracts()
    tables = {t.id: t for contract in contracts.values() for t in contract.tables.values()}
    tables["crm", "deals"] = with_foreign_key(
        tables["crm", "deals"], "customer_id", "payments.customers.id"
    )
    blocking = {
        fivetran_key(*t): (AssetCheckKey(fivetran_key(*t), FOREIGN_KEYS_CHECK),) for t in tables
    }

    def groups() -> list[set[tuple[str, str]]]:
        published = {published_key(*t.id): t for t in tables.values()}
        return [{t.id for t in group} for group in publish_groups(published, blocking)]

    assert groups() == [set(tables)]
    published = {published_key(*t.id): t for t in tables.values()}
    step = build_publish_assets(list(tables.values()), blocking, published)
    assert step.op.name == "publish__crm__payments"
    deps = step.asset_deps[published_key("crm", "deals")]
    assert CUSTOMERS in deps and PUBLISHED_CUSTOMERS not in deps  # its checks, not another step

    tables["payments", "customers"] = with_foreign_key(
        tables["payments", "customers"], "company_id", "crm.companies.id"
    )
    assert groups() == [set(tables)]  # both ways round: still one step
    # Not blocking (severity warn): nothing links them, a step per connector.
    blocking = {}
    assert sorted(groups(), key=min) == [
        {t for t in tables if t[0] == "crm"},
        {t for t in tables if t[0] == "payments"},
    ]


def test_foreign_keys_both_ways_in_one_connector_publish_together():
    crm = load_contracts()["crm"].tables
    # companies gains a key to deals, which already reaches it through contacts and directly.
    companies = with_foreign_key(crm["companies"], "top_deal_id", "deals.id")
    tables = [crm["deals"], crm["contacts"], companies]
    blocking = {
        fivetran_key("crm", t.name): (
            AssetCheckKey(fivetran_key("crm", t.name), FOREIGN_KEYS_CHECK),
        )
        for t in tables
    }
    parents = {t.id: gated_parents(t, blocking) for t in tables}
    order = [t.name for t in parents_first(tables, parents)]
    assert sorted(order) == ["companies", "contacts", "deals"]
    assert order.index("contacts") < order.index("deals")  # what can be ordered is


def test_a_parent_nothing_publishes_or_gates_refuses_its_child():
    """A referenced table whose connector is not loaded has no publish asset and no checks."""
    charges = load_contracts()["payments"].tables["charges"]
    with pytest.raises(Failure) as refusal:
        gating_parents({}, charges, [CUSTOMERS], {}, {})
    assert "reference payments.customers, which tollgate does not publish" in str(
        refusal.value.description
    )
    # One that nothing gates is held back: its children resolve only in what Looker reads.
    customers = load_contracts()["payments"].tables["customers"]
    [parent] = gating_parents({}, charges, [CUSTOMERS], {}, {PUBLISHED_CUSTOMERS: customers})
    assert parent.table == customers and parent.audited is None
    assert parent.held_back.startswith("fivetran/payments/customers has no blocking contract")


def test_rollback_restores_the_previous_published_version(capsys):
    instance = DagsterInstance.ephemeral()
    keys = {CHARGES, PUBLISHED_CHARGES, *PARENTS, *PUBLISHED_PARENTS}
    sync_audit_publish(instance, keys)
    first = fingerprint("payments_published.charges")
    # Syncs are incremental: the next one changes the tables only if the source changed.
    for table, change in (("charges", {"description": "refund requested"}),
                          ("customers", {"country": "NZ"})):  # fmt: skip
        [row] = warehouse().query(f"SELECT min(id) AS id FROM payments.{table}")
        source_edits.edit_source("payments_sandbox", table, upsert=[{"id": row["id"], **change}])
    sync_audit_publish(instance, keys)
    assert fingerprint("payments_published.charges") != first

    assert publish.main(["rollback", "payments.charges"]) == 0
    out, err = capsys.readouterr()
    assert "rolled back from" in out
    assert "Not held: the next publish (a run, automation) shows each table's latest" in out
    assert "DAGSTER_HOME is not set, so Dagster was not told of the rollback" in err
    assert fingerprint("payments_published.charges") == first
    assert fingerprint("payments_published.customers")[2] > first[2]  # only the named table
    # The first version has nothing before it: a second rollback refuses, naming the table.
    assert publish.main(["rollback", "payments.charges"]) == 1
    assert "payments_published.charges has no earlier published version" in capsys.readouterr().err
    assert fingerprint("payments_published.charges") == first


def refreshes_requested(result) -> set[str]:
    """The Looker refreshes an automation tick requested."""
    keys = {r.key for r in result.results if r.true_subset.size > 0}
    return {k.to_user_string() for k in keys if isinstance(k, AssetKey) and k.path[0] == "looker"}


def test_a_rollback_reruns_the_looker_refreshes_that_cached_the_version_rolled_back(
    tmp_path, monkeypatch, capsys
):
    """Looker's caches and PDTs were built from the version rolled back. Before, Dagster never
    heard of the rollback: automation requested no refresh, and Looker kept serving those rows."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    defs = build_definitions()
    with DagsterInstance.local_temp(str(home)) as instance:
        assert run_gate(FAST_PDT, instance).success
        [row] = warehouse().query("SELECT min(id) AS id FROM payments.customers")
        source_edits.edit_source(
            "payments_sandbox", "customers", upsert=[{"id": row["id"], "country": "NZ"}]
        )
        assert run_gate(FAST_PDT, instance).success
        settled = evaluate_automation_conditions(defs=defs, instance=instance)
        before = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
        assert not {k for k in refreshes_requested(before)}

        assert publish.main(["rollback", "payments.customers"]) == 0
        out = capsys.readouterr().out
        assert "Dagster records the rollback" in out
        assert (
            """dg launch --assets '(key:"published/payments/customers"+) and kind:looker'""" in out
        )
        event = instance.get_latest_materialization_event(PUBLISHED_CUSTOMERS)
        customers = load_contracts()["payments"].tables["customers"]
        shown = publish.history(warehouse(), customers)[-1]
        assert event.asset_materialization.metadata["version"].value == shown
        after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
        assert refreshes_requested(after) == {"looker/payments_etl", "looker/revenue_by_customer"}


def test_a_rollback_that_would_orphan_a_childs_rows_refuses(capsys):
    """Customers rolled back alone would lose the customer a published charge now points to."""
    instance = DagsterInstance.ephemeral()
    keys = {CHARGES, PUBLISHED_CHARGES, *PARENTS, *PUBLISHED_PARENTS}
    sync_audit_publish(instance, keys)
    first = {t: fingerprint(f"payments_published.{t}") for t in ("charges", "customers")}
    [charge] = warehouse().query("SELECT min(id) AS id FROM payments.charges")
    source_edits.edit_source("payments_sandbox", "customers", upsert=[customer("cus_moved")])
    source_edits.edit_source(
        "payments_sandbox", "charges", upsert=[{"id": charge["id"], "customer_id": "cus_moved"}]
    )
    sync_audit_publish(instance, keys)
    second = {t: fingerprint(f"payments_published.{t}") for t in first}

    assert publish.main(["rollback", "payments.customers"]) == 1
    error = capsys.readouterr().err
    assert (
        "Refusing to roll back: payments_published.charges (version v" in error
        and "customer_id -> customers.id: 1 rows would point nowhere in "
        "payments_published.customers version v"
        in error
    )
    assert {t: fingerprint(f"payments_published.{t}") for t in first} == second  # untouched
    assert warehouse().query(ORPHANS)[0]["n"] == 0

    assert publish.main(["rollback", "payments"]) == 0  # both sides together
    assert {t: fingerprint(f"payments_published.{t}") for t in first} == first
    assert warehouse().query(ORPHANS)[0]["n"] == 0

    sync_audit_publish(instance, keys)  # the moved charge again; its owner accepts orphans
    capsys.readouterr()
    assert publish.main(["rollback", "payments.customers", "--allow-orphans"]) == 0
    assert warehouse().query(ORPHANS)[0]["n"] == 1
    assert "Rolling back although: payments_published.charges (version v" in capsys.readouterr().err


def test_a_held_table_stays_rolled_back_until_released(capsys):
    """A rollback alone lasts until the next publish; with --hold every publish refuses."""
    instance = DagsterInstance.ephemeral()
    sync_audit_publish(instance, {CUSTOMERS, PUBLISHED_CUSTOMERS})
    first = fingerprint("payments_published.customers")
    [row] = warehouse().query("SELECT min(id) AS id FROM payments.customers")
    source_edits.edit_source("payments_sandbox", "customers", upsert=[customer(row["id"])])
    sync_audit_publish(instance, {CUSTOMERS, PUBLISHED_CUSTOMERS})
    second = fingerprint("payments_published.customers")
    assert second != first

    assert publish.main(["rollback", "payments.customers"]) == 0
    assert publish_only(instance, {PUBLISHED_CUSTOMERS}).success  # the next publish undoes it
    assert fingerprint("payments_published.customers") == second

    capsys.readouterr()
    assert publish.main(["rollback", "payments.customers", "--hold"]) == 0
    out = capsys.readouterr().out
    assert "payments_published.customers: held at v" in out and "Not held" not in out
    assert fingerprint("payments_published.customers") == first
    held = publish_only(instance, {PUBLISHED_CUSTOMERS})
    assert not held.success and not materialized(held)
    message = held.get_step_failure_events()[0].step_failure_data.error.message
    assert (
        "Refusing to publish payments_published.customers: an operator holds "
        "payments_published.customers since 20"
        in message
        and "`python -m pipeline.publish release payments.customers` lets it publish" in message
    )
    assert fingerprint("payments_published.customers") == first
    table = load_contracts()["payments"].tables["customers"]
    with pytest.raises(publish.PublishError, match="an operator holds"):  # any other caller too
        publish.publish(warehouse(), table, "v99999999t999999999999_x", "test")
    capsys.readouterr()
    assert publish.main(["status", "payments.customers"]) == 0
    assert "(held since 20" in capsys.readouterr().out
    assert publish.main(["hold", "payments.customers"]) == 1  # already held, said so

    assert publish.main(["release", "payments.customers"]) == 0
    assert publish_only(instance, {PUBLISHED_CUSTOMERS}).success
    assert fingerprint("payments_published.customers") == second
    assert publish.main(["release", "payments.customers"]) == 1
    assert "payments_published.customers is not held" in capsys.readouterr().err


def test_tables_referencing_a_held_table_publish_while_their_keys_resolve_in_it():
    """An operator holds customers, which every charge and invoice references. Charges that
    point to customers Looker reads keep publishing; a charge for a customer only the held-back
    audit holds waits for the release."""
    instance = DagsterInstance.ephemeral()
    assert run_gate(FAST_PDT, instance).success
    assert publish.main(["hold", "payments.customers"]) == 0
    held = fingerprint("payments_published.customers")
    [charge] = warehouse().query("SELECT min(id) AS id FROM payments.charges")
    source_edits.edit_source(
        "payments_sandbox", "charges", upsert=[{"id": charge["id"], "amount": 7}]
    )
    source_edits.edit_source("payments_sandbox", "customers", upsert=[customer("cus_after_hold")])

    kept = run_gate(FAST_PDT, instance)
    assert not kept.success  # customers refused: held
    assert PUBLISHED_CHARGES in materialized(kept) and PUBLISHED_CUSTOMERS not in materialized(kept)
    assert fingerprint("payments_published.customers") == held
    [shown] = warehouse().query(
        f"SELECT amount FROM payments_published.charges WHERE id = '{charge['id']}'"
    )
    assert shown["amount"] == 7

    source_edits.edit_source(
        "payments_sandbox",
        "charges",
        upsert=[{"id": charge["id"], "customer_id": "cus_after_hold"}],
    )
    waits = run_gate(FAST_PDT, instance)
    assert not {PUBLISHED_CHARGES, PUBLISHED_CUSTOMERS} & materialized(waits)
    message = " ".join(e.step_failure_data.error.message for e in waits.get_step_failure_events())
    assert (
        "Refusing to publish payments_published.charges: customer_id -> customers.id: 1 rows"
        in message
    )
    assert "(e.g. cus_after_hold)" in message and "is held by an operator since 20" in message
    assert warehouse().query(ORPHANS)[0]["n"] == 0

    assert publish.main(["release", "payments.customers"]) == 0
    assert run_gate(FAST_PDT, instance).success
    assert warehouse().query(ORPHANS)[0]["n"] == 0


def test_a_version_published_long_ago_still_finds_its_passing_result():
    """A hold (or a rollback) keeps an old version published while newer audits pass: its
    passing result lies behind any number of newer ones, and a Looker refresh must find it."""
    instance = DagsterInstance.ephemeral()
    check = AssetCheckKey(CHARGES, "required_columns_are_not_null")

    def passed(version: str) -> None:
        evaluation = AssetCheckEvaluation(
            asset_key=CHARGES,
            check_name=check.name,
            passed=True,
            metadata={AUDITED_VERSION: version},
        )
        instance.report_runless_asset_event(evaluation)

    held = publish.new_version("aaaaaaaa")
    passed(held)
    for n in range(gate.HISTORY_SEARCHED + 5):  # an hourly gate's four days and more
        passed(publish.new_version(f"{n:08d}"))
    assert gate.passed_on(instance, [check], held) == []
    never = publish.new_version("bbbbbbbb")
    assert gate.passed_on(instance, [check], never) == [
        f"fivetran/payments/charges required_columns_are_not_null has no passing result on "
        f"version {never}"
    ]


def test_snapshots_are_pruned_but_rollback_targets_kept():
    instance = DagsterInstance.ephemeral()
    for _ in range(publish.KEEP_PUBLISHED + 1):
        sync_audit_publish(instance, {CHARGES, PUBLISHED_CHARGES, *PARENTS, *PUBLISHED_PARENTS})
    table = load_contracts()["payments"].tables["charges"]
    kept = publish._snapshots(warehouse(), table)
    live = publish.history(warehouse(), table)
    assert len(live) == publish.KEEP_PUBLISHED + 1
    assert kept == {publish.snapshot_name(table, v).lower() for v in live[1:]}


def fakesnow_can_run(statement: str) -> list[str]:
    """fakesnow 0.12 runs CLONE as CREATE TABLE AS, ignoring OR REPLACE, and cannot parse COPY
    GRANTS: the recorded statement is what Snowflake receives; this is what fakesnow can run."""
    if not statement.startswith("CREATE OR REPLACE TABLE") or " CLONE " not in statement:
        return [statement]
    target = statement.removeprefix("CREATE OR REPLACE TABLE ").split(" CLONE ")[0]
    return [f"DROP TABLE IF EXISTS {target}", statement.removesuffix(" COPY GRANTS")]


@pytest.mark.parametrize("backend", ["duck", "snowflake"])
def test_publish_and_rollback_are_metadata_only(backend, request, monkeypatch):
    """Snowflake: zero-copy CLONE for snapshot and publish; DuckDB: a view swap. No row copies."""
    import pandas as pd

    target = request.getfixturevalue(backend)
    issued: list[str] = []
    original = type(target).execute

    def recording(self, statements):
        issued.extend(statements)
        original(self, [s for statement in statements for s in fakesnow_can_run(statement)])

    monkeypatch.setattr(type(target), "execute", recording)
    table = load_contracts()["payments"].tables["charges"]
    versions = []
    for rows in (3, 5):
        target.write_table(
            "payments", "charges", pd.DataFrame({"id": [str(i) for i in range(rows)]})
        )
        versions.append(publish.new_version(f"run{rows}"))
        publish.snapshot(target, table, versions[-1])
        publish.publish(target, table, versions[-1], f"run{rows}")
    count = 'SELECT COUNT(*) AS n FROM "{}"."{}"'
    published = (
        ("PAYMENTS_PUBLISHED", "CHARGES")
        if backend == "snowflake"
        else ("payments_published", "charges")
    )
    assert target.query(count.format(*published)) == [{"n": 5}]
    assert publish.rollback(target, table) == (versions[1], versions[0])
    assert target.query(count.format(*published)) == [{"n": 3}]

    data = [s for s in issued if not s.startswith(("CREATE SCHEMA", "CREATE TABLE IF NOT EXISTS"))]
    snapshots = [s for s in data if "CLONE" in s or " AS SELECT * FROM" in s]
    ledger = [s for s in data if s.startswith("INSERT INTO")]
    assert len(snapshots) + len(ledger) == len(data) and len(ledger) == 3
    assert all(
        '"TOLLGATE_AUDIT"."PUBLICATIONS"' in s or '"tollgate_audit"."publications"' in s
        for s in ledger
    )
    if backend == "snowflake":
        assert all("CLONE" in s and "SELECT" not in s for s in snapshots)
        swaps = [s for s in snapshots if s.startswith("CREATE OR REPLACE TABLE")]
        assert len(swaps) == 3 and all(s.endswith("COPY GRANTS") for s in swaps)
    else:
        swaps = [s for s in snapshots if s.startswith("CREATE OR REPLACE VIEW")]
        assert len(swaps) == 3  # publish, publish, rollback: views over the frozen snapshots


def test_pruning_a_table_never_counts_a_similarly_named_tables_snapshots(duck):
    """`charges__vip` snapshots start with `payments__charges__v`, like those of `charges`."""
    import pandas as pd

    charges = load_contracts()["payments"].tables["charges"]
    vip = dataclasses.replace(charges, name="charges__vip")
    for table in (charges, vip):
        duck.write_table("payments", table.name, pd.DataFrame({"id": ["a"]}))
    for run in range(publish.KEEP_SNAPSHOTS):
        publish.snapshot(duck, vip, publish.new_version(f"vip{run}"))
    audited = publish.snapshot(duck, charges, publish.new_version("charges"))
    assert publish.prune(duck, charges) == []
    assert publish._snapshots(duck, charges) == {audited.audited[1].lower()}
    assert len(publish._snapshots(duck, vip)) == publish.KEEP_SNAPSHOTS


@pytest.mark.parametrize("backend", ["duck", "snowflake"])
def test_foreign_keys_between_snapshots_on_both_warehouses(backend, request):
    """The stamp and the join a publish or rollback runs, as each warehouse runs them."""
    import pandas as pd

    from pipeline.checks.keys import parent_stamp
    from pipeline.publish_foreign_keys import orphans_between

    target = request.getfixturevalue(backend)
    payments = load_contracts()["payments"].tables
    synced = pd.Timestamp("2026-11-28T10:00:00", tz="UTC")
    customers = pd.DataFrame(
        {"id": ["c1", "c2"], "_fivetran_deleted": [False, True], "_fivetran_synced": [synced] * 2}
    )
    charges = pd.DataFrame({"id": ["h1", "h2", "h3"], "customer_id": ["c1", "c2", None]})
    target.write_table(
        publish.AUDIT_SCHEMA, publish.snapshot_name(payments["customers"], "v1"), customers
    )
    target.write_table(
        publish.AUDIT_SCHEMA, publish.snapshot_name(payments["charges"], "v1"), charges
    )

    # v2: re-synced (a later stamp), c2 dropped, c3 soft-deleted: the same live keys as v1.
    later = pd.DataFrame(
        {"id": ["c3", "c1"], "_fivetran_deleted": [True, False], "_fivetran_synced": [synced] * 2}
    )
    later["_fivetran_synced"] += pd.Timedelta(hours=1)
    target.write_table(
        publish.AUDIT_SCHEMA, publish.snapshot_name(payments["customers"], "v2"), later
    )
    stamps = {}
    for version in ("v1", "v2"):
        snapshot = (publish.AUDIT_SCHEMA, publish.snapshot_name(payments["customers"], version))
        stamps[version] = parent_stamp(target, snapshot, target.columns(*snapshot), "id")
    assert stamps["v1"]["parent_rows"] == 2 and stamps["v1"]["parent_keys"] == 1
    assert stamps["v1"]["parent_synced"].startswith("2026-11-28T10:00")
    assert stamps["v2"]["parent_synced"].startswith("2026-11-28T11:00")
    same = ("parent_keys", "parent_key_hash")
    assert [stamps["v1"][f] for f in same] == [stamps["v2"][f] for f in same]
    assert stamps["v1"]["parent_key_hash"] != "0"
    [(relation, found)] = orphans_between(
        target, payments["charges"], "v1", payments["customers"], "v1"
    )
    assert relation == "customer_id -> customers.id"
    assert (found["orphans"], found["example"]) == (1, "c2")  # c2 is soft-deleted
