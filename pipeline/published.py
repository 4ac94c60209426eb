"""Publish assets: one per contracted table, exposing its audited snapshot where Looker reads."""

from collections.abc import Sequence

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


def build_publish_asset(
    table: TableContract, blocking: Sequence[AssetCheckKey]
) -> AssetsDefinition:
    """Publish the table's audited snapshot, refusing unless every blocking check passed on it."""
    source = fivetran_key(table.connector, table.name)
    where = f"{table.published_schema}.{table.name}"
    spec = AssetSpec(
        key=published_key(table.connector, table.name),
        deps=[source],
        group_name=table.connector,
        owners=[table.owner],
        tags={"contract": table.connector},
        description=f"{table.connector}.{table.name} as audited, published to {where} for Looker.",
        automation_condition=PUBLISH_CONDITION,
    )

    @multi_asset(
        specs=[spec], name=f"publish__{safe_name(table.connector)}__{safe_name(table.name)}"
    )
    def publish_table(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        try:
            version = gate.audited_version(context.instance, blocking, source, context.run.run_id)
        except Failure as failure:
            raise gate.refuse(f"publish {where}", [failure.description or ""]) from None
        count = row_count_query(table.published_schema, table.name, warehouse.dialect)
        changed = publish.publish(warehouse, table, version, context.run.run_id)
        context.log.info(
            f"Published {where} = {publish.AUDIT_SCHEMA}.{publish.snapshot_name(table, version)}"
            if changed
            else f"{where} already shows version {version} or a newer one"
        )
        return MaterializeResult(
            metadata={
                "version": version,
                "published_as": where,
                "dagster/row_count": int(warehouse.query(count)[0]["row_count"]),
            }
        )

    return publish_table
