"""Audit what a sync changed: rules judge the rows synced since their last passing audit.

A rule whose verdict is "no row fails" reads only the rows whose `_fivetran_synced` is after the
watermark of its last passing audit (kept in that check result's own metadata): every other row
is one that audit passed, untouched since (Fivetran moves `_fivetran_synced` on every row it
writes). Uniqueness and foreign keys compare the new rows with the rest. A rule bounding a count
(a share of nulls, a number of invalid values) counts the new rows and bounds the rest by its
last count: each row replaced since took away at most one. When those bounds do not prove the
rule holds, it counts every row instead, so its verdict is always a full pass's. Every row is
read again after a missing or failed audit, a contract or column change, a Fivetran re-sync, rows
appearing behind the watermark, and every `fullAuditEvery`-th audit.
"""

import hashlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from dagster import AssetCheckKey, AssetCheckResult, AssetKey, DagsterInstance

# dagster 1.13 filters check history by this status but does not export it at the top level.
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from sqlglot import exp

from pipeline.checks import scan_history
from pipeline.checks.freshness import SYNCED, future_cutoff
from pipeline.checks.live import count_live
from pipeline.checks.profile import run_profile
from pipeline.checks.rule import Delta, Rule, TableState
from pipeline.contract import TableContract
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import column, count_where, literal, table_ref
from pipeline.warehouse.types import type_family

AUDIT = "audit"  # metadata key: which rows a result judged, and the watermark for the next one
COUNTED = "counted_rows"  # metadata key: [least, most] rows a count can be (or name -> that)
READ_EVERY_ROW = "read_every_row"  # verdict metadata: why a count planned for a delta read all
MIN_ROWS = 100_000  # below this a table is read whole: a delta would cost more than it saves
VERSION = 1  # raise when a rule's logic changes what an earlier pass proves
EVERY_ROW, SINCE_LAST = "every row", "rows synced since the last passing audit"


@dataclass(frozen=True)
class Previous:
    """A rule's latest completed evaluation: did it pass, and its metadata."""

    passed: bool
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class Plan:
    """Which rules of one audit judge a delta, and why the others read every row."""

    contract: str  # digests the next audit compares with
    schema: str
    rows: int | None = None  # rows in the audited version (soft-deleted ones included)
    watermark: datetime | None = None  # its newest `_fivetran_synced`: the next delta's start
    deltas: dict[str, Delta] = field(default_factory=dict)  # check name -> the rows it judges
    reasons: dict[str, str] = field(default_factory=dict)  # check name -> why every row
    passes: dict[str, int] = field(default_factory=dict)  # check name -> delta passes in a row
    live: int | None = None  # its live (not soft-deleted) rows
    future: int = 0  # its rows stamped ahead of the clock
    counts_sql: str = ""  # the query that counted them

    @property
    def counts(self) -> dict[str, Any]:
        """The counts over every row the plan took (none when it took none), for Rule.from_facts."""
        if self.rows is None:
            return {}
        return {"total": self.rows, "live": self.live, "newest": self.watermark,
                "future": self.future}  # fmt: skip

    def state(self, rule: Rule, table: TableContract, state: TableState) -> TableState:
        delta = self.deltas.get(rule.check_name)
        if delta is None:
            return state
        if rule.incremental(table) in READ_DELTA:
            return replace(state, delta=delta, row_estimate=delta.rows)
        return replace(state, delta=delta)

    def subject(self, rule: Rule, table: TableContract) -> TableContract:
        """The relation the rule reads: the delta's view for rules that read only new rows."""
        delta = self.deltas.get(rule.check_name)
        if delta is None or rule.incremental(table) not in READ_DELTA:
            return table
        return replace(table, audited=delta.view)

    def record(self, rule: Rule, read_every_row: str | None = None) -> dict[str, Any]:
        """What the result says it judged; `read_every_row`: why a rule planned for the delta
        read every row after all (a count its bounds could not settle)."""
        delta = None if read_every_row else self.deltas.get(rule.check_name)
        found: dict[str, Any] = {
            "scope": SINCE_LAST if delta else EVERY_ROW,
            "rows_judged": delta.rows if delta else self.rows,
            "rows": self.rows,
            "watermark": self.watermark.isoformat() if self.watermark else None,
        }
        if delta:
            found["since"] = delta.since.isoformat()
        else:
            found["why_every_row"] = (
                read_every_row
                or self.reasons.get(rule.check_name)
                or self.reasons.get("*")
                or "needs every row"
            )
        passes = 0 if read_every_row else self.passes.get(rule.check_name, 0)
        found |= {"delta_passes": passes, "version": VERSION}
        return found | {"contract": self.contract, "schema": self.schema}


READ_DELTA = ("rows", "count")  # forms whose rule reads the delta's view, not the table


def whole(table: TableContract, state: TableState, reason: str | None = None) -> Plan:
    """Every rule reads every row (for `reason`, when one applies to all of them)."""
    reasons = {} if reason is None else {"*": reason}
    return Plan(contract_digest(table), schema_digest(state), reasons=reasons)


