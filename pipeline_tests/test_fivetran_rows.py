"""Scope: Fivetran row semantics end to end: a CSV replay synced by the sandbox, gated in-process.

Each defect the issue found passing with exit 0 lands through the Fivetran sandbox from a
replayed extract, and exactly its check fails. The clean replay passes, hashed and blocked
columns included (declared in the connector's fivetran.yaml), and a header-only CSV lands with
the contract's types.
"""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.warehouse import DuckDBWarehouse
from pipeline_tests.gate import SHOP_HEADER, failed_checks, replay_connector, run_gate

SHOP = (
    SHOP_HEADER
    + """
team: {name: shop-data}
customProperties:
  - {property: fivetranConnectorId, value: shop_csv}
schema:
  - name: customers
    customProperties: [{property: freshnessHours, value: 24}]
    properties:
      - {name: id, physicalType: VARCHAR, primaryKey: true}
      - name: name
        physicalType: VARCHAR
        required: true
        classification: name
        customProperties: [{property: piiHandling, value: allowed}]
      - name: email
        physicalType: VARCHAR
        classification: email
        customProperties: [{property: piiHandling, value: hashed}]
      - name: ssn
        physicalType: VARCHAR
        classification: ssn
        customProperties: [{property: piiHandling, value: blocked}]
  - name: coupons
    customProperties:
      - {property: rowCount, value: {min: 1}}
      - {property: maxDeletedFraction, value: 0.5}
    properties:
      - {name: code, physicalType: VARCHAR, primaryKey: true}
  - name: orders
    customProperties: [{property: freshnessHours, value: 24}]
    properties:
      - {name: id, physicalType: BIGINT, primaryKey: true}
      - name: customer_id
        physicalType: VARCHAR
        required: true
        relationships: [{type: foreignKey, to: customers.id}]
      - name: coupon
        physicalType: VARCHAR
        relationships: [{type: foreignKey, to: coupons.code}]
      - name: placed
        physicalType: DATE
        logicalTypeOptions: {minimum: 2000-01-01, maximum: 2030-12-31}
      - {name: note, physicalType: VARCHAR}
  - name: refunds
    properties:
      - {name: id, physicalType: BIGINT, primaryKey: true}
      - name: order_id
        physicalType: BIGINT
        relationships: [{type: foreignKey, to: orders.id}]
      - {name: amount, physicalType: "DECIMAL(18,2)"}
      - {name: refunded_at, physicalType: TIMESTAMP}
"""
)
SIDECAR = "tables:\n  customers: {hashed: [email], blocked: [ssn]}\n"
NOW = datetime.now(UTC)
FRESH, STALE, FUTURE = (
    NOW - timedelta(hours=1),
    NOW - timedelta(days=30),
    NOW + timedelta(days=3653),
)


def csv(header: str, *rows: tuple) -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)


SYS = "_fivetran_synced,_fivetran_deleted"
CLEAN = {
    "customers": csv(f"id,name,email,ssn,{SYS}",
                     ("cus_1", "Ada Lovelace", "ada@example.com", "123-45-6789", FRESH, "false"),
                     ("cus_2", "Alan Turing", "alan@example.com", "987-65-4321", FRESH, "false")),
    "coupons": csv(f"code,{SYS}", ("SPRING", FRESH, "false"), ("WELCOME", FRESH, "false")),
    "orders": csv(f"id,customer_id,coupon,placed,note,{SYS}",
                  (1, "cus_1", "SPRING", "2026-01-05", "gift wrap please", FRESH, "false"),
                  (2, "cus_2", "", "2026-02-01", "", FRESH, "false")),
    "refunds": "id,order_id,amount,refunded_at\n",  # header only
}  # fmt: skip
DIRTY = {
    # '' / whitespace-only in a required column, and a key that differs only by trailing space
    "customers": csv(f"id,name,email,ssn,{SYS}",
                     ("cus_1", '"  "', "ada@example.com", "123-45-6789", FRESH, "false"),
                     ('"cus_1 "', "Alan Turing", "alan@example.com", "987-65-4321", FRESH, "false")),
    # every row soft-deleted: no live rows, and no live parent for orders.coupon
    "coupons": csv(f"code,{SYS}", ("SPRING", FRESH, "true"), ("WELCOME", FRESH, "true")),
    # `note` lands as `Note`; dates in 2099 and 1900; one row stamped ten years ahead
    "orders": csv(f"id,customer_id,coupon,placed,Note,{SYS}",
                  (1, "cus_1", "SPRING", "2099-01-05", "gift wrap please", FUTURE, "false"),
                  (2, "cus_1", "", "1900-02-01", "", STALE, "false")),
    "refunds": CLEAN["refunds"],
}  # fmt: skip
DIRTY_FAILURES = {
    ("customers", "required_columns_are_not_null"): "name: 1 of 2 rows null or blank",
    ("customers", "keys_have_no_surrounding_whitespace"): "id: 1 keys with leading or trailing",
    ("coupons", "row_count_in_bounds"): "0 live rows, expected [1, ] (2 soft-deleted rows",
    ("coupons", "deleted_rows_within_bounds"): "2 of 2 rows soft-deleted (100.0%)",
    ("orders", "foreign_keys_resolve"): "coupon -> coupons.code: 1 rows point nowhere",
    ("orders", "data_is_fresh"): "1 rows have _fivetran_synced in the future",
    ("orders", "contract_columns_are_present"): "note: landed as 'Note' (renamed by case only)",
    ("orders", "values_match_logical_type_options"): "placed: 1 values break minimum 2000-01-01",
}


