"""No PII hides in unclassified text or JSON columns: email, phone, SSN, card, IP, IBAN.

The profiling query counts the rows whose text matches a candidate pattern. For a column with
candidates, one query groups them by distinct value; SQL confirms the classes its pattern alone
decides (email, SSN, IPv4) and Python confirms every other distinct value (checksums,
libphonenumber). More distinct values than CONFIRM_LIMIT fail closed, never pass unread.

On DuckDB a large table's candidates are counted in queries of their own: a sample is drawn by
blocks of rows in a WHERE, so the scan skips the blocks left out, and an exact scan tests each
distinct value of a column with few of them once.
"""

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from pipeline.checks.detect import pii_classes
from pipeline.checks.freshness import future_cutoff
from pipeline.checks.patterns import ANY_PII, CLASS_OF, PATTERNS, SURE
from pipeline.checks.redact import redact_text
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.checks.scan_history import ScanHistory
from pipeline.checks.schema import SYSTEM_COLUMNS
from pipeline.contract import TableContract
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import (
    column,
    contains_match,
    count_where,
    in_sample,
    literal,
    only_in_sample,
    table_ref,
)
from pipeline.warehouse.types import type_family

SAMPLE_ROWS = 100_000  # regex cost, not the scan, dominates: scan about this many values per column
CONFIRM_LIMIT = 100_000  # distinct candidate values per column confirmed in Python
SAMPLES = 3
BLOCK_ROWS = 2048  # DuckDB's vector: a block left out of the sample is never read
MIN_BLOCKS = 32  # fewer blocks than this in a sample: sample rows by key instead
GROUPED_MAX = 1_000  # at most this many distinct values in the probe: test each one once
SYNCED, DELETED, FIVETRAN_ID = "_fivetran_synced", "_fivetran_deleted", "_fivetran_id"
_NO_HISTORY = ScanHistory(seed=0)


def scanned_columns(table: TableContract, state: TableState) -> list[str]:
    """Text and JSON columns not classified as PII, including ones the contract does not know yet."""

    def unclassified(name: str) -> bool:
        contract = table.column(name)
        return contract is None or not contract.is_pii

    return [
        name
        for name, type_name in state.columns.items()
        if name not in SYSTEM_COLUMNS
        and _family(type_name) in ("text", "json")
        and unclassified(name)
    ]


def _family(type_name: str) -> str:
    try:
        return type_family(type_name)
    except ValueError:
        return "unknown"


def _text(name: str, state: TableState, dialect: str) -> exp.Expression:
    """The column as text: JSON / VARIANT payloads (Fivetran lands nested data so) as JSON text."""
    col = column(name, dialect)
    if _family(state.columns[name]) != "json":
        return col
    if dialect == "snowflake":  # CAST of a VARIANT object to VARCHAR fails; TO_VARCHAR gives JSON
        return exp.Anonymous(this="TO_VARCHAR", expressions=[col])
    return exp.cast(col, "VARCHAR")


def history(state: TableState) -> ScanHistory:
    return state.pii_history or _NO_HISTORY


def sample_rate(table: TableContract, state: TableState) -> float:
    """1 for an exact scan, a table that small, or the first scan on record; else the sample."""
    if table.pii_scan == "exact" or history(state).first:
        return 1.0
    if not state.row_estimate or state.row_estimate <= SAMPLE_ROWS:
        return 1.0
    return SAMPLE_ROWS / state.row_estimate


def sample_keys(
    table: TableContract, state: TableState, dialect: str, fallback: list[exp.Expression]
) -> list[exp.Expression]:
    """Rows are sampled by primary key (else Fivetran's _fivetran_id, else their values), so a
    value repeated in many rows is sampled like any row."""
    keys = [c.name for c in table.columns if c.primary_key and c.name in state.columns]
    keys = keys or ([FIVETRAN_ID] if FIVETRAN_ID in state.columns else [])
    return [column(name, dialect) for name in keys] or [e.copy() for e in fallback]


