"""The table's newest sync is within its freshness SLA, and its row count within bounds."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from pipeline.checks.profile import row_count
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.contract import TableContract
from pipeline.warehouse.sql import column

SYNCED = "_fivetran_synced"


def freshness_metrics(
    table: TableContract, state: TableState, dialect: str
) -> dict[str, exp.Expression]:
    if SYNCED not in state.columns:
        return {}
    return {"last_synced": exp.Max(this=column(SYNCED, dialect)), "rows": row_count()}


def judge_freshness(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    sla = float(table.freshness_hours or 0)
    last = profile.get("last_synced")
    if last is None:
        if SYNCED not in state.columns:
            why = "no _fivetran_synced column"
        elif profile.get("rows"):
            why = "_fivetran_synced is null in every row"
        else:
            why = "the table is empty"
        return Verdict(False, f"freshness cannot be measured: {why}", {"sla_hours": sla})
    if not isinstance(last, datetime):
        why = f"_fivetran_synced is {state.columns[SYNCED]}, not a timestamp"
        return Verdict(False, f"freshness cannot be measured: {why}", {"sla_hours": sla})
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)  # Fivetran writes _fivetran_synced in UTC
    age_hours = (datetime.now(UTC) - last).total_seconds() / 3600
    return Verdict(
        passed=age_hours <= sla,
        summary=f"last synced {age_hours:.1f} h ago, SLA {sla:g} h",
        metadata={
            "last_synced": last.isoformat(),
            "age_hours": round(age_hours, 2),
            "sla_hours": sla,
        },
    )


def volume_metrics(
    table: TableContract, state: TableState, dialect: str
) -> dict[str, exp.Expression]:
    return {"rows": row_count()}


def judge_volume(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    rows = int(profile["rows"])
    low, high = table.row_count_min, table.row_count_max
    too_few = low is not None and rows < low
    too_many = high is not None and rows > high
    bounds = f"[{'' if low is None else low}, {'' if high is None else high}]"
    return Verdict(
        passed=not (too_few or too_many),
        summary=f"{rows} rows, expected {bounds}",
        metadata={"row_count": rows, "min": low, "max": high},
    )


RULES = (
    Rule(
        check_name="data_is_fresh",
        family="freshness",
        description="The newest _fivetran_synced is within the contract's freshness SLA.",
        applies=lambda table: table.freshness_hours is not None,
        metrics=freshness_metrics,
        judge=judge_freshness,
    ),
    Rule(
        check_name="row_count_in_bounds",
        family="volume",
        description="The table's row count is within the contract's bounds.",
        applies=lambda table: table.row_count_min is not None or table.row_count_max is not None,
        metrics=volume_metrics,
        judge=judge_volume,
    ),
)
