"""Time an incremental exact audit against a full exact one, after a sync that changed 1% of rows.

    .venv/bin/python benchmarks/incremental.py --repeat 2        # 10M rows x 30 columns
    .venv/bin/python benchmarks/incremental.py --rows 200000     # quick, while developing

Uses the Fivetran-shaped table of benchmarks/checks.py (built once, cached under /tmp; copied
here, since a sync changes it) with its contract (`piiScan: exact`, ten quality rules), and the
project's own `DuckDBWarehouse`, `evaluate()` and `incremental.plan()`, in one process:
  1. a full exact audit, whose results hold the watermark (as the check metadata in Dagster does)
  2. a sync: --changed of the rows get new content and a new `_fivetran_synced`. `appended`
     lands them as Fivetran's merge does into an append-structured table (the old versions
     deleted, the new ones written at the end: new micro-partitions on Snowflake); `in-place`
     updates them where they lie (DuckDB's own UPDATE), so every block holds some
  3. alternating, --repeat times: the full exact audit and the incremental one of that table
  4. a second sync whose new rows carry one defect per rule family: both audits must fail the
     same checks
Prints markdown, ready for benchmarks/README.md.
"""

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.checks import (  # noqa: E402
    SCHEMA,
    TABLE,
    busy_cpu_seconds,
    contract_yaml,
    ensure_table,
    machine,
    own_cpu_seconds,
)
from pipeline.checks import incremental  # noqa: E402
from pipeline.checks.factory import evaluate, table_rules, table_state  # noqa: E402
from pipeline.contract import load_contracts  # noqa: E402
from pipeline.warehouse import DuckDBWarehouse  # noqa: E402

CHANGED = "hash(id, 7) % 100 = 0"  # about 1% of rows
# One defect per rule family in the second sync's new rows (ids past the table's end).
DEFECTS = {
    "required_columns_are_not_null": "NULL::BIGINT AS account_id",
    "foreign_keys_resolve": "999999999::BIGINT AS account_id",
    "pii_arrives_as_contracted": "'jane.doe@example.com' AS email",
    "no_pii_in_unclassified_columns": "'call 078-05-1120 back' AS notes",
    "quality_status_invalid_values": "'bogus' AS status",
}


WHOLE = [0.0]  # seconds of the current audit's queries that read every row


class TimedWarehouse(DuckDBWarehouse):
    """The project's DuckDB warehouse; adds up the time of queries that read every row."""

    def query(self, sql: str) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            return super().query(sql)
        finally:
            if f'"{SCHEMA}"."{TABLE}"' in sql and "__delta" not in sql:
                WHOLE[0] += time.perf_counter() - started


def audit(table, rules, warehouse, previous) -> tuple[dict[str, Any], float, float]:
    """One audit as the check runs it (plan, evaluate, release): results, wall and CPU seconds."""
    WHOLE[0] = 0.0
    started, cpu = time.perf_counter(), time.process_time()
    state = table_state(table, rules, warehouse)
    plan = incremental.plan(table, rules, state, warehouse, previous)
    try:
        results = {r.check_name: r for r in evaluate(table, rules, warehouse, state, None, plan)}
    finally:
        incremental.release(warehouse, plan)
    return results, time.perf_counter() - started, time.process_time() - cpu


def sync(warehouse: DuckDBWarehouse, layout: str, where: str, extra: str = "") -> None:
    """Rows matching `where` change (status flips, stamped now); `extra` SQL adds new rows."""
    change = f"SELECT * REPLACE (CASE WHEN status = 'paid' THEN 'shipped' ELSE 'paid' END AS status, now()::TIMESTAMPTZ AS _fivetran_synced) FROM {SCHEMA}.{TABLE} WHERE {where}"
    if layout == "in-place":
        statements = [
            f"UPDATE {SCHEMA}.{TABLE} SET status = CASE WHEN status = 'paid' THEN 'shipped' "
            f"ELSE 'paid' END, _fivetran_synced = now() WHERE {where}"
        ]
    else:
        statements = [
            f"CREATE OR REPLACE TEMP TABLE changed AS {change}",
            f"DELETE FROM {SCHEMA}.{TABLE} WHERE {where}",
            f"INSERT INTO {SCHEMA}.{TABLE} SELECT * FROM changed",
        ]
    with warehouse.connect() as conn:
        for statement in statements + ([extra] if extra else []):
            conn.execute(statement)
        conn.execute("CHECKPOINT")


def defect_rows(top: int) -> str:
    """INSERT of one new row per defect, copies of an existing row with the defect applied."""
    selects = [
        f"SELECT * REPLACE ({top + i}::BIGINT AS id, {change}, now()::TIMESTAMPTZ AS _fivetran_synced) "
        f"FROM {SCHEMA}.{TABLE} WHERE id = 1"
        for i, change in enumerate(DEFECTS.values(), start=1)
    ]
    # keys_are_unique: an old row's key arrives again in a new row
    selects.append(
        f"SELECT * REPLACE (now()::TIMESTAMPTZ AS _fivetran_synced) FROM {SCHEMA}.{TABLE} "
        "WHERE id = 2"
    )
    return f"INSERT INTO {SCHEMA}.{TABLE} " + " UNION ALL ".join(selects)


