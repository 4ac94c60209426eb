"""The contract as Dagster shows it: column schema, row counts and freshness policies."""

from datetime import timedelta
from typing import Any

from dagster import (
    FreshnessPolicy,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    get_dagster_logger,
)

from pipeline.contract import ColumnContract, TableContract
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import row_count_query

# Dagster's own keys: the UI shows them as the asset's columns and row count.
COLUMN_SCHEMA, ROW_COUNT = "dagster/column_schema", "dagster/row_count"


def column_schema(table: TableContract) -> TableSchema:
    """Every contract column with its type, description, classification, PII handling and keys."""
    return TableSchema(columns=[_column(column) for column in table.columns])


def _column(column: ColumnContract) -> TableColumn:
    keys = [
        *(["primary key"] if column.primary_key else []),
        *(f"foreign key → {target}" for target in column.references),
    ]
    tags = {"classification": column.classification} if column.classification else {}
    if column.pii_handling:
        tags["pii"] = column.pii_handling
    return TableColumn(
        name=column.name,
        type=column.physical_type,
        description=column.description or None,
        constraints=TableColumnConstraints(
            nullable=not (column.required or column.primary_key),
            unique=column.unique or column.primary_key,
            other=keys,
        ),
        tags=tags,
    )


def freshness_policy(table: TableContract) -> FreshnessPolicy | None:
    """Fail when the table has not materialized within the contract's freshnessHours."""
    if table.freshness_hours is None:
        return None
    return FreshnessPolicy.time_window(fail_window=timedelta(hours=table.freshness_hours))


def row_count_metadata(warehouse: Warehouse, schema: str, table: str) -> dict[str, Any]:
    """`dagster/row_count` of schema.table, for a materialization; empty if it cannot be read."""
    try:
        rows = warehouse.query(row_count_query(schema, table, warehouse.dialect))
    except Exception as error:  # the count is for people; the contract checks judge the table
        get_dagster_logger("tollgate").warning(f"no row count for {schema}.{table}: {error}")
        return {}
    return {ROW_COUNT: int(rows[0]["row_count"])}
