"""Dagster's one-file SQLite event log, with each process's connections kept open between writes."""

import os
import threading
from collections.abc import Sequence
from contextlib import contextmanager

from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import Engine, create_engine
from watchdog.events import FileSystemEvent, PatternMatchingEventHandler
from watchdog.observers import Observer

# Dagster hands the storage batches (a new run's planned events; the materializations of a
# partitioned output) only when DAGSTER_EVENT_BATCH_SIZE is set, and this storage writes a batch
# in one transaction. Every process that opens the instance imports this module first: the CLI,
# the UI, the daemon and each step. 500 events hold SQLite's write lock for well under a second,
# far from the 30 s that other runs' writers wait before they fail. A value set by the user wins.
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "500")


class PooledSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """ConsolidatedSqliteEventLogStorage that reuses its connections instead of one per query."""

    # Dagster's class builds a new engine and opens the file for every query (three per event,
    # and for each look at its schema), and the last one's close checkpoints the WAL into the
    # database: 12-16 ms an event, most of a gate's cost at 1,000 tables. A pool per process
    # keeps the connections open (about 4 ms an event, benchmarks/README.md); SQLite's own WAL
    # locking still orders the writes of every process, as it did.
    _engine: tuple[int, Engine] | None = None
    _batch = threading.local()  # the connection of the batch this thread is storing, if any

    @contextmanager
    def _connect(self):
        held = getattr(self._batch, "held", None)
        if held is not None and held[0] is self:
            yield held[1]
            return
        if self._engine is None or self._engine[0] != os.getpid():  # a forked step opens its own
            engine = create_engine(
                self._conn_string,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                max_overflow=-1,  # the webserver's threads never wait for a connection, as before
            )
            self._engine = (os.getpid(), engine)
        with self._engine[1].connect() as conn, conn.begin():
            yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # One transaction for the batch: a new run stores a planned event for each of its assets
        # and checks (14,900 at 1,000 tables), and a commit each took half of the 50 s before its
        # first step could start (benchmarks/README.md). A batch that fails is rolled back whole,
        # and Dagster then stores its events one at a time.
        with self._connect() as conn:
            self._batch.held = (self, conn)
            try:
                for event in events:
                    self.store_event(event)
            finally:
                self._batch.held = None

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
