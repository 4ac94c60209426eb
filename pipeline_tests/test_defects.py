"""Scope: every sandbox defect, end to end in-process — the right check fails, Looker is held back."""

import re
from datetime import UTC, datetime

import pytest
from dagster import serialize_value

from pipeline.checks.patterns import SHAPES
from pipeline.sandbox.sources import sources
from pipeline_tests.gate import LOOKER_KEYS, failed_checks, materialized, run_gate

PAYMENTS_REFRESHES = {"payments_etl", "revenue_by_customer"}

# defect -> (the failed checks it must cause, the Looker refreshes that must still run)
CASES = {
    "missing_column": (
        {
            ("payments", "charges", "contract_columns_are_present"),
            ("payments", "charges", "required_columns_are_not_null"),
        },
        {"crm_etl"},
    ),
    "type_change": (
        {("payments", "invoices", "column_types_match_contract")},
        # The PDT does not read invoices, but lookml/payments (whose checks gate every
        # payments refresh) reads every payments table, so it is held back too.
        {"crm_etl"},
    ),
    "raw_pii": (
        {
            ("crm", "contacts", "pii_arrives_as_contracted"),
            ("crm", "contacts", "fivetran_config_matches_contract"),
        },
        PAYMENTS_REFRESHES,
    ),
    "pii_in_free_text": (
        {("crm", "deals", "no_pii_in_unclassified_columns")},
        PAYMENTS_REFRESHES,
    ),
    "duplicate_pk": ({("payments", "customers", "keys_are_unique")}, {"crm_etl"}),
    "orphan_fk": ({("payments", "charges", "foreign_keys_resolve")}, {"crm_etl"}),
    "stale": ({("crm", "companies", "data_is_fresh")}, PAYMENTS_REFRESHES),
}


@pytest.mark.parametrize("defect", sorted(CASES))
def test_defect_fails_its_check_and_holds_back_what_reads_it(monkeypatch, defect):
    expected_failures, still_refreshed = CASES[defect]
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", defect)
    result = run_gate()
    assert not result.success
    failures = failed_checks(result)
    assert set(failures) == expected_failures
    assert all("(owner: team:" in description for description in failures.values())
    refreshed = {key.path[-1] for key in materialized(result) & LOOKER_KEYS}
    assert refreshed == still_refreshed


def raw_pii_values(defects: frozenset[str]) -> set[str]:
    """Every raw PII value the sandbox lands under these defects: emails, SSNs and names."""
    frames = {
        (source.schema, table): frame
        for source in sources()
        for table, frame in source.land(defects, datetime.now(UTC)).items()
    }
    values = set(frames["crm", "contacts"]["email"]) | set(frames["payments", "customers"]["name"])
    for note in frames["crm", "deals"]["notes"].dropna():
        values |= {m.group("pii") for m in SHAPES["email"].python.finditer(note)}
        values |= {m.strip(" ,.") for m in re.findall(r"[0-9]{3}-[0-9]{2}-[0-9]{4}", note)}
    return values


def test_no_raw_pii_reaches_the_event_log(monkeypatch):
    defects = frozenset({"pii_in_free_text", "raw_pii"})
    monkeypatch.setenv("TOLLGATE_SANDBOX_DEFECTS", ",".join(defects))
    result = run_gate()
    assert {f[2] for f in failed_checks(result)} >= {"no_pii_in_unclassified_columns"}
    log = " ".join(serialize_value(event) for event in result.all_events)
    assert "[email " in log and "[ssn " in log  # the failing samples are there, redacted
    leaked = {value for value in raw_pii_values(defects) if value in log}
    assert not leaked
