"""Write-audit-publish: audit an immutable snapshot of each landed table, then publish exactly it.

Fivetran writes the landing schema; the checks read a snapshot in `tollgate_audit`; the publish
asset points the published schema (what Looker reads) at a snapshot every blocking check passed
on. Snowflake snapshots and publishes with zero-copy CLONE; DuckDB snapshots with one copy and
publishes by replacing a view, both metadata-only at publish time. A ledger table in the audit
schema records every publish, rollback, hold and release, so the published version is known
without guessing.
"""

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from pipeline.contract import TableContract
from pipeline.warehouse import TableNotFound, Warehouse
from pipeline.warehouse.sql import identifier, table_ref

AUDIT_SCHEMA = "tollgate_audit"
LEDGER = "publications"
KEEP_SNAPSHOTS = 3  # newest snapshots kept besides those a rollback may need
KEEP_PUBLISHED = 3  # published versions a rollback can return to (current included)


class PublishError(RuntimeError):
    """A publish or rollback that cannot happen; the message names the table and version."""


VERSION_PATTERN = r"v\d{8}t\d{12}_[0-9a-z-]*"  # what new_version makes, lower-cased
VERSION_TIME = "v%Y%m%dt%H%M%S%f"


def new_version(run_id: str) -> str:
    """A sortable, unique version id: UTC time of the snapshot and the run that took it."""
    return datetime.now(UTC).strftime(VERSION_TIME) + "_" + run_id[:8].lower()


