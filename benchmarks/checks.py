"""Time the contract gate against the alternatives on a Fivetran-shaped DuckDB table.

    .venv/bin/python benchmarks/checks.py --repeat 2 --wait-quiet 300   # 10M rows x 30 columns
    .venv/bin/python benchmarks/checks.py --rows 200000                 # quick, while developing

Each approach runs in a fresh process and reports its own peak RSS (VmHWM from
/proc/self/status: Python, imports and DuckDB's buffers together; not ru_maxrss, which on Linux
carries the forking parent's RSS across exec):
  (d) floor:  one query reading every column once (min() of each column)
  (a) gate:   the project's own `evaluate()` with every applicable rule, against the project's
              `DuckDBWarehouse` as users get it (its memory limit included); default and exact
              PII scan
  (b) dbt:    one query per rule per column, the way dbt's generic tests run
  (c) pandas: the same rules on the whole frame (load and rules timed separately)
Prints markdown, ready for benchmarks/README.md.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCHEMA, TABLE, PARENT = "bench", "orders", "accounts"
ACCOUNTS = 100_000
BUILD_VERSION = "2"  # bump when the generated data changes, so a cached file is rebuilt
PII_CLASSES = ("email", "phone", "name", "address", "ssn", "card", "ip", "iban", "dob")


def pick(options: list[str], hashed: str) -> str:
    values = ", ".join("'" + o.replace("'", "''") + "'" for o in options)
    return f"([{values}])[(1 + ({hashed}) % {len(options)})::INTEGER]"


FIRST = ["Maria", "James", "Wei", "Aisha", "Lukas", "Sofia", "Mateo", "Yuki", "Olga", "Noah"]
LAST = ["Garcia", "Smith", "Chen", "Okafor", "Muller", "Rossi", "Silva", "Tanaka", "Ivanova"]
CITIES = ["Berlin", "Austin", "Lyon", "Leeds", "Toronto", "Sao Paulo", "Osaka", "Perth",
          "Utrecht", "Valencia", "Denver", "Porto"]  # fmt: skip
NOTE_A = ["Customer asked to", "Please", "Rep noted: customer wants to", "Follow-up: we will",
          "Courier was asked to", "Warehouse will", "Agent promised to", "Buyer requested to"]  # fmt: skip
NOTE_B = ["leave the parcel at the back door", "split the shipment into two boxes",
          "upgrade shipping to express", "hold delivery until Monday", "replace the damaged lid",
          "send the invoice again", "apply the loyalty discount", "combine it with the last order"]  # fmt: skip
NOTE_C = ["no further action needed.", "refund pending approval.", "escalated to tier 2.",
          "customer satisfied.", "waiting on stock (3-5 days).", "label reprinted.",
          "see the previous ticket.", "priority: normal."]  # fmt: skip
SUPPORT = ["Item arrived late, offered a 10% voucher.", "Wrong size sent, exchange created.",
           "Package marked delivered but not received.", "Asked how to change the billing plan.",
           "Duplicate charge reported, refund issued.", "Requested a copy of the invoice."]  # fmt: skip
GIFTS = ["Happy birthday, love from all of us!", "Congratulations on the new home.",
         "Merry Christmas and a happy new year", "Thank you for everything this year."]  # fmt: skip
AGENTS = [  # versions with a part > 255, so no user agent looks like an IPv4 address
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    "okhttp/4.12.0",
]

# name, generating SQL (over h1..h4 = independent 64-bit hashes of the row number i, and
# created), contract physicalType, extra contract keys. 28 columns + 2 Fivetran system columns.
COLUMNS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("id", "i + 1", "BIGINT", {"primaryKey": True}),
    ("account_id", f"(1 + h1 % {ACCOUNTS})::BIGINT", "BIGINT",
     {"required": True, "relationships": [{"type": "foreignKey", "to": f"{PARENT}.id"}]}),
    ("customer_id", "CASE WHEN h2 % 20 = 0 THEN NULL ELSE (1 + (h2 >> 8) % 2000000)::BIGINT END",
     "BIGINT", {}),
    ("order_number", "'ORD-' || lpad((i + 1)::VARCHAR, 10, '0')", "VARCHAR", {"required": True}),
    ("status", pick(["pending", "paid", "shipped", "delivered", "refunded", "cancelled"], "h1 >> 20"),
     "VARCHAR", {"required": True}),
    ("currency", pick(["USD", "EUR", "GBP", "CAD", "AUD", "JPY"], "h2 >> 20"), "VARCHAR", {}),
    ("amount", "((h3 % 5000000) / 100)::DECIMAL(18,2)", "DECIMAL(18,2)", {"required": True}),
    ("tax_amount", "((h3 % 5000000) * 0.0008)::DECIMAL(18,2)", "DECIMAL(18,2)", {}),
    ("discount", "(h4 % 50) / 100.0", "DOUBLE", {}),
    ("quantity", "(1 + h4 % 9)::INTEGER", "INTEGER", {}),
    ("weight_kg", "((h4 >> 12) % 20000) / 1000.0", "DOUBLE", {}),
    ("created_at", "created", "TIMESTAMP", {"required": True}),
    ("updated_at", "created + to_seconds(((h4 >> 8) % 2592000)::BIGINT)", "TIMESTAMP", {}),
    ("shipped_at", "CASE WHEN h4 % 5 = 0 THEN NULL ELSE created + to_seconds(((h3 >> 8) % 604800)::BIGINT) END",
     "TIMESTAMP", {}),
    ("order_date", "created::DATE", "DATE", {}),
    ("is_gift", "h2 % 10 = 0", "BOOLEAN", {}),
    ("channel", pick(["web", "ios", "android", "pos", "marketplace"], "h3 >> 24"), "VARCHAR", {}),
    ("country", pick(["US", "DE", "FR", "GB", "CA", "BR", "JP", "AU", "NL", "ES"], "h4 >> 24"),
     "VARCHAR", {"classification": "public"}),
    ("shipping_city", pick(CITIES, "h1 >> 28"), "VARCHAR", {}),
    ("email", "CASE WHEN h1 % 33 = 0 THEN NULL ELSE sha256('user' || ((h2 >> 4) % 5000000) || '@example.com') END",
     "VARCHAR", {"classification": "email", "customProperties": [{"property": "piiHandling", "value": "hashed"}]}),
    ("phone", "CASE WHEN h3 % 7 = 0 THEN NULL ELSE to_base64(unhex(sha256('+1555' || ((h3 >> 4) % 9000000)))) END",
     "VARCHAR", {"classification": "phone", "customProperties": [{"property": "piiHandling", "value": "hashed"}]}),
    ("full_name", f"{pick(FIRST, 'h1 >> 32')} || ' ' || {pick(LAST, 'h2 >> 32')}", "VARCHAR",
     {"classification": "name", "customProperties": [{"property": "piiHandling", "value": "allowed"}]}),
    ("notes", f"CASE WHEN h1 % 10 < 3 THEN NULL ELSE {pick(NOTE_A, 'h1 >> 36')} || ' ' || "
     f"{pick(NOTE_B, 'h2 >> 36')} || ' for order ' || (10000 + (h3 >> 36) % 90000) || '; ' || "
     f"{pick(NOTE_C, 'h4 >> 36')} END", "VARCHAR", {"description": "Free text; scanned for PII."}),
    ("gift_message", f"CASE WHEN h2 % 10 = 0 THEN {pick(GIFTS, 'h3 >> 40')} END", "VARCHAR", {}),
    # One row in ten mentions a time of day ("14:05"), as real support notes do; clock times
    # are never IPv6 candidates (they were before: the follow-up then rejected them).
    ("support_summary", f"'Ticket #' || (100000 + (h4 >> 40) % 900000) || ': ' || {pick(SUPPORT, 'h1 >> 44')}"
     " || CASE WHEN h3 % 10 = 0 THEN ' Call back at ' || lpad(((h3 >> 44) % 24)::VARCHAR, 2, '0') || ':'"
     " || lpad(((h3 >> 50) % 60)::VARCHAR, 2, '0') || '.' ELSE '' END", "VARCHAR", {}),
    ("user_agent", pick(AGENTS, "h2 >> 44"), "VARCHAR", {}),
    ("promo_code", f"CASE WHEN h4 % 10 < 3 THEN {pick(['SPRING', 'WELCOME', 'VIP', 'FREESHIP'], 'h1 >> 48')}"
     " || (10 + (h2 >> 48) % 90) END", "VARCHAR", {}),
    # Hashed-looking but unclassified, so the PII scan reads it. Lower-case base64: a hex digest
    # here would trip the card pattern (13+ digit runs) on ~3% of rows; see the README.
    ("idempotency_key", "lower(to_base64(unhex(md5(i::VARCHAR))))", "VARCHAR", {}),
    ("_fivetran_synced", "now() - to_seconds((h1 % 7200)::BIGINT)", "", {}),
    ("_fivetran_deleted", "h3 % 1000 = 0", "", {}),
]  # fmt: skip
BLOCKED = ("ssn", "VARCHAR", {"classification": "ssn",
           "customProperties": [{"property": "piiHandling", "value": "blocked"}]})  # fmt: skip
SYSTEM = ("_fivetran_synced", "_fivetran_deleted")


def contract_columns() -> list[tuple[str, str, dict[str, Any]]]:
    return [(n, t, extra) for n, _, t, extra in COLUMNS if n not in SYSTEM] + [
        ("ssn", *BLOCKED[1:])
    ]


def required() -> list[str]:
    return [n for n, _, e in contract_columns() if e.get("required") or e.get("primaryKey")]


def hashed() -> list[str]:
    return [n for n, _, e in contract_columns() if _handling(e) == "hashed"]


def _handling(extra: dict[str, Any]) -> str | None:
    return next((p["value"] for p in extra.get("customProperties", [])), None)


def scanned() -> list[str]:
    """Text columns not classified as PII: what the gate's PII scan reads."""
    return [
        n
        for n, t, e in contract_columns()
        if t == "VARCHAR" and e.get("classification") not in PII_CLASSES and n != "ssn"
    ]


