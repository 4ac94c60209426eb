"""Scope: audits that judge only the rows synced since the last passing audit, on DuckDB: the
same verdicts as a full pass on defects in the new rows, and every case that must read all rows."""

import shutil
import textwrap
from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from pipeline.checks import incremental, keys, not_null
from pipeline.checks.factory import evaluate, table_rules, table_state
from pipeline.contract import CONTRACTS_DIR, load_contracts
from pipeline.sandbox import source_edits
from pipeline.warehouse import DuckDBWarehouse
from pipeline_tests.gate import SHOP_HEADER, run_gate

CONTRACT = (
    SHOP_HEADER
    + """
schema:
  - name: accounts
    properties:
      - {name: id, physicalType: BIGINT, primaryKey: true}
  - name: orders
    customProperties:
      - {property: piiScan, value: exact}
      - {property: fullAuditEvery, value: EVERY}
      - {property: freshnessHours, value: 240}
    properties:
      - {name: id, physicalType: BIGINT, primaryKey: true}
      - name: account_id
        physicalType: BIGINT
        required: true
        relationships: [{type: foreignKey, to: accounts.id}]
      - name: email
        physicalType: VARCHAR
        classification: email
        customProperties: [{property: piiHandling, value: hashed}]
      - name: status
        physicalType: VARCHAR
        quality: [{metric: invalidValues, mustBe: 0, arguments: {validValues: [paid, open]}}]
      - {name: notes, physicalType: VARCHAR}
"""
)
ROWS = 2_000
HASH = "sha256(id::VARCHAR)"
# Each defect lands in new rows only (synced now); the rule that must catch it.
DEFECTS = {
    "null required": ("(9001, NULL, {hash}, 'paid', 'ok')", "required_columns_are_not_null"),
    "key taken by an old row": ("(17, 1, {hash}, 'paid', 'ok')", "keys_are_unique"),
    "key twice in the sync": (
        "(9001, 1, {hash}, 'paid', 'ok'), (9001, 2, {hash}, 'open', 'ok')",
        "keys_are_unique",
    ),
    "orphan": ("(9001, 777, {hash}, 'paid', 'ok')", "foreign_keys_resolve"),
    "unhashed email": ("(9001, 1, 'jane@example.com', 'paid', 'ok')", "pii_arrives_as_contracted"),
    "invalid value": ("(9001, 1, {hash}, 'bogus', 'ok')", "quality_status_invalid_values"),
    "pii in free text": (
        "(9001, 1, {hash}, 'paid', 'ssn 078-05-1120')",
        "no_pii_in_unclassified_columns",
    ),
}


@pytest.fixture(autouse=True)
def small_tables_too(monkeypatch):
    monkeypatch.setattr(incremental, "MIN_ROWS", 100)


@pytest.fixture
def shop(tmp_path, duck):
    return contract(tmp_path, duck, every=24)


def contract(tmp_path, duck, every):
    (tmp_path / "c").mkdir(exist_ok=True)
    (tmp_path / "c" / "shop.yaml").write_text(
        textwrap.dedent(CONTRACT).replace("EVERY", str(every))
    )
    table = load_contracts(tmp_path / "c")["shop"].tables["orders"]
    duck.execute(
        [
            "CREATE SCHEMA IF NOT EXISTS shop",
            "CREATE OR REPLACE TABLE shop.accounts AS SELECT i AS id, "
            "now() - INTERVAL 3 DAY AS _fivetran_synced, false AS _fivetran_deleted "
            "FROM range(1, 11) t(i)",
            "CREATE OR REPLACE TABLE shop.orders AS SELECT i AS id, 1 + i % 10 AS account_id, "
            f"sha256(i::VARCHAR) AS email, 'paid' AS status, 'note ' || i AS notes, "
            # Older syncs, one stamp per row.
            "now() - INTERVAL 2 DAY - i * INTERVAL 1 SECOND AS _fivetran_synced, "
            f"false AS _fivetran_deleted FROM range({ROWS}) t(i)",
        ]
    )
    return table


def sync(duck, changed=20, rows=""):
    """An incremental sync: `changed` old rows updated, `rows` (SQL tuples) inserted, now."""
    statements = [
        f"UPDATE shop.orders SET status = 'open', _fivetran_synced = now() WHERE id < {changed}"
    ]
    if rows:
        hashed = rows.format(hash=f"sha256('{HASH}')")
        statements.append(
            "INSERT INTO shop.orders SELECT *, now(), false FROM (VALUES " + hashed + ")"
        )
    duck.execute(statements)


