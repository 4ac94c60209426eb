"""ODCS `quality:` rules and `logicalTypeOptions`, validated into plain objects the checks run."""

import operator
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlglot
from open_data_contract_standard.model import DataQuality
from sqlglot import exp

from pipeline.contract_schema import suggest

METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")
TABLE_METRICS = ("rowCount", "duplicateValues")
COLUMN_METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues")
ARGUMENTS = {
    "nullValues": (),
    "missingValues": ("missingValues",),
    "invalidValues": ("validValues", "pattern"),
    "duplicateValues": ("properties",),
    "rowCount": (),
}
OPERATORS = {
    "mustBe": ("=", operator.eq),
    "mustNotBe": ("!=", operator.ne),
    "mustBeGreaterThan": (">", operator.gt),
    "mustBeGreaterOrEqualTo": (">=", operator.ge),
    "mustBeLessThan": ("<", operator.lt),
    "mustBeLessOrEqualTo": ("<=", operator.le),
    "mustBeBetween": ("between", lambda v, t: t[0] <= v <= t[1]),
    "mustNotBeBetween": ("not between", lambda v, t: not t[0] <= v <= t[1]),
}
UNITS = ("rows", "percent")
# ODCS leaves severity free ("info", "warning", "error"): these words block, the others warn.
BLOCKING_SEVERITIES = ("error", "critical", "high", "blocker", "blocking")
WARNING_SEVERITIES = ("warning", "warn", "info", "low", "medium", "minor")
PLACEHOLDERS = re.compile(r"\{(object|property)\}")
# logicalTypeOptions tollgate checks, by option; the other ODCS options refuse to load.
STRING_FORMATS = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[.][A-Za-z]{2,}",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "ipv4": r"(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}",
    "hostname": r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
    "uri": r"[A-Za-z][A-Za-z0-9+.-]*:[^ ]+",
}
CHECKED_OPTIONS = ("pattern", "minLength", "maxLength", "format", "minimum", "maximum",
                   "exclusiveMinimum", "exclusiveMaximum", "multipleOf")  # fmt: skip


class QualityError(ValueError):
    """A quality rule or option tollgate cannot run; the contract loader adds file/table/column."""


@dataclass(frozen=True)
class QualityRule:
    """One ODCS quality rule: a measured number held to one threshold operator."""

    check_name: str
    metric: str  # one of METRICS, or "sql"
    operator: str  # one of OPERATORS
    threshold: float | tuple[float, float]
    unit: str = "rows"
    column: str | None = None  # None: a table-level rule
    arguments: dict[str, Any] = field(default_factory=dict)
    query: str | None = None
    name: str = ""
    description: str = ""
    severity: str | None = None  # error | warn; None: the table's `severity: {quality: ...}`
    dimension: str | None = None

    def holds(self, value: float) -> bool:
        return OPERATORS[self.operator][1](value, self.threshold)

    def expectation(self) -> str:
        symbol = OPERATORS[self.operator][0]
        shown = (
            f"{self.threshold[0]:g} and {self.threshold[1]:g}"
            if isinstance(self.threshold, tuple)
            else f"{self.threshold:g}"
        )
        unit = "%" if self.unit == "percent" else ""
        return f"{symbol} {shown}{unit}"


def parse_rules(
    rules: list[DataQuality], column: str | None, column_names: list[str]
) -> list[QualityRule]:
    """Every rule of one `quality:` list (a table's when column is None)."""
    parsed = []
    for index, rule in enumerate(rules):
        where = f"quality[{index}]" + (f" ({rule.name})" if rule.name else "")
        try:
            parsed.append(_parse(rule, column, column_names))
        except QualityError as error:
            raise QualityError(f"{where}: {error}") from None
    return parsed