# --------------------------------------------------------------------------------- the table


def build(db: Path, rows: int, threads: int | None) -> None:
    import duckdb

    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in (db, Path(f"{db}.wal")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    select = ",\n  ".join(f"{sql} AS {name}" for name, sql, _, _ in COLUMNS)
    with duckdb.connect(str(db), config={"memory_limit": "4GB"}) as conn:
        conn.execute("SET enable_progress_bar = false")
        if threads:
            conn.execute(f"SET threads = {threads}")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        conn.execute(
            f"CREATE TABLE {SCHEMA}.{PARENT} AS SELECT i + 1 AS id, 'Account ' || (i + 1) AS name,"
            f" now() AS _fivetran_synced, false AS _fivetran_deleted FROM range({ACCOUNTS}) t(i)"
        )
        conn.execute(
            f"""CREATE TABLE {SCHEMA}.{TABLE} AS
WITH r AS (
  SELECT i, hash(i, 1) AS h1, hash(i, 2) AS h2, hash(i, 3) AS h3, hash(i, 4) AS h4,
         TIMESTAMP '2021-01-01' + to_seconds((hash(i, 5) % 157680000)::BIGINT) AS created
  FROM range({rows}) t(i)
)
SELECT
  {select}
FROM r"""
        )
        conn.execute(f"CREATE TABLE {SCHEMA}.bench_meta AS SELECT '{BUILD_VERSION}' AS version")
        conn.execute("CHECKPOINT")
    print(f"built {db} ({rows:,} rows) in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def ensure_table(db: Path, rows: int, threads: int | None, rebuild: bool) -> None:
    import duckdb

    if db.exists() and not rebuild:
        try:
            with duckdb.connect(str(db), read_only=True) as conn:
                [(version,)] = conn.execute(f"SELECT version FROM {SCHEMA}.bench_meta").fetchall()
                [(count, age)] = conn.execute(
                    f"SELECT count(*), date_diff('hour', max(_fivetran_synced), now()) "
                    f"FROM {SCHEMA}.{TABLE}"
                ).fetchall()
            if version == BUILD_VERSION and count == rows and age < 24 * 25:
                return
        except Exception:
            pass
    build(db, rows, threads)


# Ten ODCS quality rules of the kinds a contract carries (all hold on the generated data), and
# logicalTypeOptions on two columns: column -> its `quality:` list.
QUALITY: dict[str | None, list[dict[str, Any]]] = {
    None: [{"metric": "rowCount", "mustBeGreaterThan": 0},
           {"name": "no negative amounts", "type": "sql", "mustBe": 0,
            "query": "SELECT count(*) FROM {object} WHERE amount < 0"}],
    "status": [{"metric": "invalidValues", "mustBe": 0, "arguments": {"validValues": [
        "pending", "paid", "shipped", "delivered", "refunded", "cancelled"]}}],
    "currency": [{"metric": "invalidValues", "mustBe": 0,
                  "arguments": {"validValues": ["USD", "EUR", "GBP", "CAD", "AUD", "JPY"]}}],
    "channel": [{"metric": "invalidValues", "mustBe": 0,
                 "arguments": {"validValues": ["web", "ios", "android", "pos", "marketplace"]}}],
    "country": [{"metric": "invalidValues", "mustBe": 0, "arguments": {"pattern": "[A-Z]{2}"}}],
    "customer_id": [{"metric": "nullValues", "mustBeLessThan": 10, "unit": "percent"}],
    "notes": [{"metric": "missingValues", "mustBeBetween": [20, 40], "unit": "percent",
               "severity": "warning", "dimension": "completeness"}],
    "shipped_at": [{"metric": "nullValues", "mustBeBetween": [15, 25], "unit": "percent"}],
    "gift_message": [{"metric": "nullValues", "mustBeGreaterThan": 50, "unit": "percent"}],
}  # fmt: skip
OPTIONS = {"quantity": {"minimum": 1, "maximum": 9},
           "order_date": {"minimum": "2000-01-01", "maximum": "2100-01-01"}}  # fmt: skip


def contract_yaml(pii_scan: str) -> str:
    import yaml

    def props(columns: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
        return [
            {"name": name, "physicalType": physical, **extra}
            | ({"quality": QUALITY[name]} if name in QUALITY else {})
            | ({"logicalTypeOptions": OPTIONS[name]} if name in OPTIONS else {})
            for name, physical, extra in columns
        ]

    table_properties = [
        {"property": "freshnessHours", "value": 24 * 30},
        {"property": "rowCount", "value": {"min": 1, "max": 1_000_000_000}},
        {"property": "piiScan", "value": pii_scan},
    ]
    doc = {
        "apiVersion": "v3.0.2", "kind": "DataContract", "id": SCHEMA, "name": SCHEMA,
        "version": "1.0.0", "status": "active", "team": {"name": "bench-data"},
        "schema": [
            {"name": PARENT, "properties": props([("id", "BIGINT", {"primaryKey": True}),
                                                  ("name", "VARCHAR", {})])},
            {"name": TABLE, "customProperties": table_properties, "quality": QUALITY[None],
             "properties": props(contract_columns())},
        ],
    }  # fmt: skip
    return yaml.safe_dump(doc, sort_keys=False)


# ------------------------------------------------------------------------- the approaches
# Each runs in its own process (`--worker NAME`) and prints one JSON line.


def status_kib(field: str, pid: str = "self") -> int:
    """VmRSS (now) or VmHWM (peak since exec) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def timed(started: float, cpu: float, baseline: int, **facts: Any) -> dict[str, Any]:
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": wall, "cpu_seconds": cpu, "baseline_kib": baseline, **facts}


def worker_floor(db: str, threads: int | None, **_: Any) -> dict[str, Any]:
    import duckdb

    baseline, started, cpu = status_kib("VmRSS"), time.perf_counter(), time.process_time()
    with duckdb.connect(db, read_only=True) as conn:
        if threads:
            conn.execute(f"SET threads = {threads}")
        cols = [r[0] for r in conn.execute(f"DESCRIBE {SCHEMA}.{TABLE}").fetchall()]
        conn.execute(f"SELECT {', '.join(f'min({c})' for c in cols)} FROM {SCHEMA}.{TABLE}")
        conn.fetchall()
    return timed(started, cpu, baseline, queries=1)


def worker_gate(db: str, threads: int | None, pii_scan: str, **_: Any) -> dict[str, Any]:
    from contextlib import contextmanager

    from pipeline.checks.factory import evaluate, table_rules
    from pipeline.contract import load_contracts
    from pipeline.warehouse.duckdb import DuckDBWarehouse

    timings: list[tuple[str, float]] = []

    class TimedWarehouse(DuckDBWarehouse):
        """The project's DuckDB warehouse, memory limit and all; only times each query."""

        @contextmanager
        def connect(self):
            with super().connect() as conn:
                if threads:
                    conn.execute(f"SET threads = {threads}")
                yield conn

        def query(self, sql: str) -> list[dict[str, Any]]:
            started = time.perf_counter()
            try:
                return super().query(sql)
            finally:
                timings.append((sql, time.perf_counter() - started))

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / f"{SCHEMA}.yaml").write_text(contract_yaml(pii_scan))
        table = load_contracts(Path(folder))[SCHEMA].tables[TABLE]
    # Fivetran's column config needs a Fivetran client and reads no table data: left out.
    rules = [r for r in table_rules(table) if not r.needs_fivetran_config]
    warehouse = TimedWarehouse(path=db)
    [setting] = warehouse.query(
        "SELECT current_setting('memory_limit') AS m, current_setting('threads') AS t"
    )
    timings.clear()
    baseline, started, cpu = status_kib("VmRSS"), time.perf_counter(), time.process_time()
    results = list(evaluate(table, rules, warehouse))
    scan = next(r for r in results if r.check_name == "no_pii_in_unclassified_columns")
    result = timed(started, cpu, baseline, queries=len(timings))
    return result | {
        "checks": {r.check_name: r.passed for r in results},
        "failed": {r.check_name: r.description for r in results if not r.passed},
        "breakdown": [(query_kind(sql), seconds) for sql, seconds in timings],
        "scanned_columns": list(scan.metadata["scanned_columns"].value),
        "scan_method": str(scan.metadata["scan_method"].value),
        "memory_limit": setting["m"],
        "threads": setting["t"],
    }


def query_kind(sql: str) -> str:
    kinds = [("INFORMATION_SCHEMA", "columns"), ("DUCKDB_TABLES", "row estimate"),
             ("BITSTRING_AGG", "keys: bitmap"), ("HAVING", "keys: GROUP BY ... HAVING"),
             ("LEFT JOIN", "foreign key: anti-join"), ("OVER ()", "PII scan: candidates"),
             ("AS ROWS_SCANNED", "PII scan: candidate rows"),
             ("COUNT(DISTINCT", "PII scan: distinct values probe"),
             ("AS HITS", "PII scan: each distinct value once"),
             ("LIMIT", "samples of failures")]  # fmt: skip
    return next((kind for text, kind in kinds if text in sql.upper()), "profile")


def dbt_queries() -> list[tuple[str, str]]:
    """One query per rule per column, shaped like dbt's generic tests compile."""
    from pipeline.checks.patterns import HASH_SHAPE, PATTERNS

    t = f"{SCHEMA}.{TABLE}"
    # fmt: off
    return [
        ("schema", f"SELECT column_name, data_type FROM information_schema.columns "
                   f"WHERE table_schema = '{SCHEMA}' AND table_name = '{TABLE}'"),
        *[("not_null", f'SELECT count(*) FROM (SELECT "{c}" FROM {t} WHERE "{c}" IS NULL) x')
          for c in required()],
        ("unique", f"SELECT count(*) FROM (SELECT id, count(*) AS n FROM {t} "
                   "WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1) x"),
        ("relationships", f"WITH child AS (SELECT account_id AS f FROM {t} WHERE account_id "
         f"IS NOT NULL), parent AS (SELECT id AS k FROM {SCHEMA}.{PARENT}) SELECT count(*) "
         "FROM child LEFT JOIN parent ON child.f = parent.k WHERE parent.k IS NULL"),
        *[("hashed", f'SELECT count(*) FROM {t} WHERE "{c}" IS NOT NULL AND '
                     f"NOT regexp_full_match(\"{c}\", '{HASH_SHAPE}')") for c in hashed()],
        *[("pii regex", f"SELECT count(*) FROM {t} WHERE regexp_matches(\"{c}\", '{pattern}')")
          for c in scanned() for pattern in PATTERNS.values()],
        ("freshness", f"SELECT max(_fivetran_synced) FROM {t}"),
        ("row count", f"SELECT count(*) FROM {t}"),
    ]
    # fmt: on


def worker_dbt(db: str, threads: int | None, **_: Any) -> dict[str, Any]:
    import duckdb

    queries = dbt_queries()
    by_kind: dict[str, float] = {}
    failing: dict[str, int] = {}
    baseline, started, cpu = status_kib("VmRSS"), time.perf_counter(), time.process_time()
    with duckdb.connect(db, read_only=True) as conn:  # dbt-duckdb keeps one connection open
        if threads:
            conn.execute(f"SET threads = {threads}")
        for kind, sql in queries:
            t0 = time.perf_counter()
            value = conn.execute(sql).fetchall()[0][0]
            by_kind[kind] = by_kind.get(kind, 0.0) + time.perf_counter() - t0
            if kind in ("not_null", "unique", "relationships", "hashed", "pii regex") and value:
                failing[kind] = failing.get(kind, 0) + int(value)
    breakdown = sorted(by_kind.items(), key=lambda kv: -kv[1])
    return timed(started, cpu, baseline, queries=len(queries), breakdown=breakdown, failing=failing)


PROBE_ROWS = 100_000


def worker_pandas(db: str, threads: int | None, max_rss_gb: float, **_: Any) -> dict[str, Any]:
    import warnings

    import duckdb
    import pandas as pd

    from pipeline.checks.patterns import ANY_PII, HASH_SHAPE

    warnings.filterwarnings("ignore", message=".*match groups.*")
    t = f"{SCHEMA}.{TABLE}"
    with duckdb.connect(db, read_only=True) as conn:
        # Would `.df()` of the whole table fit under the cap? Load a slice, scale its growth up.
        [(rows,)] = conn.execute(f"SELECT count(*) FROM {t}").fetchall()
        before = status_kib("VmHWM")
        conn.sql(f"SELECT * FROM {t} LIMIT {PROBE_ROWS}").df()
        df_estimate = (status_kib("VmHWM") - before) * 1024 * max(1.0, rows / PROBE_ROWS)
    use_df = df_estimate < 0.8 * max_rss_gb * 1e9
    baseline, started, cpu = status_kib("VmRSS"), time.perf_counter(), time.process_time()
    with duckdb.connect(db, read_only=True) as conn:
        if threads:
            conn.execute(f"SET threads = {threads}")
        if use_df:
            frame = conn.sql(f"SELECT * FROM {t}").df()
        else:  # DuckDB's Arrow export, kept in pyarrow-backed dtypes (no Python objects)
            arrow = conn.sql(f"SELECT * FROM {t}").arrow()
            arrow = arrow if hasattr(arrow, "to_pandas") else arrow.read_all()
            frame = arrow.to_pandas(types_mapper=pd.ArrowDtype, self_destruct=True)
            del arrow
        parent = conn.sql(f"SELECT id FROM {SCHEMA}.{PARENT}").df()
        types = dict(conn.execute(dbt_queries()[0][1]).fetchall())
    load, after_load = time.perf_counter() - started, status_kib("VmRSS")

    failing: dict[str, int] = {}

    def record(kind: str, count: int) -> None:
        if count:
            failing[kind] = failing.get(kind, 0) + int(count)

    expected = {n: typ for n, typ, _ in contract_columns() if n != "ssn"}
    record("schema", len(set(expected) - set(frame.columns)))
    record("schema", sum(1 for n, t in expected.items() if not types[n].startswith(t[:4])))
    for c in required():
        record("not_null", frame[c].isna().sum())
    record("unique", frame["id"].duplicated().sum())
    record("relationships", (~frame["account_id"].dropna().isin(parent["id"])).sum())
    for c in hashed():
        record("hashed", (~frame[c].dropna().str.fullmatch(HASH_SHAPE)).sum())
    for c in scanned():
        record("pii regex", frame[c].str.contains(ANY_PII, regex=True, na=False).sum())
    frame["_fivetran_synced"].max()
    result = timed(started, cpu, baseline, queries=3, load_seconds=load, failing=failing)
    return result | {
        "after_load_kib": after_load,
        "frame_bytes": int(frame.memory_usage(deep=True).sum()),
        "use_df": use_df,
        "df_estimate_gb": df_estimate / 1e9,
        "string_dtypes": sorted({repr(frame[c].dtype) for c in scanned()}),
    }


WORKERS = {"floor": worker_floor, "gate": worker_gate, "dbt": worker_dbt, "pandas": worker_pandas}


# ------------------------------------------------------------------------------ the driver


def run_worker(name: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """Run one approach in a fresh process; kill it if its RSS passes --max-rss-gb."""
    payload = {"db": str(args.db), "threads": args.threads, "max_rss_gb": args.max_rss_gb}
    command = [sys.executable, __file__, "--worker", name, "--payload", json.dumps(payload | extra)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO, text=True)
    cap_kib, killed = args.max_rss_gb * 1e9 / 1024, []

    def watch() -> None:
        while proc.poll() is None:
            try:
                if status_kib("VmRSS", str(proc.pid)) > cap_kib:
                    killed.append(proc.kill())
            except OSError:
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    watcher.join()
    if killed:
        raise RuntimeError(f"{name}: killed above {args.max_rss_gb} GB RSS")
    if proc.returncode != 0:
        raise RuntimeError(f"{name} worker failed with exit code {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all processes, all cores)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(r.ru_utime + r.ru_stime for r in own)


def machine(db: Path) -> dict[str, str]:
    import duckdb
    import pandas as pd
    import pyarrow as pa

    def proc(file: str, field: str) -> str:
        lines = Path(file).read_text().splitlines()
        return next(x.split(":", 1)[1].strip() for x in lines if x.startswith(field))

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())  # before this function's own scan
    with duckdb.connect(str(db), read_only=True) as conn:
        lengths = " + ".join(f"coalesce(sum(strlen({c})), 0)" for c in scanned() + hashed())
        [(text,)] = conn.execute(f"SELECT {lengths} FROM {SCHEMA}.{TABLE}").fetchall()
    return {
        "cpu": proc("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "ram": f"{int(proc('/proc/meminfo', 'MemTotal').split()[0]) / 2**20:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "versions": f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
        f"pandas {pd.__version__}, pyarrow {pa.__version__}",
        "load": load,
        "file": f"{db.stat().st_size / 1e9:.2f} GB file, {text / 1e9:.2f} GB of text",
    }


def mb(kib: float) -> str:
    return f"{kib * 1024 / 1e6:,.0f}"


def report(args: argparse.Namespace, res: dict[str, dict[str, Any]], info: dict[str, str]) -> str:
    d, dc = res["floor"]["seconds"], res["floor"]["cpu_seconds"]
    gd, gx, dbt = res["gate_default"], res["gate_exact"], res["dbt"]
    a, ax, b = gd["seconds"], gx["seconds"], dbt["seconds"]

    def row(label: str, r: dict[str, Any]) -> str:
        s, peak, work = r["seconds"], mb(r["peak_kib"]), mb(r["peak_kib"] - r["baseline_kib"])
        cpu = r["cpu_seconds"]
        return f"| {label} | {r['queries']} | {s:.2f} | {s / d:.2f} | {cpu:.1f} | {peak} | {work} |"

    out = [
        f"### {args.rows:,} rows x 30 columns, DuckDB, {gd['threads']} threads",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {info['cpu']}, {info['cores']} "
        f"cores, {info['ram']} RAM, {info['os']}; {info['versions']}. Table: {info['file']}. "
        f"Load average (1/5/15 min) before: {info['load']}; other processes used "
        f"{info['other_cpu']} while the approaches ran. Wall and CPU times are the best of "
        f"{args.repeat} (dbt-style and pandas: one run); peak RSS is each process's VmHWM; "
        "'work' is peak RSS minus the RSS after imports.",
        "",
        "| approach | queries | wall (s) | x floor | CPU (s) | peak RSS (MB) | work (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("(d) floor: one scan, `min()` of all 30 columns", res["floor"]),
        row("(a) gate, default (PII scan on a row sample)", gd),
        row("(a) gate, exact PII scan (`piiScan: exact`)", gx),
        row("(b) one query per rule per column (dbt-style)", dbt),
    ]
    if p := res.get("pandas"):
        load = "`.df()`" if p["use_df"] else "Arrow export, pyarrow dtypes"
        out += [
            f"| (c) pandas: load ({load}) | 2 | {p['load_seconds']:.2f} "
            f"| {p['load_seconds'] / d:.2f} | - | {mb(p['after_load_kib'])} after load "
            f"| {mb(p['after_load_kib'] - p['baseline_kib'])} |",
            row("(c) pandas: load + the rules", p),
        ]
    gb = lambda r: r["peak_kib"] * 1024 / 1e9  # noqa: E731
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    out += [
        "",
        "| target | measured | goal | met |",
        "|---|---:|---|---|",
        f"| a/d, default gate (CPU ratio) | {a / d:.2f} ({gd['cpu_seconds'] / dc:.2f}) "
        f"| <= 1.25 | {yes(a / d <= 1.25)} |",
        f"| a/d, exact-PII gate (CPU ratio) | {ax / d:.2f} ({gx['cpu_seconds'] / dc:.2f}) "
        f"| <= 4 | {yes(ax / d <= 4)} |",
        f"| b/a, default gate (exact gate) | {b / a:.1f} ({b / ax:.1f}) | >= 8 "
        f"| {yes(b / a >= 8)} |",
        f"| gate peak RSS, default / exact | {gb(gd):.2f} / {gb(gx):.2f} GB | <= 0.5 GB "
        f"| {yes(max(gb(gd), gb(gx)) <= 0.5)} |",
        "",
        f"Gate: DuckDB memory_limit {gd['memory_limit']} (as `DuckDBWarehouse` opens the file); "
        f"PII scan of {len(gd['scanned_columns'])} unclassified text columns, "
        f"{gd['scan_method']} (exact: {gx['scan_method']}); checks: "
        + ", ".join(f"{k} {'pass' if v else 'FAIL'}" for k, v in gd["checks"].items())
        + " (fivetran_config_matches_contract left out: it needs a Fivetran client).",
        "",
        "| default gate query | (s) | exact gate query | (s) |",
        "|---|---:|---|---:|",
    ]
    default, exact = gd["breakdown"], gx["breakdown"]
    for i in range(max(len(default), len(exact))):
        cells = [f"{r[i][0]} | {r[i][1]:.2f}" if i < len(r) else "- | -" for r in (default, exact)]
        out.append(f"| {' | '.join(cells)} |")
    by_kind = ", ".join(f"{k} {v:.2f}" for k, v in dbt["breakdown"])
    out += ["", f"dbt-style, wall s by test kind: {by_kind}."]
    if p := res.get("pandas"):
        how = (
            "`.df()`"
            if p["use_df"]
            else f"DuckDB's Arrow export into pyarrow-backed dtypes (`.df()` would need about "
            f"{p['df_estimate_gb']:.0f} GB, over the {args.max_rss_gb:g} GB cap)"
        )
        out.append(
            f"pandas: loaded with {how}; text dtypes {', '.join(p['string_dtypes'])}; frame "
            f"{p['frame_bytes'] / 1e9:.2f} GB; PII scan exact, one `str.contains` alternation "
            "per column."
        )
    return "\n".join(out)


def agree(res: dict[str, dict[str, Any]]) -> list[str]:
    """The approaches must reach the same verdicts, or the timings compare different work."""
    problems = []
    for name in ("gate_default", "gate_exact"):
        if res[name]["failed"]:
            problems.append(f"{name} failed checks: {res[name]['failed']}")
        if sorted(res[name]["scanned_columns"]) != sorted(scanned()):
            problems.append(f"{name} scanned {res[name]['scanned_columns']}, expected {scanned()}")
    # Clean data, except that times of day match the IPv6 pattern (the gate then rejects them).
    for name in ("dbt", "pandas"):
        if name in res and set(res[name]["failing"]) - {"pii regex"}:
            problems.append(f"{name} found violations: {res[name]['failing']}")
    if "pandas" in res and res["dbt"]["failing"] != res["pandas"]["failing"]:
        problems.append(f"dbt {res['dbt']['failing']} != pandas {res['pandas']['failing']}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arg = parser.add_argument
    arg("--rows", type=int, default=10_000_000)
    arg("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    arg("--repeat", type=int, default=1, help="runs of floor and gates; the best is kept")
    arg("--wait-quiet", type=float, default=0, metavar="SECONDS",
        help="wait up to this long for the 1-minute load average to fall below 1")  # fmt: skip
    arg("--skip-pandas", action="store_true")
    arg("--max-rss-gb", type=float, default=12.0, help="kill any approach above this RSS")
    arg("--db", type=Path, default=None, help="table file (default: cached under /tmp)")
    arg("--rebuild", action="store_true", help="regenerate the table even if cached")
    arg("--out", type=Path, default=None, help="also write the markdown here")
    arg("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    arg("--payload", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        sys.path.insert(0, str(REPO))
        result = WORKERS[args.worker](**json.loads(args.payload))
        print(json.dumps(result | {"peak_kib": status_kib("VmHWM")}))
        return

    args.db = (
        args.db or Path(tempfile.gettempdir()) / "tollgate-bench" / f"orders-{args.rows}.duckdb"
    )
    ensure_table(args.db, args.rows, args.threads, args.rebuild)
    deadline = time.monotonic() + args.wait_quiet
    while os.getloadavg()[0] >= 1.0 and time.monotonic() < deadline:
        time.sleep(10)
    info = machine(args.db)
    with open(args.db, "rb") as f:  # warm the OS page cache so no approach pays the first read
        while f.read(1 << 24):
            pass
    plan = [
        ("floor", "floor", {}, args.repeat),
        ("gate_default", "gate", {"pii_scan": "sample"}, args.repeat),
        ("gate_exact", "gate", {"pii_scan": "exact"}, args.repeat),
        ("dbt", "dbt", {}, 1),
    ] + ([] if args.skip_pandas else [("pandas", "pandas", {}, 1)])
    res: dict[str, dict[str, Any]] = {}
    busy, own = busy_cpu_seconds(), own_cpu_seconds()
    for key, worker, extra, repeat in plan:
        runs = []
        for _ in range(repeat):
            runs.append(run_worker(worker, args, **extra))
            print(f"{key}: {runs[-1]['seconds']:.2f} s, peak {mb(runs[-1]['peak_kib'])} MB",
                  file=sys.stderr, flush=True)  # fmt: skip
        peak = max(r["peak_kib"] for r in runs)
        res[key] = min(runs, key=lambda r: r["seconds"]) | {"peak_kib": peak}
    busy, own = busy_cpu_seconds() - busy, own_cpu_seconds() - own
    info["other_cpu"] = f"{max(0.0, busy - own):.0f} CPU s (the benchmark itself: {own:.0f})"
    text = report(args, res, info)
    if problems := agree(res):
        text += "\n\n**The approaches disagree:**\n" + "\n".join(f"- {p}" for p in problems)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