def audit(table, duck, previous=None):
    """Every rule judged as the check does: planned against `previous` results, views released."""
    rules = [r for r in table_rules(table) if not r.needs_fivetran_config]  # no Fivetran here
    state = table_state(table, rules, duck)
    plan = incremental.plan(table, rules, state, duck, previous or {})
    try:
        return {r.check_name: r for r in evaluate(table, rules, duck, state, None, plan)}
    finally:
        incremental.release(duck, plan)


def scope(result):
    return result.metadata[incremental.AUDIT].value


def test_a_delta_audit_judges_only_new_rows_and_passes_the_watermark_on(shop, duck):
    first = audit(shop, duck)
    assert all(r.passed for r in first.values()), [
        r.description for r in first.values() if not r.passed
    ]
    assert scope(first["keys_are_unique"])["why_every_row"] == "no earlier audit on record"
    sync(duck, changed=20)
    second = audit(shop, duck, incremental.previous_of(first))
    assert all(r.passed for r in second.values())
    keys = scope(second["keys_are_unique"])
    assert keys["scope"] == incremental.SINCE_LAST
    assert keys["since"] == scope(first["keys_are_unique"])["watermark"]
    assert keys["rows_judged"] == 20 and keys["rows"] == ROWS
    assert "judged the 20 rows synced since" in second["keys_are_unique"].description
    # Freshness and volume read every row, each time.
    assert scope(second["data_is_fresh"])["scope"] == incremental.EVERY_ROW
    sync(duck, changed=5)
    third = audit(shop, duck, incremental.previous_of(second))
    assert scope(third["keys_are_unique"])["since"] == keys["watermark"]
    assert scope(third["keys_are_unique"])["delta_passes"] == 2


@pytest.mark.parametrize("defect", DEFECTS)
def test_a_defect_in_new_rows_gets_the_verdicts_of_a_full_pass(shop, duck, defect):
    first = audit(shop, duck)
    rows, rule = DEFECTS[defect]
    sync(duck, changed=20, rows=rows)
    delta = audit(shop, duck, incremental.previous_of(first))
    full = audit(shop, duck)
    assert scope(delta[rule])["scope"] == incremental.SINCE_LAST
    assert not delta[rule].passed, delta[rule].description
    assert {n: r.passed for n, r in delta.items()} == {n: r.passed for n, r in full.items()}


def test_after_a_failed_audit_every_row_is_read_again(shop, duck):
    first = audit(shop, duck)
    sync(duck, rows=DEFECTS["null required"][0])
    failed = audit(shop, duck, incremental.previous_of(first))
    assert not failed["required_columns_are_not_null"].passed
    again = audit(shop, duck, incremental.previous_of(failed))
    assert not again["required_columns_are_not_null"].passed  # the old bad row is still there
    assert scope(again["required_columns_are_not_null"])["why_every_row"] == (
        "the last audit did not pass"
    )
    assert scope(again["keys_are_unique"])["scope"] == incremental.SINCE_LAST


def test_rows_backdated_behind_the_watermark_are_not_taken_as_audited(shop, duck):
    """A row written with an old `_fivetran_synced` (not by Fivetran) falls outside the delta;
    the row count gives it away and every row is read, so its null is found."""
    first = audit(shop, duck)
    duck.execute(
        [
            "INSERT INTO shop.orders VALUES (9001, NULL, 'x', 'paid', 'ok', "
            "now() - INTERVAL 5 DAY, false)"
        ]
    )
    second = audit(shop, duck, incremental.previous_of(first))
    result = second["required_columns_are_not_null"]
    assert not result.passed
    assert scope(result)["why_every_row"] == "1 rows appeared behind the last audit's watermark"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("UPDATE shop.orders SET _fivetran_synced = now()", "every row was synced again"),
        ("ALTER TABLE shop.orders ADD COLUMN coupon VARCHAR", "the table's columns changed"),
        (
            "UPDATE shop.orders SET _fivetran_synced = now() WHERE id < 1500",
            "most rows were synced since",
        ),
    ],
)
def test_changes_that_read_every_row_again(shop, duck, change, why):
    first = audit(shop, duck)
    duck.execute([change])
    second = audit(shop, duck, incremental.previous_of(first))
    assert scope(second["keys_are_unique"])["why_every_row"].startswith(why)


