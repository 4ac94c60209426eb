"""Scope: the single-pass profile and the not-null rule, judged against a real DuckDB table."""

import pandas as pd
import pytest
from dagster import AssetCheckSeverity
from sqlglot import exp

from pipeline.checks import not_null
from pipeline.checks.factory import evaluate
from pipeline.checks.rule import Rule, Verdict
from pipeline.contract import ColumnContract, TableContract
from pipeline.warehouse import DuckDBWarehouse

TABLE = TableContract(
    connector="payments",
    name="charges",
    owner="team:payments-data",
    description="",
    columns=(
        ColumnContract("id", "VARCHAR", required=True, primary_key=True),
        ColumnContract("customer_id", "VARCHAR", required=True),
        ColumnContract("memo", "VARCHAR"),
    ),
)


@pytest.fixture
def warehouse(tmp_path):
    return DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))


def land(warehouse, **columns):
    warehouse.write_table("payments", "charges", pd.DataFrame(columns))


def test_clean_table_passes_with_counts(warehouse):
    land(warehouse, id=["a", "b"], customer_id=["c1", "c2"], memo=[None, None])
    [result] = evaluate(TABLE, [not_null.RULE], warehouse)
    assert result.passed
    assert result.metadata["row_count"].value == 2
    assert "COUNT" in result.metadata["sql"].value


def test_null_id_fails_blocking_and_names_column_and_owner(warehouse):
    land(warehouse, id=["a", None, None], customer_id=["c1", "c2", "c3"], memo=["x", None, None])
    [result] = evaluate(TABLE, [not_null.RULE], warehouse)
    assert not result.passed
    assert result.severity == AssetCheckSeverity.ERROR
    assert "id: 2 of 3 rows null" in result.description
    assert "team:payments-data" in result.description
    assert result.metadata["failing_columns"].value == ["id"]


def test_optional_column_nulls_do_not_fail(warehouse):
    land(warehouse, id=["a"], customer_id=["c1"], memo=[None])
    [result] = evaluate(TABLE, [not_null.RULE], warehouse)
    assert result.passed


def test_missing_required_column_fails(warehouse):
    land(warehouse, id=["a"], memo=["x"])
    [result] = evaluate(TABLE, [not_null.RULE], warehouse)
    assert not result.passed
    assert "customer_id: column missing" in result.description


def test_missing_table_fails_closed(warehouse):
    [result] = evaluate(TABLE, [not_null.RULE], warehouse)
    assert not result.passed
    assert "cannot read the table" in result.description


def test_broken_rule_fails_alone(warehouse):
    land(warehouse, id=["a"], customer_id=["c1"], memo=["x"])
    broken = Rule(
        check_name="broken_rule",
        family="volume",
        description="A rule whose SQL cannot run.",
        applies=lambda table: True,
        metrics=lambda table, state, dialect: {"x": exp.Anonymous(this="no_such_fn")},
        judge=lambda table, state, profile: Verdict(True, "never reached"),
    )
    results = {r.check_name: r for r in evaluate(TABLE, [not_null.RULE, broken], warehouse)}
    assert results["required_columns_are_not_null"].passed
    assert not results["broken_rule"].passed
    assert "profiling query failed" in results["broken_rule"].description
