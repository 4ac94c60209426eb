"""Publish assets: one per contracted table, exposing audited snapshots; one step per connector,
or per group of connectors their foreign keys link."""

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    multi_asset,
)

from pipeline import gate, publish
from pipeline.automation import publish_condition
from pipeline.checks.factory import fivetran_key, safe_name
from pipeline.checks.incremental import contract_digest
from pipeline.checks.keys import FOREIGN_KEYS_CHECK
from pipeline.checks.redact import scrub_error
from pipeline.checks.scan_history import record_metadata
from pipeline.contract import TableContract
from pipeline.publish_plan import Id, Parent, Step, plan, refused
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import row_count_query


def published_key(connector: str, table: str) -> AssetKey:
    return AssetKey(["published", connector, table])


def gated_parents(
    table: TableContract, blocking: Mapping[AssetKey, Sequence[AssetCheckKey]]
) -> tuple[AssetKey, ...]:
    """The landed tables this one's blocking foreign keys reference: its keys must resolve in the
    version of each that Looker reads beside it. None when that check does not block."""
    source = fivetran_key(table.connector, table.name)
    if AssetCheckKey(source, FOREIGN_KEYS_CHECK) not in blocking.get(source, ()):
        return ()
    return tuple(fivetran_key(*parent) for parent in table.parents)


def publish_groups(
    published: Mapping[AssetKey, TableContract],
    blocking: Mapping[AssetKey, Sequence[AssetCheckKey]],
) -> list[list[TableContract]]:
    """The published tables by publish step: each connector, joined with the connectors its
    tables' blocking foreign keys link it to, so a parent and its children are decided together."""
    linked = {table.connector: {table.connector} for table in published.values()}
    for table in published.values():
        for parent in gated_parents(table, blocking):
            other = parent.path[1]
            if other in linked and linked[other] is not linked[table.connector]:
                merged = linked[other] | linked[table.connector]
                linked |= dict.fromkeys(merged, merged)
    groups: dict[str, list[TableContract]] = {}
    for table in published.values():
        groups.setdefault(min(linked[table.connector]), []).append(table)
    return list(groups.values())


def build_publish_assets(
    tables: Sequence[TableContract],
    blocking: Mapping[AssetKey, Sequence[AssetCheckKey]],
    published: Mapping[AssetKey, TableContract],
) -> AssetsDefinition:
    """Publish each selected table's audited snapshot, refusing any whose blocking checks failed."""
    parents = {table.id: gated_parents(table, blocking) for table in tables}
    specs = [
        AssetSpec(
            key=published_key(table.connector, table.name),
            # The run decides parents and children together, after both were checked.
            deps=[fivetran_key(table.connector, table.name), *parents[table.id]],
            group_name=table.connector,
            owners=[table.owner],
            tags={"contract": table.connector},
            description=(
                f"{table.connector}.{table.name} as audited, published to "
                f"{table.published_schema}.{table.name} for Looker."
            ),
            automation_condition=publish_condition(parents[table.id]),
            skippable=True,
        )
        for table in tables
    ]
    by_key = {published_key(t.connector, t.name): t for t in tables}
    in_step = {table.id for table in tables}
    children: dict[Id, list[TableContract]] = {}  # in this step, by parent
    for table in tables:
        for parent in parents[table.id]:
            if tuple(parent.path[1:]) in in_step:
                children.setdefault(tuple(parent.path[1:]), []).append(table)
    connectors = sorted({safe_name(table.connector) for table in tables})

    # One step per connector (or connectors linked by foreign keys), as their checks; each table
    # is still verified and published alone.
    @multi_asset(specs=specs, name=f"publish__{'__'.join(connectors)}", can_subset=True)
    def publish_connector(context: AssetExecutionContext, warehouse: Warehouse):
        selected = sorted(context.selected_asset_keys, key=lambda k: k.path)
        chosen = parents_first([by_key[key] for key in selected], parents)
        refusals: list[Failure] = []
        versions: dict[Id, str] = {}
        needs: dict[Id, list[Parent]] = {}
        checked: dict[Id, Mapping[str, Any]] = {}
        sources = [fivetran_key(t.connector, t.name) for t in chosen]
        sources += [p for t in chosen for p in parents[t.id]]
        checks = list(dict.fromkeys(c for s in sources for c in blocking.get(s, ())))
        latest = gate.verdicts(context.instance, checks, context.run.run_id)
        for table in chosen:  # from Dagster's records, read before the warehouse is opened
            source = fivetran_key(table.connector, table.name)
            try:
                versions[table.id] = verified_version(latest, table, blocking.get(source, ()))
                needs[table.id] = gating_parents(
                    latest, table, parents[table.id], blocking, published
                )
                checked[table.id] = foreign_keys_checked(latest, source)
            except Failure as failure:  # the step's other tables still publish
                versions.pop(table.id, None)
                refusals.append(failure)
        step = Step(warehouse, versions, needs, checked, children)
        done, failures = publish_tables(context, step, chosen)
        yield from done
        refusals += failures
        if refusals:
            raise refusals[0] if len(refusals) == 1 else gate.combined(refusals)

    return publish_connector


def parents_first(
    tables: Sequence[TableContract], parents: Mapping[Id, Sequence[AssetKey]]
) -> list[TableContract]:
    """The tables in an order that publishes a parent before its children (cycles kept as met)."""
    by_key = {fivetran_key(t.connector, t.name): t for t in tables}
    order: dict[Id, TableContract] = {}
    visiting: set[Id] = set()

    def visit(table: TableContract) -> None:
        if table.id in order or table.id in visiting:
            return
        visiting.add(table.id)
        for parent in parents.get(table.id, ()):
            if parent in by_key:
                visit(by_key[parent])
        order[table.id] = table

    for table in tables:
        visit(table)
    return list(order.values())


