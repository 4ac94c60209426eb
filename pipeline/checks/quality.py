"""ODCS quality rules and logicalTypeOptions: one check result each, measured on live rows.

Library metrics (nullValues, missingValues, invalidValues, rowCount) are columns of the table's
one profiling query; duplicateValues runs an exact GROUP BY like keys_are_unique, and each
type: sql rule runs its own read-only query against the audited table. After a sync, a library
metric with a threshold range counts only the new rows when the last count bounds the rest
(see pipeline/checks/incremental.py).
"""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlglot import exp

from pipeline.checks import incremental
from pipeline.checks.keys import duplicates_sql
from pipeline.checks.live import count_live, is_blank, is_text, live
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.contract import TableContract
from pipeline.contract_quality import STRING_FORMATS, QualityRule, check_read_only, substituted
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import column, full_match, literal, table_ref
from pipeline.warehouse.types import type_family

OPTIONS_CHECK = "values_match_logical_type_options"


def rules(table: TableContract) -> list[Rule]:
    """One Rule per quality rule of the table, plus one for every logicalTypeOptions."""
    found = [_rule(q) for q in table.quality]
    if any(c.options for c in table.columns):
        found.append(OPTIONS_RULE)
    return found


def _rule(q: QualityRule) -> Rule:
    what = q.description or q.name or f"{q.metric} of {q.column or 'the table'}"
    return Rule(
        check_name=q.check_name,
        family="quality",
        description=f"ODCS quality rule: {what} ({q.metric} {q.expectation()} {q.unit}).",
        applies=lambda table: True,
        metrics=partial(_metrics, q),
        followup=_followup_for(q),
        judge=partial(_judge, q),
        fixed_severity=q.severity,
        incremental=lambda table: _form(q),
        # Rules that run their own query need only the live rows from the shared profile.
        from_facts=_live_rows if q.metric in ("duplicateValues", "sql") else None,
    )


def _live_rows(facts: Mapping[str, Any], state: TableState) -> dict[str, Any]:
    return {"rows": facts["live"]}


def _followup_for(q: QualityRule):
    if q.metric in ("duplicateValues", "sql"):
        return partial(_followup, q)
    return partial(_count_followup, q) if _form(q) == "count" else None


def _form(q: QualityRule) -> str | None:
    """How the rule judges a sync's rows alone (Rule.incremental), if it can."""
    return "rows" if _zero_only(q) else "count" if _countable(q) else None


COUNTS = ("nullValues", "missingValues", "invalidValues", "rowCount")  # live rows, counted
# Operators whose passing values form one range: a count proven inside it at its least and at
# its most holds anywhere between.
RANGES = ("mustBeGreaterThan", "mustBeGreaterOrEqualTo", "mustBeLessThan", "mustBeLessOrEqualTo",
          "mustBeBetween")  # fmt: skip


def _countable(q: QualityRule) -> bool:
    """A count of live rows held to a range: its last count bounds the rows not synced since."""
    return q.metric in COUNTS and q.operator in RANGES


def _zero_only(q: QualityRule) -> bool:
    """A row count that passes exactly when no row fails: rows that passed need no re-reading."""
    bounded_above = q.operator in (
        "mustBe",
        "mustBeLessThan",
        "mustBeLessOrEqualTo",
        "mustBeBetween",
    )
    row_local = q.metric in ("nullValues", "missingValues", "invalidValues")
    return row_local and q.unit == "rows" and bounded_above and q.holds(0) and not q.holds(1)


def _as_text(name: str, state: TableState, dialect: str) -> exp.Expression:
    col = column(name, dialect)
    return col if is_text(state, name) else exp.cast(col, "VARCHAR")


def _values(values: list[Any]) -> list[exp.Expression]:
    return [literal(v) if isinstance(v, str) else exp.convert(v) for v in values if v is not None]


def _bad_rows(q: QualityRule, state: TableState, dialect: str) -> exp.Expression | None:
    """The condition a row fails on, for the metrics measured in the profile."""
    name = q.column or ""
    col = column(name, dialect)
    null = exp.Is(this=col.copy(), expression=exp.Null())
    if q.metric == "nullValues":
        return null
    if q.metric == "missingValues":
        listed = _values(q.arguments.get("missingValues") or [])
        parts = [null]
        if is_text(state, name):
            parts.append(is_blank(name, dialect))
        if listed:
            parts.append(exp.In(this=col.copy(), expressions=listed))
        return exp.or_(*parts)
    if q.metric == "invalidValues":
        wrong = []
        if "validValues" in q.arguments:
            valid = _values(q.arguments["validValues"])
            wrong.append(exp.Not(this=exp.In(this=col.copy(), expressions=valid)))
        if "pattern" in q.arguments:
            matched = full_match(_as_text(name, state, dialect), q.arguments["pattern"], dialect)
            wrong.append(exp.Not(this=matched))
        return exp.and_(exp.Not(this=null), exp.or_(*wrong))
    return None  # rowCount: every live row


