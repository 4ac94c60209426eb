"""The local instance's event log (dagster.yaml): connections kept open, live view, forked steps."""

import multiprocessing
import os
import shutil
import threading
import time

import pytest
from dagster import (
    AssetCheckResult,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    asset,
    asset_check,
    define_asset_job,
    materialize,
)
from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent
from dagster._core.events.log import EventLogEntry
from sqlalchemy import Engine, event
from sqlalchemy.pool import Pool

from pipeline.event_storage import PooledSqliteEventLogStorage
from pipeline.settings import REPO_ROOT

WAIT_SECONDS = 120  # a loaded 2-core machine; the wait ends as soon as the state is reached


@pytest.fixture
def home(tmp_path, monkeypatch):
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)  # its paths are relative to DAGSTER_HOME, where make runs
    return str(tmp_path)


def planned(run_id: str, table: str) -> EventLogEntry:
    """An event as a run records one for each asset it will materialize."""
    dagster_event = DagsterEvent.build_asset_materialization_planned_event(
        "gate", "step", AssetMaterializationPlannedData(AssetKey(["fivetran", table]))
    )
    return EventLogEntry(
        error_info=None,
        level="DEBUG",
        user_message="",
        run_id=run_id,
        timestamp=time.time(),
        dagster_event=dagster_event,
        job_name="gate",
    )


def test_a_run_keeps_its_event_log_connections_open(home):
    """A run's events reuse a few open connections; Dagster's class opened three per event."""
    opened = []
    listener = lambda conn, _: opened.append(conn.execute("pragma database_list").fetchone()[2])  # noqa: E731

    @asset
    def landed() -> None: ...

    checks = [
        asset_check(asset=landed, name=f"rule_{i}", blocking=True)(
            lambda: AssetCheckResult(passed=True)
        )
        for i in range(10)
    ]
    with DagsterInstance.from_config(home) as instance:
        materialize([landed, *checks], instance=instance)  # the storage and its pool exist
        event.listen(Pool, "connect", listener)
        try:
            result = materialize([landed, *checks], instance=instance)
        finally:
            event.remove(Pool, "connect", listener)
        events = instance.all_logs(result.run_id)
    assert result.success and len(events) > 40
    to_events = [path for path in opened if path.endswith("event_log.db")]
    assert len(to_events) <= 5, f"{len(to_events)} connections opened for {len(events)} events"


def test_the_live_run_view_sees_each_event_a_step_writes(home):
    """The UI's run view is told of new events as they land in the WAL, not at a checkpoint."""
    tables = ["before", "orders", "customers", "payments"]
    seen = []
    arrived = threading.Event()

    def on_event(entry, cursor):
        seen.append(entry.dagster_event.asset_key.path[-1])
        if len(seen) == len(tables):
            arrived.set()

    with DagsterInstance.from_config(home) as ui, DagsterInstance.from_config(home) as step:
        step.event_log_storage.store_event(planned("run-1", tables[0]))  # the file exists
        ui.event_log_storage.watch("run-1", None, on_event)
        for table in tables[1:]:
            step.event_log_storage.store_event(planned("run-1", table))
        assert arrived.wait(WAIT_SECONDS), f"the watcher saw only {seen}"
        ui.event_log_storage.end_watch("run-1", on_event)
    assert seen == tables


def _write_in_child(storage) -> None:
    opened = []
    event.listen(Pool, "connect", lambda *_: opened.append(1))
    for i in range(20):
        storage.store_event(planned("run-1", f"child_{i}"))
    os._exit(0 if opened else 3)  # 3: it wrote on the connections it inherited


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_a_forked_step_opens_its_own_connections(home):
    """A process forked with the storage open writes on connections of its own, not its parent's."""
    with DagsterInstance.from_config(home) as instance:
        storage = instance.event_log_storage
        storage.store_event(planned("run-1", "parent_before"))
        child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(storage,))
        child.start()
        child.join(WAIT_SECONDS)
        assert child.exitcode == 0
        storage.store_event(planned("run-1", "parent_after"))
        tables = [e.dagster_event.asset_key.path[-1] for e in instance.all_logs("run-1")]
    assert tables == ["parent_before", *(f"child_{i}" for i in range(20)), "parent_after"]


def gate_job(checks: int):
    @asset
    def landed() -> None: ...

    rules = [
        asset_check(asset=landed, name=f"rule_{i}")(lambda: AssetCheckResult(passed=True))
        for i in range(checks)
    ]
    defs = Definitions(assets=[landed], asset_checks=rules, jobs=[define_asset_job("gate")])
    return defs.resolve_job_def("gate")


def planned_events(instance: DagsterInstance, run_id: str) -> list[str]:
    kinds = {
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    }
    records = instance.get_records_for_run(run_id, of_type=kinds).records
    return [r.event_log_entry.dagster_event.event_type_value for r in records]


def test_a_new_runs_planned_events_are_stored_a_batch_to_a_transaction(home):
    """A new run's planned events (one per asset and check) are committed in batches, not singly."""
    job = gate_job(checks=60)
    commits = []
    listener = lambda conn: commits.append(conn.engine.url.database)  # noqa: E731
    with DagsterInstance.from_config(home) as instance:
        instance.create_run_for_job(job_def=job)  # the storage and its tables exist
        event.listen(Engine, "commit", listener)
        try:
            run = instance.create_run_for_job(job_def=job)
        finally:
            event.remove(Engine, "commit", listener)
        stored = planned_events(instance, run.run_id)
    assert len(stored) == 61
    to_events = [db for db in commits if db.endswith("event_log.db")]
    assert len(to_events) <= 3, f"{len(to_events)} commits for {len(stored)} planned events"


def test_a_batch_that_fails_is_stored_again_event_by_event_and_loses_nothing(home, monkeypatch):
    """A write that fails inside a batch rolls the batch back; Dagster then stores each event once."""
    job = gate_job(checks=20)
    store_event, calls = PooledSqliteEventLogStorage.store_event, []

    def fails_once(self, entry):
        calls.append(1)
        if len(calls) == 7:
            raise OSError("disk full, once")
        store_event(self, entry)

    monkeypatch.setattr(PooledSqliteEventLogStorage, "store_event", fails_once)
    with DagsterInstance.from_config(home) as instance:
        run = instance.create_run_for_job(job_def=job)
        stored = planned_events(instance, run.run_id)
    assert len(calls) > 21  # the failed batch was stored again, event by event
    assert sorted(stored) == sorted(
        ["ASSET_MATERIALIZATION_PLANNED"] + ["ASSET_CHECK_EVALUATION_PLANNED"] * 20
    )
