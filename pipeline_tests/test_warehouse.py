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
