"""Scope: each rule family judged against real DuckDB tables, including redaction of samples."""

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from dagster import AssetCheckSeverity

from pipeline.checks import freshness, keys, pii, pii_scan, schema
from pipeline.checks.factory import RULES, evaluate, table_rules
from pipeline.checks.rule import TableState
from pipeline.checks.scan_history import ScanHistory
from pipeline.contract import ColumnContract, TableContract
from pipeline.warehouse import DuckDBWarehouse

NOW = datetime.now(UTC)


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


CONTACTS = TableContract(
    connector="crm",
    name="contacts",
    owner="team:growth",
    description="",
    columns=(
        ColumnContract(
            "id", "BIGINT", family="number", required=True, primary_key=True, unique=True
        ),
        ColumnContract(
            "company_id", "BIGINT", family="number", required=True, references=("companies.id",)
        ),
        ColumnContract("email", "VARCHAR", classification="email", pii_handling="hashed"),
        ColumnContract("ssn", "VARCHAR", classification="ssn", pii_handling="blocked"),
        ColumnContract("notes", "VARCHAR"),
    ),
    freshness_hours=24,
    row_count_min=2,
    row_count_max=10,
)


@pytest.fixture
def warehouse(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    wh.write_table("crm", "companies", pd.DataFrame({"id": [1, 2]}))
    return wh


def land(warehouse, **overrides):
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "company_id": [1, 2, 2],
            "email": [sha("a@x.com"), sha("b@y.com"), None],
            "ssn": pd.Series([None, None, None], dtype="string"),
            "notes": ["renewal in Q3", "asked for a demo", None],
            "_fivetran_synced": [NOW] * 3,
            "_fivetran_deleted": [False] * 3,
        }
    )
    for name, values in overrides.items():
        if values is None:
            frame = frame.drop(columns=[name])
        else:
            frame[name] = values
    warehouse.write_table("crm", "contacts", frame)


def results(warehouse, table=CONTACTS):
    rules = table_rules(table)
    return {r.check_name: r for r in evaluate(table, rules, warehouse)}


def failed(warehouse, table=CONTACTS):
    return {name: r for name, r in results(warehouse, table).items() if not r.passed}


def test_clean_table_passes_everything_but_fivetran_config(warehouse):
    land(warehouse)
    # Without a Fivetran workspace the config cannot be read, so that rule fails closed.
    assert set(failed(warehouse)) == {"fivetran_config_matches_contract"}


def test_missing_and_changed_and_new_columns_are_separate(warehouse):
    land(warehouse, notes=None, company_id=["1", "2", "2"], phone_number=["x", "y", "z"])
    bad = failed(warehouse)
    assert "notes" in bad["contract_columns_are_present"].description
    assert (
        "company_id: BIGINT expected, VARCHAR landed"
        in bad["column_types_match_contract"].description
    )
    new = bad["no_unexpected_columns"]
    assert "phone_number" in new.description and new.severity == AssetCheckSeverity.WARN


def test_raw_value_in_hashed_column_fails_and_sample_is_redacted(warehouse):
    land(warehouse, email=[sha("a@x.com"), "bob.smith@example.com", None])
    result = failed(warehouse)["pii_arrives_as_contracted"]
    assert "email (email): 1 values are not hashes" in result.description
    samples = result.metadata["redacted_samples"].value
    assert "[email …om]" in samples and "bob.smith" not in samples


def test_blocked_column_with_values_fails(warehouse):
    land(warehouse, ssn=["123-45-6789", None, None])
    result = failed(warehouse)["pii_arrives_as_contracted"]
    assert "ssn (ssn): 1 values arrive though blocked" in result.description
    assert "123-45-6789" not in str(result.metadata)


