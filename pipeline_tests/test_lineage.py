"""Scope: LookML lineage and PII exposure, in-process, on tiny LookML projects written per test."""

import re
import shutil
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey

from pipeline import looker_exposure
from pipeline.contract import load_contracts
from pipeline.looker import Refresh, load_refreshes
from pipeline.looker_checks import exposed_pii
from pipeline.looker_lineage import LOOKML_DIR, UnresolvedSql, sql_sources
from pipeline_tests.gate import LOOKER_KEYS, materialized, run_gate

MODEL = """
connection: "warehouse"
include: "/views/*.view.lkml"
datagroup: etl { max_cache_age: "24 hours" }
persist_with: etl
"""
VIEWS = {
    "views/charges.view.lkml": """
view: charges {
  sql_table_name: payments_published.charges ;;
  dimension: id { primary_key: yes sql: ${TABLE}.id ;; }
  dimension: customer_id { sql: ${TABLE}.customer_id ;; }
}""",
    "views/customers.view.lkml": """
view: customers {
  sql_table_name: payments_published.customers ;;
  dimension: id { primary_key: yes sql: ${TABLE}.id ;; }
  dimension: email { sql: ${TABLE}.email ;; }
  dimension: name { sql: ${TABLE}.name ;; required_access_grants: [can_see_pii] }
}""",
    "views/contacts.view.lkml": """
view: contacts {
  sql_table_name: crm_published.contacts ;;
  dimension: id { primary_key: yes sql: ${TABLE}.id ;; }
}""",
}
CHARGES = ("payments_published.charges",)
CHARGES_CUSTOMERS = ("payments_published.charges", "payments_published.customers")


def load(
    tmp_path: Path,
    files: dict[str, str],
    *,
    model: str = "",
    pdt: str | None = None,
    connections: dict | None = None,
) -> Refresh:
    """The one refresh of a project: the views above, `m.model.lkml` (MODEL + model), `files`."""
    project = tmp_path / "lookml"
    for name, text in {**VIEWS, "m.model.lkml": MODEL + model, **files}.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    start = (
        {"pdt": {"model": "m", "view": pdt}}
        if pdt
        else {"datagroup": {"model": "m", "name": "etl"}}
    )
    config = {"refreshes": [{"name": "r", **start}], "connections": connections or {}}
    path = tmp_path / "looker_refreshes.yaml"
    path.write_text(yaml.safe_dump(config))
    [refresh] = load_refreshes(path, project)
    return refresh


def one_problem(refresh: Refresh, *fragments: str) -> str:
    [problem] = refresh.problems
    for fragment in fragments:
        assert fragment in problem, problem
    return problem


# Lineage: every construct resolves completely, or is a problem naming its file.


def test_sql_table_name_references_in_derived_sql_are_followed(tmp_path):
    pdt = """
view: revenue {
  derived_table: {
    sql: SELECT c.id, SUM(ch.amount) AS revenue, MAX(p.id) AS contact
         FROM ${charges.SQL_TABLE_NAME} AS ch
         JOIN ${customers.SQL_TABLE_NAME} AS c ON ch.customer_id = c.id
         LEFT JOIN crm_published.contacts AS p ON p.id = c.id
         GROUP BY 1 ;;
    datagroup_trigger: etl
  }
  dimension: id { sql: ${TABLE}.id ;; }
}"""
    refresh = load(tmp_path, {"views/revenue.view.lkml": pdt}, pdt="revenue")
    assert refresh.reads == ("crm_published.contacts", *CHARGES_CUSTOMERS)
    assert refresh.views == ("charges", "customers", "revenue")
    assert refresh.problems == ()


def test_cte_names_in_a_pdt_are_not_tables(tmp_path):
    pdt = """
view: paid {
  derived_table: {
    sql: WITH paid AS (SELECT * FROM payments_published.charges WHERE status = 'succeeded'),
              buyers AS (SELECT id FROM payments_published.customers)
         SELECT paid.id FROM paid JOIN buyers ON paid.customer_id = buyers.id ;;
  }
  dimension: id { sql: ${TABLE}.id ;; }
}"""
    refresh = load(tmp_path, {"views/paid.view.lkml": pdt}, pdt="paid")
    assert refresh.reads == CHARGES_CUSTOMERS
    assert refresh.problems == ()


