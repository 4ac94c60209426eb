"""Scope: the executor's defaults: steps fork from the preloaded server, one more than cores."""

import os

from pipeline.run_end import FORKSERVER, MAX_CONCURRENT_VARIABLE, with_gate_defaults


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
