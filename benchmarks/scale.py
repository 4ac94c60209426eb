"""Time the gate at size: definitions load, full gate wall, overhead per table, warm `make run`.

    .venv/bin/python benchmarks/scale.py                         # 100 and 1,000 tables, sample
    .venv/bin/python benchmarks/scale.py --tables 100 --compare /tmp/main-copy   # quick
    .venv/bin/python benchmarks/scale.py --gate-select 'key:fivetran/scale_0000/*'

Everything runs as users run it, in fresh processes: the gate job for everything, as `make run`
launches it (`dagster job execute -m pipeline -j tollgate_gate`), or with `--gate-select S` a
selection (`dagster asset materialize -m pipeline --select S`; `'*'` selects every asset), with a
`DAGSTER_HOME` holding a copy of `dagster.yaml`, against the local sandbox
(`TOLLGATE_SANDBOX_SCALE=Nx10` for N*10 tables of 1,000 rows). From the run's own records:
  queries:   the check code's own time, from the run report (`attributed_seconds`: each check
             result's wall time from the previous one, excluding Dagster's handling of results)
  work:      queries plus the bodies of the sync and Looker refresh steps (their API calls and
             the sandbox landing data), which a gate cannot skip either
  overhead:  (gate wall x cores - work) / tables: the core-seconds each table costs beyond its
             own work (until session 10, x concurrent steps, which was the number of cores)
  busy:      the machine's busy core-seconds during the gate (/proc/stat: every process, so it
             counts what else ran), and the overhead counted from it: (busy - work) / tables
  per step:  launch (STEP_WORKER_STARTING to STEP_START: process start, definitions, resources)
             and the step's body (STEP_START to STEP_SUCCESS/FAILURE)
Definitions load in a fresh Python process (import, build, resolve the jobs); "in a Dagster
process" first imports dagster and opens the instance, uncounted, as the code server, run and
step workers and the CLI do before loading the code location.
`--postgres` keeps Dagster's runs and events in a throwaway PostgreSQL cluster on 127.0.0.1 (as
production does; `pip install dagster-postgres`, PostgreSQL's server binaries on PATH) instead of
SQLite, so Dagster's own bookkeeping can be told apart from tollgate's. With
`DAGSTER_EVENT_BATCH_SIZE=N` in the environment Dagster batches its planned events, but only
PostgreSQL stores a batch at once, and only of materializations: check events are still one
write each (benchmarks/README.md).
`--executors in_process multiprocess` runs each gate with that executor in its run config (default:
none, so the environment chooses: in one process in the sandbox), each from a copy of the same cold
folder, and the warm `make run` with each.
`--compare DIR` runs the definitions load and the warm `make run` also with the code in DIR (e.g.
`git archive main`), in the same benchmark run, so the two can be compared as a ratio on an
equally busy machine; `--loads N` repeats the loads, interleaved, and keeps each code's best.
Prints markdown, ready for benchmarks/README.md.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TABLES_PER_CONNECTOR = 10
BATCH_DEFAULT = "unset (tollgate's event log sets 500 since session 11)"
LOAD = """
import gc, resource, time, warnings
warnings.simplefilter("ignore")
started, cpu_started = time.perf_counter(), time.process_time()
# Dagster imports `pipeline`, whose `defs` imports the definitions with the GC paused: so here.
gc.disable()
import pipeline.definitions
gc.enable()
imported, cpu_imported = time.perf_counter(), time.process_time()
defs = pipeline.defs  # as Dagster loads the code location (`-m pipeline`)
built, cpu_built = time.perf_counter(), time.process_time()
repo = defs.get_repository_def()
repo.get_all_jobs()
resolved, cpu_resolved = time.perf_counter(), time.process_time()
usage = resource.getrusage(resource.RUSAGE_SELF)
print({"import": imported - started, "build": built - imported, "resolve": resolved - built,
       "cpu_import": cpu_imported - cpu_started, "cpu_build": cpu_built - cpu_imported,
       "cpu_resolve": cpu_resolved - cpu_built, "cpu": usage.ru_utime + usage.ru_stime,
       "assets": len(repo.asset_graph.get_all_asset_keys()),
       "checks": len(list(repo.asset_graph.asset_check_keys))})
