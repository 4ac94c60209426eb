"""The gate's executor: one process per step, each forked from a process that built the definitions."""

from dagster import multiprocess_executor

# Dagster's default `spawn` starts every step in a fresh interpreter that imports dagster and
# rebuilds the definitions: 5-15 s a step on a busy 2-core machine, for 1-4 s of queries. A
# forkserver that imports `pipeline.preload` builds them once per run, and each step forks from it
# with everything already in memory (benchmarks/README.md). Steps still run in their own process,
# so a crashing step cannot take the run down, and DuckDB still sees one connection per process.
gate_executor = multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": ["pipeline.preload"]}}},
    name="tollgate_multiprocess",
)