@pytest.mark.parametrize(
    ("note", "kind"),
    [
        ("write to jane.doe@example.com", "email"),
        ("ssn 123-45-6789 on file", "ssn"),
        ("card 4111 1111 1111 1111 exp 12/29", "card"),
        ("call +1-555-201-7788", "phone"),
        ("from 10.20.30.40", "ip"),
        ("iban GB82 WEST 1234 5698 7654 32", "iban"),
    ],
)
def test_pii_in_free_text_is_found_and_redacted(warehouse, note, kind):
    land(warehouse, notes=["fine", note, None])
    result = failed(warehouse)["no_pii_in_unclassified_columns"]
    assert result.metadata["pii_found"].value == {"notes": [kind]}
    assert result.metadata["pii_rows_by_class"].value == {"notes": {kind: 1}}
    assert note not in str(result.metadata) and note not in result.description


def test_number_failing_luhn_is_not_a_card(warehouse):
    land(warehouse, notes=["order 4111 1111 1111 1112", "fine", None])
    result = results(warehouse)["no_pii_in_unclassified_columns"]
    assert result.passed
    assert result.metadata["pattern_hits"].value == {"notes": 1}


def test_large_table_is_scanned_on_a_sample():
    state = TableState(columns={"notes": "VARCHAR"}, row_estimate=10_000_000)
    assert pii_scan.sample_rate(CONTACTS, state) == pytest.approx(0.01)
    exact = TableContract(**{**CONTACTS.__dict__, "pii_scan": "exact"})
    assert pii_scan.sample_rate(exact, state) == 1.0
    first = TableState(**{**state.__dict__, "pii_history": ScanHistory(seed=1, first=True)})
    assert pii_scan.sample_rate(CONTACTS, first) == 1.0  # no passing scan on record yet


def test_duplicate_keys_and_orphans(warehouse):
    land(warehouse, id=[1, 1, 3], company_id=[1, 2, 9])
    bad = failed(warehouse)
    assert "(id): 1 values repeated over 2 rows" in bad["keys_are_unique"].description
    assert (
        "company_id -> companies.id: 1 rows point nowhere (e.g. 9)"
        in bad["foreign_keys_resolve"].description
    )


def test_a_parent_without_the_referenced_column_is_named(warehouse):
    warehouse.write_table("crm", "companies", pd.DataFrame({"company_key": [1, 2]}))
    land(warehouse)
    assert (
        "company_id -> companies.id: crm.companies has no column id"
        in failed(warehouse)["foreign_keys_resolve"].description
    )


@pytest.mark.parametrize(("classification", "recorded"), [(None, True), ("email", False)])
def test_the_parents_key_hash_is_recorded_only_for_keys_that_are_not_pii(
    warehouse, classification, recorded
):
    """The publish compares it with the version Looker reads; for one PII key it would be that
    key's hash, so a PII key is joined again at publish instead."""
    column = dataclasses.replace(CONTACTS.column("company_id"), classification=classification)
    columns = tuple(column if c.name == "company_id" else c for c in CONTACTS.columns)
    table = dataclasses.replace(CONTACTS, columns=columns)
    land(warehouse)
    check = results(warehouse, table)["foreign_keys_resolve"]
    found = check.metadata["foreign_keys"].value["company_id -> companies.id"]
    assert found["parent_keys"] == 2
    assert (found["parent_key_hash"] is not None) == recorded


def test_stale_and_out_of_bounds(warehouse):
    land(warehouse, _fivetran_synced=[NOW - timedelta(days=3)] * 3)
    stale = failed(warehouse)["data_is_fresh"]
    assert "SLA 24 h" in stale.description and stale.metadata["age_hours"].value > 71
    small = TableContract(**{**CONTACTS.__dict__, "row_count_min": 5})
    assert (
        "3 live rows, expected [5, 10]"
        in failed(warehouse, small)["row_count_in_bounds"].description
    )


def test_fivetran_config_drift():
    state = TableState(
        columns={},
        fivetran_columns={
            "id": {"enabled": True},
            "company_id": {"enabled": False},
            "email": {"enabled": True, "hashed": False},
            "ssn": {"enabled": True},
        },
    )
    verdict = pii.judge_config(CONTACTS, state, {})
    assert not verdict.passed
    assert "company_id: disabled in Fivetran" in verdict.summary
    assert "email: contract says hashed, Fivetran does not hash it" in verdict.summary
    assert "ssn: contract blocks it, Fivetran syncs it" in verdict.summary