def test_explores_in_explore_files_are_read(tmp_path):
    explore = """
include: "/views/*.view.lkml"
explore: charges { join: customers { sql_on: ${charges.customer_id} = ${customers.id} ;; } }
"""
    refresh = load(
        tmp_path,
        {"explores/charges.explore.lkml": explore},
        model='include: "/explores/*.explore.lkml"',
    )
    assert refresh.reads == CHARGES_CUSTOMERS
    assert refresh.problems == ()


def test_join_from_reads_the_named_view(tmp_path):
    model = "explore: charges { join: buyer { from: contacts sql_on: 1=1 ;; } }"
    refresh = load(tmp_path, {}, model=model)
    assert refresh.reads == ("crm_published.contacts", *CHARGES)
    assert refresh.views == ("charges", "contacts")


@pytest.mark.parametrize("parameter", ["view_name", "from"])
def test_explore_view_name_and_from_read_the_named_view(tmp_path, parameter):
    refresh = load(tmp_path, {}, model=f"explore: people {{ {parameter}: contacts }}")
    assert refresh.reads == ("crm_published.contacts",)
    assert refresh.problems == ()


def test_extends_inherit_tables_and_joins(tmp_path):
    base = """
view: customers_base {
  extension: required
  sql_table_name: payments_published.customers ;;
  dimension: id { sql: ${TABLE}.id ;; }
}
view: buyers { extends: [customers_base] }
"""
    model = """
explore: charges_base {
  extension: required
  join: buyers { sql_on: ${charges.customer_id} = ${buyers.id} ;; }
}
explore: charges { extends: [charges_base] }
"""
    refresh = load(tmp_path, {"views/base.view.lkml": base}, model=model)
    assert refresh.reads == CHARGES_CUSTOMERS
    assert refresh.views == ("buyers", "charges")
    assert refresh.problems == ()


def test_refinements_replace_the_table_and_add_joins(tmp_path):
    landing = "view: payers { sql_table_name: payments.customers ;; }"
    refine = """
view: +payers { sql_table_name: payments_published.customers ;; }
explore: +charges { join: payers { sql_on: ${charges.customer_id} = ${payers.id} ;; } }
"""
    refresh = load(
        tmp_path,
        {"views/payers.view.lkml": landing, "refinements.lkml": refine},
        model='explore: charges {}\ninclude: "/refinements.lkml"',
    )
    assert refresh.reads == CHARGES_CUSTOMERS  # not the landing payments.customers
    assert refresh.problems == ()


INVOICES = {"views/invoices.view.lkml": "view: invoices { sql_table_name: invoices ;; }"}
INVOICES_EXPLORE = "explore: charges { join: invoices { sql_on: 1=1 ;; } }"


def test_unqualified_table_reads_the_connections_default_schema(tmp_path):
    connections = {"warehouse": {"default_schema": "payments_published"}}
    refresh = load(tmp_path, INVOICES, model=INVOICES_EXPLORE, connections=connections)
    assert refresh.reads == (*CHARGES, "payments_published.invoices")
    assert refresh.problems == ()


