"""Scope: what real Snowflake would reject, caught before it runs (fakesnow executes on DuckDB).

Each dialect fix is shown with the statement that fails without it; every statement the checks
generate for Snowflake passes sqlglot's Snowflake parser, the reserved-word check and the regex
check; a table typed as Fivetran lands it on Snowflake passes the shipped contracts' type rules.
"""

from datetime import UTC, datetime

import pytest
from sqlglot import exp

from pipeline.checks import keys, patterns, schema
from pipeline.checks.factory import evaluate, table_rules
from pipeline.contract import load_contracts
from pipeline.sandbox.defects import apply_defects
from pipeline.sandbox.sources import sources
from pipeline.warehouse.snowflake_dialect import (
    SnowflakeDialectError,
    regex_problems,
    statement_problems,
)
from pipeline.warehouse.sql import full_match, literal
from pipeline.warehouse.types import accepts

CONTRACTS = load_contracts()
CUSTOMERS = CONTRACTS["payments"].tables["customers"]


def test_duplicate_key_summary_avoids_the_reserved_word_rows(snowflake):
    sql = keys.duplicates_sql(CUSTOMERS, ("id",), "snowflake", None)
    assert statement_problems(sql) == []
    before = sql.replace("AS duplicate_rows", "AS rows")  # the statement as it was
    assert statement_problems(before) == [
        "unquoted identifier rows is a reserved word in Snowflake"
    ]
    with pytest.raises(SnowflakeDialectError, match="rows is a reserved word"):
        snowflake.query(before)  # the warehouse refuses it before Snowflake would


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"(?<![A-Za-z0-9])[0-9]{9}", "negative lookbehind"),
        (r"[0-9]{3}(?=-)", "lookahead"),
        (r"<.+?>", "lazy quantifier +?"),
        (r"[0-9]{2,}?", "lazy quantifier }?"),
        (r"\bssn\b", r"\b word boundary"),
        (r"(?:[0-9]{3})-", "non-capturing group"),
        (r"(?i)ssn", "group extension"),
        (r"([a-z])\1", "backreference"),
    ],
)
def test_regex_features_snowflake_lacks_are_named(pattern, problem):
    found = regex_problems(pattern)
    assert found and all(problem in f for f in found)


@pytest.mark.parametrize("pattern", [r"[?*+]x", r"[(]?[0-9]{3}[)]?", r"a{2,3}b?c*", r"[]a]+"])
def test_regex_characters_that_only_look_like_those_features_pass(pattern):
    assert regex_problems(pattern) == []


def every_pattern() -> dict[str, str]:
    """Every regex patterns.py defines, whatever it holds now (PII patterns are owned elsewhere)."""
    found = {f"PATTERNS[{k}]": v for k, v in patterns.PATTERNS.items()}
    found |= {
        name: v for name, v in vars(patterns).items() if name.isupper() and isinstance(v, str)
    }
    return found


@pytest.mark.parametrize("name", sorted(every_pattern()))
def test_every_shipped_pattern_runs_on_snowflakes_engine(name):
    assert regex_problems(every_pattern()[name]) == []


def test_whole_string_match_is_explicit_and_means_the_same_everywhere(duck, snowflake):
    implicit = f"SELECT REGEXP_LIKE(x, '{patterns.HASH_SHAPE}') FROM t"
    assert "matches the whole string only implicitly" in statement_problems(implicit)[0]
    hexa, b64 = "ab" * 32, "A" * 43 + "="
    values = {hexa: True, b64: True, hexa + "z": False, "z" + b64: False, "z" + hexa: False}
    for warehouse in (duck, snowflake):
        checks = [
            full_match(literal(v), patterns.HASH_SHAPE, warehouse.dialect).as_(f"m{i}")
            for i, v in enumerate(values)
        ]
        sql = exp.select(*checks).sql(warehouse.dialect)
        assert statement_problems(exp.select(*checks).sql("snowflake")) == []
        [row] = warehouse.query(sql)
        assert [row[f"m{i}"] for i in range(len(values))] == list(values.values())


@pytest.mark.parametrize("backend", ["duck", "snowflake"])
def test_a_text_key_joined_to_a_number_key_is_cast_explicitly(backend, request):
    warehouse = request.getfixturevalue(backend)
    q = (lambda s: s.upper()) if backend == "snowflake" else (lambda s: s)
    warehouse.query(f'CREATE SCHEMA IF NOT EXISTS "{q("j")}"')
    warehouse.query(f'CREATE OR REPLACE TABLE "{q("j")}"."{q("parents")}" ("{q("id")}" BIGINT)')
    warehouse.query(f'INSERT INTO "{q("j")}"."{q("parents")}" VALUES (1), (2)')
    warehouse.query(f'CREATE OR REPLACE TABLE "{q("j")}"."{q("children")}" ("{q("fk")}" VARCHAR)')
    warehouse.query(
        f"INSERT INTO \"{q('j')}\".\"{q('children')}\" VALUES ('1'), ('jane@example.com'), ('1.5')"
    )
    child = (
        CONTRACTS["payments"]
        .tables["charges"]
        .__class__("j", "children", "team:data", "", (), file=None)
    )
    implicit = keys.orphans_sql(child, "fk", "parents.id", warehouse.dialect)
    with pytest.raises(Exception, match="jane@example.com"):  # the value reaches the error
        warehouse.query(implicit)
    types = (warehouse.columns("j", "children")["fk"], warehouse.columns("j", "parents")["id"])
    explicit = keys.orphans_sql(child, "fk", "parents.id", warehouse.dialect, types=types)
    assert "TRY_CAST" in explicit
    [row] = warehouse.query(explicit)
    assert row["orphans"] == 2  # the e-mail and 1.5 point nowhere; '1' finds its parent


