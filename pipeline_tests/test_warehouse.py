"""Scope: the warehouse interface on DuckDB and, through fakesnow, on Snowflake SQL."""

import fakesnow
import pandas as pd
import pytest
from dagster_snowflake import SnowflakeResource

from pipeline.warehouse import DuckDBWarehouse, TableNotFound
from pipeline.warehouse.snowflake import SnowflakeWarehouse

FRAME = pd.DataFrame({"id": ["a", None, "c"], "amount": [1.5, 2.0, None]})


@pytest.fixture
def duck(tmp_path):
    return DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))


@pytest.fixture(scope="module")
def snowflake():
    with fakesnow.server() as kwargs:
        resource = SnowflakeResource(
            account="fake",
            user="fake",
            password="fake",
            database="ANALYTICS",
            additional_snowflake_connection_args={
                key: kwargs[key] for key in ("host", "port", "protocol", "session_parameters")
            },
        )
        with resource.get_connection() as conn:
            conn.cursor().execute("CREATE DATABASE IF NOT EXISTS ANALYTICS")
        yield SnowflakeWarehouse(snowflake=resource)


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