def run(layout: str, cached: Path, table, args) -> dict[str, Any]:
    db = cached.with_name(f"incremental-{layout}-{args.rows}.duckdb")
    shutil.copy(cached, db)
    warehouse = TimedWarehouse(path=str(db))
    rules = [r for r in table_rules(table) if not r.needs_fivetran_config]  # no Fivetran here
    first, _, _ = audit(table, rules, warehouse, {})
    assert all(r.passed for r in first.values()), [
        r.description for r in first.values() if not r.passed
    ]
    sync(warehouse, layout, CHANGED)
    previous = incremental.previous_of(first)
    full, delta = [], []
    for _ in range(args.repeat):
        whole, seconds, cpu = audit(table, rules, warehouse, {})
        full.append((seconds, cpu))
        part, seconds, cpu = audit(table, rules, warehouse, previous)
        delta.append((seconds, cpu, WHOLE[0]))
    scopes = {name: r.metadata[incremental.AUDIT].value["scope"] for name, r in part.items()}
    judged = part["keys_are_unique"].metadata[incremental.AUDIT].value["rows_judged"]
    forms = {r.check_name: r.incremental(table) for r in rules}
    counts = {  # count rules: the delta's bounds against the full audit's exact count
        name: (
            r.metadata[incremental.COUNTED].value,
            whole[name].metadata[incremental.COUNTED].value,
        )
        for name, r in part.items()
        if forms[name] == "count" and scopes[name] == incremental.SINCE_LAST
    }
    top = warehouse.query(f"SELECT max(id) AS top FROM {SCHEMA}.{TABLE}")[0]["top"]
    sync(warehouse, layout, CHANGED.replace("= 0", "= 1"), defect_rows(int(top)))
    defect_delta, _, _ = audit(table, rules, warehouse, incremental.previous_of(part))
    defect_full, _, _ = audit(table, rules, warehouse, {})
    failed_delta = sorted(n for n, r in defect_delta.items() if not r.passed)
    failed_full = sorted(n for n, r in defect_full.items() if not r.passed)
    db.unlink()
    return {
        "full": min(full), "delta": min(delta), "rows_judged": judged,
        "delta_rules": sorted(n for n, s in scopes.items() if s == incremental.SINCE_LAST),
        "whole_rules": sorted(n for n, s in scopes.items() if s != incremental.SINCE_LAST),
        "failed_delta": failed_delta, "failed_full": failed_full, "counts": counts,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--layouts", nargs="+", default=["appended", "in-place"])
    args = parser.parse_args()

    cached = Path(tempfile.gettempdir()) / "tollgate-bench" / f"orders-{args.rows}.duckdb"
    ensure_table(cached, args.rows, None, rebuild=False)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / f"{SCHEMA}.yaml").write_text(contract_yaml("exact"))
        table = load_contracts(Path(folder))[SCHEMA].tables[TABLE]
    info = machine(cached)
    busy, own = busy_cpu_seconds(), own_cpu_seconds()
    started = datetime.now(UTC)
    results = {layout: run(layout, cached, table, args) for layout in args.layouts}
    other = max(0.0, busy_cpu_seconds() - busy - (own_cpu_seconds() - own))
    print(report(args, info, results, started, other, own_cpu_seconds() - own))


def report(args, info, results, started, other: float, own: float) -> str:
    lines = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {info['cpu']}, {info['cores']} cores, "
        f"{info['ram']} RAM, {info['os']}; {info['versions']}. Table: {info['file']}. "
        f"Load average (1/5/15 min) before: {info['load']}; other processes used {other:.0f} CPU s "
        f"(the benchmark itself: {own:.0f}). Best of {args.repeat}, full and incremental "
        "alternating.",
        "",
        "| layout of the sync's rows | rows judged | full exact audit (s, CPU s) "
        "| incremental audit (s, CPU s) | incremental / full (wall, CPU) "
        "| of it, queries reading every row (s) | incremental without them / full |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for layout, r in results.items():
        (fw, fc), (dw, dc, whole) = r["full"], r["delta"]
        lines.append(
            f"| {layout} | {r['rows_judged']:,} of {args.rows:,} | {fw:.2f}, {fc:.2f} "
            f"| {dw:.2f}, {dc:.2f} | {dw / fw:.1%}, {dc / fc:.1%} | {whole:.2f} "
            f"| {(dw - whole) / fw:.1%} |"
        )
    first = next(iter(results.values()))
    lines += [
        "",
        f"Judged on the delta: {', '.join(first['delta_rules'])}. Every row: "
        f"{', '.join(first['whole_rules'])}.",
        "",
        "Count rules judged on the delta: the bounds they passed on, and the full audit's count:",
    ]
    for layout, r in results.items():
        shown = "; ".join(
            f"{name} {bounds[0]:,}-{bounds[1]:,} (full: {exact[0]:,})"
            for name, (bounds, exact) in r["counts"].items()
        )
        lines.append(f"- {layout}: {shown or 'none'}")
    lines += ["", "Defects in the second sync's new rows (one per family), checks failed:"]
    for layout, r in results.items():
        same = "identical" if r["failed_delta"] == r["failed_full"] else "**DIFFERENT**"
        lines.append(
            f"- {layout}: incremental {r['failed_delta']}; full {r['failed_full']}: {same}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
