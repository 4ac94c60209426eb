"""The table's newest sync is within its freshness SLA, and its live row count within bounds."""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import AssetKey, DagsterInstance
from sqlglot import exp

from pipeline.checks.live import DELETED, count_live, deleted_rows
from pipeline.checks.profile import row_count
from pipeline.checks.rule import Rule, TableState, Verdict
from pipeline.contract import TableContract
from pipeline.warehouse.sql import column, count_where, literal
from pipeline.warehouse.types import type_family

SYNCED = "_fivetran_synced"
SYNC_COMPLETED_AT = "dagster-fivetran/sync_completed_at"  # set by dagster-fivetran, as a number
# Fivetran stamps rows with its own clock: a row a little ahead is skew, further ahead is wrong
# (and one such row would make a stale table look fresh).
CLOCK_SKEW = timedelta(minutes=10)


def future_cutoff(state: TableState, dialect: str) -> exp.Expression | None:
    """`now + CLOCK_SKEW` typed like _fivetran_synced; None when that is not a timestamp."""
    try:
        family = type_family(state.columns[SYNCED])
    except ValueError:
        return None
    limit = datetime.now(UTC) + CLOCK_SKEW
    if family == "timestamp_tz":
        return exp.cast(literal(limit.isoformat()), "TIMESTAMPTZ", dialect=dialect)
    if family == "timestamp":
        return exp.cast(literal(limit.replace(tzinfo=None).isoformat()), "TIMESTAMP")
    return None


def freshness_metrics(
    table: TableContract, state: TableState, dialect: str
) -> dict[str, exp.Expression]:
    if SYNCED not in state.columns:
        return {}
    synced = column(SYNCED, dialect)
    found = {"last_synced": exp.Max(this=synced), "rows": row_count()}
    cutoff = future_cutoff(state, dialect)
    if cutoff is not None:
        future = exp.GT(this=synced.copy(), expression=cutoff)
        found["future_rows"] = count_where(future)
        # The newest stamp that is not in the future is the one freshness is judged on.
        found["last_synced"] = exp.Max(
            this=exp.Case(ifs=[exp.If(this=exp.Not(this=future.copy()), true=synced.copy())])
        )
    return found


def freshness_from_facts(facts: Mapping[str, Any], state: TableState) -> dict[str, Any]:
    """freshness_metrics, as the incremental plan's counts over every row answered them."""
    return {"last_synced": facts["newest"], "rows": facts["total"], "future_rows": facts["future"]}


