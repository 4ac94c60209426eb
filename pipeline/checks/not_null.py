"""Required columns (IDs above all) hold no nulls; optional ones stay under their null share.

Only live rows count (not soft-deleted by Fivetran), and in text columns '' and whitespace-only
values count as missing unless the contract sets blankIsMissing: false.
"""

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from pipeline.checks.live import count_live, is_missing, is_text
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.contract import TableContract


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


def judge(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
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
    return Verdict(
        passed=not problems,
        summary="; ".join(problems)
        or f"no nulls in {len(nulls)} required columns, {rows} live rows",
        metadata={
            "row_count": rows,
            "null_counts": nulls,
            "null_fractions": {name: round(f, 4) for name, f in fractions.items()},
            "failing_columns": sorted([*failing, *missing]),
        },
    )


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
    judge=judge,
    incremental=lambda table: None if _bounded(table) else "rows",  # a share needs every row
)
