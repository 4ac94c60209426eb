"""Scope: the Looker sandbox's LookML-to-SQL compiler, run on a tiny DuckDB warehouse."""

import lkml
import pandas as pd
import pytest

from pipeline.sandbox.lookml_sql import Compiler, Explore, Unsupported, assertion_sql
from pipeline_tests.test_warehouse import query_within

PROJECT = """
view: orders {
  sql_table_name: shop.orders ;;
  dimension: id { primary_key: yes type: number sql: ${TABLE}.id ;; }
  dimension: customer_id { type: number sql: ${TABLE}.customer_id ;; }
  dimension: amount { type: number sql: ${TABLE}.cents / 100.0 ;; }
  dimension: status { type: string sql: ${TABLE}.status ;; }
  dimension: is_paid { type: yesno sql: ${status} = 'paid' ;; }
  dimension: is_deleted { hidden: yes type: yesno sql: ${TABLE}._fivetran_deleted ;; }
  dimension_group: created { type: time timeframes: [date, month] sql: ${TABLE}.created ;; }
  measure: count { type: count }
  measure: paid_amount { type: sum sql: ${amount} ;; filters: [is_paid: "yes"] }
  measure: average_amount { type: average sql: ${amount} ;; }
  measure: customers { type: count_distinct sql: ${customer_id} ;; }
  measure: statuses { type: list sql: ${status} ;; }
  measure: not_refunded { type: count filters: [status: "-refunded"] }
}
view: customers {
  sql_table_name: shop.customers ;;
  dimension: id { primary_key: yes type: number sql: ${TABLE}.id ;; }
  dimension: country { type: string sql: ${TABLE}.country ;; }
  measure: count { type: count }
}
view: customer_totals {
  derived_table: {
    sql: SELECT customer_id, SUM(cents) AS cents FROM ${orders.SQL_TABLE_NAME} GROUP BY 1 ;;
    datagroup_trigger: shop_etl
  }
  dimension: customer_id { primary_key: yes type: number sql: ${TABLE}.customer_id ;; }
  dimension: total { type: number sql: ${TABLE}.cents / 100.0 ;; }
  measure: best { type: max sql: ${total} ;; }
}
explore: orders {
  sql_always_where: NOT ${orders.is_deleted} ;;
  join: customers {
    type: left_outer
    relationship: many_to_one
    sql_on: ${orders.customer_id} = ${customers.id} ;;
  }
}
explore: customer_totals {}
"""


@pytest.fixture
def shop(duck):
    duck.write_table("shop", "orders", pd.DataFrame({
        "id": [1, 2, 3, 4, 5],
        "customer_id": [10, 10, 11, 12, 12],
        "cents": [1000, 2500, 400, 9900, 100],
        "status": ["paid", "paid", "refunded", "paid", "open"],
        "created": pd.to_datetime(["2026-01-05", "2026-01-20", "2026-02-01", "2026-02-02", "2026-03-01"]),
        "_fivetran_deleted": [False, False, False, False, True],
    }))  # fmt: skip
    duck.write_table(
        "shop", "customers", pd.DataFrame({"id": [10, 11, 12], "country": ["DE", "US", "DE"]})
    )
    parsed = lkml.load(PROJECT)
    views = {v["name"]: v for v in parsed["views"]}
    explores = {e["name"]: Explore(e["name"], e, views) for e in parsed["explores"]}
    return duck, Compiler(views, "duckdb"), explores


def test_measures_of_every_type_with_filters_joins_and_sql_always_where(shop):
    duck, compiler, explores = shop
    fields = ["customers.country", "orders.count", "orders.paid_amount", "orders.average_amount",
              "orders.customers", "orders.statuses", "orders.not_refunded"]  # fmt: skip
    sql = compiler.query(explores["orders"], fields, sorts=["customers.country asc"])
    de, us = duck.query(sql)
    # The deleted order (id 5) is excluded by sql_always_where.
    assert de == {
        "customers.country": "DE", "orders.count": 3, "orders.paid_amount": 134.0,
        "orders.average_amount": pytest.approx(134.0 / 3), "orders.customers": 2,
        "orders.statuses": "paid", "orders.not_refunded": 3,
    }  # fmt: skip
    assert (us["orders.count"], us["orders.paid_amount"], us["orders.not_refunded"]) == (1, 0, 0)
    assert 'LEFT OUTER JOIN shop.customers AS "customers"' in sql