def judge_freshness(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    sla = float(table.freshness_hours or 0)
    last = profile.get("last_synced")
    future = int(profile.get("future_rows") or 0)
    if future:
        return Verdict(
            False,
            f"{future} rows have _fivetran_synced in the future (more than "
            f"{CLOCK_SKEW.total_seconds() / 60:g} min ahead): freshness cannot be trusted",
            {"future_rows": future, "sla_hours": sla},
        )
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
    now = datetime.now(UTC)
    age_hours = (now - last).total_seconds() / 3600
    metadata = {"last_synced": last.isoformat(), "age_hours": round(age_hours, 2), "sla_hours": sla}
    synced = state.last_sync
    if age_hours <= sla or not synced or not last <= synced <= now + CLOCK_SKEW:
        return Verdict(
            age_hours <= sla, f"last synced {age_hours:.1f} h ago, SLA {sla:g} h", metadata
        )
    # Fivetran stamps only the rows that changed: a quiet source keeps old stamps.
    sync_hours = (now - synced).total_seconds() / 3600
    metadata.update(last_successful_sync=synced.isoformat(), sync_age_hours=round(sync_hours, 2))
    if table.freshness_by == "sync" and sync_hours <= sla:
        return Verdict(
            True,
            f"no row changed in {age_hours:.1f} h, but Fivetran's last successful sync of the "
            f"table ended {sync_hours:.1f} h ago, SLA {sla:g} h (freshnessBy: sync)",
            metadata,
        )
    hint = (
        "; if the source is quiet, freshnessBy: sync counts the sync"
        if table.freshness_by == "rows" and sync_hours <= sla
        else ""
    )
    return Verdict(
        False,
        f"last synced {age_hours:.1f} h ago, SLA {sla:g} h (Fivetran's last successful sync "
        f"ended {sync_hours:.1f} h ago, no row changed since{hint})",
        metadata,
    )


def last_successful_sync(instance: DagsterInstance, key: AssetKey) -> datetime | None:
    """When the table's latest Fivetran materialization says its sync ended (only successful
    syncs materialize), or None."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    stamp = (materialization.metadata if materialization else {}).get(SYNC_COMPLETED_AT)
    value = getattr(stamp, "value", stamp)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(float(value), UTC)


def volume_metrics(
    table: TableContract, state: TableState, dialect: str
) -> dict[str, exp.Expression]:
    found = {"rows": count_live(None, state, dialect), "all_rows": row_count()}
    deleted = deleted_rows(state, dialect)
    if deleted is not None:
        found["deleted"] = deleted
    return found


def volume_from_facts(facts: Mapping[str, Any], state: TableState) -> dict[str, Any]:
    """volume_metrics, as the incremental plan's counts over every row answered them."""
    found = {"rows": facts["live"], "all_rows": facts["total"]}
    if DELETED in state.columns:
        found["deleted"] = facts["total"] - facts["live"]
    return found


def _deleted(profile: Mapping[str, Any]) -> tuple[int, float]:
    total, deleted = int(profile["all_rows"]), int(profile.get("deleted") or 0)
    return deleted, (deleted / total if total else 0.0)


def judge_volume(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    rows = int(profile["rows"])
    deleted, fraction = _deleted(profile)
    low, high = table.row_count_min, table.row_count_max
    too_few = low is not None and rows < low
    too_many = high is not None and rows > high
    bounds = f"[{'' if low is None else low}, {'' if high is None else high}]"
    also = f" ({deleted} soft-deleted rows not counted)" if deleted else ""
    return Verdict(
        passed=not (too_few or too_many),
        summary=f"{rows} live rows, expected {bounds}{also}",
        metadata={
            "row_count": rows,
            "deleted_rows": deleted,
            "deleted_fraction": round(fraction, 4),
            "min": low,
            "max": high,
        },
    )


def judge_deleted(table: TableContract, state: TableState, profile: Mapping[str, Any]) -> Verdict:
    bound = float(table.max_deleted_fraction or 0)
    if "deleted" not in profile:
        return Verdict(False, "no _fivetran_deleted column: the deleted share cannot be measured")
    deleted, fraction = _deleted(profile)
    return Verdict(
        passed=fraction <= bound,
        summary=f"{deleted} of {int(profile['all_rows'])} rows soft-deleted ({fraction:.1%}), "
        f"at most {bound:.1%} allowed",
        metadata={"deleted_rows": deleted, "deleted_fraction": round(fraction, 4)},
    )


RULES = (
    Rule(
        check_name="data_is_fresh",
        family="freshness",
        description="The newest _fivetran_synced (with freshnessBy: sync, or Fivetran's last "
        "successful sync) is within the contract's freshness SLA.",
        applies=lambda table: table.freshness_hours is not None,
        metrics=freshness_metrics,
        judge=judge_freshness,
        from_facts=freshness_from_facts,
    ),
    Rule(
        check_name="row_count_in_bounds",
        family="volume",
        description="The table's live row count (soft-deleted rows left out) is within bounds.",
        applies=lambda table: table.row_count_min is not None or table.row_count_max is not None,
        metrics=volume_metrics,
        judge=judge_volume,
        from_facts=volume_from_facts,
    ),
    Rule(
        check_name="deleted_rows_within_bounds",
        family="deleted_rows",
        description="The share of rows Fivetran soft-deleted is within maxDeletedFraction.",
        applies=lambda table: table.max_deleted_fraction is not None,
        metrics=volume_metrics,
        judge=judge_deleted,
        from_facts=volume_from_facts,
    ),
)