def test_a_contract_change_reads_every_row_again(shop, duck):
    first = audit(shop, duck)
    sync(duck)
    changed = replace(shop, description="now with a description")
    second = audit(changed, duck, incremental.previous_of(first))
    assert scope(second["keys_are_unique"])["why_every_row"] == (
        "the contract changed since the last audit"
    )


def test_every_nth_audit_reads_every_row(tmp_path, duck):
    table = contract(tmp_path, duck, every=3)
    results, scopes = {}, []
    for _ in range(5):
        results = audit(table, duck, incremental.previous_of(results) if results else None)
        scopes.append(scope(results["keys_are_unique"])["scope"])
        sync(duck)
    full, delta = incremental.EVERY_ROW, incremental.SINCE_LAST
    assert scopes == [full, delta, delta, full, delta]


def test_an_old_child_whose_parent_was_deleted_since_is_an_orphan(shop, duck):
    """Child rows that resolved before lose their parent when Fivetran soft-deletes it: the
    foreign-key rule then reads every child row, not only the new ones."""
    first = audit(shop, duck)
    duck.execute(
        ["UPDATE shop.accounts SET _fivetran_deleted = true, _fivetran_synced = now() WHERE id = 3"]
    )
    second = audit(shop, duck, incremental.previous_of(first))
    result = second["foreign_keys_resolve"]
    assert not result.passed and "200 rows point nowhere" in result.description
    [entry] = result.metadata["foreign_keys"].value.values()
    assert entry["child_rows_read"] == "every child row: 1 parent rows were deleted since"


def test_a_parent_losing_rows_reads_every_child(shop, duck):
    first = audit(shop, duck)
    duck.execute(["DELETE FROM shop.accounts WHERE id = 4"])
    second = audit(shop, duck, incremental.previous_of(first))
    assert not second["foreign_keys_resolve"].passed
    [entry] = second["foreign_keys_resolve"].metadata["foreign_keys"].value.values()
    assert entry["child_rows_read"] == "every child row: the parent lost 1 rows"


NOTES = "quality_notes_missing_values"


def notes_rule(tmp_path, duck, rule: str, missing: int = 0, notes: str = ""):
    """The shop contract with one quality rule on notes (or `notes` as its whole column entry);
    `missing` old rows without notes."""
    text = textwrap.dedent(CONTRACT).replace("EVERY", "24")
    column = f"{{name: notes, physicalType: VARCHAR, quality: [{{metric: missingValues, {rule}}}]}}"
    text = text.replace("- {name: notes, physicalType: VARCHAR}", f"- {notes or column}")
    contract(tmp_path, duck, every=24)  # the tables
    (tmp_path / "c" / "shop.yaml").write_text(text)
    duck.execute([f"UPDATE shop.orders SET notes = NULL WHERE id >= {ROWS - missing}"])
    return load_contracts(tmp_path / "c")["shop"].tables["orders"]


def lose_notes(duck, ids: str, notes: str = "NULL"):
    """A sync that rewrites the rows `ids` (a SQL condition on id) with these notes."""
    duck.execute([f"UPDATE shop.orders SET notes = {notes}, _fivetran_synced = now() WHERE {ids}"])


def test_a_count_rule_counts_the_new_rows_and_bounds_the_rest_by_its_last_count(tmp_path, duck):
    table = notes_rule(tmp_path, duck, "mustBeLessThan: 10, unit: percent")
    first = audit(table, duck)
    assert first[NOTES].passed and first[NOTES].metadata["counted_rows"].value == [0, 0]
    lose_notes(duck, "id < 40", "CASE WHEN id % 8 = 0 THEN NULL ELSE 'kept' END")  # 5 of 40
    second = audit(table, duck, incremental.previous_of(first))
    assert second[NOTES].passed, second[NOTES].description
    assert scope(second[NOTES])["scope"] == incremental.SINCE_LAST
    assert scope(second[NOTES])["rows_judged"] == 40
    # Nothing was missing before, so the 35 rows kept add none: exactly the 5 new ones.
    assert second[NOTES].metadata["counted_rows"].value == [5, 5]
    lose_notes(duck, "id < 20", "'back'")  # 3 of the 5 get notes again; 20 rows replaced
    third = audit(table, duck, incremental.previous_of(second))
    assert third[NOTES].passed and scope(third[NOTES])["scope"] == incremental.SINCE_LAST
    least, most = third[NOTES].metadata["counted_rows"].value
    exact = audit(table, duck)[NOTES].metadata["counted_rows"].value
    assert exact == [2, 2] and least == 0 and most == 5
    assert "between 0.00% and 0.25% of 2000 live rows" in third[NOTES].description


