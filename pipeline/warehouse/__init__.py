"""Warehouse backends behind one interface: DuckDB (embedded) and Snowflake (production)."""

from pipeline.warehouse.base import TableNotFound, Warehouse
from pipeline.warehouse.duckdb import DuckDBWarehouse
from pipeline.warehouse.snowflake import SnowflakeWarehouse

__all__ = ["DuckDBWarehouse", "SnowflakeWarehouse", "TableNotFound", "Warehouse"]
