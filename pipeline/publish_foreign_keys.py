"""Foreign keys resolve in the versions Looker reads together: at publish and at rollback.

The foreign key check compares the child's snapshot with each parent as landed when the check
ran. The parent's audited version is another snapshot, taken when its own check ran: a Fivetran
sync in between (a partial run, a sync mid-run) makes them differ. A publish compares the two
parent states by their live keys (count and sum of hashes, recorded by the check): the same keys
need nothing more; different or unrecorded ones have the child's snapshot joined again with that
version. A parent's new version, and a rollback, are checked against the child versions Looker
keeps.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pipeline import publish
from pipeline.checks.keys import FOREIGN_KEYS_CHECK, RULES, count_orphans, parent_stamp
from pipeline.contract import TableContract, resolve_reference
from pipeline.publish import AUDIT_SCHEMA, snapshot_name
from pipeline.warehouse import Warehouse

# (snapshot schema, snapshot, key) -> the snapshot's columns, its stamp on that key
Stamps = dict[tuple[str, str, str], tuple[dict[str, str], dict[str, Any]]]
SAME_KEYS = ("parent_keys", "parent_key_hash")  # what a foreign key resolves against


def recheck(
    warehouse: Warehouse,
    table: TableContract,
    version: str,
    reads: Sequence[tuple[TableContract, str]],
    checked: Mapping[str, Any],
    stamps: Stamps,
    hints: Mapping[tuple[str, str], str],
) -> tuple[dict[str, str], list[str]]:
    """How each foreign key to a parent in `reads` (parent, version Looker reads) was verified,
    and the ones that do not resolve there; `checked` is the foreign key check's metadata,
    `hints` what would let each parent's keys resolve."""
    verified: dict[str, str] = {}
    problems: list[str] = []
    reading = {(parent.connector, parent.name): (parent, v) for parent, v in reads}
    for column in table.columns:
        for target in column.references:
            connector, name, key = resolve_reference(table.connector, target)
            if (connector, name) not in reading:  # itself, or a parent that does not gate it
                continue
            parent, parent_version = reading[(connector, name)]
            relation = f"{column.name} -> {target}"
            snapshot = (AUDIT_SCHEMA, snapshot_name(parent, parent_version))
            if (*snapshot, key) not in stamps:
                columns = warehouse.columns(*snapshot)
                stamps[(*snapshot, key)] = (
                    columns,
                    parent_stamp(warehouse, snapshot, columns, key),
                )
            columns, stamp = stamps[(*snapshot, key)]
            seen = {fact: (checked.get(relation) or {}).get(fact) for fact in stamp}
            where = f"{connector}.{name} version {parent_version}"
            if all(seen[fact] == stamp[fact] for fact in SAME_KEYS):
                verified[relation] = f"as checked: {where} holds the keys it was checked against"
                continue
            found = _orphans(warehouse, table, version, column.name, target, snapshot, columns)
            if found["orphans"]:
                problems.append(
                    f"{relation}: {found['orphans']} rows point nowhere in {where}, which Looker "
                    f"reads (e.g. {found['example']}); the check found them in {connector}.{name} "
                    f"as landed then ({_described(seen)}), not in the version Looker reads "
                    f"({_described(stamp)}): {hints[(connector, name)]}"
                )
            else:
                verified[relation] = f"checked again against {where}: every key resolves"
    return verified, problems


def _described(stamp: Mapping[str, Any]) -> str:
    if stamp.get("parent_keys") is None:
        return "not recorded"
    synced = stamp.get("parent_synced") or "no _fivetran_synced"
    return f"{stamp['parent_keys']:,} live keys, synced up to {synced}"


def rollback_orphans(
    warehouse: Warehouse, tables: Iterable[TableContract], moved: Mapping[tuple[str, str], str]
) -> list[str]:
    """Blocking foreign keys that would point nowhere once each (connector, table) in `moved`
    shows that version again and every other table what it shows now."""
    if not moved:
        return []
    by_key = {(t.connector, t.name): t for t in tables}
    ledgers = publish.ledgers(warehouse, list(by_key.values()))  # one read for every table

    def showing(key: tuple[str, str]) -> str | None:
        return moved.get(key) or ledgers[key].live

    rule = next(r for r in RULES if r.check_name == FOREIGN_KEYS_CHECK)
    problems = []
    for key, child in by_key.items():
        if rule.severity(child) != "error":  # the owner accepted orphans
            continue
        for parent_key in child.parents:
            if parent_key not in by_key or not {key, parent_key} & set(moved):
                continue
            version, parent_version = showing(key), showing(parent_key)
            if version is None or parent_version is None:
                continue
            parent = by_key[parent_key]
            problems += [
                f"{child.published_schema}.{child.name} (version {version}) {relation}: "
                f"{found['orphans']} rows would point nowhere in {parent.published_schema}."
                f"{parent.name} version {parent_version} (e.g. {found['example']})"
                for relation, found in orphans_between(
                    warehouse, child, version, parent, parent_version
                )
            ]
    return problems


def orphans_between(
    warehouse: Warehouse,
    child: TableContract,
    version: str,
    parent: TableContract,
    parent_version: str,
) -> list[tuple[str, dict[str, Any]]]:
    """Each foreign key of the child's snapshot `version` with rows that point nowhere in the
    parent's snapshot `parent_version`, and what was found."""
    snapshot = (AUDIT_SCHEMA, snapshot_name(parent, parent_version))
    columns = warehouse.columns(*snapshot)
    found = []
    for column in child.columns:
        for target in column.references:
            if resolve_reference(child.connector, target)[:2] != (parent.connector, parent.name):
                continue
            result = _orphans(warehouse, child, version, column.name, target, snapshot, columns)
            if result["orphans"]:
                found.append((f"{column.name} -> {target}", result))
    return found


def _orphans(
    warehouse: Warehouse,
    child: TableContract,
    version: str,
    fk: str,
    target: str,
    parent_snapshot: tuple[str, str],
    parent_columns: Mapping[str, str],
) -> dict[str, Any]:
    """Orphans of the child's snapshot `version` in a parent snapshot."""
    snapshot = (AUDIT_SCHEMA, snapshot_name(child, version))
    return count_orphans(
        replace(child, audited=snapshot),
        warehouse.columns(*snapshot),
        fk,
        target,
        parent_snapshot,
        parent_columns,
        warehouse,
    )
