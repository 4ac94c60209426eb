"""Time write-audit-publish on DuckDB against one full scan of the same table.

    .venv/bin/python benchmarks/publish.py --repeat 3            # 10M rows x 30 columns
    .venv/bin/python benchmarks/publish.py --rows 200000         # quick, while developing

Uses the Fivetran-shaped table of benchmarks/checks.py (built once, cached under /tmp) and the
project's own `DuckDBWarehouse` (its memory limit included) and `pipeline.publish`, in one
process, alternating the steps so each ratio compares figures taken moments apart:
  floor:    one query reading every column once (min() of each column)
  snapshot: the audit snapshot the contract check takes first (a copy on DuckDB)
  publish:  pointing the published table at that snapshot (a view swap and a ledger row)
  rollback: pointing it back at the previous snapshot
Prints markdown, ready for benchmarks/README.md.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.checks import SCHEMA, TABLE, ensure_table, machine  # noqa: E402
from pipeline import publish  # noqa: E402
from pipeline.contract import TableContract  # noqa: E402
from pipeline.warehouse import DuckDBWarehouse  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    cached = Path(tempfile.gettempdir()) / "tollgate-bench" / f"orders-{args.rows}.duckdb"
    ensure_table(cached, args.rows, None, rebuild=False)
    db = cached.with_name(f"publish-{args.rows}.duckdb")
    shutil.copy(cached, db)  # snapshots grow the file; the cached table stays as built
    warehouse = DuckDBWarehouse(path=str(db))
    table = TableContract(SCHEMA, TABLE, "team:bench", "", (), published_schema="bench_published")
    columns = [r["column_name"] for r in warehouse.query(f"DESCRIBE {SCHEMA}.{TABLE}")]
    floor_sql = f"SELECT {', '.join(f'min({c})' for c in columns)} FROM {SCHEMA}.{TABLE}"
    published_sql = f"SELECT count(*) AS n FROM bench_published.{TABLE}"

    times: dict[str, list[float]] = {"floor": [], "snapshot": [], "publish": [], "rollback": []}
    load = os.getloadavg()[0]
    for run in range(args.repeat):
        times["floor"].append(timed(lambda: warehouse.query(floor_sql)))
        version = publish.new_version(f"bench{run:04d}")
        times["snapshot"].append(timed(lambda v=version: publish.snapshot(warehouse, table, v)))
        times["publish"].append(
            timed(lambda v=version: publish.publish(warehouse, table, v, "bench"))
        )
        assert warehouse.query(published_sql) == [{"n": args.rows}]
        if run:
            times["rollback"].append(timed(lambda: publish.rollback(warehouse, table)))
    db.unlink()
    print(report(args, times, machine(cached), (load + os.getloadavg()[0]) / 2))


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def report(args, times: dict[str, list[float]], info: dict[str, str], load: float) -> str:
    floor = statistics.median(times["floor"])
    rows = [
        f"| {name} | {statistics.median(values):.3f} | {statistics.median(values) / floor:.3f} |"
        for name, values in times.items()
        if values
    ]
    return "\n".join(
        [
            f"`benchmarks/publish.py --rows {args.rows} --repeat {args.repeat}`, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {info.get('cpu', '?')}, "
            f"load average {load:.1f} during the run; medians of {args.repeat} runs.",
            "",
            "| step | wall (s) | x floor |",
            "|---|---:|---:|",
            *rows,
        ]
    )


if __name__ == "__main__":
    main()
