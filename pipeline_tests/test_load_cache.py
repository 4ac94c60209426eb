"""Scope: what loading keeps on disk (parsed LookML, the tables its SQL reads, passed JSON Schema
checks) is found only by content: a changed file is read again, never served from the cache."""

import os
import textwrap
from pathlib import Path

import jsonschema
import lkml
import pytest
import sqlglot
import yaml

from pipeline import looker_lineage, lookml_project
from pipeline.contract import ContractError, load_contracts
from pipeline.looker import load_refreshes
from pipeline.looker_lineage import UnresolvedSql, sql_sources
from pipeline.settings import cache_dir
from pipeline_tests.test_contract import GOOD

MODEL = (
    'connection: "warehouse"\ninclude: "/views/*.view.lkml"\ndatagroup: etl {}\npersist_with: etl\n'
)
VIEW = "view: charges {\n  sql_table_name: payments_published.%s ;;\n}\nexplore: charges {}\n"


def reads(tmp_path, table: str) -> tuple[str, ...]:
    """The tables the project's one refresh reads, with `charges` reading `table`, in a fresh
    process as far as LookML goes (nothing parsed in memory)."""
    project = tmp_path / "lookml"
    (project / "views").mkdir(parents=True, exist_ok=True)
    (project / "m.model.lkml").write_text(MODEL)
    view = project / "views" / "charges.view.lkml"
    view.write_text(VIEW % table)
    os.utime(view, (1_000_000_000, 1_000_000_000))  # same size and time for every `table`
    config = tmp_path / "looker_refreshes.yaml"
    config.write_text(
        yaml.safe_dump({"refreshes": [{"name": "r", "datagroup": {"model": "m", "name": "etl"}}]})
    )
    lookml_project.parsed.cache_clear()
    [refresh] = load_refreshes(config, project)
    return refresh.reads


@pytest.fixture
def lkml_calls(monkeypatch):
    """Every text lkml parses, in order."""
    calls = []
    real = lkml.load
    monkeypatch.setattr(lkml, "load", lambda text: calls.append(text) or real(text))
    return calls


def test_parsed_lookml_is_kept_and_served_by_content(tmp_path, lkml_calls):
    assert reads(tmp_path, "charges") == ("payments_published.charges",)
    assert len(lkml_calls) == 2  # the model and the view, parsed once
    assert reads(tmp_path, "charges") == ("payments_published.charges",)
    assert len(lkml_calls) == 2  # a new process reads both from the cache
    # Same path, size and modification time, other content: parsed again, the new table read.
    assert reads(tmp_path, "refunds") == ("payments_published.refunds",)
    assert lkml_calls[2:] == [VIEW % "refunds"]


def test_unreadable_cache_entries_are_parsed_again(tmp_path, lkml_calls):
    reads(tmp_path, "charges")
    for entry in (cache_dir() / "lkml").iterdir():
        entry.write_text("{not json")
    assert reads(tmp_path, "charges") == ("payments_published.charges",)
    assert len(lkml_calls) == 4


def test_the_looker_sandbox_serves_the_pipelines_parse_and_sees_edits(
    tmp_path, lkml_calls, monkeypatch
):
    """A step's sandbox Looker answers from the parse its definitions made (each request parsed
    the whole project once per process, 12 s a step at 1,000 tables); an edit is served fresh."""
    from pipeline.sandbox import looker_project

    reads(tmp_path, "charges")
    monkeypatch.setenv("TOLLGATE_LOOKML_DIR", str(tmp_path / "lookml"))
    served = looker_project.project()
    assert served.views["charges"]["sql_table_name"] == "payments_published.charges"
    assert len(lkml_calls) == 2  # the model and the view, parsed by the pipeline only
    view = tmp_path / "lookml" / "views" / "charges.view.lkml"
    view.write_text(VIEW % "refunds")
    os.utime(view, (1_000_000_001, 1_000_000_001))
    served = looker_project.project()
    assert served.views["charges"]["sql_table_name"] == "payments_published.refunds"
    assert lkml_calls[2:] == [VIEW % "refunds"]


def write_contract(tmp_path, text: str):
    path = tmp_path / "contracts" / "shop.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text))
    os.utime(path, (1_000_000_000, 1_000_000_000))
    return path.parent


