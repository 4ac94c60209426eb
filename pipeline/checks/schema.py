"""The landed table has the contract's columns, with compatible types, and nothing unexpected."""

from collections.abc import Mapping
from typing import Any

from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.contract import TableContract
from pipeline.warehouse.types import accepts

SYSTEM_COLUMNS = ("_fivetran_synced", "_fivetran_deleted", "_fivetran_id", "_fivetran_active",
                  "_fivetran_start", "_fivetran_end")  # fmt: skip


def _expected(table: TableContract) -> list[str]:
    # A column Fivetran must block may be absent; the PII rule judges it.
    return [c.name for c in table.columns if c.pii_handling != "blocked"]


def judge_present(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    missing = [name for name in _expected(table) if name not in state.columns]
    problems = [f"missing columns: {', '.join(missing)}"] if missing else []
    problems += [
        f"{name}: landed as {landed!r} (renamed by case only)"
        for name, landed in state.renamed.items()
    ]
    return Verdict(
        passed=not problems,
        summary="; ".join(problems) or f"all {len(_expected(table))} contract columns present",
        metadata={
            "missing_columns": missing,
            "renamed_by_case": dict(state.renamed),
            "warehouse_columns": list(state.columns),
        },
    )


def judge_types(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    changed = {
        c.name: f"{c.physical_type} expected, {state.columns[c.name]} landed"
        for c in table.columns
        if c.name in state.columns and not accepts(c.family, state.columns[c.name])
    }
    return Verdict(
        passed=not changed,
        summary="; ".join(f"{name}: {why}" for name, why in changed.items())
        or "every column type matches the contract",
        metadata={"type_changes": changed},
    )


def judge_unexpected(
    table: TableContract, state: TableState, profile: Mapping[str, Any]
) -> Verdict:
    known = {c.name for c in table.columns} | set(SYSTEM_COLUMNS)
    new = [name for name in state.columns if name not in known]
    return Verdict(
        passed=not new,
        summary=f"columns not in the contract: {', '.join(new)}"
        if new
        else "no unexpected columns",
        metadata={"unexpected_columns": new},
    )


RULES = (
    Rule(
        check_name="contract_columns_are_present",
        family="schema",
        description="Every column of the contract exists in the landed table.",
        applies=lambda table: bool(table.columns),
        judge=judge_present,
    ),
    Rule(
        check_name="column_types_match_contract",
        family="schema",
        description="Each column's warehouse type belongs to the contract type's family.",
        applies=lambda table: bool(table.columns),
        judge=judge_types,
    ),
    Rule(
        check_name="no_unexpected_columns",
        family="new_columns",
        description="The landed table has no columns the contract does not know (schema drift).",
        applies=lambda table: True,
        judge=judge_unexpected,
        default_severity="warn",
    ),
)
