"""Which part of the gate's profiling SQL costs what, and what the alternatives cost.

    .venv/bin/python benchmarks/profile_gate.py --rows 10000000

Uses the table `checks.py` built (same --rows, same cache under /tmp). Every line is one query
on a fresh connection (the gate opens one per query too), best of --repeat; CPU seconds are the
process's, so they hold up better than wall seconds when the machine is shared.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import checks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit for every query")
    args = parser.parse_args()
    db = args.db or Path(tempfile.gettempdir()) / "tollgate-bench" / f"orders-{args.rows}.duckdb"
    checks.ensure_table(db, args.rows, None, False)

    import duckdb

    from pipeline.checks.factory import RULES, table_state
    from pipeline.checks.patterns import ANY_PII, HASH_SHAPE
    from pipeline.checks.profile import profile_sql
    from pipeline.contract import load_contracts
    from pipeline.warehouse.duckdb import DuckDBWarehouse

    config = {"memory_limit": args.memory_limit} if args.memory_limit else {}
    reference: list[float] = []

    def run(label: str, sql: str) -> None:
        best = (float("inf"), 0.0)
        for _ in range(args.repeat):
            with duckdb.connect(str(db), read_only=True, config=config) as conn:
                wall, cpu = time.perf_counter(), time.process_time()
                conn.execute(sql).fetchall()
                best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
        if not reference:
            reference.append(best[1])
        print(
            f"| {label} | {best[0]:.2f} | {best[1]:.2f} | {best[1] / reference[0]:.2f} |",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as folder:
        tables = {}
        for mode in ("sample", "exact"):
            sub = Path(folder) / mode
            sub.mkdir()
            (sub / "c.yaml").write_text(checks.contract_yaml(mode))
            tables[mode] = load_contracts(sub)[checks.SCHEMA].tables[checks.TABLE]
    warehouse = DuckDBWarehouse(path=str(db))

    t = f"{checks.SCHEMA}.{checks.TABLE}"
    scanned, hashed = checks.scanned(), checks.hashed()
    with duckdb.connect(str(db), read_only=True) as conn:
        stats = {c: conn.execute(f"SELECT stats({c}) FROM {t} LIMIT 1").fetchall()[0][0]
                 for c in scanned}  # fmt: skip
        columns = [r[0] for r in conn.execute(f"DESCRIBE {t}").fetchall()]
    low = [c for c in scanned if int(stats[c]["approx_unique"]) <= checks.DISTINCT_MAX]
    high = [c for c in scanned if c not in low]
    rows = args.rows
    thr = max(1, round(min(1.0, 100_000 / rows) * 10_000))
    pii = ANY_PII.replace("'", "''")
    sel = lambda exprs: f"SELECT {', '.join(exprs)} FROM {t}"  # noqa: E731
    regex = lambda c: f"sum(CASE WHEN regexp_matches({c}, '{pii}') THEN 1 ELSE 0 END)"  # noqa: E731

    print(f"{rows:,} rows; low-cardinality scanned columns: {low}; the rest: {high}\n")
    print("| query | wall (s) | CPU (s) | CPU x floor |\n|---|---:|---:|---:|")
    run("floor: min() of all 30 columns", sel(f"min({c})" for c in columns))
    run("read only what the profile reads: min() of those columns",
        sel(f"min({c})" for c in [*checks.required(), *hashed, *scanned, "_fivetran_synced"]))  # fmt: skip
    for mode, table in tables.items():
        state = table_state(table, RULES, warehouse, None, None)
        every: dict[str, Any] = {}
        for rule in RULES:
            metrics = rule.metrics(table, state, "duckdb")
            if metrics and (mode == "sample" or rule.family == "pii_scan"):
                run(f"gate profile, {mode}: only `{rule.check_name}`",
                    profile_sql(table, metrics, "duckdb"))  # fmt: skip
            every.update({f"{rule.check_name}/{k}": v for k, v in metrics.items()})
        run(f"gate profile, {mode}: the whole query", profile_sql(table, every, "duckdb"))
    run("  sample: hash(value) per column alone (no regex)",
        sel(f"sum(CASE WHEN abs(hash({c})) % 10000 < {thr} THEN 1 ELSE 0 END)" for c in scanned))  # fmt: skip
    run("  sample proposed: hash(id) once per row, regex nested in CASE",
        sel(f"sum(CASE WHEN abs(hash(id)) % 10000 < {thr} THEN CASE WHEN regexp_matches({c}, '{pii}') "
            "THEN 1 ELSE 0 END ELSE 0 END)" for c in scanned))  # fmt: skip
    run("  hashed proposed: strlen() NOT IN (44, 64) on every row, shape regex on the sample",
        sel(f"sum(CASE WHEN {c} IS NULL THEN 0 WHEN strlen({c}) NOT IN (44, 64) THEN 1 WHEN "
            f"abs(hash(id)) % 10000 < {thr} THEN CASE WHEN regexp_full_match({c}, '{HASH_SHAPE}') "
            "THEN 0 ELSE 1 END ELSE 0 END)" for c in hashed))  # fmt: skip
    run(f"  exact: per-row regex, the {len(low)} low-cardinality columns", sel(map(regex, low)))
    run(f"  exact: per-row regex, the {len(high)} other columns", sel(map(regex, high)))
    run(f"  exact proposed: the {len(low)} low-cardinality columns once per distinct value",
        sel(f"list_sum(list_transform(map_entries(histogram({c})), lambda e: CASE WHEN "
            f"regexp_matches(e.key, '{pii}') THEN e.value ELSE 0 END))" for c in low))  # fmt: skip
    run("keys: GROUP BY id HAVING count(*) > 1 (today)",
        f"SELECT count(*) FROM (SELECT id FROM {t} WHERE id IS NOT NULL GROUP BY id "
        "HAVING count(*) > 1)")  # fmt: skip
    run("keys proposed: count(id) - bit_count(bitstring_agg(id, min, max))",
        f"SELECT count(id) - bit_count(bitstring_agg(id, 1, {rows})) FROM {t}")  # fmt: skip
    run("foreign key: anti-join (today)",
        f"SELECT count(*) FROM {t} c LEFT JOIN {checks.SCHEMA}.{checks.PARENT} p ON "
        "c.account_id = p.id WHERE c.account_id IS NOT NULL AND p.id IS NULL")  # fmt: skip


if __name__ == "__main__":
    main()