def contract_digest(table: TableContract) -> str:
    """What the table's contract says, as a short digest (where it lives and is read from aside)."""
    text = f"{VERSION}:{replace(table, file=None, audited=None)!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def schema_digest(state: TableState) -> str:
    return hashlib.sha256(repr(sorted(state.columns.items())).encode()).hexdigest()[:16]


def previous_of(results: Mapping[str, AssetCheckResult]) -> dict[str, Previous]:
    """Results as the next audit reads them back, without Dagster's records (tests, benchmarks)."""
    return {
        name: Previous(r.passed, {k: getattr(v, "value", v) for k, v in r.metadata.items()})
        for name, r in results.items()
    }


def previous_results(
    instance: DagsterInstance, key: AssetKey, rules: Sequence[Rule], table: TableContract
) -> dict[str, Previous | None]:
    """The latest completed evaluation of each rule that can judge a delta."""
    found: dict[str, Previous | None] = {}
    for rule in rules:
        if not rule.incremental(table):
            continue
        records = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(key, rule.check_name), limit=1, status=scan_history.COMPLETED
        )
        if not records:
            found[rule.check_name] = None
            continue
        passed = records[0].status == AssetCheckExecutionRecordStatus.SUCCEEDED
        found[rule.check_name] = Previous(passed, scan_history.values(records[0]) or {})
    return found


def plan(
    table: TableContract,
    rules: Sequence[Rule],
    state: TableState,
    warehouse: Warehouse,
    previous: Mapping[str, Previous | None],
) -> Plan:
    """Decide, rule by rule, whether it judges a delta; create the views of the deltas."""
    if why := too_small(state):
        return whole(table, state, why)
    base = whole(table, state)
    sinces = sorted({w for p in previous.values() if (w := _watermark(p)) is not None})
    sql = _facts_sql(table, state, sinces, warehouse.dialect)
    facts = warehouse.query(sql)[0]
    rows, watermark, alive = int(facts["total"]), facts["newest"], int(facts["live"])
    deltas, reasons, passes = {}, {}, {}
    views: dict[datetime, tuple[str, str]] = {}
    try:
        for rule in rules:
            if not rule.incremental(table):
                continue
            last = previous.get(rule.check_name)
            since = _watermark(last)
            i = sinces.index(since) if since in sinces else None
            kept = int(facts[f"kept{i}"]) if i is not None else 0
            why = _why_every_row(last, base, table.full_audit_every, rows, kept)
            if not why and rule.incremental(table) == "count" and not _has_counts(last):
                why = "the last audit recorded no row count to start from"
            if why:
                reasons[rule.check_name] = why
                continue
            audit = last.metadata[AUDIT]
            passes[rule.check_name] = int(audit.get("delta_passes") or 0) + 1
            if since not in views:
                views[since] = _create_view(warehouse, table, state, since, len(views))
            replaced = int(audit.get("rows") or 0) - kept
            deltas[rule.check_name] = Delta(
                since, views[since], rows - kept, last.metadata, table.relation, alive, replaced
            )
    except Exception:  # the caller audits every row instead; leave none of this plan's views
        with suppress(Exception):
            _drop(warehouse, set(views.values()))
        raise
    return replace(
        base, rows=rows, watermark=watermark, live=alive, future=int(facts["future"]),
        counts_sql=sql, deltas=deltas, reasons=reasons, passes=passes,
    )  # fmt: skip


def too_small(state: TableState) -> str | None:
    """Why no rule of the table judges a delta, whatever its history; None when one may."""
    if not _is_timestamp(state):
        return f"no {SYNCED} timestamp column"
    if (state.row_estimate or 0) < MIN_ROWS:
        return f"under {MIN_ROWS:,} rows: every row is read"
    return None


def release(warehouse: Warehouse, plan: Plan | None) -> None:
    """Drop the views of the plan's deltas."""
    _drop(warehouse, {delta.view for delta in (plan.deltas.values() if plan else [])})


def _drop(warehouse: Warehouse, views: set[tuple[str, str]]) -> None:
    statements = [f"DROP VIEW IF EXISTS {_ref(view, warehouse.dialect)}" for view in sorted(views)]
    if statements:
        warehouse.execute(statements)


def _why_every_row(
    last: Previous | None, base: Plan, full_every: int, rows: int, kept: int
) -> str | None:
    """Why the rule must read every row; None when the rows synced since its last pass do.

    `kept`: the rows stamped at or before that pass's watermark, which it judged.
    """
    if last is None:
        return "no earlier audit on record"
    if not last.passed:
        return "the last audit did not pass"
    audit = last.metadata.get(AUDIT)
    if not isinstance(audit, Mapping) or _watermark(last) is None:
        return "the last audit recorded no watermark"
    if audit.get("version") != VERSION or audit.get("contract") != base.contract:
        return "the contract changed since the last audit"
    if audit.get("schema") != base.schema:
        return "the table's columns changed since the last audit"
    if int(audit.get("delta_passes") or 0) + 1 >= full_every:
        return f"every {full_every}th audit reads every row (fullAuditEvery)"
    before = int(audit.get("rows") or 0)
    if before and not kept:
        return "every row was synced again (a Fivetran re-sync)"
    if kept > before:  # every row then was stamped at or before it (or in the future)
        return f"{kept - before:,} rows appeared behind the last audit's watermark"
    if (rows - kept) * 2 > rows:
        return "most rows were synced since the last audit"
    return None


