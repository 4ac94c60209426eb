"""No PII hides in unclassified text or JSON columns: email, phone, SSN, card (Luhn), IP, IBAN."""

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from pipeline.checks.patterns import ANY_PII, pii_kinds
from pipeline.checks.redact import mask_all
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.checks.schema import SYSTEM_COLUMNS
from pipeline.contract import TableContract
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import column, contains_match, count_where, only_in_sample, table_ref
from pipeline.warehouse.types import type_family

SAMPLE_ROWS = 100_000  # regex cost, not the scan, dominates: scan about this many values per column
CANDIDATES = 50


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


def sample_rate(table: TableContract, state: TableState) -> float:
    if table.pii_scan == "exact" or not state.row_estimate or state.row_estimate <= SAMPLE_ROWS:
        return 1.0
    return SAMPLE_ROWS / state.row_estimate


def sample_keys(
    table: TableContract, state: TableState, dialect: str, value: exp.Expression
) -> list[exp.Expression]:
    """Rows are sampled by primary key, so a value repeated in many rows is sampled like any row;
    without a key, by the value itself."""
    keys = [c.name for c in table.columns if c.primary_key and c.name in state.columns]
    return [column(name, dialect) for name in keys] or [value.copy()]


def _hit(
    table: TableContract, state: TableState, value: exp.Expression, rate: float, dialect: str
) -> exp.Expression:
    match = contains_match(value, ANY_PII, dialect)
    return only_in_sample(match, sample_keys(table, state, dialect, value), rate, dialect)


def metrics(table: TableContract, state: TableState, dialect: str) -> dict[str, exp.Expression]:
    rate = sample_rate(table, state)
    return {
        f"hits:{name}": count_where(_hit(table, state, _text(name, state, dialect), rate, dialect))
        for name in scanned_columns(table, state)
    }


def candidates(
    table: TableContract, state: TableState, warehouse: Warehouse, profile: Mapping[str, Any]
) -> dict[str, Any]:
    """For columns with pattern hits, fetch a few and confirm them (Luhn, IBAN checksum)."""
    found: dict[str, Any] = {}
    rate = sample_rate(table, state)
    for name in scanned_columns(table, state):
        if not profile.get(f"hits:{name}"):
            continue
        value = _text(name, state, warehouse.dialect)
        sql = (
            exp.select(value.as_("value"))
            .from_(table_ref(*table.relation, warehouse.dialect))
            .where(_hit(table, state, value.copy(), rate, warehouse.dialect))
            .limit(CANDIDATES)
            .sql(warehouse.dialect)
        )
        confirmed = [(row["value"], pii_kinds(str(row["value"]))) for row in warehouse.query(sql)]
        found[f"confirmed:{name}"] = [(mask_all(str(v)), kinds) for v, kinds in confirmed if kinds]
    return found


def judge(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    rate = sample_rate(table, state)
    columns = scanned_columns(table, state)
    failing: dict[str, list[str]] = {}
    rows_md = []
    for name in columns:
        confirmed = profile.get(f"confirmed:{name}") or []
        if confirmed:
            failing[name] = sorted({kind for _, kinds in confirmed for kind in kinds})
            rows_md += [f"| {name} | {', '.join(k)} | `{v}` |" for v, k in confirmed[:3]]
    by = "primary key" if any(c.primary_key for c in table.columns) else "value"
    method = "exact (every row)" if rate >= 1 else f"hash sample of {rate:.2%} of rows (by {by})"
    metadata: dict[str, Any] = {
        "scanned_columns": columns,
        "scan_method": method,
        "pattern_hits": {name: int(profile.get(f"hits:{name}") or 0) for name in columns},
        "pii_found": failing,
    }
    if rows_md:
        header = "| column | found | value (redacted) |\n|---|---|---|\n"
        metadata["redacted_samples"] = header + "\n".join(rows_md)
    found = "; ".join(f"{name}: {', '.join(kinds)}" for name, kinds in failing.items())
    return Verdict(
        passed=not failing,
        summary=f"PII in unclassified columns: {found}"
        if failing
        else f"no PII found in {len(columns)} unclassified text columns ({method})",
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
)