@pytest.fixture
def replay(tmp_path, monkeypatch):
    """Write a replay folder for connector `shop` and the contracts; return a writer."""
    folder = replay_connector(tmp_path, monkeypatch, "shop", SHOP)
    (folder / "fivetran.yaml").write_text(SIDECAR)

    def write(tables: dict[str, str]) -> None:
        for name, text in tables.items():
            (folder / f"{name}.csv").write_text(text)

    write.contracts = tmp_path / "contracts"
    return write


def shop_failures(result) -> dict[tuple[str, str], str]:
    failures = failed_checks(result)
    assert {key[0] for key in failures} <= {"shop"}, failures  # the example connectors stay clean
    return {key[1:]: text for key, text in failures.items()}


def test_clean_replay_passes_with_hashing_blocking_and_contract_types(replay, isolated_data_dir):
    replay(CLEAN)
    result = run_gate()
    assert shop_failures(result) == {}
    checked = {(e.asset_key.path[-1], e.check_name) for e in result.get_asset_check_evaluations()}
    assert ("customers", "pii_arrives_as_contracted") in checked
    assert ("customers", "fivetran_config_matches_contract") in checked
    warehouse = DuckDBWarehouse(path=str(isolated_data_dir / "warehouse.duckdb"))
    assert warehouse.columns("shop", "refunds") == {
        "id": "BIGINT", "order_id": "BIGINT", "amount": "DECIMAL(18,2)",
        "refunded_at": "TIMESTAMP", "_fivetran_synced": "TIMESTAMP WITH TIME ZONE",
        "_fivetran_deleted": "BOOLEAN",
    }  # fmt: skip
    assert "ssn" not in warehouse.columns("shop", "customers")
    emails = warehouse.query('SELECT "email" FROM "shop"."customers"')
    assert all(len(row["email"]) == 64 for row in emails)  # hashed on the way in


def test_each_fivetran_defect_fails_exactly_its_check(replay):
    replay(DIRTY)
    failures = shop_failures(run_gate())
    assert set(failures) == set(DIRTY_FAILURES)
    for key, expected in DIRTY_FAILURES.items():
        assert expected in failures[key], (key, failures[key])
    assert "2099" not in failures["orders", "values_match_logical_type_options"]


@pytest.mark.parametrize("by", ["rows", "sync"])
def test_a_quiet_table_is_fresh_by_its_last_sync_only_when_the_contract_says_so(replay, by):
    """Fivetran stamps only rows that changed: a quiet source keeps old stamps after a
    successful sync. By default the stamps decide (a stuck source looks the same) and the
    failure says the sync was recent; `freshnessBy: sync` counts the sync."""
    replay(dict(CLEAN, customers=CLEAN["customers"].replace(str(FRESH), str(STALE))))
    if by == "sync":
        contract = replay.contracts / "shop.yaml"
        contract.write_text(
            contract.read_text().replace(
                "customProperties: [{property: freshnessHours, value: 24}]",
                "customProperties: [{property: freshnessHours, value: 24}, "
                "{property: freshnessBy, value: sync}]",
                1,
            )
        )
    failures = shop_failures(run_gate())
    if by == "rows":
        assert set(failures) == {("customers", "data_is_fresh")}
        failure = failures["customers", "data_is_fresh"]
        # The stamps are a month old, the sync minutes (the run may start well after import).
        synced = (
            r"last synced 7\d\d\.\d h ago, SLA 24 h \(Fivetran's last successful sync ended 0\."
        )
        assert re.search(synced, failure), failure
        assert "freshnessBy: sync counts the sync" in failure
    else:
        assert failures == {}


def test_freshness_by_sync_needs_a_recent_successful_sync_on_record():
    from dagster import AssetKey, AssetMaterialization, DagsterInstance, MetadataValue

    from pipeline.checks.freshness import (
        SYNC_COMPLETED_AT,
        judge_freshness,
        last_successful_sync,
    )
    from pipeline.checks.rule import TableState
    from pipeline.contract import TableContract

    key = AssetKey(["fivetran", "shop", "customers"])
    instance = DagsterInstance.ephemeral()
    assert last_successful_sync(instance, key) is None
    table = TableContract("shop", "customers", "team:x", "", (), 24, freshness_by="sync")
    state = TableState(columns={"_fivetran_synced": "TIMESTAMP WITH TIME ZONE"})
    profile = {"last_synced": STALE, "rows": 2}
    for ended, passes in ((NOW - timedelta(hours=2), True), (NOW - timedelta(hours=30), False)):
        for stamp in (ended.timestamp(), MetadataValue.timestamp(ended.timestamp())):
            instance.report_runless_asset_event(
                AssetMaterialization(key, metadata={SYNC_COMPLETED_AT: stamp})
            )
            synced = last_successful_sync(instance, key)
            assert abs((synced - ended).total_seconds()) < 1
            verdict = judge_freshness(table, replace(state, last_sync=synced), profile)
            assert verdict.passed is passes, verdict.summary
    # No sync on record, or the contract keeps the default: the row stamps decide.
    assert not judge_freshness(table, state, profile).passed
    rows = replace(table, freshness_by="rows")
    assert not judge_freshness(rows, replace(state, last_sync=NOW), profile).passed