def test_dimension_groups_filters_and_limit_zero(shop):
    duck, compiler, explores = shop
    orders = explores["orders"]
    sql = compiler.query(
        orders, ["orders.created_month", "orders.count"], {"orders.status": "paid,open"}
    )
    assert duck.query(sql + "\nORDER BY 1") == [
        {"orders.created_month": pd.Timestamp("2026-01-01").date(), "orders.count": 2},
        {"orders.created_month": pd.Timestamp("2026-02-01").date(), "orders.count": 1},
    ]
    assert "customers" not in sql  # a join no field needs is left out, as Looker does
    assert duck.query(compiler.query(orders, ["orders.id", "orders.amount"], limit=0)) == []
    with pytest.raises(Unsupported, match="view orders has no field 'nope'"):
        compiler.query(orders, ["orders.nope"])


def test_derived_tables_read_other_views_and_built_pdts(shop):
    duck, compiler, explores = shop
    totals = explores["customer_totals"]
    sql = compiler.query(totals, ["customer_totals.best"])
    assert "FROM (SELECT customer_id, SUM(cents) AS cents FROM shop.orders GROUP BY 1)" in sql
    assert duck.query(sql) == [{"customer_totals.best": 100.0}]

    table = compiler.pdt_table("customer_totals")
    duck.query("CREATE SCHEMA looker_scratch")
    duck.query(f"CREATE TABLE {table} AS SELECT 10 AS customer_id, 1 AS cents")
    built = Compiler(compiler.views, "duckdb", built_pdt=lambda name: name == table)
    assert f"FROM {table} AS" in built.query(totals, ["customer_totals.best"])


def test_data_test_asserts_count_the_rows_where_they_do_not_hold(shop):
    duck, compiler, explores = shop
    query = compiler.query(explores["orders"], ["orders.status", "orders.count"])
    assert duck.query(assertion_sql(query, "${orders.count} >= 1")) == [{"failing": 0}]
    assert duck.query(assertion_sql(query, "${orders.count} = 1 AND yes")) == [{"failing": 1}]


@pytest.fixture
def sdk(duck):
    """looker-sdk against the Looker sandbox, which runs its SQL in a tiny payments warehouse."""
    from dagster_looker import LookerResource

    from pipeline.sandbox.looker_api import sandbox_url

    duck.write_table("payments_published", "charges", pd.DataFrame({
        "id": ["ch_1", "ch_2", "ch_3"], "customer_id": ["c1", "c1", "c2"], "invoice_id": [None] * 3,
        "amount": [1000, 250, 99], "currency": ["usd", "eur", "usd"],
        "status": ["succeeded", "succeeded", "failed"], "description": ["a", "b", "c"],
        "created": pd.to_datetime(["2026-01-01"] * 3), "_fivetran_deleted": [False, False, True],
    }))  # fmt: skip
    url = sandbox_url(duck)
    return LookerResource(base_url=url, client_id="ci", client_secret="sandbox").get_sdk()


def test_inline_queries_sql_runner_and_explore_fields_through_looker_sdk(sdk):
    import json

    from looker_sdk.sdk.api40.models import SqlQueryCreate, WriteQuery

    query = WriteQuery(model="payments", view="charges", fields=["charges.currency", "charges.count"],
                       sorts=["charges.currency"], limit="10")  # fmt: skip
    assert json.loads(sdk.run_inline_query("json", query)) == [
        {"charges.currency": "EUR", "charges.count": 1},
        {"charges.currency": "USD", "charges.count": 1},  # the deleted charge is not counted
    ]
    assert sdk.run_inline_query("sql", query).startswith('SELECT UPPER("charges".currency)')
    broken = WriteQuery(model="payments", view="charges", fields=["customers.country"], limit="0")
    [error] = json.loads(sdk.run_inline_query("json", broken))
    # the table was never landed here (not a compile error that merely names the view)
    assert "Table with name customers does not exist" in error["looker_error"]

    slug = sdk.create_sql_query(
        SqlQueryCreate(model_name="payments", sql="SELECT 41 + 1 AS n")
    ).slug
    assert json.loads(sdk.run_sql_query(slug, "json")) == [{"n": 42}]

    explore = sdk.lookml_model_explore("payments", "charges")
    assert [j.name for j in explore.joins] == ["customers", "invoices"]
    names = {f.name: f for f in explore.fields.dimensions + explore.fields.measures}
    assert names["charges.created_month"].sql == "${TABLE}.created"
    assert names["charges.succeeded_amount"].view == "charges"