def test_rule_modules_export_what_factory_uses():
    names = [rule.check_name for rule in RULES]
    assert len(names) == len(set(names))
    assert {r.check_name for r in (*schema.RULES, *keys.RULES, *freshness.RULES)} <= set(names)


@pytest.mark.parametrize(("nulls", "passed"), [(1, True), (3, False)])
def test_optional_column_null_share_is_bounded(warehouse, nulls, passed):
    from pipeline.checks import not_null

    table = TableContract(
        connector="crm",
        name="visits",
        owner="team:growth",
        description="",
        columns=(
            ColumnContract("id", "BIGINT", family="number", required=True),
            ColumnContract("referrer", "VARCHAR", max_null_fraction=0.25),
        ),
    )
    referrer = [None] * nulls + ["ads"] * (8 - nulls)
    warehouse.write_table("crm", "visits", pd.DataFrame({"id": range(8), "referrer": referrer}))
    [result] = evaluate(table, [not_null.RULE], warehouse)
    assert result.passed is passed
    assert result.metadata["null_fractions"].value == {"referrer": nulls / 8}
    if not passed:
        assert "referrer: 37.5% null, at most 25.0% allowed" in result.description


def test_sampled_hash_check_still_counts_every_raw_value(warehouse):
    from pipeline.checks.profile import run_profile

    emails = [sha(f"user{i}@example.com") for i in range(1000)] + ["raw@example.com"] * 5
    warehouse.write_table("crm", "contacts", pd.DataFrame({"email": emails}))
    state = TableState(columns={"email": "VARCHAR"}, row_estimate=10_000_000)  # forces a sample
    assert pii_scan.sample_rate(CONTACTS, state) < 1
    values, sql = run_profile(warehouse, CONTACTS, pii.metrics(CONTACTS, state, "duckdb"))
    assert values["not_hashed:email"] == 5  # wrong length: judged on every row, not sampled
    assert "hash(" in sql.lower()


def test_pii_sample_is_drawn_by_primary_key_so_a_repeated_value_is_seen(warehouse):
    from pipeline.checks.profile import run_profile

    notes = ["call me at jane@example.com"] * 5000  # one leaked value, everywhere
    warehouse.write_table("crm", "contacts", pd.DataFrame({"id": range(5000), "notes": notes}))
    state = TableState(columns={"id": "BIGINT", "notes": "VARCHAR"}, row_estimate=10_000_000)
    rate = pii_scan.sample_rate(CONTACTS, state)
    values, _ = run_profile(warehouse, CONTACTS, pii_scan.metrics(CONTACTS, state, "duckdb"))
    # On DuckDB a large table's candidates are counted after the profile.
    values |= pii_scan.counts(CONTACTS, state, warehouse, values["rows"])
    # By value, the one repeated value would be in the sample everywhere or nowhere.
    assert 0 < values["candidates:notes"] < 5000
    assert abs(values["candidates:notes"] - 5000 * rate) < 5000 * rate  # about the sample rate
    sql = pii_scan.counts_sql(CONTACTS, state, ["notes"], "duckdb", values["rows"])
    assert 'hash("id", 0)' in sql.lower()  # by key, and the seed (0 without a run)


@pytest.mark.parametrize(
    ("ids", "method"), [([1, 2, 3, 4], "BITSTRING_AGG"), ([1, 2, 2, 4], "HAVING")]
)
def test_integer_key_is_proven_unique_by_bitmap_and_duplicates_still_counted(
    warehouse, ids, method
):
    table = TableContract(
        connector="crm",
        name="visits",
        owner="team:growth",
        description="",
        columns=(ColumnContract("id", "BIGINT", family="number", primary_key=True, unique=True),),
    )
    warehouse.write_table("crm", "visits", pd.DataFrame({"id": ids}))
    [result] = evaluate(table, [keys.RULES[0]], warehouse)
    assert result.passed is (len(set(ids)) == len(ids))
    assert method in result.metadata["sql"].value
    if not result.passed:
        assert "(id): 1 values repeated over 2 rows" in result.description