@pytest.mark.parametrize(
    ("contract_type", "landed"),
    [("TIMESTAMP", "TIMESTAMP_TZ"), ("TIMESTAMP", "TIMESTAMP_NTZ"), ("BIGINT", "NUMBER"),
     ("INTEGER", "NUMBER(38,0)"), ("DECIMAL(18,2)", "NUMBER"), ("DOUBLE", "FLOAT"),
     ("JSON", "VARIANT"), ("BOOLEAN", "BOOLEAN"), ("VARCHAR", "TEXT"), ("DATE", "DATE"),
     ("TIMESTAMP_TZ", "TIMESTAMP_LTZ")],
)  # fmt: skip
def test_what_fivetran_lands_on_snowflake_is_accepted(contract_type, landed):
    from pipeline.warehouse.types import type_family

    assert accepts(type_family(contract_type), landed)


@pytest.mark.parametrize(
    ("contract_type", "landed"),
    [("TIMESTAMP_TZ", "TIMESTAMP_NTZ"), ("BIGINT", "TEXT"), ("DATE", "TIMESTAMP_TZ"),
     ("BOOLEAN", "NUMBER"), ("JSON", "TEXT")],
)  # fmt: skip
def test_a_real_type_change_is_still_refused(contract_type, landed):
    from pipeline.warehouse.types import type_family

    assert not accepts(type_family(contract_type), landed)


SNOWFLAKE_TYPES = {  # Fivetran's Snowflake types for what the sandbox declares in DuckDB terms
    "VARCHAR": "VARCHAR", "BIGINT": "NUMBER(38,0)", "INTEGER": "NUMBER(38,0)",
    "DECIMAL(18,2)": "NUMBER(18,2)", "BOOLEAN": "BOOLEAN", "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP_TZ",  # Stripe and HubSpot times are instants
}  # fmt: skip


def test_tables_typed_as_fivetran_lands_them_on_snowflake_pass_the_type_rules(snowflake):
    type_rules = [r for r in schema.RULES if r.check_name != "no_unexpected_columns"]
    for src in sources():
        snowflake.query(f'CREATE SCHEMA IF NOT EXISTS "{src.schema.upper()}"')
        for name, table in src.tables.items():
            columns = [f'"{c.upper()}" {SNOWFLAKE_TYPES[t]}' for c, t in table.columns.items()]
            columns += ['"_FIVETRAN_SYNCED" TIMESTAMP_TZ', '"_FIVETRAN_DELETED" BOOLEAN',
                        '"PROPERTIES" VARIANT']  # fmt: skip
            snowflake.query(
                f'CREATE OR REPLACE TABLE "{src.schema.upper()}"."{name.upper()}" '
                f"({', '.join(columns)})"
            )
            contract = CONTRACTS[src.schema].tables[name]
            results = {r.check_name: r for r in evaluate(contract, type_rules, snowflake)}
            assert all(r.passed for r in results.values()), {
                k: r.description for k, r in results.items()
            }
    landed = snowflake.columns("payments", "customers")
    assert landed["created"] == "TIMESTAMP_TZ" and landed["properties"] == "VARIANT"
    assert snowflake.columns("crm", "deals")["amount"] == "NUMBER"


def test_every_statement_the_checks_generate_passes_the_snowflake_check(snowflake, monkeypatch):
    """All rules on every shipped table, with defects so that every follow-up query runs too."""
    statements = []
    query = type(snowflake).query

    def recorded(self, sql):
        statements.append(sql)
        return query(self, sql)

    monkeypatch.setattr(type(snowflake), "query", recorded)
    failed = {}
    for src in sources():
        frames = src.land(frozenset({"raw_pii"}), datetime.now(UTC))
        small = {name: frame.head(120).copy() for name, frame in frames.items()}
        defects = frozenset({"null_ids", "pii_in_free_text", "duplicate_pk", "orphan_fk"})
        for name, frame in apply_defects(src.connector_id, small, defects).items():
            snowflake.write_table(src.schema, name, frame)
        for table in CONTRACTS[src.schema].tables.values():
            # Every rule the table's check runs, its ODCS quality rules included.
            rules = [r for r in table_rules(table) if not r.needs_fivetran_config]
            for result in evaluate(table, rules, snowflake):
                if not result.passed:
                    failed[(table.name, result.check_name)] = result.description
    assert statements and all(statement_problems(sql) == [] for sql in statements)
    assert not any(
        p in d for d in failed.values() for p in ("Snowflake would", "could not run", "failed:")
    ), failed
    assert {("charges", "foreign_keys_resolve"), ("customers", "keys_are_unique"),
            ("deals", "no_pii_in_unclassified_columns"),
            ("contacts", "pii_arrives_as_contracted")} <= set(failed)  # fmt: skip
