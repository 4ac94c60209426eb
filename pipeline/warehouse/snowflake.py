"""Snowflake warehouse through dagster-snowflake's SnowflakeResource."""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pandas as pd
from dagster_snowflake import SnowflakeResource

from pipeline.warehouse.base import Warehouse
from pipeline.warehouse.snowflake_dialect import check_statement
from pipeline.warehouse.sql import identifier


class SnowflakeWarehouse(Warehouse):
    """Production warehouse: Snowflake, where Fivetran lands upper-case tables."""

    snowflake: SnowflakeResource

    @property
    def dialect(self) -> str:
        return "snowflake"

    def _open(self) -> AbstractContextManager[Any]:
        return self.snowflake.get_connection()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """This thread's session connection, else one opened for the caller alone."""
        held = self._held()
        if held is None:
            with self._open() as conn:
                yield conn
            return
        try:
            yield held
        except BaseException:
            if not self.snowflake.autocommit:
                held.rollback()
            raise
        if not self.snowflake.autocommit:  # as a connection of its own would at its close
            held.commit()

    def query(self, sql: str) -> list[dict[str, Any]]:
        check_statement(sql)  # fakesnow runs on DuckDB: Snowflake's own rules are applied here
        with self._connection() as conn:
            cursor = conn.cursor()
            cursor.execute(sql)
            names = [d[0].lower() for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute(self, statements: list[str]) -> None:
        # Snowflake commits each DDL statement on its own: callers order statements so that
        # any prefix leaves readers on a complete table (publish.py).
        for statement in statements:
            check_statement(statement)  # all of them before the first runs
        with self._connection() as conn:
            cursor = conn.cursor()
            for statement in statements:
                cursor.execute(statement)

    def write_table(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        # Plain DDL + INSERT rather than write_pandas: the sandbox lands small tables, and a stage
        # upload would need more grants than a read-mostly service role usually has.
        quote = lambda name: identifier(name, "snowflake").sql("snowflake")  # noqa: E731
        target = f"{quote(schema)}.{quote(table)}"
        columns = ", ".join(f"{quote(c)} {_snowflake_type(frame[c])}" for c in frame.columns)
        placeholders = ", ".join(["%s"] * len(frame.columns))
        rows = [
            tuple(_bindable(v) for v in row) for row in frame.astype(object).itertuples(index=False)
        ]
        with self._connection() as conn:
            cursor = conn.cursor()
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
            cursor.execute(f"CREATE OR REPLACE TABLE {target} ({columns})")
            if rows:
                cursor.executemany(f"INSERT INTO {target} VALUES ({placeholders})", rows)


def _bindable(value: Any) -> Any:
    """A value the Snowflake connector can bind: None for NaN/NaT, datetime for a Timestamp."""
    if pd.isna(value):
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def _snowflake_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(series):
        return "NUMBER(38,0)"
    if pd.api.types.is_float_dtype(series):
        return "FLOAT"
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return "TIMESTAMP_TZ"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "TIMESTAMP_NTZ"
    return "VARCHAR"