def test_unqualified_table_without_default_schema_is_a_problem_naming_the_file(tmp_path):
    refresh = load(tmp_path, INVOICES, model=INVOICES_EXPLORE)
    one_problem(refresh, "views/invoices.view.lkml: view invoices", "'invoices'", "default_schema")
    assert refresh.reads == CHARGES  # every table it could resolve is still a dependency


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("refreshes: [{name: r, datagroup: {model: m, name: etl}, read: [crm.deals]}]",
         "unknown key `read` at refreshes.0 (refresh 'r') (did you mean `reads`?)"),
        ("refreshes: [{name: r, datagroup: {model: m, nmae: etl}}]",
         "unknown key `nmae` at refreshes.0.datagroup (refresh 'r') (did you mean `name`?)"),
        ("refreshes: [{name: r, pdt: {model: m, view: v}}]\n"
         "connections: {warehouse: {default_shema: payments_published}}",
         "unknown key `default_shema` at connections.warehouse (did you mean `default_schema`?)"),
        ("refreshes: [{name: r, pdt: {model: m, view: v}}]\n"
         "connections: {warehouse: {warehouse: 'no'}}",
         "connections.warehouse.warehouse: Input should be a valid boolean"),
        ("refreshes: [{name: r, pdt: {model: m, view: v}}]\nconnection: {warehouse: {}}",
         "unknown key `connection` at the top level (did you mean `connections`?)"),
        ("refreshes: [{name: r, pdt: {model: m, view: v}, reads: crm.deals}]",
         "refreshes.0.reads (refresh 'r'): Input should be a valid list"),
        ("refreshes: [{name: r, pdt: {model: m, view: v}}, {name: r, pdt: {model: m, view: w}}]",
         "refresh 'r' is listed twice"),
        ("refreshes: [{name: r, pdt: {model: m, view: v}}]\nchecks: {deleted_rows: warn}",
         "checks: deleted_rows: 'warn'; only deleted_rows_are_filtered can be set, to error or warn"),
    ],
)  # fmt: skip
def test_a_key_looker_refreshes_yaml_does_not_know_is_an_error_naming_it(tmp_path, text, message):
    """Before, a misspelt key was dropped: `read:` lost the tables it added, `default_shema:`
    left the default schema unset, and the gate ran on what was left."""
    from pipeline.lookml_model import check_severities

    path = tmp_path / "looker_refreshes.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        check_severities(path)
    assert str(error.value) == f"{path}: {message}"
    if "checks:" not in text:  # the refreshes read the same file, as strictly
        with pytest.raises(ValueError, match=re.escape(message)):
            load_refreshes(path, tmp_path / "lookml")


def test_a_refresh_on_a_connection_declared_outside_the_warehouse_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="refresh 'r': its model's connection 'warehouse' is "):
        load(tmp_path, INVOICES, connections={"warehouse": {"warehouse": False}})


def test_a_native_derived_table_reads_the_tables_of_its_source_explore(tmp_path):
    """Looker builds a native derived table from its explore's views: the refresh of its
    datagroup reads them, though nothing else the datagroup caches does."""
    ndt = """
view: per_customer {
  derived_table: {
    explore_source: orders { column: customer_id { field: charges.customer_id } }
    datagroup_trigger: etl
  }
}"""
    orders = """
datagroup: other { max_cache_age: "1 hour" }
explore: charges {}
explore: orders {
  from: charges
  persist_with: other
  join: customers { sql_on: ${orders.customer_id} = ${customers.id} ;; relationship: many_to_one }
}"""
    refresh = load(tmp_path, {"views/ndt.view.lkml": ndt}, model=orders)
    assert refresh.problems == ()
    assert refresh.reads == CHARGES_CUSTOMERS

    missing = ndt.replace("explore_source: orders", "explore_source: order")
    refresh = load(tmp_path, {"views/ndt.view.lkml": missing}, model=orders)
    one_problem(
        refresh,
        "views/ndt.view.lkml: view per_customer: derived_table.explore_source: order is not an "
        "explore of model m",
    )
    assert refresh.reads == CHARGES