def _synced(state: TableState, dialect: str) -> exp.Expression | None:
    if SYNCED in state.columns and _family(state.columns[SYNCED]).startswith("timestamp"):
        return column(SYNCED, dialect)
    return None


def _new_rows(state: TableState, dialect: str) -> exp.Expression | None:
    """Rows synced after the last passing scan: every one of them is scanned."""
    synced, watermark = _synced(state, dialect), history(state).watermark
    if synced is None or watermark is None:
        return None
    kind = "TIMESTAMPTZ" if watermark.tzinfo else "TIMESTAMP"
    return exp.GT(this=synced, expression=exp.cast(literal(watermark.isoformat()), kind))


def _separate(state: TableState, dialect: str) -> bool:
    """DuckDB counts a large table's candidates after the profile, in queries of their own."""
    return dialect == "duckdb" and (state.row_estimate or 0) > SAMPLE_ROWS


def _blocks(
    state: TableState, rows: int | None, rate: float, dialect: str
) -> exp.Expression | None:
    """A sample of whole blocks (DuckDB's row ids) when it spans enough of them; never on a
    delta's view, which has no row ids."""
    if dialect != "duckdb" or state.delta or not rows:
        return None
    if rows * min(rate, 1) < MIN_BLOCKS * BLOCK_ROWS:
        return None
    return exp.IntDiv(this=exp.column("rowid"), expression=exp.Literal.number(BLOCK_ROWS))


def _keys(
    table: TableContract, state: TableState, dialect: str, rows: int | None = None
) -> list[exp.Expression]:
    block = _blocks(state, rows, sample_rate(table, state), dialect)
    if block is not None:
        return [block]
    texts = [_text(name, state, dialect) for name in scanned_columns(table, state)]
    return sample_keys(table, state, dialect, texts)


def _hit(
    table: TableContract,
    state: TableState,
    value: exp.Expression,
    dialect: str,
    rows: int | None = None,
):
    rate, seed = sample_rate(table, state), history(state).seed
    match = contains_match(value, ANY_PII, dialect)
    keys = _keys(table, state, dialect, rows)
    return only_in_sample(match, keys, rate, dialect, seed, also=_new_rows(state, dialect))


def metrics(table: TableContract, state: TableState, dialect: str) -> dict[str, exp.Expression]:
    columns = scanned_columns(table, state)
    if not columns:
        return {}
    separate = _separate(state, dialect)
    found = {
        f"candidates:{name}": count_where(_hit(table, state, _text(name, state, dialect), dialect))
        for name in ([] if separate else columns)
    }
    found["rows"] = exp.Count(this=exp.Star())
    rate = sample_rate(table, state)
    new = _new_rows(state, dialect)
    if rate >= 1:
        found["rows_scanned"] = exp.Count(this=exp.Star())
    elif not separate:
        scope = in_sample(_keys(table, state, dialect), rate, dialect, history(state).seed)
        found["rows_scanned"] = count_where(scope if new is None else exp.or_(new, scope))
    if rate < 1 and new is not None:
        found["rows_new"] = count_where(new)
    if DELETED in state.columns and _family(state.columns[DELETED]) == "boolean":
        deleted = exp.Coalesce(this=column(DELETED, dialect), expressions=[exp.false()])
        found["live_rows"] = count_where(exp.Not(this=deleted))
    else:
        found["live_rows"] = exp.Count(this=exp.Star())
    if (synced := _synced(state, dialect)) is not None:
        # A stamp in the future is not a sync: as the watermark it would keep every later row
        # out of the "always scanned" set for years.
        cutoff = future_cutoff(state, dialect)
        if cutoff is not None:
            synced = exp.Case(
                ifs=[exp.If(this=exp.LTE(this=synced, expression=cutoff), true=synced.copy())]
            )
        found["synced_max"] = exp.Max(this=synced)
    return found


def _window(expression: exp.Expression) -> exp.Expression:
    return exp.Window(this=expression)


