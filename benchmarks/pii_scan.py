"""Exact PII scan throughput (values/s) on the Fivetran-shaped table of checks.py, same run as
the one-scan floor.

    .venv/bin/python benchmarks/pii_scan.py --repeat 3            # 10M rows x 12 scanned columns
    .venv/bin/python benchmarks/pii_scan.py --rows 200000         # quick, while developing

Each measurement runs in a fresh process: (d) the floor, one query reading every column once;
(p) `no_pii_in_unclassified_columns` alone with `piiScan: exact`, through the project's
`evaluate()` on `DuckDBWarehouse` exactly as users get it (profiling query, then the distinct
candidate follow-up for any column with candidates). Prints markdown for benchmarks/README.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checks as bench  # noqa: E402  (the table, the floor and the machine facts live there)


def worker_pii(db: str, threads: int | None, **_: Any) -> dict[str, Any]:
    from pipeline.checks import pii_scan
    from pipeline.checks.factory import evaluate
    from pipeline.contract import load_contracts
    from pipeline.warehouse.duckdb import DuckDBWarehouse

    class Warehouse(DuckDBWarehouse):
        def query(self, sql: str) -> list[dict[str, Any]]:
            if threads:
                sql = f"SET threads = {threads}; {sql}"
            return super().query(sql)

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / f"{bench.SCHEMA}.yaml").write_text(bench.contract_yaml("exact"))
        table = load_contracts(Path(folder))[bench.SCHEMA].tables[bench.TABLE]
    warehouse = Warehouse(path=db)
    baseline, started, cpu = bench.status_kib("VmRSS"), time.perf_counter(), time.process_time()
    [result] = evaluate(table, [pii_scan.RULE], warehouse)
    facts = bench.timed(started, cpu, baseline, queries=0)
    cover = result.metadata["coverage"].value
    columns = list(result.metadata["scanned_columns"].value)
    return facts | {
        "passed": result.passed,
        "description": result.description,
        "columns": columns,
        "rows": cover["rows_scanned"],
        "values": cover["rows_scanned"] * len(columns),
        "candidates": dict(result.metadata["pattern_hits"].value),
        "method": str(result.metadata["scan_method"].value),
    }


WORKERS = {"floor": bench.worker_floor, "pii": worker_pii}


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    payload = json.dumps({"db": str(args.db), "threads": args.threads})
    command = [sys.executable, __file__, "--worker", name, "--payload", payload]
    done = subprocess.run(command, capture_output=True, text=True, cwd=bench.REPO, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is kept")
    parser.add_argument("--db", type=Path, default=None, help="table file (default under /tmp)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--payload", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, str(bench.REPO))
        result = WORKERS[args.worker](**json.loads(args.payload))
        print(json.dumps(result | {"peak_kib": bench.status_kib("VmHWM")}, default=str))
        return
    args.db = (
        args.db or Path(tempfile.gettempdir()) / "tollgate-bench-pii" / f"orders-{args.rows}.duckdb"
    )
    bench.ensure_table(args.db, args.rows, args.threads, rebuild=False)
    info = bench.machine(args.db)
    with open(args.db, "rb") as f:  # warm the OS page cache
        while f.read(1 << 24):
            pass
    busy, own = bench.busy_cpu_seconds(), bench.own_cpu_seconds()
    results: dict[str, list[dict[str, Any]]] = {"floor": [], "pii": []}
    for _ in range(args.repeat):
        for name in results:  # interleaved, so both see the same load
            results[name].append(run(name, args))
            print(f"{name}: {results[name][-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
    busy, own = bench.busy_cpu_seconds() - busy, bench.own_cpu_seconds() - own
    floor = min(results["floor"], key=lambda r: r["seconds"])
    pii = min(results["pii"], key=lambda r: r["seconds"])
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        "\n".join(
            [
                f"### Exact PII scan, {args.rows:,} rows x {len(pii['columns'])} text columns",
                "",
                f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {info['cpu']}, {info['cores']} "
                f"cores, {info['ram']} RAM, {info['os']}; {info['versions']}. Table: "
                f"{info['file']}. Load average (1/5/15 min) before: {info['load']}, after: {load}; "
                f"other processes used {max(0.0, busy - own):.0f} CPU s while this ran (the "
                f"benchmark itself: {own:.0f}). Best of {args.repeat}, floor and scan interleaved.",
                "",
                "| measurement | wall (s) | CPU (s) | values | values/s |",
                "|---|---:|---:|---:|---:|",
                f"| (d) floor: one scan, `min()` of all 30 columns | {floor['seconds']:.2f} "
                f"| {floor['cpu_seconds']:.1f} | - | - |",
                f"| (p) `no_pii_in_unclassified_columns`, exact | {pii['seconds']:.2f} "
                f"| {pii['cpu_seconds']:.1f} | {pii['values']:,} "
                f"| {pii['values'] / pii['seconds']:,.0f} |",
                "",
                f"PII scan / floor: {pii['seconds'] / floor['seconds']:.2f}. Scan: {pii['method']}; "
                f"candidate rows per column: {pii['candidates']}; verdict: "
                f"{'pass' if pii['passed'] else 'FAIL'} ({pii['description']}).",
            ]
        )
    )


if __name__ == "__main__":
    main()
