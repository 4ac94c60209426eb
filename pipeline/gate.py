"""The gate verifies itself: publish and refresh refuse unless the blocking checks they rest on passed.

Dagster's in-run blocking and the automation conditions are the fast path. This is the guarantee:
whatever started a publish or a refresh (full run, partial selection, UI button, schedule,
sensor), it reads the checks' latest results from the instance and refuses on anything but a pass.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetChecksDefinition,
    AssetKey,
    AssetsDefinition,
    DagsterInstance,
    Failure,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from pipeline import publish
from pipeline.checks.factory import AUDITED_VERSION, CONTRACT_DIGEST
from pipeline.checks.scan_history import COMPLETED, record_metadata

HISTORY_SEARCHED = 100  # check results read at once, for this run's own or a published version's
CLOCK_SLACK_SECONDS = 86_400
# Not exported at dagster's top level, but the status filter of the public
# event_log_storage.get_asset_check_execution_history takes it (dagster 1.13, pinned).
PASSED = AssetCheckExecutionRecordStatus.SUCCEEDED
AssetCheckExecutionRecord = Any  # the records that history returns


@dataclass(frozen=True)
class GateIndex:
    """Which blocking checks sit on which assets, and what each asset depends on.

    Built from the definitions when the code location loads, because a run that selected only
    part of the graph (say `key:looker/*`) does not see the checks of the assets it skipped.
    """

    parents: Mapping[AssetKey, frozenset[AssetKey]]
    blocking: Mapping[AssetKey, tuple[AssetCheckKey, ...]]

    @classmethod
    def build(
        cls, assets: Iterable[AssetsDefinition], checks: Iterable[AssetChecksDefinition]
    ) -> "GateIndex":
        assets = list(assets)
        parents: dict[AssetKey, frozenset[AssetKey]] = {}
        for assets_def in assets:
            for key, deps in assets_def.asset_deps.items():
                parents[key] = frozenset(deps)
        blocking: dict[AssetKey, list[AssetCheckKey]] = {}
        # Checks defined with their assets (lookml/<model>) count as much as standalone ones.
        for definition in [*assets, *checks]:
            for spec in definition.check_specs:
                if spec.blocking:
                    blocking.setdefault(spec.asset_key, []).append(spec.key)
        return cls(
            parents, {k: tuple(sorted(v, key=lambda c: c.name)) for k, v in blocking.items()}
        )

    def upstream(self, keys: Iterable[AssetKey]) -> list[AssetKey]:
        """The given assets and everything upstream of them."""
        seen: dict[AssetKey, None] = {}
        todo = list(keys)
        while todo:
            key = todo.pop(0)
            if key not in seen:
                seen[key] = None
                todo.extend(sorted(self.parents.get(key, ()), key=lambda k: k.path))
        return list(seen)

    def blocking_upstream(self, keys: Iterable[AssetKey]) -> list[AssetCheckKey]:
        return [c for key in self.upstream(keys) for c in self.blocking.get(key, ())]


def audited_version(
    latest: Mapping[AssetCheckKey, AssetCheckExecutionRecord | None],
    checks: Sequence[AssetCheckKey],
    table: AssetKey,
) -> str:
    """The snapshot version every blocking check of the table passed on; Failure otherwise.

    `latest` holds the verdicts (see `verdicts`) of at least these checks."""
    if not checks:
        raise Failure(f"{table.to_user_string()} has no blocking contract checks: nothing gates it")
    mine = {check: latest[check] for check in checks}
    problems = not_passed(mine)
    if problems:
        raise Failure("; ".join(problems), metadata={"failing_checks": problems})
    versions = {_version(record) for record in mine.values()}
    if len(versions) != 1 or None in versions:
        raise Failure(
            f"the blocking checks of {table.to_user_string()} last passed on different "
            f"snapshots ({', '.join(sorted(str(v) for v in versions))}): run the table's "
            "contract check whole, then publish"
        )
    return versions.pop()


def judged_by_another_contract(
    latest: Mapping[AssetCheckKey, AssetCheckExecutionRecord | None],
    checks: Sequence[AssetCheckKey],
    digest: str,
) -> list[str]:
    """The checks whose verdict was reached by another version of the table's contract (results
    written before the digest was recorded count as such)."""
    return [
        check.name
        for check in checks
        if metadata_value(record_metadata(latest[check]).get(CONTRACT_DIGEST)) != digest
    ]


def judged(
    instance: DagsterInstance, check: AssetCheckKey, run_id: str
) -> AssetCheckExecutionRecord | None:
    """The check's verdict that counts for this run: its own if it judged, else the latest one.

    Results still being computed by another run are not verdicts yet, so overlapping runs do
    not refuse each other; a run that audited a table is held to its own results.
    """
    records = instance.event_log_storage.get_asset_check_execution_history(
        check, limit=HISTORY_SEARCHED, status=COMPLETED
    )
    own = next((r for r in records if r.run_id == run_id), None)
    return own or (records[0] if records else None)


def passed_on(
    instance: DagsterInstance, checks: Sequence[AssetCheckKey], version: str
) -> list[str]:
    """Blocking checks with no passing result on `version` (searched back to when it was taken)."""
    return [
        f"{check_name(check)} has no passing result on version {version}"
        for check in checks
        if not _passed(instance, check, version)
    ]


def _passed(instance: DagsterInstance, check: AssetCheckKey, version: str) -> bool:
    # A version published long ago (held, or rolled back to) has its passing result behind any
    # number of newer ones: page back until the results predate the version's snapshot.
    taken = publish.taken_at(version)
    # Dagster's storage and the step that named the version may not share a clock.
    since = taken.timestamp() - CLOCK_SLACK_SECONDS if taken else 0.0
    cursor = None
    while True:
        records = instance.event_log_storage.get_asset_check_execution_history(
            check, limit=HISTORY_SEARCHED, cursor=cursor, status={PASSED}
        )
        if any(_version(r) == version for r in records):
            return True
        if len(records) < HISTORY_SEARCHED or records[-1].create_timestamp < since:
            return False
        cursor = records[-1].id


def verdicts(
    instance: DagsterInstance, checks: Sequence[AssetCheckKey], run_id: str
) -> dict[AssetCheckKey, AssetCheckExecutionRecord | None]:
    """Each check's verdict that counts for this run (see `judged`).

    One query for them all; only a check whose latest record is not this run's completed
    evaluation has its history searched."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(checks))
    found: dict[AssetCheckKey, AssetCheckExecutionRecord | None] = {}
    for check in checks:
        record = latest.get(check)
        own = record is not None and record.run_id == run_id and record.status in COMPLETED
        found[check] = record if own else judged(instance, check, run_id)
    return found


