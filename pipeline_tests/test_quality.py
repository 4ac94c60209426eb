"""Scope: ODCS quality rules and logicalTypeOptions, loaded from YAML and judged on DuckDB."""

import dataclasses
import textwrap
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from dagster import AssetCheckSeverity

from pipeline.checks.factory import build_connector_checks, evaluate, table_rules
from pipeline.contract import load_contracts
from pipeline_tests.gate import SHOP_HEADER

CONTRACT = (
    SHOP_HEADER
    + """
schema:
  - name: orders
    quality: [{rules}]
    properties:
      - {{name: id, physicalType: BIGINT, primaryKey: true}}
      - name: status
        physicalType: VARCHAR
        quality: [{column_rules}]
      - {{name: placed, physicalType: DATE{options}}}
"""
)
# Ten live rows and one soft-deleted row, which no rule may count.
STATUS = ["paid"] * 6 + ["n/a", None, "  ", "bogus", None]
DELETED = [False] * 10 + [True]


def orders(tmp_path, duck, rules="", column_rules="", options="", placed=None):
    text = CONTRACT.format(rules=rules, column_rules=column_rules, options=options)
    (tmp_path / "c").mkdir(exist_ok=True)
    (tmp_path / "c" / "shop.yaml").write_text(textwrap.dedent(text))
    table = load_contracts(tmp_path / "c")["shop"].tables["orders"]
    frame = pd.DataFrame(
        {
            "id": range(11),
            "status": pd.Series(STATUS, dtype="string"),
            "placed": placed or [date(2026, 1, i + 1) for i in range(11)],
            "_fivetran_synced": [datetime.now(UTC)] * 11,
            "_fivetran_deleted": DELETED,
        }
    )
    duck.write_table("shop", "orders", frame)
    return table


def judged(table, duck):
    return {r.check_name: r for r in evaluate(table, table_rules(table), duck)}


# metric (with its arguments) -> its value on the rows above
METRICS = {
    "{metric: nullValues": 1,
    "{metric: missingValues, arguments: {missingValues: [n/a]}": 3,  # null, '  ', 'n/a'
    "{metric: invalidValues, arguments: {validValues: [paid, n/a]}": 2,  # '  ', 'bogus'
    "{metric: invalidValues, arguments: {pattern: '[a-z]+'}": 2,  # 'n/a', '  '
    "{metric: duplicateValues": 5,  # 'paid' six times
}


@pytest.mark.parametrize("metric", list(METRICS))
@pytest.mark.parametrize("passes", [True, False])
def test_each_column_metric_passes_and_fails(tmp_path, duck, metric, passes):
    expected = METRICS[metric] if passes else METRICS[metric] + 1
    table = orders(tmp_path, duck, column_rules=f"{metric}, mustBe: {expected}}}")
    [rule] = table.quality
    result = judged(table, duck)[rule.check_name]
    assert result.passed is passes
    assert result.metadata["measured"].value == METRICS[metric]
    assert result.metadata["live_rows"].value == 10  # the deleted row is not data
    if not passes:
        assert f"must be = {expected:g}" in result.description


@pytest.mark.parametrize(("threshold", "passes"), [(10, True), (11, False)])
def test_row_count_counts_live_rows(tmp_path, duck, threshold, passes):
    table = orders(tmp_path, duck, rules=f"{{metric: rowCount, mustBe: {threshold}}}")
    assert judged(table, duck)["quality_table_row_count"].passed is passes


def test_table_level_duplicates_over_several_columns(tmp_path, duck):
    rules = "{metric: duplicateValues, arguments: {properties: [status, placed]}, mustBe: 0}"
    table = orders(tmp_path, duck, rules=rules, placed=[date(2026, 1, 1)] * 11)
    result = judged(table, duck)["quality_table_duplicate_values"]
    assert not result.passed and "duplicateValues 5 of 10 live rows" in result.description


# operator -> (threshold that passes, threshold that fails) for nullValues = 1 (10%)
OPERATORS = {
    "mustBe": (1, 0),
    "mustNotBe": (0, 1),
    "mustBeGreaterThan": (0, 1),
    "mustBeGreaterOrEqualTo": (1, 2),
    "mustBeLessThan": (2, 1),
    "mustBeLessOrEqualTo": (1, 0),
    "mustBeBetween": ([0, 1], [2, 3]),
    "mustNotBeBetween": ([2, 3], [0, 1]),
}


@pytest.mark.parametrize("operator", list(OPERATORS))
@pytest.mark.parametrize("unit", ["rows", "percent"])
def test_each_operator_in_rows_and_percent(tmp_path, duck, operator, unit):
    scale = 10 if unit == "percent" else 1  # 1 null in 10 live rows is 10%
    for threshold, passes in zip(OPERATORS[operator], (True, False), strict=True):
        if isinstance(threshold, list):
            threshold = [t * scale for t in threshold]
        else:
            threshold *= scale
        rule = f"{{metric: nullValues, {operator}: {threshold}, unit: {unit}}}"
        table = orders(tmp_path, duck, column_rules=rule)
        result = judged(table, duck)["quality_status_null_values"]
        assert result.passed is passes, (operator, unit, threshold)


