"""Publish assets: one per contracted table, one step per connector, exposing audited snapshots."""

from collections.abc import Mapping, Sequence

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
from pipeline.automation import PUBLISH_CONDITION
from pipeline.checks.factory import fivetran_key, safe_name
from pipeline.checks.redact import scrub_error
from pipeline.contract import TableContract
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import row_count_query


def published_key(connector: str, table: str) -> AssetKey:
    return AssetKey(["published", connector, table])


def build_publish_assets(
    tables: Sequence[TableContract], blocking: Mapping[AssetKey, Sequence[AssetCheckKey]]
) -> AssetsDefinition:
    """Publish each selected table's audited snapshot, refusing any whose blocking checks failed."""
    specs = [
        AssetSpec(
            key=published_key(table.connector, table.name),
            deps=[fivetran_key(table.connector, table.name)],
            group_name=table.connector,
            owners=[table.owner],
            tags={"contract": table.connector},
            description=(
                f"{table.connector}.{table.name} as audited, published to "
                f"{table.published_schema}.{table.name} for Looker."
            ),
            automation_condition=PUBLISH_CONDITION,
            skippable=True,
        )
        for table in tables
    ]
    by_key = {published_key(t.connector, t.name): t for t in tables}

    # One step per connector, as its checks; each table is still verified and published alone.
    @multi_asset(specs=specs, name=f"publish__{safe_name(tables[0].connector)}", can_subset=True)
    def publish_connector(context: AssetExecutionContext, warehouse: Warehouse):
        chosen = [by_key[key] for key in sorted(context.selected_asset_keys, key=lambda k: k.path)]
        refusals: list[Failure] = []
        versions: dict[str, str] = {}
        checks = [c for t in chosen for c in blocking.get(fivetran_key(t.connector, t.name), ())]
        latest = gate.verdicts(context.instance, checks, context.run.run_id)
        for table in chosen:  # from Dagster's records, read before the warehouse is opened
            source = fivetran_key(table.connector, table.name)
            try:
                versions[table.name] = verified_version(latest, table, blocking.get(source, ()))
            except Failure as failure:  # the connector's other tables still publish
                refusals.append(failure)
        published, failures = publish_tables(context, warehouse, chosen, versions)
        yield from published
        refusals += failures
        if refusals:
            raise refusals[0] if len(refusals) == 1 else gate.combined(refusals)

    return publish_connector


def publish_tables(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    chosen: Sequence[TableContract],
    versions: Mapping[str, str],
) -> tuple[list[MaterializeResult], list[Failure]]:
    """Publish each verified table on one connection; a table that fails is a Failure naming it."""
    # Opening a connection reads a DuckDB file's whole catalog under its lock, or logs in to
    # Snowflake, and costs more than a publish.
    ready = [table for table in chosen if table.name in versions]
    published: dict[str, MaterializeResult] = {}
    failed: dict[str, Exception] = {}
    try:
        with warehouse.session():
            for table in ready:
                try:
                    published[table.name] = publish_table(
                        context, warehouse, table, versions[table.name]
                    )
                except Exception as error:
                    failed[table.name] = error
    except Exception as error:  # the connection itself: every table not published on it
        unpublished = [t.name for t in ready if t.name not in published and t.name not in failed]
        failed |= dict.fromkeys(unpublished, error)
        if not unpublished:  # closing it failed after every table was published on it
            context.log.error(f"the warehouse connection failed at its close: {scrub_error(error)}")
    failures = [
        Failure(f"Could not publish {t.published_schema}.{t.name}: {scrub_error(failed[t.name])}")
        for t in ready
        if t.name in failed
    ]
    return list(published.values()), failures


def verified_version(
    latest: Mapping[AssetCheckKey, gate.AssetCheckExecutionRecord | None],
    table: TableContract,
    blocking: Sequence[AssetCheckKey],
) -> str:
    """The audited snapshot every blocking check of the table passed on; Failure if there is none."""
    source = fivetran_key(table.connector, table.name)
    try:
        return gate.audited_version(latest, blocking, source)
    except Failure as failure:
        where = f"{table.published_schema}.{table.name}"
        raise gate.refuse(f"publish {where}", [failure.description or ""]) from None


def publish_table(
    context: AssetExecutionContext, warehouse: Warehouse, table: TableContract, version: str
) -> MaterializeResult:
    """Point the published table at the audited snapshot `version`."""
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
        },
    )
