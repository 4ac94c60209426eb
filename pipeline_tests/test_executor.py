"""Scope: the executor's defaults: one process in the sandbox; with real services, steps fork
from the preloaded server, one more than cores; what run config chooses wins."""

import os

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    execute_job,
    job,
    op,
    reconstructable,
)

from pipeline.run_end import (
    FORKSERVER,
    MAX_CONCURRENT_VARIABLE,
    gate_executor,
    steps_for_environment,
    with_gate_defaults,
)

REAL_SNOWFLAKE = {
    "SNOWFLAKE_ACCOUNT": "acme",
    "SNOWFLAKE_USER": "tollgate",
    "SNOWFLAKE_DATABASE": "ANALYTICS",
    "SNOWFLAKE_PASSWORD": "not-a-real-one",
    "TOLLGATE_SANDBOX_SERVICES": "fivetran,looker",
}


@op
def one_step():
    return os.getpid()


@job(executor_def=gate_executor)
def tiny_gate():
    one_step()


def test_steps_fork_from_the_preloaded_server_one_more_than_there_are_cores(monkeypatch):
    monkeypatch.delenv(MAX_CONCURRENT_VARIABLE, raising=False)
    config = with_gate_defaults({"multiprocess": {"retries": {"enabled": {}}}})
    assert config == {
        "multiprocess": {
            "retries": {"enabled": {}},
            "start_method": FORKSERVER,
            "max_concurrent": os.cpu_count() + 1,
        }
    }


def test_what_run_config_or_the_environment_chose_is_kept(monkeypatch):
    monkeypatch.delenv(MAX_CONCURRENT_VARIABLE, raising=False)
    chosen = {"multiprocess": {"start_method": {"spawn": {}}, "max_concurrent": 1}}
    assert with_gate_defaults(chosen) == chosen
    assert with_gate_defaults({"in_process": {}}) == {"in_process": {}}
    monkeypatch.setenv(MAX_CONCURRENT_VARIABLE, "7")  # Dagster reads it when config sets none
    assert "max_concurrent" not in with_gate_defaults({"multiprocess": {}})["multiprocess"]


def test_the_sandbox_runs_steps_in_one_process_and_any_real_service_in_their_own(monkeypatch):
    assert list(steps_for_environment()) == ["in_process"]
    for name, value in REAL_SNOWFLAKE.items():
        monkeypatch.setenv(name, value)
    assert list(steps_for_environment()) == ["multiprocess"]


def _step_pids(instance: DagsterInstance, run_id: str) -> tuple[set[int], list[str]]:
    events = instance.all_logs(run_id)
    pids = {e.dagster_event.pid for e in events if e.is_dagster_event and e.step_key}
    engine = [
        e.message for e in events
        if e.is_dagster_event and e.dagster_event_type == DagsterEventType.ENGINE_EVENT
    ]  # fmt: skip
    return pids, engine


@pytest.mark.parametrize(
    ("run_config", "how"),
    [
        (None, "Executing steps in process"),
        (
            {"execution": {"config": {"multiprocess": {"start_method": {"spawn": {}}}}}},
            "multiprocess",
        ),
    ],
)
def test_run_config_without_an_executor_gets_the_environments_one(tmp_path, run_config, how):
    """A run launched with no execution config runs in one process in the sandbox (it ran a
    process per step before); one that names an executor gets it."""
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = execute_job(reconstructable(tiny_gate), instance, run_config=run_config)
        assert result.success
        pids, engine = _step_pids(instance, result.run_id)
    assert any(how in message for message in engine), engine
    assert (pids == {os.getpid()}) == (run_config is None), pids


def test_an_environment_that_cannot_be_used_fails_the_run_before_any_step(tmp_path, monkeypatch):
    """The executor asks the environment where steps run: one it cannot use fails the run (not
    left NOT_STARTED, as raising while the executor was created did), with the reason logged."""
    monkeypatch.setenv("TOLLGATE_ENV", "staging")
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = execute_job(reconstructable(tiny_gate), instance)
        run = instance.get_run_by_id(result.run_id)
        pids, _ = _step_pids(instance, run.run_id)
        logged = " ".join(str(e.dagster_event) for e in instance.all_logs(run.run_id))
    assert run.status == DagsterRunStatus.FAILURE and not pids
    assert "TOLLGATE_ENV='staging' is not one of sandbox, production" in logged
