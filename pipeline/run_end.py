"""Every run is tagged when it starts and summarised when it ends, whatever launched it.

Dagster 1.13 has no run-level hook that also fires under `dagster asset materialize` and
`dg launch`: run-status sensors need the daemon (CI runs none), hooks and a final asset are
per step and are skipped with the steps they follow. The executor is the one piece every run goes
through in the process that orchestrates it (CLI, `dg launch`, the UI's run worker, schedules,
sensors, automation), so tollgate's executor wraps Dagster's default one: it tags the run first
and writes the summary after the last step, before Dagster records the run's success or failure.
Unless run config names one, it also picks where steps run: in one process in the sandbox, each in
its own process when a real service is used.
`execute_in_process` swaps in its own executor; in-process callers call `finish_run` themselves.
"""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    DagsterInstance,
    Executor,
    Field,
    InitExecutorContext,
    JobDefinition,
    executor,
    multi_or_in_process_executor,
)

from pipeline import environment, report
from pipeline.locking import write_atomic
from pipeline.run_summary import as_markdown, as_text, summarize

FORKSERVER = {"forkserver": {"preload_modules": ["pipeline.preload"]}}
MAX_CONCURRENT_VARIABLE = "DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT"  # read by Dagster

# Dagster's choice of executors: in_process or multiprocess, each with what Dagster fills in when
# run config names it without settings.
EXECUTORS = multi_or_in_process_executor.config_schema.as_field().config_type
SUMMARY_MD = "summary.md"
HELD_BACK = "held back by checks"


def run_tags(selection: Any, everything: Any) -> dict[str, str]:
    """Environment, each service's target (never a secret), git revision and asset selection."""
    whole = selection is None or set(selection) >= set(everything)
    picked = "*" if whole else ",".join(sorted(k.to_user_string() for k in selection))
    return {
        **environment.setup().tags(),
        "tollgate/git_revision": report.git_revision() or "unknown",
        "tollgate/selection": picked if len(picked) <= 200 else f"{picked[:197]}...",
    }


def finish_run(
    instance: DagsterInstance, run_id: str, job_def: JobDefinition, log: Any = None
) -> dict[str, Any]:
    """Summarise the run into its reports, run tags, held-back observations and the log."""
    run = instance.get_run_by_id(run_id)
    summary = summarize(instance, run_id, job_def.asset_layer.asset_graph)
    summary["run_id"], summary["environment"] = run_id, environment.setup().describe()
    folder = report.run_folder(run_id)
    write_atomic(folder / report.SUMMARY, json.dumps(summary, indent=1).encode())
    write_atomic(folder / SUMMARY_MD, as_markdown(summary).encode())
    report.rebuild(run_id, run.job_name if run else job_def.name)
    instance.add_run_tags(
        run_id,
        {
            "tollgate/result": "passed" if summary["success"] else "failed",
            "tollgate/failed_checks": str(len(summary["failed_checks"])),
            "tollgate/held_back": str(len(summary["held_back"])),
        },
    )
    for held in summary["held_back"]:
        instance.report_runless_asset_event(
            AssetObservation(
                asset_key=AssetKey.from_user_string(held["asset_key"]),
                description=f"Held back by checks in run {run_id}: {', '.join(held['held_back_by'])}",
                metadata={
                    "tollgate/state": HELD_BACK,
                    "held_back_by": held["held_back_by"],
                    "run_id": run_id,
                },  # fmt: skip
            )
        )
    text = f"{as_text(summary)}\nReports: {folder}"
    if log is not None:
        (log.info if summary["success"] else log.warning)(text)
    return summary


class GateExecutor(Executor):
    """Dagster's default executor, with the run tagged first and summarised last."""

    def __init__(self, inner: Executor):
        self.inner = inner

    @property
    def retries(self):
        return self.inner.retries

    @property
    def step_dependency_config(self):
        return self.inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator:
        run, job_def = plan_context.dagster_run, plan_context.job.get_definition()
        everything = job_def.asset_layer.asset_graph.materializable_asset_keys
        plan_context.instance.add_run_tags(run.run_id, run_tags(run.asset_selection, everything))
        plan_context.log.info(f"tollgate: {environment.setup().describe()}")
        try:
            yield from self.inner.execute(plan_context, execution_plan)
        finally:  # also when the run is terminated or the inner executor raises
            try:
                finish_run(plan_context.instance, run.run_id, job_def, plan_context.log)
            except Exception as error:  # a missing summary must not hide the run's own result
                plan_context.log.error(f"tollgate could not write the run summary: {error!r}")


@executor(
    name="tollgate_executor",
    # No default: a run whose config names no executor gets the one its environment suits.
    config_schema=Field(
        EXECUTORS,
        is_required=False,
        description="in_process or multiprocess; unset, the sandbox runs steps in one process "
        "and real services run each step in its own.",
    ),
    requirements=multi_or_in_process_executor.get_requirements,
)
def gate_executor(init_context: InitExecutorContext) -> Executor:
    """Dagster's default executor (in one process or one per step) plus the summary."""
    config = with_gate_defaults(init_context.executor_config or steps_for_environment())
    inner = multi_or_in_process_executor.executor_creation_fn(
        init_context._replace(executor_config=config)
    )
    return GateExecutor(inner)


def steps_for_environment() -> dict[str, Any]:
    """In one process when every service is the local sandbox; else a process per step."""
    # The sandbox's work is all CPU on this machine: step processes only contend for it, and each
    # pays for itself (it plans the whole job, opens the instance, builds resources). At 1,000
    # tables the gate took 0.84x the wall and 0.49x the CPU in one process (benchmarks/README.md).
    # Against real services steps wait on Fivetran's syncs and the warehouse: there they overlap.
    try:
        real = environment.setup().real
    except environment.EnvironmentError:
        # Raised here, it would leave the run NOT_STARTED; the executor raises it again as the run
        # starts (`run_tags`), where Dagster records it as the run's failure.
        real = frozenset()
    chosen = "multiprocess" if real else "in_process"
    return {chosen: EXECUTORS.fields[chosen].default_value}


def with_gate_defaults(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Multiprocess steps fork from a server that built the definitions, one more at a time than
    there are cores, unless run config (or Dagster's environment variable) says otherwise."""
    # Dagster's default `spawn` starts every step in a fresh interpreter that imports dagster and
    # rebuilds the definitions: 5-15 s a step on a busy 2-core machine, for 1-4 s of queries
    # (benchmarks/README.md). Steps still run in their own process, so a crashing step cannot
    # take the run down, and DuckDB still sees one connection per process.
    multiprocess = config.get("multiprocess")
    if not isinstance(multiprocess, Mapping):
        return config
    chosen = dict(multiprocess)
    if not chosen.get("start_method"):
        chosen["start_method"] = FORKSERVER
    # Steps also wait: on the DuckDB file another step holds, on Fivetran and Looker. With one
    # step per core, a core idled meanwhile; one more step keeps it busy (the 100-table gate
    # took 0.92x as long on 2 cores; 4 steps gained no more).
    if not chosen.get("max_concurrent") and not os.environ.get(MAX_CONCURRENT_VARIABLE):
        chosen["max_concurrent"] = (os.cpu_count() or 1) + 1
    return {**config, "multiprocess": chosen}
