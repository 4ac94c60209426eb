"""One query per table computing every metric its rules need."""

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from pipeline.contract import TableContract
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import table_ref


def profile_sql(table: TableContract, metrics: Mapping[str, exp.Expression], dialect: str) -> str:
    """SELECT every metric over the table; aliases are positional so any column name is safe."""
    select = exp.select(*(expr.as_(f"m{i}") for i, expr in enumerate(metrics.values())))
    return select.from_(table_ref(*table.relation, dialect)).sql(dialect=dialect)


def run_profile(
    warehouse: Warehouse, table: TableContract, metrics: Mapping[str, exp.Expression]
) -> tuple[dict[str, Any], str]:
    """Run the profile; return metric name -> value and the SQL that produced them."""
    if not metrics:
        return {}, ""
    sql = profile_sql(table, metrics, warehouse.dialect)
    row = warehouse.query(sql)[0]
    return {name: row[f"m{i}"] for i, name in enumerate(metrics)}, sql


def row_count() -> exp.Expression:
    return exp.Count(this=exp.Star())