def counts_sql(
    table: TableContract, state: TableState, names: list[str], dialect: str, rows: int | None
) -> str:
    """Candidate rows per column (m0, m1, ...) and the rows read: the sample and the new rows,
    each a WHERE of its own so DuckDB skips the blocks they leave out; else every row."""
    relation = table_ref(*table.relation, dialect)
    texts = [_text(name, state, dialect).as_(f"c{i}") for i, name in enumerate(names)]
    source: exp.Expression = relation
    rate = sample_rate(table, state)
    if rate < 1:
        scope = in_sample(_keys(table, state, dialect, rows), rate, dialect, history(state).seed)
        source = exp.select(*texts).from_(relation.copy()).where(scope)
        if (new := _new_rows(state, dialect)) is not None:
            rest = exp.and_(new, exp.not_(scope.copy()))
            again = exp.select(*(t.copy() for t in texts)).from_(relation.copy()).where(rest)
            source = exp.union(source, again, distinct=False)
        source = source.subquery("s")
        texts = [exp.column(f"c{i}") for i in range(len(names))]
    values = [t.this if isinstance(t, exp.Alias) else t for t in texts]
    found = [
        count_where(contains_match(v, ANY_PII, dialect)).as_(f"m{i}") for i, v in enumerate(values)
    ]
    select = exp.select(*found, exp.Count(this=exp.Star()).as_("rows_scanned"))
    return select.from_(source).sql(dialect)


def probe_sql(
    table: TableContract, state: TableState, names: list[str], dialect: str, rows: int
) -> str:
    """Distinct values per column (m0, m1, ...) in a block sample of about SAMPLE_ROWS rows."""
    distinct = [
        exp.Count(this=exp.Distinct(expressions=[_text(name, state, dialect)])).as_(f"m{i}")
        for i, name in enumerate(names)
    ]
    select = exp.select(*distinct).from_(table_ref(*table.relation, dialect))
    rate = SAMPLE_ROWS / max(rows, 1)
    block = _blocks(state, rows, rate, dialect)
    if block is not None and rate < 1:
        select = select.where(in_sample([block], rate, dialect, history(state).seed))
    return select.sql(dialect)


def grouped_sql(table: TableContract, state: TableState, names: list[str], dialect: str) -> str:
    """Candidate rows per column (one row each: i, hits), testing each distinct value once."""
    v, n = exp.to_identifier("value", quoted=True), exp.to_identifier("n", quoted=True)
    parts = []
    for i, name in enumerate(names):
        value = _text(name, state, dialect)
        values = (
            exp.select(value.as_(v), exp.Count(this=exp.Star()).as_(n))
            .from_(table_ref(*table.relation, dialect))
            .group_by(value.copy())
        )
        hits = exp.Coalesce(
            this=exp.Sum(this=exp.column(n.copy())), expressions=[exp.Literal.number(0)]
        )
        parts.append(
            exp.select(exp.Literal.number(i).as_("i"), hits.as_("hits"))
            .from_(values.subquery("g"))
            .where(contains_match(exp.column(v.copy()), ANY_PII, dialect))
        )
    union = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    return union.sql(dialect)


def counts(
    table: TableContract, state: TableState, warehouse: Warehouse, rows: int
) -> dict[str, Any]:
    """Candidate rows per column counted after the profile; an exact scan tests each distinct
    value once in columns the probe finds few of, and every row of the others."""
    dialect, names = warehouse.dialect, scanned_columns(table, state)
    found: dict[str, Any] = {}
    per_row = names
    if sample_rate(table, state) >= 1:
        [probe] = warehouse.query(probe_sql(table, state, names, dialect, rows))
        few = [name for i, name in enumerate(names) if int(probe[f"m{i}"]) <= GROUPED_MAX]
        per_row = [name for name in names if name not in few]
        if few:
            for row in warehouse.query(grouped_sql(table, state, few, dialect)):
                found[f"candidates:{few[int(row['i'])]}"] = int(row["hits"])
    if per_row:
        [row] = warehouse.query(counts_sql(table, state, per_row, dialect, rows))
        found |= {f"candidates:{name}": int(row[f"m{i}"] or 0) for i, name in enumerate(per_row)}
        if (rate := sample_rate(table, state)) < 1:
            found["rows_scanned"] = int(row["rows_scanned"])
            found["by_block"] = _blocks(state, rows, rate, dialect) is not None
    return found


