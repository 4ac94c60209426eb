"""The one small interface every warehouse backend implements."""

import threading
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource

if TYPE_CHECKING:  # pandas costs 0.6 s to import; only the sandbox's landing uses it
    import pandas as pd


class TableNotFound(LookupError):
    """The table the contract names is not in the warehouse."""


# (warehouse, thread) -> the connection a session holds open
SESSIONS: dict[tuple[str, int], Any] = {}


class Warehouse(ConfigurableResource):
    """Where Fivetran lands tables and where the checks read them."""

    @property
    @abstractmethod
    def dialect(self) -> str:
        """sqlglot dialect name of this backend."""

    @abstractmethod
    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run one statement and return its rows as dicts keyed by lower-case column name."""

    @abstractmethod
    def execute(self, statements: list[str]) -> None:
        """Run statements in order, as one transaction where the backend has transactional DDL."""

    @abstractmethod
    def write_table(self, schema: str, table: str, frame: "pd.DataFrame") -> None:
        """Replace schema.table with the frame's rows (used by the sandbox to land a sync)."""

    @contextmanager
    def session(self) -> Iterator[None]:
        """Run this thread's queries inside the block on one connection (opening one costs more
        than a check's small queries: a DuckDB file's whole catalog, a Snowflake login)."""
        key = (self._session_key(), threading.get_ident())
        if key in SESSIONS:
            yield
            return
        with self._open() as conn:
            SESSIONS[key] = conn
            try:
                yield
            finally:
                del SESSIONS[key]

    def _held(self) -> Any | None:
        """The connection this thread's session holds, if it is in one."""
        return SESSIONS.get((self._session_key(), threading.get_ident()))

    def _session_key(self) -> str:
        """What one held connection serves: this warehouse object unless a backend says more."""
        return str(id(self))

    def _open(self) -> AbstractContextManager[Any]:
        """A new connection for the caller alone; a backend without one has no sessions."""
        return nullcontext()

    def columns(self, schema: str, table: str) -> dict[str, str]:
        """Lower-case column name -> upper-case type name, in table order; TableNotFound when absent."""
        return {name.lower(): kind for name, kind in self.landed_columns(schema, table).items()}

    def landed_columns(self, schema: str, table: str) -> dict[str, str]:
        """Column name exactly as the warehouse spells it -> upper-case type name, in table order."""
        from pipeline.warehouse.sql import columns_query

        rows = self.query(columns_query(schema, table, self.dialect))
        if not rows:
            raise TableNotFound(
                f"table {schema}.{table} does not exist in the {self.dialect} warehouse"
            )
        return {row["column_name"]: row["data_type"].upper() for row in rows}

    def row_estimate(self, schema: str, table: str) -> int | None:
        """The warehouse's own row count estimate, without scanning; None when it has none."""
        from pipeline.warehouse.sql import row_estimate_query

        rows = self.query(row_estimate_query(schema, table, self.dialect))
        value = rows[0]["row_count"] if rows else None
        return int(value) if value is not None else None
