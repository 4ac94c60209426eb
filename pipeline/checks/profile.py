"""One query per table computing every metric its rules need."""

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from pipeline.contract import TableContract
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import table_ref


def _distinct(metrics: Mapping[str, exp.Expression], dialect: str) -> dict[str, int]:
    """Metric name -> position of its expression; rules asking for the same one share it."""
    positions: dict[str, int] = {}
    return {
        name: positions.setdefault(expr.sql(dialect=dialect), len(positions))
        for name, expr in metrics.items()
    }


def profile_sql(table: TableContract, metrics: Mapping[str, exp.Expression], dialect: str) -> str:
    """SELECT every distinct metric over the table; aliases are positional so any name is safe."""
    unique: dict[str, exp.Expression] = {}
    for expr in metrics.values():
        unique.setdefault(expr.sql(dialect=dialect), expr)
    select = exp.select(*(expr.as_(f"m{i}") for i, expr in enumerate(unique.values())))
    return select.from_(table_ref(*table.relation, dialect)).sql(dialect=dialect)


def run_profile(
    warehouse: Warehouse, table: TableContract, metrics: Mapping[str, exp.Expression]
) -> tuple[dict[str, Any], str]:
    """Run the profile; return metric name -> value and the SQL that produced them."""
    if not metrics:
        return {}, ""
    sql = profile_sql(table, metrics, warehouse.dialect)
    row = warehouse.query(sql)[0]
    positions = _distinct(metrics, warehouse.dialect)
    return {name: row[f"m{i}"] for name, i in positions.items()}, sql


def row_count() -> exp.Expression:
    return exp.Count(this=exp.Star())
