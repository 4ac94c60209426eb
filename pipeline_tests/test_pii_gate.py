"""Scope: the two proven false passes of the PII scan, end to end in-process through the sandbox:
look-alikes ahead of real PII, and PII rows a fixed sample never reads."""

from dagster import AssetCheckKey, AssetKey, DagsterInstance

from pipeline.checks import pii_scan
from pipeline.definitions import build_definitions
from pipeline.warehouse import DuckDBWarehouse
from pipeline_tests.gate import failed_checks, run_gate

DEALS = AssetKey(["fivetran", "crm", "deals"])
SCAN = AssetCheckKey(DEALS, pii_scan.RULE.check_name)
PII = "ssn 078-05-1120, write to jane.doe@example.com"


def run_scan(instance: DagsterInstance):
    """Only the deals PII scan, on what the warehouse holds now (no sync in between)."""
    job = build_definitions().resolve_implicit_global_asset_job_def()
    scan_only = job.get_subset(asset_selection=set(), asset_check_selection={SCAN})
    return scan_only.execute_in_process(instance=instance, raise_on_error=False)


def evaluation(result):
    [found] = [e for e in result.get_asset_check_evaluations() if e.check_name == SCAN.name]
    return found


def rewrite_notes(isolated_data_dir, case_sql: str) -> None:
    """Rewrite crm.deals in id order with new notes; _fivetran_synced stays as it landed."""
    warehouse = DuckDBWarehouse(path=str(isolated_data_dir / "warehouse.duckdb"))
    with warehouse.connect() as conn:
        conn.execute(
            f'CREATE OR REPLACE TABLE "crm"."deals" AS SELECT * REPLACE ({case_sql} AS "notes") '
            'FROM "crm"."deals" ORDER BY "id"'
        )


def test_look_alikes_ahead_of_real_pii_fail_the_scan(isolated_data_dir):
    # Before: 50 candidates were read unordered and the ones Python rejected counted as clean.
    instance = DagsterInstance.ephemeral()
    assert run_gate(instance=instance).success
    rewrite_notes(
        isolated_data_dir,
        'CASE WHEN "id" IN (SELECT "id" FROM "crm"."deals" ORDER BY "id" LIMIT 60) '
        "THEN 'called back at 10:30:00' "
        f'WHEN "id" = (SELECT max("id") FROM "crm"."deals") THEN \'{PII}\' '
        'ELSE "notes" END',
    )
    result = run_scan(instance)
    assert not result.success
    failed = failed_checks(result)
    description = failed["crm", "deals", SCAN.name]
    assert "email (1 rows)" in description and "ssn (1 rows)" in description
    assert "jane" not in description and "1120" not in description


def test_pii_outside_a_fixed_sample_is_found_by_the_run_seeded_sample(
    isolated_data_dir, monkeypatch
):
    # Before: the sample was hash(id) % N, the same rows every run: 500 PII rows outside it
    # passed run after run. Now each run draws its own sample (here 10% of 4,000 rows).
    monkeypatch.setattr(pii_scan, "SAMPLE_ROWS", 400)
    instance = DagsterInstance.ephemeral()
    assert run_gate(instance=instance).success  # the first scan on record reads every row
    first = evaluation(run_scan(instance))
    assert first.passed and first.metadata["coverage"].value["full_scan"] is False
    outside_old_sample = 'abs(hash("id")) % 10000 >= 1000'
    rewrite_notes(
        isolated_data_dir,
        f'CASE WHEN "id" IN (SELECT "id" FROM "crm"."deals" WHERE {outside_old_sample} '
        f'ORDER BY "id" LIMIT 500) THEN \'{PII}\' ELSE "notes" END',
    )
    for _ in range(2):  # run after run
        scan = evaluation(run_scan(instance))
        assert not scan.passed
        assert "ssn (" in scan.description and "email (" in scan.description
        cover = scan.metadata["coverage"].value
        assert cover["rows_new_since_last_pass"] == 0  # found by the sample, not as new rows
        assert 0 < cover["rows_scanned"] < cover["live_rows"] == 4000


def test_coverage_adds_up_across_passing_scans(isolated_data_dir, monkeypatch):
    monkeypatch.setattr(pii_scan, "SAMPLE_ROWS", 400)
    instance = DagsterInstance.ephemeral()
    run_gate(instance=instance)
    once = evaluation(run_scan(instance)).metadata["coverage"].value
    again = evaluation(run_scan(instance)).metadata["coverage"].value
    # The gate's scan read all 4,000 rows; each sampled scan after it adds its own rows.
    assert once["scans_since_full_scan"] == 2 and again["scans_since_full_scan"] == 3
    assert once["rows_scanned_since_full_scan"] == 4000 + once["rows_scanned"]
    assert again["rows_scanned_since_full_scan"] == (
        once["rows_scanned_since_full_scan"] + again["rows_scanned"]
    )
    assert 0.09 < once["resampled_since_full_scan"] < again["resampled_since_full_scan"] < 0.2