def test_a_passed_contract_skips_the_schema_walk_only_while_unchanged(tmp_path, monkeypatch):
    good = write_contract(tmp_path, GOOD)
    assert load_contracts(good)["shop"].tables["orders"].column("customer_id").references
    walks = []
    real = jsonschema.exceptions.best_match
    monkeypatch.setattr(jsonschema.exceptions, "best_match", lambda e: walks.append(1) or real(e))
    load_contracts(good)
    assert walks == []  # the same contract again: its pass is remembered
    # A typo only ODCS's JSON Schema catches, in the same file with the same size and time.
    typo = GOOD.replace("type: foreignKey", "type: foreignKye")
    with pytest.raises(ContractError, match=r"relationships\.0\.type: 'foreignKye' is not one of"):
        load_contracts(write_contract(tmp_path, typo))
    assert walks == [1]
    with pytest.raises(ContractError, match="foreignKye"):  # a failure is never remembered
        load_contracts(write_contract(tmp_path, typo))


def test_a_changed_contract_is_parsed_again(tmp_path):
    assert load_contracts(write_contract(tmp_path, GOOD))["shop"].owner == "team:shop-data"
    renamed = GOOD.replace("team: {name: shop-data}", "team: {name: shop-date}")
    assert load_contracts(write_contract(tmp_path, renamed))["shop"].owner == "team:shop-date"


def test_yaml_that_json_cannot_hold_exactly_is_not_kept(tmp_path):
    # Another tool's property with an integer key: JSON would bring it back as the string "1".
    other = "- {property: sizes, value: {1: small}, vendor: acme}"
    text = GOOD.replace(
        "team: {name: shop-data}", f"team: {{name: shop-data}}\ncustomProperties:\n  {other}"
    )
    load_contracts(write_contract(tmp_path, text))
    assert not list((cache_dir() / "contract_yaml").glob("*.json"))
    load_contracts(write_contract(tmp_path, GOOD))
    assert len(list((cache_dir() / "contract_yaml").glob("*.json"))) == 1


@pytest.fixture
def sqlglot_parses(monkeypatch):
    """Every SQL text sqlglot parses, in order (once per dialect tried)."""
    calls = []
    real = sqlglot.parse
    monkeypatch.setattr(sqlglot, "parse", lambda sql, **kw: calls.append(sql) or real(sql, **kw))
    return calls


def test_the_tables_sql_reads_are_kept_and_served_by_content(sqlglot_parses):
    sql = "SELECT * FROM payments_published.charges JOIN ${customers.SQL_TABLE_NAME} c ON 1 = 1"
    read = ({("payments_published", "charges")}, {"customers"})
    assert sql_sources(sql) == read
    assert len(sqlglot_parses) == 1
    assert sql_sources(sql) == read
    assert len(sqlglot_parses) == 1  # from the cache
    assert sql_sources(sql.replace("charges", "refunds")) == (
        {("payments_published", "refunds")},
        {"customers"},
    )
    assert len(sqlglot_parses) == 2


def test_sql_that_cannot_be_resolved_keeps_its_error(sqlglot_parses):
    sql = "SELECT * FROM TABLE(generator(rowcount => 10))"
    with pytest.raises(UnresolvedSql, match="table function .* cannot be resolved") as first:
        sql_sources(sql)
    parses = len(sqlglot_parses)
    with pytest.raises(UnresolvedSql) as again:
        sql_sources(sql)
    assert str(again.value) == str(first.value)
    assert len(sqlglot_parses) == parses  # from the cache


@pytest.mark.parametrize("change", ["sqlglot", "code"])
def test_another_sqlglot_or_lineage_code_parses_again(
    change, tmp_path, monkeypatch, sqlglot_parses
):
    sql = "SELECT * FROM payments_published.charges"
    sql_sources(sql)
    if change == "sqlglot":
        monkeypatch.setattr(sqlglot, "__version__", "0.0.0-other")
    else:
        edited = tmp_path / "looker_lineage.py"
        edited.write_text(Path(looker_lineage.__file__).read_text() + "# edited\n")
        monkeypatch.setattr(looker_lineage, "__file__", str(edited))
    looker_lineage._code_fingerprint.cache_clear()
    try:
        assert sql_sources(sql) == ({("payments_published", "charges")}, set())
        assert len(sqlglot_parses) == 2
    finally:
        looker_lineage._code_fingerprint.cache_clear()