@pytest.mark.parametrize(("threshold", "passes"), [(1, True), (0, False)])
def test_sql_rule_reads_the_audited_relation(tmp_path, duck, threshold, passes):
    rule = (
        "{name: No bogus status, type: sql, severity: warning, dimension: conformity, "
        "description: Stripe never sends bogus, "
        f"query: \"SELECT count(*) FROM {{object}} WHERE {{property}} = 'bogus'\", mustBe: {threshold}}}"
    )
    table = orders(tmp_path, duck, column_rules=rule)
    # The checks read the audit snapshot, never the landing table (which is emptied here).
    duck.query('CREATE SCHEMA IF NOT EXISTS "audit"')
    duck.query('CREATE TABLE "audit"."orders_v1" AS SELECT * FROM "shop"."orders"')
    duck.query('DELETE FROM "shop"."orders"')
    table = dataclasses.replace(table, audited=("audit", "orders_v1"))
    result = judged(table, duck)["quality_no_bogus_status"]
    assert result.passed is passes
    assert result.severity == AssetCheckSeverity.WARN
    assert result.metadata["dimension"].value == "conformity"
    assert result.metadata["odcs_name"].value == "No bogus status"
    assert (
        "No bogus status" in result.description and "Stripe never sends bogus" in result.description
    )
    assert '"audit"."orders_v1"' in result.metadata["sql"].value


@pytest.mark.parametrize(("threshold", "passes"), [(0.5, True), (0.25, False)])
def test_a_sql_rule_answering_a_decimal_is_judged(tmp_path, duck, threshold, passes):
    """DECIMAL answers (Snowflake's NUMBER(p,s), a DuckDB sum of decimals) arrive as Decimal;
    they were refused as "measured no number", so such a rule could never pass."""
    query = "SELECT CAST(SUM(CASE WHEN {property} = 'paid' THEN 0.05 ELSE 0 END) AS DECIMAL(10,2)) FROM {object}"
    rule = f'{{name: paid share, type: sql, query: "{query}", mustBeLessOrEqualTo: {threshold}}}'
    result = judged(orders(tmp_path, duck, column_rules=rule), duck)["quality_paid_share"]
    assert result.passed is passes, result.description
    assert "paid share: sql 0.3" in result.description  # six paid rows at 0.05


def test_check_names_are_valid_dagster_names_and_carry_severity(tmp_path, duck):
    rules = "{name: 'Rows: at least 1 (really!)', metric: rowCount, mustBeGreaterThan: 0, severity: info}"
    table = orders(tmp_path, duck, rules=rules)
    checks = build_connector_checks([table], None)
    specs = {spec.name: spec for spec in checks.check_specs}
    assert "quality_rows_at_least_1_really" in specs
    assert specs["quality_rows_at_least_1_really"].blocking is False  # info: a warning


def test_the_tables_quality_severity_applies_to_rules_that_state_none(tmp_path, duck):
    """`severity: {quality: warn}` was ignored: every quality rule without its own severity
    blocked. A rule's own severity still wins over the table's."""
    rules = (
        "{name: rows one, metric: rowCount, mustBeGreaterThan: 0}, "
        "{name: rows two, metric: rowCount, mustBeGreaterThan: 0, severity: error}"
    )
    text = textwrap.dedent(CONTRACT.format(rules=rules, column_rules="", options=""))
    text = text.replace(
        "  - name: orders\n",
        "  - name: orders\n    customProperties: [{property: severity, value: {quality: warn}}]\n",
    )
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "shop.yaml").write_text(text)
    table = load_contracts(tmp_path / "c")["shop"].tables["orders"]
    specs = {spec.name: spec for spec in build_connector_checks([table], None).check_specs}
    assert specs["quality_rows_one"].blocking is False
    assert specs["quality_rows_two"].blocking is True


# option -> (value that holds, value that breaks) on the placed dates and statuses above
OPTIONS = {
    "placed: minimum": ("2000-01-01", "2026-01-02"),
    "placed: maximum": ("2030-12-31", "2026-01-09"),
    "placed: exclusiveMinimum": ("2025-12-31", "2026-01-01"),
    "placed: exclusiveMaximum": ("2026-01-11", "2026-01-10"),  # 01-11 is the deleted row
    "status: pattern": ("'[a-z/ ]+'", "'[a-z]+'"),
    "status: minLength": (2, 3),
    "status: maxLength": (5, 4),
    "id: multipleOf": (1, 2),
    "id: maximum": (9, 8),  # id 10 is the deleted row
}


@pytest.mark.parametrize("case", list(OPTIONS))
@pytest.mark.parametrize("holds", [True, False])
def test_each_logical_type_option_holds_and_breaks(tmp_path, duck, case, holds):
    name, option = case.split(": ")
    value = OPTIONS[case][0 if holds else 1]
    table = orders(tmp_path, duck)
    text = CONTRACT.format(rules="", column_rules="", options="")
    old = {"placed": "{name: placed, physicalType: DATE",
           "id": "{name: id, physicalType: BIGINT, primaryKey: true",
           "status": "physicalType: VARCHAR\n"}[name]  # fmt: skip
    new = (
        f"{old.rstrip()}, logicalTypeOptions: {{{option}: {value}}}"
        if name != "status"
        else f"{old}        logicalTypeOptions: {{{option}: {value}}}\n"
    )
    (tmp_path / "c" / "shop.yaml").write_text(textwrap.dedent(text.replace(old, new)))
    table = load_contracts(tmp_path / "c")["shop"].tables["orders"]
    result = judged(table, duck)["values_match_logical_type_options"]
    assert result.passed is holds, result.description
    if not holds:
        assert f"{name}: " in result.description and option in result.description


def test_dates_far_in_the_future_and_past_are_caught(tmp_path, duck):
    placed = [date(2026, 1, 1)] * 8 + [date(2099, 1, 1), date(1900, 1, 1), date(2026, 1, 1)]
    table = orders(
        tmp_path,
        duck,
        options=", logicalTypeOptions: {minimum: 2000-01-01, maximum: 2030-12-31}",
        placed=placed,
    )
    result = judged(table, duck)["values_match_logical_type_options"]
    assert not result.passed
    assert result.metadata["violations"].value == {"placed.minimum": 1, "placed.maximum": 1}
    assert "1900" not in result.description and "2099" not in result.description
