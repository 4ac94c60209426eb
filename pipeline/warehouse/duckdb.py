"""Embedded DuckDB warehouse: one file, one process at a time."""

import fcntl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipeline.warehouse.base import KEPT, Warehouse, let_go_idle_sessions
from pipeline.warehouse.sql import identifier

if TYPE_CHECKING:  # pandas costs 0.6 s to import; only the sandbox's landing uses it
    import pandas as pd


class DuckDBWarehouse(Warehouse):
    """DuckDB file under the local data folder; the embedded default."""

    path: str
    # DuckDB's default (80% of RAM) keeps every block a check reads; a cap keeps the gate small,
    # and measured faster too (benchmarks/README.md). Larger work spills to disk beside the file.
    memory_limit: str = "192MB"

    @property
    def dialect(self) -> str:
        return "duckdb"

    def _session_key(self) -> str:
        # Two objects for one file share the session: a second open would wait on the file lock
        # the first holds, in the same thread.
        return self.path

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's session connection, else the process's kept one for this block."""
        with self.session():
            yield self._held()

    def _session_block(self) -> AbstractContextManager[None]:
        # Opening the file reads its whole catalog (0.1-0.2 s at 1,000 tables), and closing it
        # checkpoints: with a run's steps in one process that was a fifth of the 1,000-table gate.
        # So every block of this process runs on its one kept connection.
        return KEPT.use(self)

    @contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # DuckDB lets one process open a file at a time, readers included, so every process
        # (multiprocess steps, overlapping runs, the sandbox) takes an exclusive file lock first.
        # A connection this process keeps idle in another KeptSession would hold it: closed first.
        let_go_idle_sessions(self._session_key())
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                conn = duckdb.connect(self.path, config={"memory_limit": self.memory_limit})
                try:
                    yield conn
                finally:
                    conn.close()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self.connect() as conn:
            cursor = conn.execute(sql)
            names = [d[0].lower() for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute(self, statements: list[str]) -> None:
        with self.connect() as conn:
            conn.execute("BEGIN")
            try:
                for statement in statements:
                    conn.execute(statement)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def write_table(self, schema: str, table: str, frame: "pd.DataFrame") -> None:
        schema_sql = identifier(schema, "duckdb").sql("duckdb")
        target = f"{schema_sql}.{identifier(table, 'duckdb').sql('duckdb')}"
        with self.connect() as conn:
            conn.register("landing_frame", frame)
            conn.execute("BEGIN")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_sql}")
            conn.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM landing_frame")
            conn.execute("COMMIT")
            conn.unregister("landing_frame")
