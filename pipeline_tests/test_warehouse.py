"""Scope: the warehouse interface on DuckDB and, through fakesnow, on Snowflake SQL."""

import pandas as pd
import pytest

from pipeline.warehouse import TableNotFound
from pipeline.warehouse.base import KEPT

FRAME = pd.DataFrame({"id": ["a", None, "c"], "amount": [1.5, 2.0, None]})


@pytest.mark.parametrize("backend", ["duck", "snowflake"])
def test_write_then_read_back(backend, request):
    warehouse = request.getfixturevalue(backend)
    warehouse.write_table("payments", "charges", FRAME)
    assert list(warehouse.columns("payments", "charges")) == ["id", "amount"]
    rows = warehouse.query(
        'SELECT COUNT(*) AS n FROM "{}"."{}"'.format(
            *(("PAYMENTS", "CHARGES") if backend == "snowflake" else ("payments", "charges"))
        )
    )
    assert rows == [{"n": 3}]


@pytest.mark.parametrize("backend", ["duck", "snowflake"])
def test_missing_table_is_named(backend, request):
    warehouse = request.getfixturevalue(backend)
    with pytest.raises(TableNotFound, match="payments.nowhere"):
        warehouse.columns("payments", "nowhere")


def test_rewrite_replaces_the_table(duck):
    duck.write_table("crm", "deals", FRAME)
    duck.write_table("crm", "deals", FRAME.head(1))
    assert duck.query('SELECT COUNT(*) AS n FROM "crm"."deals"') == [{"n": 1}]


def test_a_session_opens_the_file_once_and_holds_it(duck, monkeypatch):
    """Opening a DuckDB file reads its whole catalog, so a table's checks share one connection;
    other threads (and processes) wait for the file until the session ends, and the process's
    next query, from any thread, finds the connection still open."""
    import threading

    import duckdb

    duck.write_table("crm", "deals", FRAME)
    KEPT.close()
    opened = counted_connects(monkeypatch, duckdb)
    done = threading.Event()
    with duck.session():
        for _ in range(5):
            assert duck.query('SELECT COUNT(*) AS n FROM "crm"."deals"') == [{"n": 3}]
        duck.execute(['CREATE VIEW "crm"."v" AS SELECT 1 AS x'])
        other = threading.Thread(target=lambda: (duck.query("SELECT 1 AS x"), done.set()))
        other.start()
        assert not done.wait(timeout=1)  # the other thread waits for the file
        assert len(opened) == 1
    other.join(timeout=120)
    assert done.is_set() and len(opened) == 1


def test_a_kept_session_serves_a_burst_from_other_threads_then_lets_go(duck, monkeypatch):
    """The Looker sandbox answers each request on a new thread: a kept session serves a burst of
    them on one connection, and closes it when idle or when it has been held long enough, so
    that the step's own queries and other processes get the file."""
    import threading

    import duckdb

    from pipeline.warehouse.base import KeptSession

    duck.write_table("crm", "deals", FRAME)
    opened = counted_connects(monkeypatch, duckdb)
    count = 'SELECT COUNT(*) AS n FROM "crm"."deals"'

    def burst(kept: KeptSession, requests: int) -> None:
        answers = []
        for _ in range(requests):

            def request():
                with kept.use(duck):
                    answers.append(duck.query(count))

            thread = threading.Thread(target=request)
            thread.start()
            thread.join(timeout=120)
        assert answers == [[{"n": 3}]] * requests

    kept = KeptSession(idle=3600, hold=3600)
    burst(kept, 4)
    assert len(opened) == 1
    kept.close()
    burst(KeptSession(idle=3600, hold=0), 3)  # held long enough after every block: closed
    assert len(opened) == 4
    idle = KeptSession(idle=0.01, hold=3600)
    burst(idle, 2)
    assert len(opened) == 5
    assert query_within(duck, count) == [{"n": 3}]  # once the idle connection is closed
    assert len(opened) == 6


def test_a_kept_session_does_not_keep_a_connection_that_failed(duck, monkeypatch):
    import duckdb

    from pipeline.warehouse.base import KeptSession

    opened = counted_connects(monkeypatch, duckdb)
    kept = KeptSession(idle=3600, hold=3600)
    with pytest.raises(Exception, match="nowhere"), kept.use(duck):
        duck.query("SELECT * FROM nowhere")
    with kept.use(duck):
        assert duck.query("SELECT 1 AS x") == [{"x": 1}]
    assert len(opened) == 2  # the failed connection was closed, not served again
    kept.close()


def test_an_open_in_the_kept_sessions_process_closes_it_when_idle(duck, monkeypatch):
    """A step's own query after the Looker sandbox's requests (same process) does not wait out
    the idle time of the sandbox's kept connection: it closes it and opens the file at once."""
    import threading

    import duckdb

    from pipeline.warehouse.base import KeptSession

    duck.write_table("crm", "deals", FRAME)
    opened = counted_connects(monkeypatch, duckdb)
    kept = KeptSession(idle=3600, hold=3600)  # would hold the file for an hour

    def answer():
        with kept.use(duck):
            duck.query("SELECT 1")

    request = threading.Thread(target=answer)
    request.start()
    request.join(timeout=120)
    assert len(opened) == 1
    count = 'SELECT COUNT(*) AS n FROM "crm"."deals"'
    assert query_within(duck, count) == [{"n": 3}]
    assert len(opened) == 2
    answer()  # the sandbox's next request opens the file again
    assert len(opened) == 3
    kept.close()


def counted_connects(monkeypatch, module) -> list:
    """The arguments of every `module.connect` call from here on, each still connecting."""
    opened: list = []
    real_connect = module.connect
    monkeypatch.setattr(
        module, "connect", lambda *a, **k: opened.append((a, k)) or real_connect(*a, **k)
    )
    return opened


def query_within(warehouse, sql: str, seconds: float = 120) -> list:
    """The query's rows, run on another thread that may wait for the file at most `seconds`."""
    import threading

    rows: list = []
    thread = threading.Thread(target=lambda: rows.extend(warehouse.query(sql)), daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert not thread.is_alive(), "the warehouse file was never let go"
    return rows


def test_a_snowflake_session_logs_in_once(snowflake, monkeypatch):
    """Each Snowflake connection logs in again: a table's checks share one, and what they write
    is committed as it would be on a connection of its own."""
    import importlib

    connector = importlib.import_module("snowflake.connector")
    snowflake.write_table("crm", "deals", FRAME)
    opened = counted_connects(monkeypatch, connector)
    count = 'SELECT COUNT(*) AS n FROM "CRM"."DEALS"'
    with snowflake.session():
        for _ in range(3):
            assert snowflake.query(count) == [{"n": 3}]
        snowflake.execute(['CREATE OR REPLACE TABLE "CRM"."KEPT" AS SELECT 1 AS X'])
        with pytest.raises(Exception, match="NOWHERE"):
            snowflake.query('SELECT * FROM "CRM"."NOWHERE"')
        assert snowflake.query(count) == [{"n": 3}]  # an error leaves the session usable
        assert len(opened) == 1
    assert snowflake.query('SELECT X FROM "CRM"."KEPT"') == [{"x": 1}]
    assert len(opened) == 2