def counted(delta: Delta, new_rows: int, name: str | None = None) -> tuple[int, int] | None:
    """Least and most rows a count (the one called `name`, of several) can be now: the last
    result's bounds, less what the rows replaced since can have taken away, plus `new_rows`
    counted among the delta's rows."""
    recorded = delta.previous.get(COUNTED)
    found = _pair(recorded.get(name) if isinstance(recorded, Mapping) else recorded)
    if found is None:
        return None
    least, most = found
    return max(0, least - delta.replaced) + new_rows, min(most + new_rows, delta.live)


def every_row_counted(
    warehouse: Warehouse,
    table: TableContract,
    delta: Delta,
    metrics: Callable[[TableContract], dict[str, exp.Expression]],
    why: str,
) -> dict[str, Any]:
    """A count rule's metrics over the whole audited version, when its bounds left it open."""
    whole = replace(table, audited=delta.whole)
    values, sql = run_profile(warehouse, whole, metrics(whole))
    return {**values, "sql": sql, READ_EVERY_ROW: why}


def _has_counts(last: Previous | None) -> bool:
    value = last.metadata.get(COUNTED) if last else None
    if isinstance(value, Mapping):
        return all(_pair(v) is not None for v in value.values())
    return _pair(value) is not None


def _pair(value: Any) -> tuple[int, int] | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return None
    return value[0], value[1]


def _watermark(last: Previous | None) -> datetime | None:
    audit = last.metadata.get(AUDIT) if last else None
    stamp = audit.get("watermark") if isinstance(audit, Mapping) else None
    try:
        return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None


def _is_timestamp(state: TableState) -> bool:
    try:
        return type_family(state.columns.get(SYNCED, "")).startswith("timestamp")
    except ValueError:
        return False


def is_new(since: datetime, dialect: str, alias: str | None = None) -> exp.Expression:
    """Rows synced after `since`, and rows without a stamp: the rows not proven audited.

    Strictly after: Fivetran writes a batch in one transaction, so the rows stamped at the
    watermark were all in the audited version (and `>=` would re-read the previous sync's rows,
    scattered over every block of a first load). Written so DuckDB prunes blocks by their zone
    maps (a COALESCE here made it read all of `_fivetran_synced`)."""
    synced = column(SYNCED, dialect)
    if alias:
        synced.set("table", exp.to_identifier(alias))
    kind = "TIMESTAMPTZ" if since.tzinfo else "TIMESTAMP"
    stamp = exp.cast(literal(since.isoformat()), kind, dialect=dialect)
    either = exp.or_(
        exp.GT(this=synced, expression=stamp), exp.Is(this=synced.copy(), expression=exp.Null())
    )
    return exp.Paren(this=either)  # sqlglot writes NOT over an OR without parentheses


def _facts_sql(
    table: TableContract, state: TableState, sinces: list[datetime], dialect: str
) -> str:
    synced = column(SYNCED, dialect)
    newest: exp.Expression = synced
    future: exp.Expression = exp.Literal.number(0)
    if (cutoff := future_cutoff(state, dialect)) is not None:  # a future stamp is no watermark
        newest = exp.Case(ifs=[exp.If(this=exp.LTE(this=synced, expression=cutoff), true=synced)])
        future = count_where(exp.GT(this=synced.copy(), expression=cutoff.copy()))
    select = exp.select(
        exp.Count(this=exp.Star()).as_("total"),  # not "rows": reserved in Snowflake
        count_live(None, state, dialect).as_("live"),
        exp.Max(this=newest.copy()).as_("newest"),
        future.as_("future"),
        *(
            count_where(exp.Not(this=is_new(s, dialect))).as_(f"kept{i}")
            for i, s in enumerate(sinces)
        ),
    )
    return select.from_(table_ref(*table.relation, dialect)).sql(dialect)


def _create_view(
    warehouse: Warehouse, table: TableContract, state: TableState, since: datetime, n: int
) -> tuple[str, str]:
    schema, name = table.relation
    view = (schema, f"{name}__delta{n}")
    dialect = warehouse.dialect
    select = exp.select(exp.Star()).from_(table_ref(*table.relation, dialect))
    select = select.where(is_new(since, dialect))
    warehouse.execute([f"CREATE OR REPLACE VIEW {_ref(view, dialect)} AS {select.sql(dialect)}"])
    return view


def _ref(view: tuple[str, str], dialect: str) -> str:
    return table_ref(*view, dialect).sql(dialect)