@pytest.mark.parametrize(
    ("rule", "missing", "synced", "notes", "passes"),
    [
        # 30 new rows without notes: 1.5%, over the limit at both bounds.
        ("mustBeLessThan: 1, unit: percent", 0, "id < 30", "NULL", False),
        # 19 missing (0.95%); 20 other rows rewritten: the bounds reach 0%, the count is 0.95%.
        ("mustBeGreaterThan: 0.9, unit: percent", 19, "id < 20", "'new'", True),
        # 19 missing; all of them rewritten with notes: 0 left, under the range.
        ("mustBeBetween: [10, 25]", 19, f"id >= {ROWS - 20}", "'back'", False),
    ],
)
def test_a_count_its_bounds_leave_open_is_counted_on_every_row_as_a_full_pass_would(
    tmp_path, duck, rule, missing, synced, notes, passes
):
    table = notes_rule(tmp_path, duck, rule, missing)
    first = audit(table, duck)
    assert first[NOTES].passed, first[NOTES].description
    lose_notes(duck, synced, notes)
    delta = audit(table, duck, incremental.previous_of(first))
    full = audit(table, duck)
    assert delta[NOTES].passed is full[NOTES].passed is passes, delta[NOTES].description
    assert scope(delta[NOTES])["scope"] == incremental.EVERY_ROW
    assert scope(delta[NOTES])["why_every_row"].startswith("the count since the last audit left")
    assert scope(delta[NOTES])["delta_passes"] == 0
    assert delta[NOTES].metadata["counted_rows"].value == full[NOTES].metadata["counted_rows"].value


def test_a_count_whose_last_result_recorded_no_count_reads_every_row(tmp_path, duck):
    table = notes_rule(tmp_path, duck, "mustBeLessThan: 10, unit: percent")
    previous = incremental.previous_of(audit(table, duck))
    metadata = dict(previous[NOTES].metadata)
    del metadata["counted_rows"]  # as results recorded before counts were kept
    previous[NOTES] = replace(previous[NOTES], metadata=metadata)
    lose_notes(duck, "id < 20")
    second = audit(table, duck, previous)
    assert second[NOTES].passed
    assert scope(second[NOTES])["why_every_row"] == (
        "the last audit recorded no row count to start from"
    )


def test_a_count_held_outside_a_range_always_reads_every_row(tmp_path, duck):
    """mustNotBeBetween passes on both sides of a range: bounds on either side prove nothing."""
    table = notes_rule(tmp_path, duck, "mustNotBeBetween: [1, 5]")
    first = audit(table, duck)
    lose_notes(duck, "id < 3")
    second = audit(table, duck, incremental.previous_of(first))
    assert not second[NOTES].passed  # 3 missing
    assert scope(second[NOTES])["scope"] == incremental.EVERY_ROW


NOT_NULL = "required_columns_are_not_null"


def notes_bounded(tmp_path, duck, fraction: float, missing: int = 0):
    """The shop contract with notes optional, at most `fraction` of them null."""
    bound = f"customProperties: [{{property: maxNullFraction, value: {fraction}}}]"
    return notes_rule(
        tmp_path, duck, "", missing, f"{{name: notes, physicalType: VARCHAR, {bound}}}"
    )


def test_null_shares_under_max_null_fraction_are_counted_on_the_new_rows(tmp_path, duck):
    table = notes_bounded(tmp_path, duck, 0.05)
    first = audit(table, duck)
    assert first[NOT_NULL].metadata["counted_rows"].value == {"notes": [0, 0]}
    lose_notes(duck, "id < 40", "CASE WHEN id % 8 = 0 THEN NULL ELSE 'kept' END")  # 5 of 40
    second = audit(table, duck, incremental.previous_of(first))
    assert second[NOT_NULL].passed, second[NOT_NULL].description
    assert scope(second[NOT_NULL])["scope"] == incremental.SINCE_LAST
    assert second[NOT_NULL].metadata["counted_rows"].value == {"notes": [5, 5]}
    assert "notes 0.2% to 0.2%" in second[NOT_NULL].description


