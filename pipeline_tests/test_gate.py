"""Scope: the whole spine in-process — sandbox Fivetran sync, contract checks, Looker refresh."""

from dagster import AssetKey

from pipeline.sandbox import looker_api
from pipeline.settings import duckdb_path
from pipeline.warehouse import DuckDBWarehouse
from pipeline.warehouse.base import KEPT
from pipeline_tests.gate import (
    FIVETRAN_KEYS,
    LOOKER_KEYS,
    LOOKML_KEYS,
    PUBLISHED_KEYS,
    failed_checks,
    materialized,
    run_gate,
)


def looker_calls() -> list[str]:
    return [f"{r['method']} {r['path']}" for r in looker_api.requests_seen()]


def evaluations_of(result, connector: str, table: str) -> list:
    key = AssetKey(["fivetran", connector, table])
    return [e for e in result.get_asset_check_evaluations() if e.asset_key == key]


def test_clean_run_lands_checks_and_refreshes_looker():
    result = run_gate()
    assert result.success
    assert materialized(result) == FIVETRAN_KEYS | PUBLISHED_KEYS | LOOKML_KEYS | LOOKER_KEYS
    evaluations = result.get_asset_check_evaluations()
    assert {e.asset_key for e in evaluations} == FIVETRAN_KEYS | LOOKML_KEYS
    assert all(e.passed for e in evaluations)
    rows = DuckDBWarehouse(path=str(duckdb_path())).query(
        'SELECT COUNT(*) AS n, MAX("_fivetran_synced") AS synced FROM "payments"."charges"'
    )
    assert rows[0]["n"] > 0 and rows[0]["synced"] is not None
    calls = looker_calls()
    assert any(c.startswith("PATCH /api/4.0/datagroups/") for c in calls)
    assert any(c.endswith("/revenue_by_customer/start") for c in calls)


def test_null_ids_fail_the_check_and_hold_looker_back(monkeypatch):
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", "null_ids")
    result = run_gate()
    assert not result.success
    failures = failed_checks(result)
    assert set(failures) == {
        ("payments", "charges", "required_columns_are_not_null"),
        ("crm", "deals", "required_columns_are_not_null"),
    }
    assert "id" in failures[("payments", "charges", "required_columns_are_not_null")]
    assert (
        "team:payments-data" in failures[("payments", "charges", "required_columns_are_not_null")]
    )
    done = materialized(result)
    assert done >= FIVETRAN_KEYS  # the data landed; only what reads it is held back
    assert not done & LOOKER_KEYS
    # Each connector's tables are checked in one step, which the failed check fails: in this
    # run nothing of either connector is published, the clean tables' checks passing regardless.
    assert not done & PUBLISHED_KEYS
    clean = evaluations_of(result, "payments", "customers")
    assert clean and all(e.passed for e in clean)
    assert {e.step_key for e in result.get_step_failure_events()} == {
        "payments__contract",
        "crm__contract",
    }
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert not any(step.startswith("looker") for step in started)
    assert not {"publish__payments", "publish__crm"} & started
    assert not any(c.startswith(("PATCH", "GET /api/4.0/derived_table")) for c in looker_calls())


def test_an_error_in_one_tables_check_fails_its_rules_not_its_connectors_other_tables(
    monkeypatch,
):
    """One step checks a connector's tables: an unexpected error while checking one of them
    (reading its sync history before the warehouse opens, or judging it on the connection the
    step shares) fails that table's rules with the error, and the connector's other tables are
    still checked. Before, the error ended the step there."""
    from pipeline.checks import factory

    real = factory.freshness.last_successful_sync
    real_evaluate = factory.evaluate

    def evaluate_breaking_companies(table, *args, **kwargs):
        if table.name == "companies":
            raise RuntimeError("profiler crashed")
        return real_evaluate(table, *args, **kwargs)

    def broken_for_contacts(instance, key):
        if key == AssetKey(["fivetran", "crm", "contacts"]):
            raise RuntimeError("event log unavailable")
        return real(instance, key)

    monkeypatch.setattr(factory.freshness, "last_successful_sync", broken_for_contacts)
    monkeypatch.setattr(factory, "evaluate", evaluate_breaking_companies)
    result = run_gate()
    assert not result.success
    contacts = evaluations_of(result, "crm", "contacts")
    assert contacts and not any(e.passed for e in contacts)
    assert all("the check could not run: event log unavailable" in e.description for e in contacts)
    companies = evaluations_of(result, "crm", "companies")
    assert companies and all("could not run: profiler crashed" in e.description for e in companies)
    deals = evaluations_of(result, "crm", "deals")  # checked after contacts, in the same step
    assert deals and all(e.passed for e in deals)


