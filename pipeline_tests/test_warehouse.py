"""Scope: the warehouse interface on DuckDB and, through fakesnow, on Snowflake SQL."""

import pandas as pd
import pytest

from pipeline.warehouse import TableNotFound

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
    other threads (and processes) wait for the file until the session ends."""
    import threading

    import duckdb

    duck.write_table("crm", "deals", FRAME)
    opened = []
    real_connect = duckdb.connect
    monkeypatch.setattr(
        duckdb, "connect", lambda *a, **k: opened.append(a) or real_connect(*a, **k)
    )
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
    assert done.is_set() and len(opened) == 2


def test_a_snowflake_session_logs_in_once(snowflake, monkeypatch):
    """Each Snowflake connection logs in again: a table's checks share one, and what they write
    is committed as it would be on a connection of its own."""
    import importlib

    connector = importlib.import_module("snowflake.connector")
    snowflake.write_table("crm", "deals", FRAME)
    opened = []
    real_connect = connector.connect
    monkeypatch.setattr(
        connector, "connect", lambda *a, **k: opened.append(k) or real_connect(*a, **k)
    )
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
