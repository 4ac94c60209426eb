"""Required columns (IDs above all) hold no nulls; optional ones stay under their null share.

Only live rows count (not soft-deleted by Fivetran), and in text columns '' and whitespace-only
values count as missing unless the contract sets blankIsMissing: false. After a sync, the new
rows are counted and the null shares of the rest bounded by the last pass's counts (see
pipeline/checks/incremental.py).
"""

from collections.abc import Mapping
from functools import partial
from typing import Any

from sqlglot import exp

from pipeline.checks import incremental
from pipeline.checks.live import count_live, is_missing, is_text
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.contract import TableContract
from pipeline.warehouse import Warehouse


def _required(table: TableContract) -> list[str]:
    return [c.name for c in table.columns if c.required]


def _bounded(table: TableContract) -> dict[str, float]:
    """Optional columns with a maxNullFraction, and that bound."""
    return {
        c.name: c.max_null_fraction
        for c in table.columns
        if not c.required and c.max_null_fraction is not None
    }


def metrics(table: TableContract, state: TableState, dialect: str) -> dict[str, exp.Expression]:
    found = {"rows": count_live(None, state, dialect)}
    for name in [*_required(table), *_bounded(table)]:
        if name in state.columns:
            missing = is_missing(table.column(name), name, state, dialect)
            found[f"nulls:{name}"] = count_live(missing, state, dialect)
    return found


def followup(
    table: TableContract, state: TableState, warehouse: Warehouse, profile: Mapping[str, Any]
) -> dict[str, Any]:
    """On a delta: the null shares' bounds when they and the new rows settle the rule, else
    every row counted. Required columns had no nulls in the rows the last pass judged."""
    delta = state.delta
    if delta is None or not _bounded(table):
        return {}
    # A required column gone is a failure the bounds cannot speak to: the full judgement says so.
    settled = all(n in state.columns and not profile.get(f"nulls:{n}") for n in _required(table))
    bounds = {}
    for name, bound in _bounded(table).items():
        if f"nulls:{name}" not in profile:  # a missing column: the schema checks report it
            continue
        found = incremental.counted(delta, int(profile[f"nulls:{name}"]), name)
        most = found[1] / delta.live if found and delta.live else 0.0
        settled = settled and found is not None and found[0] <= found[1] and most <= bound
        bounds[name] = list(found or ())
    if settled:
        return {"counted": bounds, "rows": delta.live}
    why = "new nulls, or null shares the count since the last audit left open: every row counted"
    counting = partial(metrics, state=state, dialect=warehouse.dialect)
    return incremental.every_row_counted(warehouse, table, delta, counting, why)


def judge(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    if "counted" in profile:
        return _judge_bounds(table, state, profile)
    rows = int(profile["rows"])
    required = _required(table)
    missing = [name for name in required if name not in state.columns]
    nulls = {name: int(profile[f"nulls:{name}"]) for name in required if name in state.columns}
    failing = {name: count for name, count in nulls.items() if count}
    problems = [f"{name}: {count} of {rows} rows {_missing_word(table, name, state)}"
                for name, count in failing.items()]  # fmt: skip
    problems += [f"{name}: column missing, nullness cannot be verified" for name in missing]
    fractions = {}
    for name, bound in _bounded(table).items():
        if name not in state.columns:
            continue
        fractions[name] = int(profile[f"nulls:{name}"]) / rows if rows else 0.0
        if fractions[name] > bound:
            failing[name] = int(profile[f"nulls:{name}"])
            problems.append(f"{name}: {fractions[name]:.1%} null, at most {bound:.1%} allowed")
    counted = {n: [int(profile[f"nulls:{n}"])] * 2 for n in fractions}
    return Verdict(
        passed=not problems,
        summary="; ".join(problems)
        or f"no nulls in {len(nulls)} required columns, {rows} live rows",
        metadata={
            "row_count": rows,
            "null_counts": nulls,
            "null_fractions": {name: round(f, 4) for name, f in fractions.items()},
            "failing_columns": sorted([*failing, *missing]),
            **({incremental.COUNTED: counted} if counted else {}),
            **_read_every_row(profile),
        },
    )


def _judge_bounds(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    """A pass proven on a delta: no new nulls where required, every share under its bound."""
    rows, counted = int(profile["rows"]), profile["counted"]
    shares = {n: [round(x / rows, 4) if rows else 0.0 for x in b] for n, b in counted.items()}
    shown = ", ".join(f"{n} {a:.1%} to {b:.1%}" for n, (a, b) in shares.items())
    required = [n for n in _required(table) if n in state.columns]
    return Verdict(
        passed=True,
        summary=f"no nulls in {len(required)} required columns, {rows} live rows; null shares "
        f"{shown} (the rows synced since counted, the rest bounded by the last count)",
        metadata={
            "row_count": rows,
            "null_counts": {n: 0 for n in required},
            "null_fractions_between": shares,
            "failing_columns": [],
            incremental.COUNTED: counted,
        },
    )


def _read_every_row(profile: Mapping[str, Any]) -> dict[str, str]:
    """The reason a delta's count read every row, with that query, for the result."""
    reason = profile.get(incremental.READ_EVERY_ROW)
    return {incremental.READ_EVERY_ROW: reason, "sql": profile["sql"]} if reason else {}


def _missing_word(table: TableContract, name: str, state: TableState) -> str:
    contract = table.column(name)
    blanks = contract is not None and contract.blank_is_missing and is_text(state, name)
    return "null or blank" if blanks else "null"


RULE = Rule(
    check_name="required_columns_are_not_null",
    family="not_null",
    description="Required columns (every ID) have no nulls or blanks in live rows; optional ones "
    "stay under maxNullFraction.",
    applies=lambda table: bool(_required(table) or _bounded(table)),
    metrics=metrics,
    followup=followup,
    judge=judge,
    incremental=lambda table: "count" if _bounded(table) else "rows",
)