def gating_parents(
    latest: Mapping[AssetCheckKey, gate.AssetCheckExecutionRecord | None],
    table: TableContract,
    parents: Sequence[AssetKey],
    blocking: Mapping[AssetKey, Sequence[AssetCheckKey]],
    published: Mapping[AssetKey, TableContract],
) -> list[Parent]:
    """Each gated parent with its latest audit that passed, or why it is held back; Failure
    if one is not a table tollgate publishes."""
    found, problems = [], []
    for parent in parents:
        name = ".".join(parent.path[1:])
        contract = published.get(published_key(*parent.path[1:]))
        if contract is None:
            problems.append(f"its foreign keys reference {name}, which tollgate does not publish")
            continue
        try:
            found.append(
                Parent(contract, gate.audited_version(latest, blocking.get(parent, ()), parent))
            )
        except Failure as failure:  # the parent's own refusal lists every check
            held = gate.metadata_value(failure.metadata.get("failing_checks"))
            held = held or [failure.description or ""]
            more = f"; and {len(held) - 2} more" if len(held) > 2 else ""
            found.append(Parent(contract, None, f"{'; '.join(held[:2])}{more}"))
    if problems:
        raise refused(table, problems)
    return found


def foreign_keys_checked(
    latest: Mapping[AssetCheckKey, gate.AssetCheckExecutionRecord | None], source: AssetKey
) -> Mapping[str, Any]:
    """The foreign key check's findings per relation, as recorded with its verdict."""
    record = latest.get(AssetCheckKey(source, FOREIGN_KEYS_CHECK))
    found = gate.metadata_value(record_metadata(record).get("foreign_keys")) if record else None
    return found or {}


def publish_tables(
    context: AssetExecutionContext, step: Step, chosen: Sequence[TableContract]
) -> tuple[list[MaterializeResult], list[Failure]]:
    """Publish each verified table on one connection; a table that fails is a Failure naming it."""
    # Opening a connection reads a DuckDB file's whole catalog under its lock, or logs in to
    # Snowflake, and costs more than a publish.
    warehouse = step.warehouse
    ready = [table for table in chosen if table.id in step.versions]
    published: dict[Id, MaterializeResult] = {}
    failed: dict[Id, Exception] = {}
    refusals: dict[Id, Failure] = {}
    try:
        with warehouse.session():
            decided, refusals, failed = plan(step, ready)
            for table in ready:
                if table.id not in decided:
                    continue
                lost = [  # decided beside parents that then did not publish
                    f"{p.table.connector}.{p.table.name}"
                    for p in step.needs[table.id]
                    if p.table.id in decided and (p.table.id in failed or p.table.id in refusals)
                ]
                if lost:
                    refusals[table.id] = refused(
                        table, [f"{', '.join(lost)}, which it references, did not publish"]
                    )
                    continue
                try:
                    published[table.id] = publish_table(
                        context, warehouse, table, step.versions[table.id], decided[table.id]
                    )
                except Exception as error:
                    failed[table.id] = error
    except Exception as error:  # the connection itself: every table not published on it
        done = published.keys() | failed.keys() | refusals.keys()
        unpublished = [t.id for t in ready if t.id not in done]
        failed |= dict.fromkeys(unpublished, error)
        if not unpublished:  # closing it failed after every table was published on it
            context.log.error(f"the warehouse connection failed at its close: {scrub_error(error)}")
    failures = [
        Failure(f"Could not publish {t.published_schema}.{t.name}: {scrub_error(failed[t.id])}")
        for t in ready
        if t.id in failed
    ]
    return list(published.values()), [*refusals.values(), *failures]


def verified_version(
    latest: Mapping[AssetCheckKey, gate.AssetCheckExecutionRecord | None],
    table: TableContract,
    blocking: Sequence[AssetCheckKey],
) -> str:
    """The audited snapshot every blocking check of the table passed on; Failure if there is none."""
    source = fivetran_key(table.connector, table.name)
    try:
        version = gate.audited_version(latest, blocking, source)
    except Failure as failure:
        raise refused(table, [failure.description or ""]) from None
    # A pass by the contract as it was is no pass by the contract as it is.
    if stale := gate.judged_by_another_contract(latest, blocking, contract_digest(table)):
        which = "its checks" if len(stale) == len(blocking) else ", ".join(stale)
        contract = table.file.name if table.file else "contract"
        raise refused(
            table,
            [
                f"its contract ({contract}) changed since {which} passed on version {version}: "
                "run the table's checks again, then publish"
            ],
        )
    return version


def publish_table(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    table: TableContract,
    version: str,
    verified: Mapping[str, str],
) -> MaterializeResult:
    """Point the published table at the audited snapshot `version`; `verified` says how each
    foreign key was found to resolve in the parent versions Looker reads."""
    where = f"{table.published_schema}.{table.name}"
    count = row_count_query(table.published_schema, table.name, warehouse.dialect)
    changed = publish.publish(warehouse, table, version, context.run.run_id)
    rows = int(warehouse.query(count)[0]["row_count"])
    context.log.info(
        f"Published {where} = {publish.AUDIT_SCHEMA}.{publish.snapshot_name(table, version)}"
        if changed
        else f"{where} already shows version {version} or a newer one"
    )
    return MaterializeResult(
        asset_key=published_key(table.connector, table.name),
        metadata={
            "version": version,
            "published_as": where,
            "dagster/row_count": rows,
            **({"foreign_keys_verified": verified} if verified else {}),
        },
    )
