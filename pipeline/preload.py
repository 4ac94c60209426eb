"""Imported once per run by the executor's forkserver: build the definitions every step forks with."""

import gc
import warnings

import pipeline
from pipeline import load_log
from pipeline.automation import GATE_JOB

load_log.quiet()  # the process that started the run has reported this load already
# Resolving the repository here too (asset graph, jobs) leaves each forked step only its own work.
repository = pipeline.defs.get_repository_def()
repository.get_all_jobs()
try:
    # Each step builds the run's execution plan for its one step. Building one here first fills
    # what Dagster caches on the definitions for that (the job's config schema, each asset's
    # outputs by op): 0.15-0.2 s less per step at 1,000 tables (benchmarks/README.md). And the
    # modules a step's instance imports lazily. Internal to Dagster: if an upgrade moves them,
    # only this saving is lost.
    import upath  # noqa: F401
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.storage.defs_state import blob_storage_state_storage  # noqa: F401

    gate = repository.get_job(GATE_JOB)
    create_execution_plan(gate, step_keys_to_execute=[next(iter(gate.graph.node_dict))])
except Exception as error:
    warnings.warn(f"tollgate could not prepare steps' execution plans: {error!r}", stacklevel=1)
# What the steps fork with moves to the permanent generation, as the gc docs advise before fork:
# a step's collections then neither scan it nor write to (and so copy) its pages.
gc.freeze()