def _metrics(
    q: QualityRule, table: TableContract, state: TableState, dialect: str
) -> dict[str, exp.Expression]:
    found = {"rows": count_live(None, state, dialect)}
    if q.metric in ("sql", "duplicateValues") or (q.column and q.column not in state.columns):
        return found
    found["value"] = count_live(_bad_rows(q, state, dialect), state, dialect)
    return found


def _followup(
    q: QualityRule,
    table: TableContract,
    state: TableState,
    warehouse: Warehouse,
    profile: Mapping[str, Any],
) -> dict[str, Any]:
    dialect = warehouse.dialect
    if q.metric == "duplicateValues":
        key = tuple(q.arguments.get("properties") or [q.column])
        if any(name not in state.columns for name in key):
            return {}
        sql = duplicates_sql(table, key, dialect, None, live(state, dialect))
        [row] = warehouse.query(sql)
        return {"value": int(row["duplicate_rows"] or 0) - int(row["keys"] or 0), "sql": sql}
    table_sql = table_ref(*table.relation, dialect).sql(dialect)
    column_sql = column(q.column, dialect).sql(dialect) if q.column else None
    sql = substituted(q.query or "", table_sql, column_sql)
    check_read_only(q.query or "", q.column is not None, dialect)
    rows = warehouse.query(sql)
    value = next(iter(rows[0].values()), None) if rows else None
    return {"value": value, "sql": sql}


def _count_followup(
    q: QualityRule,
    table: TableContract,
    state: TableState,
    warehouse: Warehouse,
    profile: Mapping[str, Any],
) -> dict[str, Any]:
    """On a delta: the count's bounds when they settle the rule, else every row counted."""
    delta = state.delta
    if delta is None or "value" not in profile:
        return {}
    if q.metric == "rowCount":  # every live row: the plan counted them exactly
        return {"value": delta.live, "rows": delta.live}
    bounds = incremental.counted(delta, int(profile["value"] or 0))
    ends = [_measured(q, n, delta.live) for n in bounds] if bounds else []
    if ends and bounds[0] <= bounds[1] and all(q.holds(m) for m in ends):
        return {"counted": list(bounds), "rows": delta.live}
    shown = " to ".join(_shown(q, m) for m in ends) or "none recorded"
    why = f"the count since the last audit left it open ({shown}): every row was counted"
    metrics = partial(_metrics, q, state=state, dialect=warehouse.dialect)
    return incremental.every_row_counted(warehouse, table, delta, metrics, why)


def _measured(q: QualityRule, value: float, rows: int) -> float:
    return float(value) * 100 / rows if q.unit == "percent" and rows else float(value)


def _shown(q: QualityRule, measured: float) -> str:
    return f"{measured:.2f}%" if q.unit == "percent" else f"{measured:g}"


def _judge(
    q: QualityRule, table: TableContract, state: TableState, profile: Mapping[str, Any]
) -> Verdict:
    label = q.name or q.check_name
    metadata: dict[str, Any] = {
        "odcs_name": q.name or None,
        "odcs_description": q.description or None,
        "dimension": q.dimension,
        "severity": q.severity or table.severity.get("quality", "error"),
        "metric": q.metric,
        "column": q.column,
        "expected": f"{q.expectation()} {q.unit}",
        "sql": profile.get("sql"),
    }
    for name in [q.column, *(q.arguments.get("properties") or [])]:
        if name and name not in state.columns:
            return Verdict(False, f"{label}: column {name} is missing, cannot measure", metadata)
    if reason := profile.get(incremental.READ_EVERY_ROW):
        metadata[incremental.READ_EVERY_ROW] = reason
    if "counted" in profile:
        return _judge_bounds(q, label, metadata, profile["counted"], int(profile["rows"]))
    value = profile.get("value")
    # Snowflake answers NUMBER(p,s) and DuckDB DECIMAL sums as Decimal: numbers all the same.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return Verdict(
            False, f"{label}: the rule measured no number (got {type(value).__name__})", metadata
        )
    rows = int(profile["rows"])
    measured = _measured(q, value, rows)
    counted = "" if q.metric == "sql" else f" of {rows} live rows" if q.metric != "rowCount" else ""
    metadata.update(measured=measured, live_rows=rows)
    if q.metric in COUNTS:
        metadata[incremental.COUNTED] = [int(value), int(value)]
    held = q.holds(measured)
    return Verdict(
        passed=held,
        summary=f"{label}: {q.metric} {_shown(q, measured)}{counted}"
        + ("" if held else f", must be {q.expectation()}")
        + (f" ({q.description})" if q.description else ""),
        metadata=metadata,
    )