def test_a_branch_is_served_only_to_a_dev_mode_session(sdk, tmp_path, monkeypatch):
    import shutil

    from looker_sdk.error import SDKError
    from looker_sdk.sdk.api40.models import WriteApiSession, WriteGitBranch

    from pipeline.looker_lineage import LOOKML_DIR

    shutil.copytree(LOOKML_DIR, tmp_path / "branches" / "new-explore")
    model = tmp_path / "branches" / "new-explore" / "payments.model.lkml"
    model.write_text(model.read_text() + "\nexplore: customers {}\n")
    monkeypatch.setenv("TOLLGATE_LOOKER_BRANCHES_DIR", str(tmp_path / "branches"))

    with pytest.raises(SDKError, match="dev workspace"):
        sdk.update_git_branch("tollgate", WriteGitBranch(name="new-explore"))
    assert sdk.update_session(WriteApiSession(workspace_id="dev")).workspace_id == "dev"
    with pytest.raises(SDKError, match="not found"):
        sdk.update_git_branch("tollgate", WriteGitBranch(name="no-such-branch"))
    assert (
        sdk.update_git_branch("tollgate", WriteGitBranch(name="new-explore")).name == "new-explore"
    )
    assert "customers" in [e.name for e in sdk.lookml_model("payments").explores]
    assert sdk.git_branch("tollgate").name == "new-explore"

    # A new login is a new session, in production.
    from dagster_looker import LookerResource

    from pipeline.sandbox.looker_api import sandbox_url

    other = LookerResource(base_url=sandbox_url(), client_id="ci", client_secret="x").get_sdk()
    assert "customers" not in [e.name for e in other.lookml_model("payments").explores]


def test_an_explore_looker_does_not_serve_fails_sql_validation():
    """An empty or partial explore list from Looker is a failure, never "0 explores run"."""
    from types import SimpleNamespace

    from pipeline.looker_sql import explores_run

    nothing_served = SimpleNamespace(lookml_model=lambda model: SimpleNamespace(explores=[]))
    outcome = explores_run(nothing_served, "payments", ["charges", "revenue_by_customer"])
    assert outcome.findings == [
        "explore charges is in the LookML but Looker does not serve it",
        "explore revenue_by_customer is in the LookML but Looker does not serve it",
    ]


def test_a_burst_of_query_requests_opens_the_warehouse_once(sdk, duck, monkeypatch):
    """The sandbox answers queries on one connection, as Looker runs them on its pooled ones: a
    request's PDT and its query share it, and so do the requests of a burst (a LookML step's
    explores), as opening a DuckDB file of 1,000 tables reads its whole catalog (0.25-0.4 s).
    Before, each request opened the file again. Once the burst is over the file is let go."""
    import json

    from looker_sdk.sdk.api40.models import WriteQuery

    from pipeline.warehouse import DuckDBWarehouse
    from pipeline.warehouse.base import KEPT

    duck.write_table("payments_published", "customers", pd.DataFrame({
        "id": ["c1", "c2"], "country": ["DE", "FR"], "_fivetran_deleted": [False, False],
    }))  # fmt: skip
    KEPT.close()
    opened: list[str] = []
    real_open = DuckDBWarehouse._open

    def counting(self):
        opened.append(self.path)
        return real_open(self)

    monkeypatch.setattr(DuckDBWarehouse, "_open", counting)
    query = WriteQuery(
        model="payments", view="revenue_by_customer", fields=["revenue_by_customer.customer_id"]
    )
    for _ in range(3):
        answer = json.loads(sdk.run_inline_query("json", query))
        assert answer == [{"revenue_by_customer.customer_id": "c1"}]  # c2's only charge failed
    assert opened == [duck.path]
    # The step's own queries get the file: on the kept connection while it is still open, else
    # on their own once the sandbox lets it go.
    assert query_within(duck, "SELECT 1 AS x") == [{"x": 1}]
    assert len(opened) <= 2
