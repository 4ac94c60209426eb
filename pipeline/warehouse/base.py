"""The one small interface every warehouse backend implements."""

import atexit
import os
import threading
import time
import weakref
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
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
        if self._held() is not None:
            yield
            return
        with self._session_block():
            yield

    @contextmanager
    def _session_block(self) -> Iterator[None]:
        """A connection lent to this thread for one session: a new one, unless a backend keeps one."""
        with self._open() as conn, self._lent(conn):
            yield

    @contextmanager
    def _lent(self, conn: Any) -> Iterator[None]:
        """Run this thread's queries inside the block on `conn`, a connection from `_open`."""
        key = (self._session_key(), threading.get_ident())
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


class KeptSession:
    """One connection kept open between blocks that come in a burst, from one thread or several
    (a run's steps, the Looker sandbox's requests, as Looker pools its connections): closed once
    `idle` seconds pass without a block, after the block that finds it open for `hold` seconds,
    or at once when its own process opens the warehouse while it is idle, so that others waiting
    get their turn."""

    def __init__(self, idle: float, hold: float):
        self.idle, self.hold = idle, hold
        self._lock = threading.Lock()  # one block at a time on the connection
        self._kept: tuple[str, ExitStack, Any, float] | None = None  # key, closer, conn, opened
        self._timer: threading.Timer | None = None
        os.register_at_fork(after_in_child=self._forget)
        _KEPT_SESSIONS.add(self)

    @contextmanager
    def use(self, warehouse: Warehouse) -> Iterator[None]:
        """Run this thread's queries inside the block on the kept connection (opened if none)."""
        with self._lock:
            self._stop_timer()
            key = warehouse._session_key()
            if self._kept and self._kept[0] != key:
                self._close()
            if self._kept is None:
                closer = ExitStack()
                conn = closer.enter_context(warehouse._open())
                self._kept = (key, closer, conn, time.monotonic())
            try:
                with warehouse._lent(self._kept[2]):
                    yield
            except BaseException:
                self._close()  # the connection may be what failed: never keep it
                raise
            if self._kept and time.monotonic() - self._kept[3] < self.hold:
                timer = threading.Timer(self.idle, lambda: self._expire(timer))
                timer.daemon = True
                self._timer = timer
                timer.start()
            else:
                self._close()

    def let_go_if_idle(self, key: str) -> None:
        """Close the connection kept for `key` if no block is using it (a new open would wait)."""
        if not self._lock.acquire(blocking=False):
            return  # a block is running on it, and lets it go when done
        try:
            if self._kept and self._kept[0] == key:
                self._stop_timer()
                self._close()
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the kept connection now, if there is one."""
        with self._lock:
            self._stop_timer()
            self._close()

    def _expire(self, timer: threading.Timer) -> None:
        with self._lock:
            if self._timer is timer:  # no block came since it was started
                self._timer = None
                self._close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            kept[1].close()

    def _forget(self) -> None:
        # A forked child must neither use nor close its copy of the parent's connection (closing
        # a DuckDB database writes to its file), so it only keeps a reference and starts afresh.
        # Its copy of the lock file's descriptor holds the file lock until it exits or execs.
        if self._kept is not None:
            _INHERITED.append(self._kept)
        self._lock, self._kept, self._timer = threading.Lock(), None, None


_INHERITED: list[Any] = []
_KEPT_SESSIONS: "weakref.WeakSet[KeptSession]" = weakref.WeakSet()
# This process's one kept connection: DuckDB's queries and the Looker sandbox's requests share it,
# so a run's steps in one process open the file about every `hold` seconds, not once per step.
KEPT = KeptSession(idle=0.2, hold=5.0)
atexit.register(KEPT.close)  # closed, not dropped at exit: DuckDB checkpoints its file on close


def let_go_idle_sessions(key: str) -> None:
    """Close this process's idle kept connections to `key` before a new open would wait on them."""
    for kept in list(_KEPT_SESSIONS):
        kept.let_go_if_idle(key)