def _parse(rule: DataQuality, column: str | None, column_names: list[str]) -> QualityRule:
    kind = rule.type or ("sql" if rule.query else "library")
    if kind in ("text", "custom"):
        raise QualityError(
            f"type {kind} cannot be checked by tollgate: write it as a library metric or a "
            f"type: sql rule (or keep it in the description)"
        )
    if kind not in ("library", "sql"):
        raise QualityError(f"unknown type {kind!r} (library or sql)")
    for name in [p.property for p in rule.customProperties or [] if not p.vendor]:
        raise QualityError(f"unknown customProperty `{name}`: tollgate defines none on rules")
    if rule.metric and rule.rule and rule.metric != rule.rule:
        raise QualityError(
            f"gives both `metric: {rule.metric}` and `rule: {rule.rule}` (ODCS's older name for "
            "metric): keep one"
        )
    metric = rule.metric or rule.rule
    if kind == "sql":
        if not rule.query:
            raise QualityError("type sql needs a `query`")
        metric = "sql"
        check_read_only(rule.query, column is not None)
    elif metric not in METRICS:
        hint = suggest(str(metric), METRICS)
        raise QualityError(
            f"unknown metric `{metric}`" + (f" (did you mean `{hint}`?)" if hint else "")
            if metric
            else f"needs a `metric` ({', '.join(METRICS)})"
        )
    elif column is None and metric not in TABLE_METRICS:
        raise QualityError(
            f"metric {metric} belongs on a column (table level: rowCount, duplicateValues)"
        )
    elif column is not None and metric not in COLUMN_METRICS:
        raise QualityError(f"metric {metric} belongs on the table, not on a column")
    op, threshold = _threshold(rule)
    unit = rule.unit or "rows"
    if unit not in UNITS:
        raise QualityError(f"unit must be rows or percent, got {unit!r}")
    if unit == "percent" and metric in ("rowCount", "sql"):
        raise QualityError(f"unit percent does not apply to {metric}")
    arguments = _arguments(metric, rule.arguments or {}, column, column_names)
    return QualityRule(
        check_name="",  # named by the contract loader, which sees every rule of the table
        metric=metric,
        operator=op,
        threshold=threshold,
        unit=unit,
        column=column,
        arguments=arguments,
        query=rule.query,
        name=rule.name or "",
        description=rule.description or "",
        severity=_severity(rule.severity),
        dimension=rule.dimension,
    )


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QualityError(f"{what} must be a number, got {value!r}")
    return float(value)


def _threshold(rule: DataQuality) -> tuple[str, float | tuple[float, float]]:
    given = [name for name in OPERATORS if getattr(rule, name) is not None]
    if len(given) != 1:
        raise QualityError(
            f"needs exactly one threshold operator ({', '.join(OPERATORS)}), got "
            f"{', '.join(given) or 'none'}"
        )
    op = given[0]
    value = getattr(rule, op)
    if op in ("mustBeBetween", "mustNotBeBetween"):
        low, high = (_number(v, op) for v in value)
        if low > high:
            raise QualityError(f"{op} needs the smaller number first, got {value!r}")
        return op, (low, high)
    return op, _number(value, op)


def _arguments(
    metric: str, arguments: dict[str, Any], column: str | None, column_names: list[str]
) -> dict[str, Any]:
    known = ARGUMENTS.get(metric, ())
    for key in arguments:
        if key not in known:
            hint = suggest(key, known)
            raise QualityError(
                f"unknown argument `{key}` for {metric}"
                + (
                    f" (did you mean `{hint}`?)"
                    if hint
                    else f" (known: {', '.join(known) or 'none'})"
                )
            )
    if metric == "invalidValues":
        if not arguments.keys() & {"validValues", "pattern"}:
            raise QualityError("invalidValues needs arguments.validValues or arguments.pattern")
        if "validValues" in arguments and not isinstance(arguments["validValues"], list):
            raise QualityError("arguments.validValues must be a list")
        if "pattern" in arguments:
            _pattern(arguments["pattern"], "arguments.pattern")
    if metric == "missingValues" and not isinstance(arguments.get("missingValues", []), list):
        raise QualityError("arguments.missingValues must be a list")
    if metric == "duplicateValues":
        names = arguments.get("properties")
        if column is None:
            if not isinstance(names, list) or not names:
                raise QualityError(
                    "table-level duplicateValues needs arguments.properties: [columns]"
                )
            for name in names:
                if name not in column_names:
                    raise QualityError(f"duplicateValues names no column {name!r}")
        elif names is not None:
            raise QualityError("arguments.properties is for table-level duplicateValues")
    return dict(arguments)