def test_everything_looker_may_query_for_a_model_must_read_published_tables(tmp_path):
    """Not just what a refresh reads: an explore cached by another datagroup, a PDT persisted
    on its own trigger, and that trigger's SQL are queried by Looker too."""
    from pipeline.lookml_project import load_model
    from pipeline.lookml_rules import readable_tables, reads_published

    pdt = """
view: raw_totals {
  derived_table: {
    sql: SELECT customer_id, count(*) AS n FROM payments_published.charges GROUP BY 1 ;;
    sql_trigger_value: SELECT count(*) FROM payments.charges ;;
  }
}
view: raw_invoices { sql_table_name: payments.invoices ;; }
view: live_customers {
  derived_table: {
    sql: SELECT id FROM payments.customers ;;
    materialized_view: yes
  }
}
view: ephemeral {
  derived_table: { sql: SELECT 1 AS n FROM payments.refunds ;; materialized_view: no }
}
view: templated { sql_table_name: {{ _user_attributes['schema'] }}.charges ;; }"""
    model = """
datagroup: other { max_cache_age: "1 hour" }
explore: charges {}
explore: invoices { from: raw_invoices persist_with: other }
explore: base { from: templated extension: required }"""
    refresh = load(tmp_path, {"views/raw.view.lkml": pdt}, model=model)
    assert refresh.problems == () and refresh.reads == CHARGES  # the refresh itself is clean
    contracts = load_contracts()
    published = readable_tables({t.id: t for c in contracts.values() for t in c.tables.values()})
    outcome = reads_published(load_model(tmp_path / "lookml", "m"), contracts, published, None)
    assert outcome.findings == [
        "views/raw.view.lkml: view raw_totals reads payments.charges, Fivetran's landing table: "
        "read payments_published.charges, the audited version, instead",
        "views/raw.view.lkml: view live_customers reads payments.customers, Fivetran's landing "
        "table: read payments_published.customers, the audited version, instead",
        "views/raw.view.lkml: view raw_invoices reads payments.invoices, Fivetran's landing "
        "table: read payments_published.invoices, the audited version, instead",
    ]
    assert outcome.metadata["tables"] == [
        "payments.charges", "payments.customers", "payments.invoices",
        "payments_published.charges",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT * FROM {% if _user_attributes['eu'] %} eu.charges {% else %} us.charges {% endif %}",
         "Liquid"),
        ("SELECT id FROM ${charges.id}", "${charges.id}"),
        ("SELECT id FROM payments_published.charges WHERE (", "could not be parsed"),
        ("SELECT * FROM TABLE(my_udtf())", "table function"),
    ],
)  # fmt: skip
def test_sql_that_cannot_be_resolved_is_a_problem_naming_the_file(tmp_path, sql, named):
    pdt = f"view: p {{ derived_table: {{ sql: {sql} ;; }} }}"
    refresh = load(tmp_path, {"views/p.view.lkml": pdt}, pdt="p")
    one_problem(refresh, "views/p.view.lkml: view p: derived_table.sql", named)


def test_subquery_in_a_field_reads_its_tables(tmp_path):
    view = """
view: with_deals {
  sql_table_name: crm_published.contacts ;;
  dimension: deals { sql: (SELECT COUNT(*) FROM crm_published.deals d WHERE d.contact_id = ${id}) ;; }
  dimension: id { sql: ${TABLE}.id ;; }
}"""
    refresh = load(tmp_path, {"views/with_deals.view.lkml": view}, model="explore: with_deals {}")
    assert refresh.reads == ("crm_published.contacts", "crm_published.deals")


def test_views_a_model_does_not_include_are_problems_not_skips(tmp_path):
    stray = {"elsewhere/refunds.view.lkml": "view: refunds { sql_table_name: p.refunds ;; }"}
    model = "explore: charges { join: refunds { sql_on: 1=1 ;; } }"
    refresh = load(tmp_path, stray, model=model)
    one_problem(refresh, "m.model.lkml: explore charges: join refunds", "view refunds")
    assert refresh.reads == CHARGES


def test_include_matching_nothing_is_a_problem(tmp_path):
    refresh = load(tmp_path, {}, model='include: "/explores/*.explore"\nexplore: charges {}')
    one_problem(refresh, "m.model.lkml", "/explores/*.explore", "matches no file")


