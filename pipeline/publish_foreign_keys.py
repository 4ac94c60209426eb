"""At publish, a child's foreign keys resolve in the parent versions Looker will read with it.

The foreign key check compares the child's snapshot with each parent as landed when the check
ran. The parent's audited version is another snapshot, taken when its own check ran: a Fivetran
sync in between (a partial run, a sync mid-run) makes them differ. A publish compares the two
parent states by their stamp (rows, latest `_fivetran_synced`): the same stamp needs nothing
more; a different or missing one has the child's snapshot checked again against that version.
"""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pipeline.checks.keys import count_orphans, parent_stamp
from pipeline.contract import TableContract, resolve_reference
from pipeline.publish import AUDIT_SCHEMA, snapshot_name
from pipeline.warehouse import Warehouse

Stamps = dict[tuple[str, str], tuple[dict[str, str], dict[str, Any]]]  # snapshot -> columns, stamp


def recheck(
    warehouse: Warehouse,
    table: TableContract,
    version: str,
    reads: Sequence[tuple[TableContract, str]],
    checked: Mapping[str, Any],
    stamps: Stamps,
) -> tuple[dict[str, str], list[str]]:
    """How each foreign key to a parent in `reads` (parent, version Looker reads) was verified,
    and the ones that do not resolve there; `checked` is the foreign key check's metadata."""
    verified: dict[str, str] = {}
    problems: list[str] = []
    reading = {(parent.connector, parent.name): (parent, v) for parent, v in reads}
    for column in table.columns:
        for target in column.references:
            connector, name, _ = resolve_reference(table.connector, target)
            if (connector, name) not in reading:  # itself, or a parent that does not gate it
                continue
            parent, parent_version = reading[(connector, name)]
            relation = f"{column.name} -> {target}"
            snapshot = (AUDIT_SCHEMA, snapshot_name(parent, parent_version))
            if snapshot not in stamps:
                columns = warehouse.columns(*snapshot)
                stamps[snapshot] = (columns, parent_stamp(warehouse, snapshot, columns))
            columns, stamp = stamps[snapshot]
            seen = {key: (checked.get(relation) or {}).get(key) for key in stamp}
            where = f"{connector}.{name} version {parent_version}"
            if stamp["parent_synced"] is not None and seen == stamp:
                verified[relation] = f"as checked: {where} holds the rows it was checked against"
                continue
            child = (AUDIT_SCHEMA, snapshot_name(table, version))
            found = count_orphans(
                replace(table, audited=child),
                warehouse.columns(*child),
                column.name,
                target,
                snapshot,
                columns,
                warehouse,
            )
            if found["orphans"]:
                problems.append(
                    f"{relation}: {found['orphans']} rows point nowhere in {where}, which Looker "
                    f"reads (e.g. {found['example']}); the check found them in {connector}.{name} "
                    f"as landed then ({_described(seen)}), not as audited ({_described(stamp)}): "
                    f"audit {connector}.{name} again, then publish both"
                )
            else:
                verified[relation] = f"checked again against {where}: every key resolves"
    return verified, problems


def _described(stamp: Mapping[str, Any]) -> str:
    if stamp.get("parent_rows") is None:
        return "not recorded"
    synced = stamp.get("parent_synced") or "no _fivetran_synced"
    return f"{stamp['parent_rows']:,} rows, synced up to {synced}"