def test_pii_validators_survive_odd_boundaries():
    from pipeline.checks.detect import pii_classes

    assert pii_classes("token DE89ABCDEFGHIJKL= end") == []  # IBAN-shaped, fails the checksum
    assert pii_classes("pay to GB82 WEST 1234 5698 7654 32.") == ["iban"]


def test_hex_digests_are_not_card_numbers():
    from pipeline.checks.detect import pii_classes

    digests = [sha(str(i)) for i in range(5000)]  # ~0.45% held a Luhn-valid digit run before
    assert not [d for d in digests if "card" in pii_classes(d)]
    assert pii_classes("card 4111 1111 1111 1111 on file") == ["card"]


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        (hashlib.md5(b"a@x.com").hexdigest(), "32 hex characters, looks like MD5"),
        (hashlib.sha1(b"a@x.com").hexdigest(), "40 hex characters, looks like SHA-1"),
        ("bob.smith@example.com", "21 characters with an '@', looks like an email"),
    ],
)
def test_non_hash_message_names_the_expected_and_the_seen_shape(warehouse, raw, seen):
    land(warehouse, email=[sha("a@x.com"), raw, None])
    description = failed(warehouse)["pii_arrives_as_contracted"].description
    assert "expected SHA-256: 64 hex or 44 base64 characters" in description
    assert seen in description and raw not in description


@pytest.mark.parametrize(("landed", "renamed"), [("email", False), ("Email", True)])
def test_case_only_rename_is_reported_on_duckdb(warehouse, landed, renamed):
    land(warehouse)
    warehouse.query(f'ALTER TABLE crm.contacts RENAME COLUMN "email" TO "{landed}"')
    result = results(warehouse)["contract_columns_are_present"]
    assert result.passed is not renamed
    if renamed:
        assert "email: landed as 'Email' (renamed by case only)" in result.description


@pytest.mark.parametrize(("landed", "renamed"), [("EMAIL", False), ("Email", True)])
def test_case_only_rename_is_reported_on_snowflake(snowflake, landed, renamed):
    from pipeline.checks import schema as schema_rules

    snowflake.query('CREATE SCHEMA IF NOT EXISTS "CRM"')
    snowflake.query(f'CREATE OR REPLACE TABLE "CRM"."CONTACTS" ("ID" NUMBER, "{landed}" VARCHAR)')
    table = TableContract(
        connector="crm",
        name="contacts",
        owner="team:growth",
        description="",
        columns=(
            ColumnContract("id", "BIGINT", family="number"),
            ColumnContract("email", "VARCHAR"),
        ),
    )
    [result] = evaluate(table, [schema_rules.RULES[0]], snowflake)
    assert result.passed is not renamed, result.description
    if renamed:
        assert "email: landed as 'Email'" in result.description


def test_a_row_synced_in_the_future_fails_freshness_with_the_count(warehouse):
    land(warehouse, _fivetran_synced=[NOW - timedelta(days=30)] * 2 + [NOW + timedelta(days=3650)])
    result = failed(warehouse)["data_is_fresh"]
    assert "1 rows have _fivetran_synced in the future" in result.description
    assert result.metadata["future_rows"].value == 1


def test_a_table_referencing_itself_is_judged_on_its_own_snapshot(warehouse):
    """A manager who landed after the snapshot was taken is not in the version that publishes."""
    people = TableContract(
        connector="crm",
        name="people",
        owner="team:growth",
        description="",
        columns=(
            ColumnContract("id", "BIGINT", family="number", primary_key=True, unique=True),
            ColumnContract("manager_id", "BIGINT", family="number", references=("people.id",)),
        ),
    )
    warehouse.write_table("audit", "people_v1", pd.DataFrame({"id": [1, 2], "manager_id": [1, 3]}))
    warehouse.write_table("crm", "people", pd.DataFrame({"id": [1, 2, 3], "manager_id": [1, 3, 1]}))
    audited = TableContract(**{**people.__dict__, "audited": ("audit", "people_v1")})
    state = TableState(columns=warehouse.columns("audit", "people_v1"))
    found = keys.orphans_followup(audited, state, warehouse, {})["foreign_keys"]
    assert found["manager_id -> people.id"]["orphans"] == 1