@pytest.mark.parametrize(
    ("start", "named"),
    [
        ({"datagroup": {"model": "m", "name": "nightly"}}, "no datagroup 'nightly'"),
        ({"pdt": {"model": "m", "view": "nope"}}, "no view 'nope'"),
        ({"datagroup": {"model": "other", "name": "etl"}}, "no model file other.model.lkml"),
    ],
)
def test_unknown_names_in_the_refresh_config_are_load_errors_naming_the_file(
    tmp_path, start, named
):
    load(tmp_path, {}, model="explore: charges {}")
    path = tmp_path / "looker_refreshes.yaml"
    path.write_text(yaml.safe_dump({"refreshes": [{"name": "r", **start}]}))
    with pytest.raises(ValueError, match=named) as raised:
        load_refreshes(path, tmp_path / "lookml")
    assert str(path) in str(raised.value)


# PII exposure: fields that show a raw PII column without an access grant.


def customers_with(fields: str, schema: str = "payments_published") -> dict[str, str]:
    """The customers view with more fields, reading `schema`.customers."""
    view = VIEWS["views/customers.view.lkml"].replace("payments_published", schema)
    return {"views/customers.view.lkml": view.rstrip("}") + fields + "}"}


def exposures(tmp_path: Path, files: dict[str, str], explore: str = "customers") -> list[str]:
    refresh = load(tmp_path, files, model=f"explore: {explore} {{}}")
    assert refresh.problems == ()
    return exposed_pii(tmp_path / "lookml", "m", refresh.views, load_contracts(), None)


@pytest.mark.parametrize("schema", ["payments_published", "payments"])
def test_dimension_built_on_a_pii_dimension_is_exposed(tmp_path, schema):
    fields = """
  dimension: display_name { sql: INITCAP(${name}) ;; }
  dimension: greeting { sql: 'Dear ' || ${customers.display_name} ;; }
  dimension: email_upper { sql: UPPER(${email}) ;; }
  dimension: raw_name { hidden: yes sql: ${TABLE}.name ;; }
"""
    found = exposures(tmp_path, customers_with(fields, schema))
    assert found == [
        f"customers.display_name shows {schema}.customers.name (name, owner team:payments-data)",
        f"customers.greeting shows {schema}.customers.name (name, owner team:payments-data)",
    ]  # name (granted), raw_name (hidden) and the hashed email are not exposures


def test_measures_that_show_values_of_a_pii_dimension_are_exposed(tmp_path):
    fields = """
  measure: names { type: list list_field: name }
  measure: last_name { type: string sql: MAX(${name}) ;; }
  measure: name_count { type: count_distinct sql: ${name} ;; }
"""
    found = exposures(tmp_path, customers_with(fields))
    assert [f.split(" shows ")[0] for f in found] == ["customers.names", "customers.last_name"]


def test_html_links_and_filter_suggestions_showing_a_pii_field_are_exposed(tmp_path):
    fields = """
  dimension: card { sql: ${TABLE}.id ;; html: <b>{{ customers.name._rendered_value }}</b> ;; }
  dimension: profile { sql: ${TABLE}.id ;; link: { label: "CRM" url: "/c?n={{ name._value }}" } }
  filter: who { suggest_dimension: name }
  dimension: plain { sql: ${TABLE}.id ;; html: <i>{{ value }}</i> ;; }
"""
    found = exposures(tmp_path, customers_with(fields))
    assert [f.split(" shows ")[0] for f in found] == [
        "customers.card",
        "customers.profile",
        "customers.who",
    ]


def test_pdt_reading_a_view_through_sql_table_name_is_followed_to_the_column(tmp_path):
    pdt = """
view: top_customers {
  derived_table: {
    sql: WITH named AS (SELECT id, name AS customer_name FROM ${customers.SQL_TABLE_NAME})
         SELECT n.id, UPPER(n.customer_name) AS buyer FROM named AS n ;;
  }
  dimension: id { sql: ${TABLE}.id ;; }
  dimension: buyer { sql: ${TABLE}.buyer ;; }
}"""
    found = exposures(tmp_path, {"views/top.view.lkml": pdt}, "top_customers")
    assert found == [
        "top_customers.buyer shows payments_published.customers.name "
        "(name, owner team:payments-data)"
    ]