def candidates_sql(
    table: TableContract, state: TableState, name: str, dialect: str, rows: int | None = None
) -> str:
    """Distinct candidate values of one column with their row counts, those SQL cannot confirm
    first; and over all of them, how many there are and the rows SQL confirms per class."""
    value = _text(name, state, dialect)
    n, v = exp.to_identifier("n", quoted=True), exp.to_identifier("value", quoted=True)
    grouped = (
        exp.select(value.as_(v), exp.Count(this=exp.Star()).as_(n))
        .from_(table_ref(*table.relation, dialect))
        .where(_hit(table, state, value.copy(), dialect, rows))
        .group_by(value.copy())
    )
    flags = {kind: contains_match(exp.column(v.copy()), PATTERNS[kind], dialect) for kind in SURE}
    sure = exp.or_(*(flag.copy() for flag in flags.values()))

    def rows_where(flag: exp.Expression, what: exp.Expression) -> exp.Expression:
        return _window(
            exp.Sum(
                this=exp.Case(ifs=[exp.If(this=flag, true=what)], default=exp.Literal.number(0))
            )
        )

    select = exp.select(
        exp.column(v.copy()),
        exp.column(n.copy()),
        *(flag.copy().as_(f"is_{kind}") for kind, flag in flags.items()),
        _window(exp.Count(this=exp.Star())).as_("distinct_values"),
        rows_where(sure.copy(), exp.Literal.number(1)).as_("sure_values"),
        *(rows_where(f, exp.column(n.copy())).as_(f"rows_{kind}") for kind, f in flags.items()),
    )
    return (
        select.from_(grouped.subquery("c"))
        .order_by(
            exp.Ordered(this=sure, desc=False), exp.Ordered(this=exp.column(n.copy()), desc=True)
        )
        .limit(CONFIRM_LIMIT + 1)
        .sql(dialect)
    )


def value_classes(row: Mapping[str, Any]) -> list[str]:
    """A candidate's classes: what SQL's patterns confirmed, and what Python confirms."""
    sql = {CLASS_OF[kind] for kind in SURE if row.get(f"is_{kind}")}
    return sorted(sql | set(pii_classes(str(row["value"]))))


