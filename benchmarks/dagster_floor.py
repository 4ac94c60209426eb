"""What Dagster alone costs the gate at size: the same steps with empty bodies, by checks per table.

    .venv/bin/python benchmarks/dagster_floor.py --tables 100 --checks 1 6 13

Writes a synthetic code location shaped like tollgate's (per connector of 10 tables: one sync
multi-asset, one multi-asset check with K blocking checks per table, one publish multi-asset),
whose bodies do nothing, and runs it as tollgate runs its gate (`dagster job execute`, the
multiprocess executor forking steps from a preloaded forkserver, in a fresh `DAGSTER_HOME` with
a copy of tollgate's `dagster.yaml`, so the same SQLite storage). What it takes is Dagster's bookkeeping for that many assets, checks and steps:
a floor under any gate that keeps one Dagster check per rule. Prints markdown.

    .venv/bin/python benchmarks/dagster_floor.py --tables 100 --checks 13 --postgres 127.0.0.1:5433

runs it on PostgreSQL instead (production's storage, dagster-postgres): a fresh database per run
on that server (user `postgres`, no password; a PgBouncer's port works too), the three SQLite
storages replaced by `storage: postgres`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml
from scale import instance_config, postgres_storage  # benchmarks/ is the script's folder

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
TABLES_PER_CONNECTOR = 10
LOCATION = """
import gc

from dagster import (AssetCheckResult, AssetCheckSpec, AssetKey, AssetSpec, Definitions,
                     MaterializeResult, define_asset_job, multi_asset, multi_asset_check,
                     multiprocess_executor)

CONNECTORS, TABLES, CHECKS = {connectors}, {tables}, {checks}


def connector(i):
    synced = [AssetKey(["fivetran", f"c{{i}}", f"t{{j}}"]) for j in range(TABLES)]

    @multi_asset(specs=[AssetSpec(k) for k in synced], name=f"sync_{{i}}")
    def sync():
        for key in synced:
            yield MaterializeResult(asset_key=key)

    specs = [AssetCheckSpec(f"rule_{{r}}", asset=k, blocking=True) for k in synced for r in range(CHECKS)]

    @multi_asset_check(specs=specs, name=f"contract_{{i}}")
    def contract():
        for spec in specs:
            yield AssetCheckResult(asset_key=spec.asset_key, check_name=spec.name, passed=True)

    published = [AssetSpec(AssetKey(["published", f"c{{i}}", f"t{{j}}"]), deps=[k]) for j, k in enumerate(synced)]

    @multi_asset(specs=published, name=f"publish_{{i}}")
    def publish():
        for spec in published:
            yield MaterializeResult(asset_key=spec.key)

    return [sync, publish], [contract]


assets, checks = [], []
for i in range(CONNECTORS):
    a, c = connector(i)
    assets += a
    checks += c
defs = Definitions(
    assets=assets,
    asset_checks=checks,
    jobs=[define_asset_job("gate", "*")],
    executor=multiprocess_executor.configured(
        {{"start_method": {{"forkserver": {{"preload_modules": ["floor_location"]}}}}}}
    ),
)
# As pipeline/preload.py does for tollgate: steps fork with the jobs resolved and frozen.
defs.get_repository_def().get_all_jobs()
gc.freeze()
"""
RECORDS = """
import json, sys
from dagster import DagsterInstance
with DagsterInstance.from_config(sys.argv[1]) as instance:
    run = instance.get_runs(limit=1)[0]
    logs = instance.all_logs(run.run_id)
    start = next(e.timestamp for e in logs if e.dagster_event_type.value == "PIPELINE_START")
    print(json.dumps({"events": len(logs), "planned": start - logs[0].timestamp,
                      "steps": len({e.step_key for e in logs if e.step_key}),
                      "status": run.status.value}))
"""


def instance_yaml(folder: Path, postgres: str | None) -> None:
    """tollgate's dagster.yaml, or the same with a fresh PostgreSQL database for its storage."""
    storage = None
    if postgres:
        host, port = postgres.split(":")
        database = folder.name.replace("-", "_").lower()
        subprocess.run(["createdb", "-h", host, "-p", port, "-U", "postgres", database], check=True)
        storage = postgres_storage(host, int(port), "postgres", database)
    (folder / "dagster.yaml").write_text(yaml.safe_dump(instance_config(REPO, storage)))


def run(tables: int, checks: int, postgres: str | None = None) -> dict:
    """One run of the synthetic gate in a fresh folder: wall time and what the run recorded."""
    folder = Path(tempfile.mkdtemp(prefix=f"tollgate-floor-{tables}x{checks}-"))
    (folder / "floor_location.py").write_text(
        textwrap.dedent(LOCATION).format(
            connectors=tables // TABLES_PER_CONNECTOR, tables=TABLES_PER_CONNECTOR, checks=checks
        )
    )
    instance_yaml(folder, postgres)
    env = {**os.environ, "DAGSTER_HOME": str(folder), "PYTHONPATH": str(folder)}
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-m", "floor_location", "-j", "gate"],
        cwd=folder, env=env, check=True, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    done = subprocess.run(
        [sys.executable, "-c", RECORDS, str(folder)], cwd=folder, env=env, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    return {"tables": tables, "checks": checks, "wall": wall, **json.loads(done.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--checks", type=int, nargs="+", default=[1, 6, 13])
    parser.add_argument("--postgres", metavar="HOST:PORT", help="store on this PostgreSQL server")
    args = parser.parse_args()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores, "
          f"load average now {load}.\n")  # fmt: skip
    print("| tables | checks per table | steps | events | planned events (s) | wall (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for checks in args.checks:
        r = run(args.tables, checks, args.postgres)
        print(f"| {r['tables']:,} | {checks} | {r['steps']} | {r['events']:,} | "
              f"{r['planned']:.0f} | {r['wall']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