@pytest.mark.parametrize(
    ("synced", "account_id", "passes"),
    [
        ("id < 120", "account_id", False),  # 120 new nulls: 6%, over the 5% bound
        ("id < 20", "NULL", False),  # a required column null in a new row
    ],
)
def test_null_shares_or_new_nulls_the_bounds_cannot_settle_count_every_row(
    tmp_path, duck, synced, account_id, passes
):
    table = notes_bounded(tmp_path, duck, 0.05)
    first = audit(table, duck)
    duck.execute(
        [
            f"UPDATE shop.orders SET notes = NULL, account_id = {account_id}, "
            f"_fivetran_synced = now() WHERE {synced}"
        ]
    )
    delta = audit(table, duck, incremental.previous_of(first))
    full = audit(table, duck)
    assert delta[NOT_NULL].passed is full[NOT_NULL].passed is passes
    assert delta[NOT_NULL].description == full[NOT_NULL].description
    assert scope(delta[NOT_NULL])["why_every_row"].startswith("new nulls, or null shares")


def test_a_required_column_gone_is_never_passed_on_null_share_bounds(tmp_path, duck):
    """The bounds speak for the bounded columns only: a required column the table no longer has
    fails, as in a full pass, even when a delta's counts would settle every share."""
    table = notes_bounded(tmp_path, duck, 0.05)
    first = audit(table, duck)
    lose_notes(duck, "id < 20", "'new'")
    rules = [r for r in table_rules(table) if not r.needs_fivetran_config]
    state = table_state(table, rules, duck)
    plan = incremental.plan(table, rules, state, duck, incremental.previous_of(first))
    try:
        without = {k: v for k, v in state.columns.items() if k != "account_id"}
        seen = replace(plan.state(not_null.RULE, table, state), columns=without)
        subject = plan.subject(not_null.RULE, table)
        profile = {"rows": 20, "nulls:notes": 0}  # what the delta's profile holds without it
        profile |= not_null.followup(subject, seen, duck, profile)
        verdict = not_null.judge(subject, seen, profile)
    finally:
        incremental.release(duck, plan)
    assert not verdict.passed and "account_id: column missing" in verdict.summary


def test_a_null_share_whose_bounds_reach_past_it_still_passes_on_every_row(tmp_path, duck):
    """4.5% null of a 5% bound; 20 rows with notes rewritten: the bound reaches 5.5% (open),
    every row is counted, 4.5% passes as in a full pass."""
    table = notes_bounded(tmp_path, duck, 0.05, missing=90)
    first = audit(table, duck)
    assert first[NOT_NULL].passed
    lose_notes(duck, "id < 20", "NULL")  # 20 more nulls
    lose_notes(duck, f"id >= {ROWS - 20}", "'back'")  # 20 of the 90 filled: 4.5% again
    delta = audit(table, duck, incremental.previous_of(first))
    assert delta[NOT_NULL].passed and audit(table, duck)[NOT_NULL].passed
    assert scope(delta[NOT_NULL])["scope"] == incremental.EVERY_ROW


FROM_FACTS = ("data_is_fresh", "row_count_in_bounds", "quality_no_negative_ids")
TABLE_RULES = """- {property: freshnessHours, value: 240}
      - {property: rowCount, value: {min: 1}}
    quality:
      - {name: no negative ids, type: sql, mustBe: 0, query: 'SELECT count(*) FROM {object} WHERE id < 0'}"""


