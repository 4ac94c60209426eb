"""Snowflake warehouse through dagster-snowflake's SnowflakeResource."""

from typing import Any

import pandas as pd
from dagster_snowflake import SnowflakeResource

from pipeline.warehouse.base import Warehouse


class SnowflakeWarehouse(Warehouse):
    """Production warehouse: Snowflake, where Fivetran lands upper-case tables."""

    snowflake: SnowflakeResource

    @property
    def dialect(self) -> str:
        return "snowflake"

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self.snowflake.get_connection() as conn:
            cursor = conn.cursor()
            cursor.execute(sql)
            names = [d[0].lower() for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def write_table(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        from snowflake.connector.pandas_tools import write_pandas

        upper = frame.rename(columns=str.upper)
        with self.snowflake.get_connection() as conn:
            conn.cursor().execute(f'CREATE SCHEMA IF NOT EXISTS "{schema.upper()}"')
            write_pandas(
                conn, upper, table.upper(), schema=schema.upper(),
                auto_create_table=True, overwrite=True, quote_identifiers=True,
            )