"""


def env_for(code: Path, data: Path, home: Path, scale: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE_", "FIVETRAN_"))}
    env.pop("SNOWFLAKE_ACCOUNT", None)
    env.pop("LOOKERSDK_BASE_URL", None)
    env.update(PYTHONPATH=str(code), TOLLGATE_DATA_DIR=str(data), DAGSTER_HOME=str(home))
    if scale:
        env["TOLLGATE_SANDBOX_SCALE"] = scale
    return env


# What every Dagster process (code server, run and step workers, the CLI) does before it loads
# the code location: import dagster and open its instance (which imports its storage's modules).
INSTANCE_FIRST = """
import warnings
warnings.simplefilter("ignore")
from dagster import DagsterInstance
DagsterInstance.get()
"""


def load_time(code: Path, data: Path, scale: str | None, instance_first: bool = False) -> dict:
    env = env_for(code, data, data, scale)
    source = (INSTANCE_FIRST if instance_first else "") + LOAD
    # From the code's own folder: `python -c` puts the working directory first on sys.path.
    done = subprocess.run(
        [sys.executable, "-c", source],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return eval(done.stdout.strip().splitlines()[-1])  # our own dict literal


def total(load: dict) -> float:
    return load["import"] + load["build"] + load["resolve"]


def gate(
    code: Path,
    work: Path,
    scale: str | None,
    select: str | None = None,
    storage: dict | None = None,
    executor: str | None = None,
) -> dict:
    """One gate run in `work` (reused: a second call is the warm run): the job, or a selection;
    `executor` (in_process, multiprocess) in run config, else the environment's default."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(code, storage)))
    env = env_for(code, work / "data", home, scale)
    command = (
        [str(BIN / "dagster"), "job", "execute", "-m", "pipeline", "-j", "tollgate_gate"]
        if select is None
        else [str(BIN / "dagster"), "asset", "materialize", "-m", "pipeline", "--select", select]
    )  # fmt: skip
    if executor:  # `dagster job execute` takes run config only from a file
        (home / "executor.yaml").write_text(
            yaml.safe_dump({"execution": {"config": {executor: {}}}})
        )
        command += ["-c", str(home / "executor.yaml")]
    busy_before, started = busy_seconds(), time.perf_counter()
    done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True)
    wall, busy = time.perf_counter() - started, busy_seconds() - busy_before
    if done.returncode != 0:
        sys.exit(f"gate failed ({done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
    return {"wall": wall, "busy": busy, **run_records(home, work / "data", env)}


def busy_seconds() -> float:
    """Core-seconds this machine's CPUs have been busy since boot (every process, not only ours)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


RECORDS = """
import json, os, sys
from dagster import DagsterInstance
os.chdir(sys.argv[1])
with DagsterInstance.from_config(sys.argv[1]) as instance:
    run = instance.get_runs(limit=1)[0]
    record = instance.get_run_record_by_id(run.run_id)
    steps = {}
    for entry in instance.all_logs(run.run_id):
        if entry.is_dagster_event and entry.step_key:
            steps.setdefault(entry.step_key, {}).setdefault(
                entry.dagster_event.event_type_value, entry.timestamp)
print(json.dumps({"run_id": run.run_id, "run_wall": record.end_time - record.start_time,
                  "steps": steps}))
"""


def run_records(home: Path, data: Path, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RECORDS, str(home)], env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    run = json.loads(done.stdout.strip().splitlines()[-1])
    results = [
        json.loads(line)
        for line in (data / "reports" / run["run_id"] / "results.jsonl").read_text().splitlines()
    ]
    launch, body, other_work = [], [], 0.0
    for key, events in run["steps"].items():
        end = events.get("STEP_SUCCESS") or events.get("STEP_FAILURE")
        if "STEP_WORKER_STARTING" in events and "STEP_START" in events:
            launch.append(events["STEP_START"] - events["STEP_WORKER_STARTING"])
        if "STEP_START" in events and end:
            body.append(end - events["STEP_START"])
            # Syncs and Looker refreshes: the contract and LookML steps' work is their queries.
            if not key.endswith("__contract") and not key.startswith("lookml__"):
                other_work += end - events["STEP_START"]
    queries = sum(r["attributed_seconds"] for r in results)
    return {
        "run_wall": run["run_wall"],
        "steps": len(run["steps"]),
        "check_steps": len({r["step"] for r in results}),
        "tables": len({r["asset_key"] for r in results if r["asset_key"].startswith("fivetran/")}),
        "results": len(results),
        "queries": queries,
        "work": queries + other_work,
        "launch_median": statistics.median(launch) if launch else None,
        "body_median": statistics.median(body) if body else None,
    }


def instance_config(code: Path, storage: dict | None = None) -> dict:
    """The code's dagster.yaml, with `storage` (e.g. PostgreSQL) in place of its own storages."""
    instance = yaml.safe_load((code / "dagster.yaml").read_text())
    if storage:  # Dagster refuses `storage` beside the per-kind blocks dagster.yaml sets
        for key in ("run_storage", "event_log_storage", "schedule_storage"):
            instance.pop(key, None)
        instance["storage"] = storage
    return instance


def postgres_storage(host: str, port: int, user: str, database: str) -> dict:
    """Dagster's `storage:` block for a PostgreSQL database."""
    return {"postgres": {"postgres_db": {
        "hostname": host, "port": port, "username": user, "password": "", "db_name": database,
        "scheme": "postgresql+psycopg2",  # psycopg2: what dagster-postgres installs
    }}}  # fmt: skip


@contextmanager
def postgres() -> Iterator[dict]:
    """Dagster's `storage:` block for a throwaway PostgreSQL cluster on 127.0.0.1."""
    folder = Path(tempfile.mkdtemp(prefix="tollgate-pg-"))
    as_owner = []
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres user
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = lambda *cmd: subprocess.run([*as_owner, *cmd], check=True, capture_output=True)  # noqa: E731
    run("initdb", "-D", str(folder / "data"), "-U", "dagster", "--auth=trust")
    run("pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "-t", "600",
        "-o", f"-h 127.0.0.1 -p {port} -k {folder}", "start")  # fmt: skip
    try:
        run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "dagster", "dagster")
        yield postgres_storage("127.0.0.1", port, "dagster", "dagster")
    finally:
        run("pg_ctl", "-D", str(folder / "data"), "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {cpu}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; load average (1/5/15 min) now {load}; "
        f"DAGSTER_EVENT_BATCH_SIZE={os.environ.get('DAGSTER_EVENT_BATCH_SIZE', BATCH_DEFAULT)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--gate-tables", type=int, nargs="*", default=None,
                        help="sizes to run the full gate at (default: all of --tables)")  # fmt: skip
    parser.add_argument("--gate-select", help="a selection instead of the gate job (at size)")
    parser.add_argument("--compare", type=Path, help="a copy of other code (e.g. main) to compare")
    parser.add_argument("--loads", type=int, default=1, help="rounds of definitions loads")
    parser.add_argument("--no-sample", action="store_true", help="skip the warm `make run`")
    parser.add_argument("--postgres", action="store_true", help="Dagster storage in PostgreSQL")
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temp folder)")
    parser.add_argument("--executors", nargs="*", default=["default"],
                        choices=["default", "in_process", "multiprocess"],
                        help="run each gate with each (default: the environment's choice)")  # fmt: skip
    args = parser.parse_args()
    executors = {name: None if name == "default" else name for name in args.executors}
    work = args.keep or Path(tempfile.mkdtemp(prefix="tollgate-scale-"))
    cores = os.cpu_count() or 1
    concurrency = int(  # tollgate's default: one more than cores (pipeline/run_end.py)
        os.environ.get("DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT") or cores + 1
    )
    print(f"Measured {machine()}; {concurrency} concurrent steps on {cores} cores.\n")
    gate_sizes = args.tables if args.gate_tables is None else args.gate_tables

    rows = []
    for tables in args.tables:
        scale = f"{tables // TABLES_PER_CONNECTOR}x{TABLES_PER_CONNECTOR}"
        folder = work / scale
        load_time(REPO, folder / "data", scale)  # first: generates contracts and LookML
        loads: dict[str, list[dict]] = {}
        for _ in range(args.loads):  # interleaved, so each code sees the same machine
            shutil.rmtree(folder / "data" / "cache", ignore_errors=True)
            loads.setdefault("cold", []).append(load_time(REPO, folder / "data", scale))
            loads.setdefault("warm", []).append(load_time(REPO, folder / "data", scale))
            loads.setdefault("warm, in a Dagster process", []).append(
                load_time(REPO, folder / "data", scale, instance_first=True)
            )
            if args.compare:
                loads.setdefault("compare", []).append(
                    load_time(args.compare, folder / "data", scale)
                )
        best = {name: min(runs, key=total) for name, runs in loads.items()}
        row = {"tables": tables, "scale": scale, "load": best["warm"], "loads": best}
        if tables in gate_sizes:  # each executor from a copy of the same cold folder
            for name in executors:
                shutil.copytree(folder, work / f"{scale}-{name}", symlinks=True)
            row["gates"] = {}
            for name, executor in executors.items():
                with postgres() if args.postgres else nullcontext() as storage:
                    row["gates"][name] = gate(
                        REPO, work / f"{scale}-{name}", scale, args.gate_select, storage, executor
                    )
        rows.append(row)
        print(f"<!-- {json.dumps(row)} -->", flush=True)

    print("| tables | assets | checks | import (s) | build definitions (s) | resolve jobs (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        load = row["load"]
        print(f"| {row['tables']:,} | {load['assets']:,} | {load['checks']:,} | "
              f"{load['import']:.1f} | {load['build']:.1f} | {load['resolve']:.1f} |")  # fmt: skip

    print(f"\nDefinitions load, best of {args.loads} by total; cold: nothing kept on disk by an "
          "earlier load (`<data dir>/cache` removed), warm: the load after it; in a Dagster "
          "process: warm, after importing dagster and opening the instance, as every Dagster "
          "process does before it loads code (not counted).\n")  # fmt: skip
    print("| tables | code | import (s) | build (s) | resolve (s) | total (s) |")
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        for name, load in row["loads"].items():
            print(f"| {row['tables']:,} | {name} | {load['import']:.1f} | {load['build']:.1f} | "
                  f"{load['resolve']:.1f} | {total(load):.1f} |")  # fmt: skip

    gates = [row for row in rows if "gates" in row]
    if gates:
        how = f"`--select '{args.gate_select}'`" if args.gate_select else "the `tollgate_gate` job"
        print(f"\nGate ({how}), cold: the sandbox lands every table; "
              f"Dagster storage: {'PostgreSQL' if args.postgres else 'SQLite'}.\n")  # fmt: skip
        print(
            "| tables | executor | checked | steps | wall (s) | run (s) | queries (s) | work (s) | "
            "overhead per table (core-s) | busy core-s | busy overhead per table (core-s) | "
            "step launch, median (s) | step body, median (s) |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
        for row in gates:
            for name, g in row["gates"].items():
                overhead = (g["wall"] * cores - g["work"]) / max(g["tables"], 1)
                busy = (g["busy"] - g["work"]) / max(g["tables"], 1)
                print(f"| {row['tables']:,} | {name} | {g['tables']:,} | {g['steps']:,} | "
                      f"{g['wall']:.0f} | {g['run_wall']:.0f} | {g['queries']:.1f} | "
                      f"{g['work']:.1f} | {overhead:.2f} | {g['busy']:.0f} | {busy:.2f} | "
                      f"{seconds(g['launch_median'])} | {seconds(g['body_median'])} |")  # fmt: skip

    if args.no_sample:
        return
    print("\nWarm `make run` on the sample (second of two runs in the same folder).\n")
    print("| code | wall (s) | run (s) | queries (s) | wall / queries | step launch, median (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    codes = [
        ("this branch" if name == "default" else f"this branch, {name}", REPO, executor)
        for name, executor in executors.items()
    ] + ([("compare", args.compare, None)] if args.compare else [])
    folders = {name: work / f"sample-{name.replace(' ', '-')}" for name, _, _ in codes}
    for name, code, executor in codes:  # every warm-up first, then the measured runs back to back
        gate(code, folders[name], None, executor=executor)
    for name, code, executor in codes:
        g = gate(code, folders[name], None, executor=executor)
        print(f"<!-- {name}: {json.dumps(g)} -->")
        print(f"| {name} | {g['wall']:.0f} | {g['run_wall']:.0f} | {g['queries']:.1f} | "
              f"{g['wall'] / g['queries']:.1f} | {seconds(g['launch_median'])} |", flush=True)  # fmt: skip


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"  # in one process, steps have no launch


if __name__ == "__main__":
    main()