def test_freshness_and_volume_take_the_plans_counts_instead_of_reading_every_row_again(
    tmp_path, duck, monkeypatch
):
    """The plan counts every row (total, live, newest and future stamps) to find the delta;
    freshness, the volume bounds and a SQL rule's live rows are judged on those counts, as a
    read of their own would."""
    text = textwrap.dedent(CONTRACT).replace("EVERY", "24")
    text = text.replace("- {property: freshnessHours, value: 240}", TABLE_RULES)
    contract(tmp_path, duck, every=24)  # the tables
    (tmp_path / "c" / "shop.yaml").write_text(text)
    table = load_contracts(tmp_path / "c")["shop"].tables["orders"]
    duck.execute(["UPDATE shop.orders SET _fivetran_deleted = true WHERE id < 7"])

    asked = []

    def unread(table, state, dialect):  # what the rule would have read itself
        asked.append(table.name)
        return {}

    rules = [
        replace(r, metrics=unread) if r.check_name in FROM_FACTS else r
        for r in table_rules(table)
        if not r.needs_fivetran_config
    ]
    state = table_state(table, rules, duck)
    plan = incremental.plan(table, rules, state, duck, {})
    planned = {r.check_name: r for r in evaluate(table, rules, duck, state, None, plan)}
    own = {r.check_name: r for r in evaluate(table, table_rules(table), duck, state)}
    assert asked == []
    for name in FROM_FACTS:
        assert planned[name].passed and own[name].passed, planned[name].description
        assert planned[name].description == own[name].description
    assert planned["row_count_in_bounds"].metadata["deleted_rows"].value == 7
    assert planned["quality_no_negative_ids"].metadata["live_rows"].value == ROWS - 7
    # Under MIN_ROWS the plan takes no counts: the rules read the table themselves.
    monkeypatch.setattr(incremental, "MIN_ROWS", 10**9)
    small = incremental.plan(table, rules, state, duck, {})
    list(evaluate(table, rules, duck, state, None, small))
    assert asked == ["orders"] * 3


def test_rows_stamped_in_the_future_fail_freshness_from_the_plans_counts(shop, duck):
    duck.execute(["UPDATE shop.orders SET _fivetran_synced = now() + INTERVAL 1 DAY WHERE id < 3"])
    result = audit(shop, duck)["data_is_fresh"]
    assert not result.passed
    assert "3 rows have _fivetran_synced in the future" in result.description


def test_the_delta_views_are_dropped(shop, duck):
    first = audit(shop, duck)
    sync(duck)
    audit(shop, duck, incremental.previous_of(first))
    views = duck.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")
    assert views == []


def test_a_plan_that_fails_drops_the_views_it_made(shop, duck, monkeypatch):
    first = audit(shop, duck)
    sync(duck)
    previous = incremental.previous_of(first)
    # Two rules with different watermarks: the plan makes two delta views, and the second fails.
    later = "required_columns_are_not_null"
    audited = previous[later].metadata[incremental.AUDIT]
    stamp = datetime.fromisoformat(audited["watermark"]) + timedelta(microseconds=1)
    previous[later] = replace(
        previous[later],
        metadata={
            **previous[later].metadata,
            incremental.AUDIT: {**audited, "watermark": stamp.isoformat()},
        },
    )
    made = incremental._create_view

    def second_fails(warehouse, table, state, since, n):
        if n:
            raise RuntimeError("warehouse went away")
        return made(warehouse, table, state, since, n)

    monkeypatch.setattr(incremental, "_create_view", second_fails)
    rules = [r for r in table_rules(shop) if not r.needs_fivetran_config]
    with pytest.raises(RuntimeError, match="warehouse went away"):
        incremental.plan(shop, rules, table_state(shop, rules, duck), duck, previous)
    assert duck.query("SELECT view_name FROM duckdb_views() WHERE NOT internal") == []


def test_new_keys_asked_for_without_a_delta_name_the_table(shop, duck):
    state = table_state(shop, table_rules(shop), duck)
    with pytest.raises(ValueError, match=r"shop\.orders: no synced rows to judge keys on"):
        keys.delta_rows(shop, ("id",), state, "duckdb")