def _judge_bounds(
    q: QualityRule, label: str, metadata: dict[str, Any], counted: list[int], rows: int
) -> Verdict:
    """A pass proven by bounds: the count lies between them, and the rule holds at both."""
    ends = [_measured(q, n, rows) for n in counted]
    metadata.update(measured_between=ends, live_rows=rows)
    metadata[incremental.COUNTED] = counted
    return Verdict(
        passed=all(q.holds(m) for m in ends),
        summary=f"{label}: {q.metric} between {_shown(q, ends[0])} and {_shown(q, ends[1])} of "
        f"{rows} live rows (the rows synced since counted, the rest bounded by the last count)"
        + (f" ({q.description})" if q.description else ""),
        metadata=metadata,
    )


# --- logicalTypeOptions ---------------------------------------------------------------------


def _bound(value: Any, family: str, dialect: str) -> exp.Expression:
    if isinstance(value, datetime):
        kind = "TIMESTAMPTZ" if family == "timestamp_tz" else "TIMESTAMP"
        if kind == "TIMESTAMP":
            value = value.replace(tzinfo=None)
        return exp.cast(literal(value.isoformat()), kind, dialect=dialect)
    if isinstance(value, date):
        return exp.cast(literal(value.isoformat()), "DATE")
    return exp.convert(value)


def _violations(
    name: str, options: Mapping[str, Any], state: TableState, dialect: str
) -> dict[str, exp.Expression]:
    """option -> the condition a value breaks it on."""
    col = column(name, dialect)
    family = _family(state.columns[name])
    found: dict[str, exp.Expression] = {}
    for option, value in options.items():
        if option in ("pattern", "format"):
            pattern = value if option == "pattern" else STRING_FORMATS[value]
            text = _as_text(name, state, dialect)
            found[option] = exp.Not(this=full_match(text, pattern, dialect))
        elif option in ("minLength", "maxLength"):
            length = exp.Length(this=_as_text(name, state, dialect))
            compare = exp.LT if option == "minLength" else exp.GT
            found[option] = compare(this=length, expression=exp.Literal.number(value))
        elif option == "multipleOf":
            remainder = exp.Mod(this=col.copy(), expression=exp.convert(value))
            found[option] = exp.NEQ(this=remainder, expression=exp.Literal.number(0))
        else:
            compare = {"minimum": exp.LT, "maximum": exp.GT,
                       "exclusiveMinimum": exp.LTE, "exclusiveMaximum": exp.GTE}[option]  # fmt: skip
            found[option] = compare(this=col.copy(), expression=_bound(value, family, dialect))
    return found


def _family(type_name: str) -> str:
    try:
        return type_family(type_name)
    except ValueError:
        return "unknown"


def _options_metrics(
    table: TableContract, state: TableState, dialect: str
) -> dict[str, exp.Expression]:
    found = {}
    for c in table.columns:
        if c.options and c.name in state.columns:
            for option, broken in _violations(c.name, c.options, state, dialect).items():
                found[f"{c.name}/{option}"] = count_live(broken, state, dialect)
    return found


def _judge_options(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    problems, counts = [], {}
    for c in table.columns:
        if not c.options:
            continue
        if c.name not in state.columns:
            problems.append(f"{c.name}: column missing, options cannot be checked")
            continue
        for option, value in c.options.items():
            bad = int(profile[f"{c.name}/{option}"] or 0)
            counts[f"{c.name}.{option}"] = bad
            if bad:
                problems.append(f"{c.name}: {bad} values break {option} {value}")
    return Verdict(
        passed=not problems,
        summary="; ".join(problems) or f"{len(counts)} logicalTypeOptions hold on every live row",
        metadata={"violations": counts},
    )


OPTIONS_RULE = Rule(
    check_name=OPTIONS_CHECK,
    family="quality",
    description="Values keep to their logicalTypeOptions (pattern, format, length, range).",
    applies=lambda table: any(c.options for c in table.columns),
    metrics=_options_metrics,
    judge=_judge_options,
    incremental=lambda table: "rows",
)
