"""Scope: loading the code location pauses the cyclic GC only while it builds, freezes what it
built, and leaves the GC on afterwards (collecting its youngest generation less often), also when the build fails with its own error; and it
does not import what only the sandbox's syncs use."""

import gc
import subprocess
import sys

import pytest

import pipeline
from pipeline.contract import ContractError


@pytest.fixture
def frozen():
    """The freeze count before the test; what the test froze is unfrozen, its thresholds reset."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield gc.get_freeze_count()
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_gc_is_paused_while_building_and_what_was_built_is_frozen(monkeypatch, frozen):
    during = []
    built = object()
    monkeypatch.setattr(pipeline, "_build", lambda: during.append(gc.isenabled()) or built)
    assert pipeline._defs.__wrapped__() is built
    assert during == [False]
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen
    assert gc.get_threshold()[0] == pipeline.YOUNGEST_GENERATION > 700  # Python's default


def test_a_failed_build_leaves_the_gc_thresholds_as_they_were(monkeypatch, frozen):
    before = gc.get_threshold()
    monkeypatch.setattr(pipeline, "_build", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        pipeline._defs.__wrapped__()
    assert gc.get_threshold() == before


def test_a_failed_build_keeps_its_error_and_turns_the_gc_back_on(monkeypatch, frozen):
    def fail():
        raise ContractError("contracts/shop.yaml", "connector 'shop' does not sync this table")

    monkeypatch.setattr(pipeline, "_build", fail)
    with pytest.raises(ContractError, match="shop.yaml.*does not sync this table"):
        pipeline._defs.__wrapped__()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_gc_that_was_off_stays_off(monkeypatch, frozen):
    monkeypatch.setattr(pipeline, "_build", object)
    gc.disable()
    try:
        pipeline._defs.__wrapped__()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_loading_the_definitions_does_not_import_pandas_or_numpy():
    """pandas and numpy cost every loading process about 0.6 s; only the sandbox's landing needs
    them. Loading asks the Fivetran sandbox for the workspace, whose API imported them before."""
    code = (
        "import sys, pipeline; pipeline.defs; print(sorted({'pandas', 'numpy'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_forkserver_preload_leaves_steps_no_config_schema_to_build():
    """Each forked step builds its execution plan; the preload built one first, so what Dagster
    keeps on the definitions for it (the gate job's config schema, 0.15 s at 1,000 tables) is
    inherited, not built again in every step. Before, each step built it."""
    code = """
import warnings
warnings.simplefilter("error", UserWarning)  # the preload warns when it could not prepare
import pipeline.preload
from dagster._core.definitions import job_definition
from dagster._core.execution.api import create_execution_plan

def built_again(job):
    raise AssertionError(f"config schema of {job.name} built again")

job_definition._create_run_config_schema  # fails loudly if Dagster renamed what is replaced
job_definition._create_run_config_schema = built_again
gate = pipeline.defs.get_repository_def().get_job("tollgate_gate")
for step in gate.graph.node_dict:
    create_execution_plan(gate, step_keys_to_execute=[step])
print("planned", len(gate.graph.node_dict))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:][0] == "planned" and int(done.stdout.split()[-1]) > 10
