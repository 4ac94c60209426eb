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
        refusals: list[Failure] = []
        for key in sorted(context.selected_asset_keys, key=lambda k: k.path):
            table = by_key[key]
            source = fivetran_key(table.connector, table.name)
            try:
                yield publish_table(context, warehouse, table, blocking.get(source, ()))
            except Failure as failure:  # the connector's other tables still publish
                refusals.append(failure)
        if refusals:
            raise refusals[0] if len(refusals) == 1 else gate.combined(refusals)

    return publish_connector


def publish_table(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    table: TableContract,
    blocking: Sequence[AssetCheckKey],
) -> MaterializeResult:
    """Publish the table's audited snapshot if every blocking check passed on it; Failure if not."""
    source = fivetran_key(table.connector, table.name)
    where = f"{table.published_schema}.{table.name}"
    try:
        version = gate.audited_version(context.instance, blocking, source, context.run.run_id)
    except Failure as failure:
        raise gate.refuse(f"publish {where}", [failure.description or ""]) from None
    count = row_count_query(table.published_schema, table.name, warehouse.dialect)
    with warehouse.session():  # one connection for the table's queries
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
