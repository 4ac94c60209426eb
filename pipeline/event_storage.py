"""Dagster's one-file SQLite event log, with each process's connections kept open between writes."""

import os
from contextlib import contextmanager

from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import Engine, create_engine
from watchdog.events import FileSystemEvent, PatternMatchingEventHandler
from watchdog.observers import Observer


class PooledSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """ConsolidatedSqliteEventLogStorage that reuses its connections instead of one per query."""

    # Dagster's class builds a new engine and opens the file for every query (three per event,
    # and for each look at its schema), and the last one's close checkpoints the WAL into the
    # database: 12-16 ms an event, most of a gate's cost at 1,000 tables. A pool per process
    # keeps the connections open (about 4 ms an event, benchmarks/README.md); SQLite's own WAL
    # locking still orders the writes of every process, as it did.
    _engine: tuple[int, Engine] | None = None

    @contextmanager
    def _connect(self):
        if self._engine is None or self._engine[0] != os.getpid():  # a forked step opens its own
            engine = create_engine(
                self._conn_string,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                max_overflow=-1,  # the webserver's threads never wait for a connection, as before
            )
            self._engine = (os.getpid(), engine)
        with self._engine[1].connect() as conn, conn.begin():
            yield conn

    def has_table(self, table_name: str) -> bool:
        with self._connect() as conn:
            return conn.dialect.has_table(conn, table_name)

    def watch(self, run_id, cursor, callback):
        # Dagster's watcher waits for the database file to change, which now happens only at a
        # checkpoint; new events land in the WAL first, so the UI's live run view watches both.
        if not self._obs:
            self._obs = Observer()
            self._obs.start()
            self._obs.schedule(_FileChanges(self), self._base_dir)
        self._watchers[run_id][callback] = cursor

    def dispose(self):
        super().dispose()
        if self._engine and self._engine[0] == os.getpid():
            self._engine[1].dispose()
        self._engine = None


class _FileChanges(PatternMatchingEventHandler):
    def __init__(self, storage: PooledSqliteEventLogStorage):
        path = storage.get_db_path()
        super().__init__(patterns=[path, f"{path}-wal"])
        self._storage = storage

    def on_modified(self, event: FileSystemEvent) -> None:
        self._storage.on_modified()