def test_a_warehouse_that_cannot_be_opened_fails_every_check_of_the_step(monkeypatch):
    """A connector's tables share one connection: when it cannot be opened, every selected check
    of theirs fails with the reason, and nothing of theirs is published."""
    let_go_after_every_block(monkeypatch)
    import traceback

    real_open = DuckDBWarehouse._open

    def refusing_checks(self):
        if any(frame.name == "check_tables" for frame in traceback.extract_stack()):
            raise OSError("warehouse file is locked by another program")
        return real_open(self)

    monkeypatch.setattr(DuckDBWarehouse, "_open", refusing_checks)
    result = run_gate()
    assert not result.success
    evaluations = [e for e in result.get_asset_check_evaluations() if e.asset_key in FIVETRAN_KEYS]
    assert {e.asset_key for e in evaluations} == FIVETRAN_KEYS
    assert all(
        not e.passed and "the check could not run: warehouse file is locked" in e.description
        for e in evaluations
    )
    assert not materialized(result) & (PUBLISHED_KEYS | LOOKER_KEYS)


def test_a_table_that_cannot_be_published_holds_back_only_itself(monkeypatch):
    """A connector's tables publish on one connection: an error publishing one (its snapshot
    dropped meanwhile) fails the step naming that table, and the others are still published and
    recorded. Before, the error ended the step at that table, and the rest stayed unpublished."""
    from pipeline import publish

    real = publish.publish

    def failing_for_charges(warehouse, table, version, run_id):
        if table.name == "charges":
            raise publish.PublishError(f"its audit snapshot of version {version} no longer exists")
        return real(warehouse, table, version, run_id)

    monkeypatch.setattr(publish, "publish", failing_for_charges)
    result = run_gate()
    assert not result.success
    done = materialized(result)
    charges = AssetKey(["published", "payments", "charges"])
    assert charges not in done
    assert PUBLISHED_KEYS - {charges} <= done
    failures = [e for e in result.get_step_failure_events() if e.step_key == "publish__payments"]
    assert len(failures) == 1
    message = failures[0].step_failure_data.user_failure_data.description
    assert "Could not publish payments_published.charges: " in message
    assert "no longer exists" in message


def let_go_after_every_block(monkeypatch) -> None:
    """The process's kept DuckDB connection closed after each block, as when another process
    waits for the file: each step, and each block outside one, opens the file itself."""
    monkeypatch.setattr(KEPT, "hold", 0.0)


def test_a_run_in_one_process_keeps_one_warehouse_connection_across_its_steps(monkeypatch):
    """With its steps in one process, a run's steps and the sandboxes share the process's kept
    connection: kept long enough, the whole gate opens the DuckDB file once. Before, every step
    opened it at least once, and so did each burst of Looker sandbox requests."""
    opened: list[str] = []
    real_open = DuckDBWarehouse._open

    def counting(self):
        opened.append(self.path)
        return real_open(self)

    KEPT.close()
    monkeypatch.setattr(KEPT, "idle", 3600.0)
    monkeypatch.setattr(KEPT, "hold", 3600.0)
    monkeypatch.setattr(DuckDBWarehouse, "_open", counting)
    assert run_gate().success
    assert len(opened) == 1, opened