def not_passed(latest: Mapping[AssetCheckKey, AssetCheckExecutionRecord | None]) -> list[str]:
    """One line per blocking check whose verdict is not a pass."""
    problems = []
    for check, record in latest.items():
        if record is None:
            problems.append(f"{check_name(check)} has never run to a result")
        elif record.status != AssetCheckExecutionRecordStatus.SUCCEEDED:
            problems.append(f"{check_name(check)} failed: {_description(record)}")
    return problems


def refuse(what: str, problems: list[str]) -> Failure:
    """The Failure a publish or refresh raises, naming every check, table and owner in its way."""
    return Failure(
        f"Refusing to {what}: " + "; ".join(problems),
        metadata={"held_back_by": problems},
    )


def combined(refusals: Sequence[Failure]) -> Failure:
    """One Failure for several refusals of one step, each on its own line."""
    return Failure(
        "\n".join(f.description or "" for f in refusals),
        metadata={"held_back_by": [f.description or "" for f in refusals]},
    )


def _version(record: AssetCheckExecutionRecord) -> str | None:
    return metadata_value(record_metadata(record).get(AUDITED_VERSION))


def metadata_value(entry: Any) -> Any:
    """The plain value of a metadata entry as stored (a MetadataValue or a raw value)."""
    return getattr(entry, "value", entry)


def _description(record: AssetCheckExecutionRecord) -> str:
    evaluation = record.event.dagster_event.event_specific_data if record.event else None
    description = getattr(evaluation, "description", None) or "no reason given"
    owner = metadata_value(record_metadata(record).get("owner"))
    if owner and "owner" not in description:
        description += f" (owner: {owner})"
    return description


def check_name(check: AssetCheckKey) -> str:
    return f"{check.asset_key.to_user_string()} {check.name}"
