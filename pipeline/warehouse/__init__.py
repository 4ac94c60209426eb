"""Warehouse backends behind one interface: DuckDB (embedded) and Snowflake (production).

The Snowflake backend lives in pipeline.warehouse.snowflake and is imported only when used:
the Snowflake client libraries take seconds to import, in every step process.
"""

from pipeline.warehouse.base import TableNotFound, Warehouse
from pipeline.warehouse.duckdb import DuckDBWarehouse

__all__ = ["DuckDBWarehouse", "TableNotFound", "Warehouse"]