def test_each_step_opens_the_warehouse_file_once(monkeypatch):
    """Opening a DuckDB file reads its whole catalog under the file lock (0.5 s with its close at
    1,000 tables), so a step's queries share one connection: a connector's checks, its publish,
    the sync's row counts (and the sandbox landing them), a refresh's published versions, a
    model's deleted-rows rule. Before, checks and publish opened it again for every table."""
    let_go_after_every_block(monkeypatch)
    import traceback
    from collections import Counter

    from pipeline.checks import factory

    opened: Counter[str] = Counter()
    callers = ("check_tables", "publish_connector", "sync_and_poll", "verify_gate")
    real_open = DuckDBWarehouse._open

    def counting(self):
        names = {frame.name for frame in traceback.extract_stack()}
        opened.update(c for c in (*callers, "deleted_rows_filtered", "land") if c in names)
        return real_open(self)

    monkeypatch.setattr(DuckDBWarehouse, "_open", counting)
    monkeypatch.setattr(factory, "HOLD_SECONDS", float("inf"))  # however slow the machine
    result = run_gate()
    assert result.success
    connectors = len({key.path[1] for key in FIVETRAN_KEYS})
    assert connectors < len(FIVETRAN_KEYS)
    assert opened == {
        "check_tables": connectors,
        "publish_connector": connectors,
        "sync_and_poll": connectors,
        "land": connectors,  # the Fivetran sandbox landing each connector's tables
        "verify_gate": len(LOOKER_KEYS),
        "deleted_rows_filtered": len(LOOKML_KEYS),
    }


def test_a_step_hands_its_results_to_dagster_before_it_opens_another_connection(monkeypatch):
    """A contract step judges tables on one connection for HOLD_SECONDS at most, then hands their
    results to Dagster and opens the next: a large connector's results show while it runs, and
    other steps get the DuckDB file in between. With no hold at all, every table has its own
    connection, and its results are recorded before the next table is audited."""
    let_go_after_every_block(monkeypatch)
    import traceback

    from pipeline import report
    from pipeline.checks import factory

    monkeypatch.setattr(factory, "HOLD_SECONDS", 0.0)
    seen: list[tuple[str, str]] = []
    real_audit, real_record, real_open = factory._audit, report._record, DuckDBWarehouse._open

    def audit(context, table, *args):
        seen.append(("audit", f"{table.connector}/{table.name}"))
        return real_audit(context, table, *args)

    def record(context, result, *args):
        if result.asset_key in FIVETRAN_KEYS:
            seen.append(("record", "/".join(result.asset_key.path[1:])))
        return real_record(context, result, *args)

    def counting(self):
        if any(frame.name == "check_tables" for frame in traceback.extract_stack()):
            seen.append(("open", ""))
        return real_open(self)

    monkeypatch.setattr(factory, "_audit", audit)
    monkeypatch.setattr(report, "_record", record)
    monkeypatch.setattr(DuckDBWarehouse, "_open", counting)
    assert run_gate().success
    assert [kind for kind, _ in seen].count("open") == len(FIVETRAN_KEYS)
    audited = [table for kind, table in seen if kind == "audit"]
    assert sorted(audited) == sorted("/".join(k.path[1:]) for k in FIVETRAN_KEYS)
    for table in audited:  # open, audit T, record T (one per rule), then the next table's open
        at = seen.index(("audit", table))
        assert seen[at - 1] == ("open", "")
        records = [entry for entry in seen[at + 1 :] if entry[0] != "record"][:1]
        following = seen[at + 1 : seen.index(records[0], at + 1) if records else len(seen)]
        assert following and set(following) == {("record", table)}


def test_dagster_records_are_read_and_written_outside_the_warehouse_file(monkeypatch):
    """DuckDB lets one process at a time open the file: a table's checks read what Dagster
    recorded (last sync, PII scan history) before they open it, and their results are stored
    (two SQLite writes each) after they let go of it, not while other steps wait for it."""
    from pipeline import report
    from pipeline.checks import factory
    from pipeline.warehouse import base

    held: dict[str, list[bool]] = {}

    def spy(module, name):
        real = getattr(module, name)

        def spied(*args):
            held.setdefault(name, []).append(bool(base.SESSIONS))
            return real(*args)

        monkeypatch.setattr(module, name, spied)

    spy(report, "_record")
    spy(factory.freshness, "last_successful_sync")
    spy(factory.scan_history, "read")
    assert run_gate().success
    assert len(held["_record"]) > len(FIVETRAN_KEYS)
    assert len(held["last_successful_sync"]) == len(held["read"]) == len(FIVETRAN_KEYS)
    assert not any(any(calls) for calls in held.values())