def _pattern(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise QualityError(f"{what} must be a string, got {value!r}")
    try:
        re.compile(value)
    except re.error as error:
        raise QualityError(f"{what} is not a regular expression: {error}") from None


def _severity(value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() in BLOCKING_SEVERITIES:
        return "error"
    if value.lower() in WARNING_SEVERITIES:
        return "warn"
    known = BLOCKING_SEVERITIES + WARNING_SEVERITIES
    hint = suggest(value, known)
    raise QualityError(
        f"unknown severity {value!r}"
        + (f" (did you mean `{hint}`?)" if hint else f" (one of {', '.join(known)})")
    )


def substituted(query: str, table_sql: str, column_sql: str | None) -> str:
    """The query with {object} (the table) and {property} (the column) filled in."""

    def fill(match: re.Match[str]) -> str:
        if match[1] == "object":
            return table_sql
        if column_sql is None:
            raise QualityError("{property} is only defined in a column's quality rules")
        return column_sql

    return PLACEHOLDERS.sub(fill, query)


def check_read_only(query: str, on_column: bool, dialect: str | None = None) -> None:
    """Refuse anything but one plain SELECT over tables (no writes, no table functions)."""
    if "{object}" not in query:
        raise QualityError("an sql rule reads its table through the {object} placeholder")
    text = substituted(query, '"s"."t"', '"c"' if on_column else None)
    dialects = [dialect] if dialect else ["duckdb", "snowflake"]
    statements = None
    for name in dialects:
        try:
            statements = sqlglot.parse(text, read=name)
            break
        except sqlglot.errors.SqlglotError as error:
            failure = error
    if statements is None:
        raise QualityError(f"query does not parse: {str(failure).splitlines()[0]}")
    statements = [s for s in statements if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Select):
        raise QualityError("query must be a single SELECT (read only)")
    for node in statements[0].walk():
        if isinstance(node, exp.DML | exp.DDL | exp.Command | exp.Into | exp.Set | exp.Pragma):
            raise QualityError(f"query must only read: {type(node).__name__} is not allowed")
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            raise QualityError("query must read tables, not table functions")


def parse_options(options: dict[str, Any], family: str) -> dict[str, Any]:
    """Validate logicalTypeOptions for a column of this type family (JSON Schema checked the keys)."""
    checked = {}
    for name, value in options.items():
        if name not in CHECKED_OPTIONS:
            raise QualityError(
                f"logicalTypeOptions.{name} is valid ODCS but tollgate cannot check it yet; "
                f"remove it or state it as a quality rule"
            )
        what = f"logicalTypeOptions.{name}"
        if name == "pattern":
            _pattern(value, what)
        elif name == "format":
            if family in ("date", "timestamp", "timestamp_tz"):
                continue  # a typed date column has no text format; column_types_match_contract holds it
            if value not in STRING_FORMATS:
                raise QualityError(f"{what} {value!r} is not one of {', '.join(STRING_FORMATS)}")
        elif name in ("minLength", "maxLength"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise QualityError(f"{what} must be a non-negative integer, got {value!r}")
        elif family in ("date", "timestamp", "timestamp_tz") and name != "multipleOf":
            value = _moment(value, what, date if family == "date" else datetime)
        else:
            _number(value, what)
            if name == "multipleOf" and value <= 0:
                raise QualityError(f"{what} must be positive, got {value!r}")
        checked[name] = value
    low = checked.get("minimum", checked.get("exclusiveMinimum"))
    high = checked.get("maximum", checked.get("exclusiveMaximum"))
    if low is not None and high is not None and low > high:
        raise QualityError(f"logicalTypeOptions minimum {low} is above maximum {high}")
    if checked.get("minLength", 0) > checked.get("maxLength", float("inf")):
        raise QualityError("logicalTypeOptions minLength is above maxLength")
    return checked


def _moment(value: Any, what: str, kind: type) -> date | datetime:
    if isinstance(value, kind):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise QualityError(f"{what} must be an ISO date or timestamp, got {value!r}") from None
    return parsed.date() if kind is date else parsed