def confirm(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Python's verdict on the distinct candidates, with SQL's counts for what it confirmed."""
    if not rows:
        return {"rows": {}, "unconfirmed": 0, "distinct": 0, "samples": []}
    first = rows[0]
    total, sure = int(first["distinct_values"]), int(first["sure_values"] or 0)
    counts: dict[str, int] = {}
    samples = []
    for row in rows[:CONFIRM_LIMIT]:
        text = str(row["value"])
        classes = value_classes(row)
        for kind in classes:
            counts[kind] = counts.get(kind, 0) + int(row["n"])
        if classes and len(samples) < SAMPLES:
            samples.append((", ".join(classes), redact_text(text)))
    for kind in SURE:  # SQL saw every candidate; Python may have stopped at the limit
        sql_rows = int(first[f"rows_{kind}"] or 0)
        if sql_rows > counts.get(CLASS_OF[kind], 0):
            counts[CLASS_OF[kind]] = sql_rows
    unconfirmed = max(0, total - sure - CONFIRM_LIMIT)
    return {"rows": counts, "unconfirmed": unconfirmed, "distinct": total, "samples": samples}


def candidates(
    table: TableContract, state: TableState, warehouse: Warehouse, profile: Mapping[str, Any]
) -> dict[str, Any]:
    """For columns with candidate rows, confirm every distinct candidate value."""
    found: dict[str, Any] = {}
    rows = int(profile.get("rows") or 0)
    if _separate(state, warehouse.dialect) and scanned_columns(table, state):
        found = counts(table, state, warehouse, rows)
    for name in scanned_columns(table, state):
        if found.get(f"candidates:{name}", profile.get(f"candidates:{name}")):
            sql = candidates_sql(table, state, name, warehouse.dialect, rows)
            found[f"confirmed:{name}"] = confirm(warehouse.query(sql))
    return found


def _method(table: TableContract, state: TableState, by_block: bool = False) -> str:
    rate = sample_rate(table, state)
    if rate >= 1 and state.delta:
        return "exact (every row synced since the last passing audit)"
    if rate >= 1:
        return "exact (every row)" + (", first scan on record" if history(state).first else "")
    by = "primary key" if any(c.primary_key for c in table.columns) else "row"
    kind = "hash"
    if by_block:
        kind, by = "block", f"blocks of {BLOCK_ROWS:,} rows"
    new = " plus every row synced since the last passing scan" if _new_rows(state, "duckdb") else ""
    return f"{kind} sample of {rate:.2%} of rows (by {by}, seed {history(state).seed}){new}"


def coverage(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> dict[str, Any]:
    """What this scan read, and what the scans since the last full one read together."""
    rate, past = sample_rate(table, state), history(state)
    scanned = int(profile.get("rows_scanned") or 0)
    synced_max = profile.get("synced_max")
    full = rate >= 1
    return {
        "rows_scanned": scanned,
        "live_rows": int(profile.get("live_rows") or 0),
        "rows_new_since_last_pass": int(profile["rows_new"]) if "rows_new" in profile else None,
        "full_scan": full,
        "scans_since_full_scan": 1 if full else past.scans + 1,
        "rows_scanned_since_full_scan": scanned if full else past.rows + scanned,
        "resampled_since_full_scan": 0.0
        if full
        else round(1 - (1 - past.resampled) * (1 - rate), 6),
        "watermark": synced_max.isoformat() if hasattr(synced_max, "isoformat") else None,
    }


def judge(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    columns = scanned_columns(table, state)
    found: dict[str, dict[str, int]] = {}
    unconfirmed: dict[str, int] = {}
    rows_md = []
    for name in columns:
        result = profile.get(f"confirmed:{name}") or {}
        if result.get("rows"):
            found[name] = dict(sorted(result["rows"].items()))
            rows_md += [f"| {name} | {kinds} | `{text}` |" for kinds, text in result["samples"]]
        if result.get("unconfirmed"):
            unconfirmed[name] = result["unconfirmed"]
    cover = coverage(table, state, profile)
    metadata: dict[str, Any] = {
        "scanned_columns": columns,
        "scan_method": _method(table, state, bool(profile.get("by_block"))),
        "pattern_hits": {name: int(profile.get(f"candidates:{name}") or 0) for name in columns},
        "pii_found": {name: sorted(kinds) for name, kinds in found.items()},
        "pii_rows_by_class": found,
        "coverage": cover,
    }
    if unconfirmed:
        metadata["unconfirmed_candidates"] = unconfirmed
    if rows_md:
        header = "| column | found | value (redacted) |\n|---|---|---|\n"
        metadata["redacted_samples"] = header + "\n".join(rows_md)
    problems = [
        f"{name}: " + ", ".join(f"{kind} ({rows} rows)" for kind, rows in kinds.items())
        for name, kinds in found.items()
    ] + [
        f"{name}: {n:,} distinct candidate values left unconfirmed (limit {CONFIRM_LIMIT:,})"
        for name, n in unconfirmed.items()
    ]
    scanned = f"{cover['rows_scanned']:,} rows scanned of {cover['live_rows']:,} live"
    return Verdict(
        passed=not problems,
        summary=f"PII in unclassified columns: {'; '.join(problems)}"
        if problems
        else f"no PII found in {len(columns)} unclassified text columns "
        f"({metadata['scan_method']}; {scanned})",
        metadata=metadata,
    )


RULE = Rule(
    check_name="no_pii_in_unclassified_columns",
    family="pii_scan",
    description="Unclassified text and JSON columns hold no emails, phones, SSNs, cards, IPs, IBANs.",
    applies=lambda table: True,
    metrics=metrics,
    followup=candidates,
    judge=judge,
    # A sampled scan keeps re-sampling old rows; an exact one has read them all already.
    incremental=lambda table: "rows" if table.pii_scan == "exact" else None,
)