def test_the_gate_reads_its_watermark_from_dagster_and_catches_a_defect_in_a_sync(
    isolated_data_dir, monkeypatch, tmp_path
):
    """End to end through the sandbox: the second run's audit of crm.deals judges only the row
    its incremental sync changed (the watermark and a count rule's count read back from the
    first run's check records in Dagster), and that row breaks the contract."""
    monkeypatch.setattr(incremental, "MIN_ROWS", 1_000)
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    crm = (contracts / "crm.yaml").read_text()
    notes = "- {name: notes, physicalType: VARCHAR, description: Free text; scanned for PII.}"
    assert notes in crm
    crm = crm.replace(notes, notes[:-1] + ", quality: [{metric: missingValues, mustBeLessThan: 90,"
                      " unit: percent}]}")  # fmt: skip
    (contracts / "crm.yaml").write_text(crm)
    monkeypatch.setenv("TOLLGATE_CONTRACTS_DIR", str(contracts))
    instance = DagsterInstance.ephemeral()
    assert run_gate(instance=instance).success
    warehouse = DuckDBWarehouse(path=str(isolated_data_dir / "warehouse.duckdb"))
    [row] = warehouse.query('SELECT min("id") AS id FROM "crm"."deals"')
    source_edits.edit_source("crm_sandbox", "deals", upsert=[{"id": row["id"], "stage": None}])
    second = run_gate(instance=instance)
    assert not second.success
    deals = AssetKey(["fivetran", "crm", "deals"])
    found = {e.check_name: e for e in second.get_asset_check_evaluations() if e.asset_key == deals}
    not_null = found["required_columns_are_not_null"]
    assert not not_null.passed and "stage: 1 of 1 rows null" in not_null.description
    audit = not_null.metadata[incremental.AUDIT].value
    assert audit["scope"] == incremental.SINCE_LAST and audit["rows_judged"] == 1
    assert found["keys_are_unique"].passed
    assert found["keys_are_unique"].metadata[incremental.AUDIT].value["rows_judged"] == 1
    share = found["quality_notes_missing_values"]
    assert share.passed and share.metadata[incremental.AUDIT].value["rows_judged"] == 1
    least, most = share.metadata[incremental.COUNTED].value
    assert least <= most and "the rest bounded by the last count" in share.description
    [record] = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(deals, "keys_are_unique"), limit=1
    )
    assert record.run_id == second.run_id
    # Nothing of it reached the published table Looker reads.
    [row] = warehouse.query(
        'SELECT count(*) AS n FROM "crm_published"."deals" WHERE "stage" IS NULL'
    )
    assert row["n"] == 0


def test_a_delta_audit_runs_as_snowflake_sql(tmp_path, snowflake):
    """The delta's view, the facts, the new-against-old key queries and a count's bounds in
    Snowflake's dialect (fakesnow): a duplicate key arriving in the sync is found by the delta
    audit, and the notes' missing share is bounded from the new row."""
    (tmp_path / "c").mkdir()
    text = (
        textwrap.dedent(CONTRACT)
        .replace("EVERY", "24")
        .replace(
            "- {name: notes, physicalType: VARCHAR}",
            "- {name: notes, physicalType: VARCHAR, quality: [{metric: missingValues, "
            "mustBeLessThan: 10, unit: percent}]}",
        )
    )
    (tmp_path / "c" / "shop.yaml").write_text(text)
    table = load_contracts(tmp_path / "c")["shop"].tables["orders"]
    old = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=2)
    accounts = pd.DataFrame(
        {"id": range(1, 11), "_fivetran_synced": old, "_fivetran_deleted": False}
    )
    snowflake.write_table("shop", "accounts", accounts)
    orders = pd.DataFrame(
        {
            "id": range(300),
            "account_id": [1 + i % 10 for i in range(300)],
            "email": ["a" * 64] * 300,
            "status": "paid",
            "notes": "ok",
            "_fivetran_synced": [old - pd.Timedelta(seconds=i) for i in range(300)],
            "_fivetran_deleted": False,
        }
    )
    snowflake.write_table("shop", "orders", orders)
    first = audit(table, snowflake)
    assert first["keys_are_unique"].passed, first["keys_are_unique"].description
    snowflake.execute(
        [
            'INSERT INTO "SHOP"."ORDERS" VALUES '
            f"(17, 1, '{'b' * 64}', 'paid', NULL, CURRENT_TIMESTAMP(), FALSE)"
        ]
    )
    second = audit(table, snowflake, incremental.previous_of(first))
    keys = second["keys_are_unique"]
    assert scope(keys)["scope"] == incremental.SINCE_LAST and scope(keys)["rows_judged"] == 1
    assert not keys.passed and "1 values repeated over 2 rows" in keys.description
    notes = second[NOTES]
    assert notes.passed and scope(notes)["scope"] == incremental.SINCE_LAST, notes.description
    assert notes.metadata["counted_rows"].value == [1, 1]