def test_pdt_select_star_is_followed_to_the_tables_behind_it(tmp_path):
    pdt = """
view: top_customers {
  derived_table: { sql: SELECT * FROM ${customers.SQL_TABLE_NAME} WHERE id IS NOT NULL ;; }
  dimension: name { sql: ${TABLE}.name ;; }
}"""
    found = exposures(tmp_path, {"views/top.view.lkml": pdt}, "top_customers")
    assert [f.split(" (")[0] for f in found] == [
        "top_customers.name shows payments_published.customers.name"
    ]


def test_pdt_column_not_traced_to_a_table_fails_naming_it(tmp_path):
    pdt = """
view: top_customers {
  derived_table: {
    sql: SELECT name AS buyer FROM (SELECT * FROM ${customers.SQL_TABLE_NAME}) AS c
         JOIN payments_published.charges AS ch ON ch.customer_id = c.id ;;
  }
  dimension: buyer { sql: ${TABLE}.buyer ;; }
}"""
    found = exposures(tmp_path, {"views/top.view.lkml": pdt}, "top_customers")
    assert found == [
        "top_customers.buyer (views/top.view.lkml) cannot be analysed: "
        "view top_customers: column name is not traced to a table"
    ]  # `name` could be either table's: sqlglot cannot tell, so neither can the check


def test_a_field_that_cannot_be_analysed_fails_naming_it(tmp_path):
    fields = """
  dimension: greeting { sql: {% if _user_attributes['formal'] %}'Dear'{% endif %} || ${name} ;; }
"""
    found = exposures(tmp_path, customers_with(fields))
    assert found == [
        "customers.greeting (views/customers.view.lkml) cannot be analysed: "
        "Liquid templating in its SQL"
    ]


def test_an_exception_while_analysing_a_field_fails_naming_it(tmp_path, monkeypatch):
    def broken(sql):
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(looker_exposure, "sql_sources", broken)
    found = exposures(tmp_path, {})
    assert found == [
        "customers.id (views/customers.view.lkml) cannot be analysed: parser exploded",
        "customers.email (views/customers.view.lkml) cannot be analysed: parser exploded",
    ]


# The whole gate: unresolved lineage loads, and the refresh that has it refuses, naming it.


def test_unqualified_table_in_the_shipped_lookml_holds_its_refresh_naming_the_file(
    tmp_path, monkeypatch
):
    project = tmp_path / "shipped"
    shutil.copytree(LOOKML_DIR, project)
    view = project / "views" / "payments" / "invoices.view.lkml"
    text, replaced = re.subn(
        r"sql_table_name: [\w.]+ ;;", "sql_table_name: invoices ;;", view.read_text()
    )
    assert replaced == 1
    view.write_text(text)
    monkeypatch.setenv("TOLLGATE_LOOKML_DIR", str(project))
    result = run_gate(
        {"ops": {"looker__revenue_by_customer": {"config": {"poll_interval_seconds": 0.05}}}}
    )
    # lookml/payments's checks hold back every refresh of the model, naming the file.
    assert materialized(result) & LOOKER_KEYS == {AssetKey(["looker", "crm_etl"])}
    [failure] = [
        str(e.metadata["exposed"].value)  # every finding; the description shows the first few
        for e in result.get_asset_check_evaluations()
        if e.check_name == "no_pii_shown_without_access_grant" and not e.passed
    ]
    assert (
        "views/payments/invoices.view.lkml: view invoices: sql_table_name: table 'invoices' "
        "names no schema and connection 'warehouse' has no default_schema"
    ) in failure


def test_a_table_in_another_database_is_a_problem_not_the_published_table():
    """`dev_db.payments_published.charges` is not the table the gate published."""
    with pytest.raises(UnresolvedSql, match="names a database"):
        sql_sources("SELECT * FROM dev_db.payments_published.charges")
    assert sql_sources("SELECT * FROM payments_published.charges") == (
        {("payments_published", "charges")},
        set(),
    )