def taken_at(version: str) -> datetime | None:
    """When the snapshot `version` was taken; None for a name `new_version` did not make."""
    try:
        return datetime.strptime(version.split("_")[0], VERSION_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def snapshot_name(table: TableContract, version: str) -> str:
    return f"{table.connector}__{table.name}__{version}"


def snapshot(warehouse: Warehouse, table: TableContract, version: str) -> TableContract:
    """Freeze the landed table as `version`; the returned contract reads the snapshot."""
    dialect = warehouse.dialect
    target = table_ref(AUDIT_SCHEMA, snapshot_name(table, version), dialect).sql(dialect=dialect)
    landing = table_ref(table.connector, table.name, dialect).sql(dialect=dialect)
    copy = (
        f"CREATE TABLE {target} CLONE {landing}"
        if dialect == "snowflake"
        else f"CREATE TABLE {target} AS SELECT * FROM {landing}"
    )
    warehouse.execute([_create_schema(AUDIT_SCHEMA, dialect), copy])
    return replace(table, audited=(AUDIT_SCHEMA, snapshot_name(table, version)))


@dataclass(frozen=True)
class Ledger:
    """A table's publications as the ledger records them."""

    stack: list[str]  # published versions, oldest first, after rollbacks: the last one is live
    held_since: str | None  # when an operator held it, unless released since

    @property
    def live(self) -> str | None:
        """The version Looker reads (None before the first publish)."""
        return self.stack[-1] if self.stack else None


def ledger(warehouse: Warehouse, table: TableContract) -> Ledger:
    """The table's published versions and whether an operator holds it."""
    return ledgers(warehouse, [table])[(table.connector, table.name)]


def ledgers(warehouse: Warehouse, tables: Sequence[TableContract]) -> dict[tuple[str, str], Ledger]:
    """`ledger` of each (connector, table), read in one query."""
    dialect = warehouse.dialect
    by_place: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for t in tables:
        by_place.setdefault((t.published_schema, t.name), set()).add((t.connector, t.name))
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {
        key: [] for keys in by_place.values() for key in keys
    }
    if not rows:
        return {}
    try:
        warehouse.columns(AUDIT_SCHEMA, LEDGER)
    except TableNotFound:
        return {key: Ledger([], None) for key in rows}
    schema, name = identifier("schema_name", dialect), identifier("table_name", dialect)
    query = (
        exp.select(
            *(
                identifier(n, dialect)
                for n in ("schema_name", "table_name", "version", "action", "at")
            )
        )
        .from_(table_ref(AUDIT_SCHEMA, LEDGER, dialect))
        .where(
            exp.and_(
                exp.column(schema).isin(*sorted({s for s, _ in by_place})),
                exp.column(name.copy()).isin(*sorted({n for _, n in by_place})),
            )
        )
        .order_by(identifier("seq", dialect))
    )
    for row in warehouse.query(query.sql(dialect=dialect)):
        for key in by_place.get((row["schema_name"], row["table_name"]), ()):
            rows[key].append(row)
    return {key: _replayed(found) for key, found in rows.items()}


def _replayed(rows: Sequence[Mapping[str, Any]]) -> Ledger:
    stack: list[str] = []
    held: str | None = None
    for row in rows:
        if row["action"] == "publish":
            stack.append(row["version"])
        elif row["action"] == "rollback" and stack:
            stack.pop()
        elif row["action"] in ("hold", "release"):
            held = row["at"] if row["action"] == "hold" else None
    return Ledger(stack, held)


def history(warehouse: Warehouse, table: TableContract) -> list[str]:
    """Published versions of the table, oldest first, after rollbacks: the last one is live."""
    return ledger(warehouse, table).stack


def held_problem(table: TableContract, since: str) -> str:
    return (
        f"an operator holds {table.published_schema}.{table.name} since {since} "
        f"(`python -m pipeline.publish release {table.connector}.{table.name}` lets it publish)"
    )


def hold(warehouse: Warehouse, table: TableContract, run_id: str = "manual") -> str | None:
    """Keep the table at the version Looker reads now: every publish refuses until `release`."""
    state = ledger(warehouse, table)
    if state.held_since:
        raise PublishError(held_problem(table, state.held_since))
    live = state.live or ""
    warehouse.execute(
        _ledger_setup(warehouse.dialect) + [_record(table, live, "hold", run_id, warehouse.dialect)]
    )
    return state.live


def release(warehouse: Warehouse, table: TableContract, run_id: str = "manual") -> None:
    """Let the table publish again."""
    state = ledger(warehouse, table)
    if not state.held_since:
        raise PublishError(f"{table.published_schema}.{table.name} is not held")
    warehouse.execute([_record(table, state.live or "", "release", run_id, warehouse.dialect)])


def publish(warehouse: Warehouse, table: TableContract, version: str, run_id: str) -> bool:
    """Make the audited snapshot `version` what the published table shows; False if it already was.

    Versions sort by snapshot time, so a slow run never replaces a newer published version
    with its older one.
    """
    state = ledger(warehouse, table)
    if state.held_since:  # the publish step refuses first; this guards every other caller
        raise PublishError(held_problem(table, state.held_since))
    stack = state.stack
    if stack and stack[-1] >= version:
        return False
    snapshots = _snapshots(warehouse, table)
    _point_at(warehouse, table, version, "publish", run_id, snapshots)
    _drop_unneeded(warehouse, table, snapshots, [*stack, version])
    return True


def rollback(warehouse: Warehouse, table: TableContract, run_id: str = "manual") -> tuple[str, str]:
    """Point the published table back at the version published before the live one."""
    was, now = rollback_target(warehouse, table)
    _point_at(warehouse, table, now, "rollback", run_id, _snapshots(warehouse, table))
    return was, now


def rollback_target(warehouse: Warehouse, table: TableContract) -> tuple[str, str]:
    """The live version and the one a rollback returns to; PublishError when there is none."""
    stack = history(warehouse, table)
    if len(stack) < 2:
        raise PublishError(
            f"{table.published_schema}.{table.name} has no earlier published version to roll "
            f"back to ({len(stack)} published so far)"
        )
    return stack[-1], stack[-2]


def _point_at(
    warehouse: Warehouse,
    table: TableContract,
    version: str,
    action: str,
    run_id: str,
    snapshots: set[str],
) -> None:
    dialect = warehouse.dialect
    source = snapshot_name(table, version)
    if source.lower() not in snapshots:
        raise PublishError(
            f"cannot {action} {table.published_schema}.{table.name}: its audit snapshot "
            f"{AUDIT_SCHEMA}.{source} no longer exists"
        )
    target = table_ref(table.published_schema, table.name, dialect).sql(dialect=dialect)
    frozen = table_ref(AUDIT_SCHEMA, source, dialect).sql(dialect=dialect)
    swap = (
        # One statement replaces the table atomically; COPY GRANTS keeps Looker's access.
        f"CREATE OR REPLACE TABLE {target} CLONE {frozen} COPY GRANTS"
        if dialect == "snowflake"
        else f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM {frozen}"
    )
    warehouse.execute(
        [
            *_ledger_setup(dialect),
            _create_schema(table.published_schema, dialect),
            swap,
            _record(table, version, action, run_id, dialect),
        ]
    )


def _ledger_setup(dialect: str) -> list[str]:
    return [_create_schema(AUDIT_SCHEMA, dialect), _create_ledger(dialect)]


def _record(table: TableContract, version: str, action: str, run_id: str, dialect: str) -> str:
    """The ledger row of an action on the table."""
    ledger = table_ref(AUDIT_SCHEMA, LEDGER, dialect).sql(dialect=dialect)
    seq = identifier("seq", dialect).sql(dialect=dialect)
    values = ", ".join(
        exp.Literal.string(value).sql(dialect=dialect)
        for value in (table.published_schema, table.name, version, action, run_id)
    )
    at = exp.Literal.string(datetime.now(UTC).isoformat()).sql(dialect=dialect)
    # The sequence number is taken inside the same transaction as the swap (DuckDB).
    return f"INSERT INTO {ledger} SELECT {values}, {at}, (SELECT COALESCE(MAX({seq}), 0) + 1 FROM {ledger})"


def prune(warehouse: Warehouse, table: TableContract) -> list[str]:
    """Drop the table's snapshots that are neither among the newest nor needed for a rollback."""
    return _drop_unneeded(warehouse, table, _snapshots(warehouse, table), history(warehouse, table))


def _drop_unneeded(
    warehouse: Warehouse, table: TableContract, snapshots: set[str], stack: list[str]
) -> list[str]:
    ordered = sorted(snapshots)
    keep = set(ordered[-KEEP_SNAPSHOTS:]) | {
        snapshot_name(table, v).lower() for v in stack[-KEEP_PUBLISHED:]
    }
    dropped = [name for name in ordered if name not in keep]
    dialect = warehouse.dialect
    if dropped:
        warehouse.execute(
            [
                f"DROP TABLE IF EXISTS {table_ref(AUDIT_SCHEMA, n, dialect).sql(dialect=dialect)}"
                for n in dropped
            ]
        )
    return dropped


def _snapshots(warehouse: Warehouse, table: TableContract) -> set[str]:
    """Lower-case names of the table's snapshots in the audit schema."""
    dialect = warehouse.dialect
    schema = AUDIT_SCHEMA.upper() if dialect == "snowflake" else AUDIT_SCHEMA
    rows = warehouse.query(
        exp.select("table_name")
        .from_("information_schema.tables")
        .where(exp.column("table_schema").eq(exp.Literal.string(schema)))
        .sql(dialect=dialect)
    )
    # Exactly this table's: `charges__vip` snapshots also start with `payments__charges__v`.
    own = re.compile(re.escape(f"{table.connector}__{table.name}__".lower()) + VERSION_PATTERN)
    return {r["table_name"].lower() for r in rows if own.fullmatch(r["table_name"].lower())}


def _create_ledger(dialect: str) -> str:
    columns = ", ".join(
        f"{identifier(name, dialect).sql(dialect=dialect)} {kind}"
        for name, kind in (
            ("schema_name", "VARCHAR"),
            ("table_name", "VARCHAR"),
            ("version", "VARCHAR"),
            ("action", "VARCHAR"),
            ("run_id", "VARCHAR"),
            ("at", "VARCHAR"),
            ("seq", "BIGINT"),
        )
    )
    return f"CREATE TABLE IF NOT EXISTS {table_ref(AUDIT_SCHEMA, LEDGER, dialect).sql(dialect=dialect)} ({columns})"


def _create_schema(schema: str, dialect: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {identifier(schema, dialect).sql(dialect=dialect)}"


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.publish rollback|hold|release|status CONNECTOR[.TABLE]`."""
    from pipeline import environment
    from pipeline.contract import load_contracts

    parser = argparse.ArgumentParser(prog="python -m pipeline.publish")
    sub = parser.add_subparsers(dest="command", required=True)
    back = sub.add_parser("rollback", help="point published tables at their previous version")
    back.add_argument("target", help="CONNECTOR or CONNECTOR.TABLE")
    back.add_argument(
        "--allow-orphans",
        action="store_true",
        help="roll back even if blocking foreign keys would then point nowhere",
    )
    back.add_argument("--hold", action="store_true", help="and hold them there (see hold)")
    for name, text in (
        ("hold", "keep published tables at what Looker reads now: every publish refuses"),
        ("release", "let held tables publish again"),
    ):
        sub.add_parser(name, help=text).add_argument("target", help="CONNECTOR or CONNECTOR.TABLE")
    show = sub.add_parser("status", help="print each table's published versions, newest last")
    show.add_argument("target", nargs="?", default="", help="CONNECTOR or CONNECTOR.TABLE")
    args = parser.parse_args(argv)

    contracts = load_contracts()
    every = [t for c in contracts.values() for t in c.tables.values()]
    connector, _, name = args.target.partition(".")
    tables = [
        t
        for t in every
        if (not connector or t.connector == connector) and (not name or t.name == name)
    ]
    if not tables:
        print(f"no contracted table matches {args.target!r}", file=sys.stderr)
        return 2
    with environment.open_warehouse() as warehouse:
        if args.command == "status":
            for table in tables:
                state = ledger(warehouse, table)
                held = f" (held since {state.held_since})" if state.held_since else ""
                print(
                    f"{table.published_schema}.{table.name}: "
                    f"{', '.join(state.stack) or 'never published'}{held}"
                )
            return 0
        if args.command == "rollback":
            failed = _roll_back(warehouse, tables, every, args.allow_orphans)
            if not failed and not args.hold:
                print(
                    "Not held: the next publish (a run, automation) shows each table's latest "
                    "passing audit again, possibly the version rolled back from; roll back with "
                    "--hold, or hold, to keep it back"
                )
            if failed or not args.hold:
                return failed
        return _hold_or_release(warehouse, tables, args.command != "release")


def _hold_or_release(warehouse: Warehouse, tables: list[TableContract], holding: bool) -> int:
    def act(table: TableContract) -> str:
        if not holding:
            release(warehouse, table)
            return "released"
        at = hold(warehouse, table) or "nothing published yet"
        return f"held at {at}; publishes refuse until it is released"

    return 1 if _each(tables, act) else 0


def _each(tables: Sequence[TableContract], act: Callable[[TableContract], str]) -> int:
    """Print what `act` says of each table, or why it could not; how many it could not."""
    failed = 0
    for table in tables:
        where = f"{table.published_schema}.{table.name}"
        try:
            print(f"{where}: {act(table)}")
        except PublishError as error:
            print(f"{where}: {error}", file=sys.stderr)
            failed += 1
    return failed


def _roll_back(
    warehouse: Warehouse,
    tables: list[TableContract],
    every: list[TableContract],
    allow_orphans: bool,
) -> int:
    """Roll each table back, unless that would leave a blocking foreign key pointing nowhere."""
    from pipeline.publish_foreign_keys import rollback_orphans  # it imports this module

    moved: dict[tuple[str, str], str] = {}
    failed = 0
    for table in tables:
        try:
            moved[(table.connector, table.name)] = rollback_target(warehouse, table)[1]
        except PublishError as error:
            print(f"{table.published_schema}.{table.name}: {error}", file=sys.stderr)
            failed += 1
    try:
        orphans = rollback_orphans(warehouse, every, moved)
    except TableNotFound as error:  # unverified is refused like orphaned
        orphans = [f"the foreign keys cannot be verified: {error}"]
    if orphans and not allow_orphans:
        print(
            "Refusing to roll back: " + "; ".join(orphans) + ". Roll back the tables on both "
            "sides together (e.g. the whole connector), or pass --allow-orphans to accept them.",
            file=sys.stderr,
        )
        return 1
    if orphans:
        print("Rolling back although: " + "; ".join(orphans), file=sys.stderr)

    rolled: list[tuple[TableContract, str]] = []

    def act(table: TableContract) -> str:
        was, now = rollback(warehouse, table)
        rolled.append((table, now))
        return f"rolled back from {was} to {now}"

    failed += _each([t for t in tables if (t.connector, t.name) in moved], act)
    if rolled:
        _tell_dagster(rolled)
    return 1 if failed else 0


def _tell_dagster(rolled: Sequence[tuple[TableContract, str]]) -> None:
    """Record what each rolled-back table shows now as its published asset's materialization:
    Looker's caches and PDTs still hold rows of the version rolled back, and the refreshes
    downstream run again on it (the automation sensor's next tick, or the command printed)."""
    from dagster import AssetMaterialization, DagsterInstance

    from pipeline.published import published_key  # it imports this module

    keys = [published_key(table.connector, table.name) for table, _ in rolled]
    selection = " or ".join(f'key:"{key.to_user_string()}"+' for key in keys)
    refresh = f"dg launch --assets '({selection}) and kind:looker'"
    if not os.environ.get("DAGSTER_HOME"):
        print(
            "DAGSTER_HOME is not set, so Dagster was not told of the rollback: Looker still "
            f"serves what it cached from the version rolled back until you run {refresh} "
            "(with DAGSTER_HOME set to your Dagster instance)",
            file=sys.stderr,
        )
        return
    instance = DagsterInstance.get()
    for (table, version), key in zip(rolled, keys, strict=True):
        instance.report_runless_asset_event(
            AssetMaterialization(
                asset_key=key,
                description=f"rolled back to {version}",
                metadata={
                    "version": version,
                    "published_as": f"{table.published_schema}.{table.name}",
                    "rolled_back": True,
                },
            )
        )
    print(
        "Dagster records the rollback: the Looker refreshes downstream run on the automation "
        f"sensor's next tick, or now with {refresh}"
    )


if __name__ == "__main__":
    sys.exit(main())
