"""Scope: a foreign key to another connector's table, end to end: a CSV replay's orders reference
payments.customers, and the two connectors publish in one step, decided together."""

import pytest
from dagster import AssetKey, DagsterInstance

from pipeline.definitions import build_definitions
from pipeline.run_summary import summarize
from pipeline.sandbox import source_edits
from pipeline.settings import duckdb_path
from pipeline.warehouse import DuckDBWarehouse
from pipeline_tests.gate import SHOP_HEADER, materialized, replay_connector

SHOP = (
    SHOP_HEADER
    + """
team: {name: shop-data}
customProperties:
  - {property: fivetranConnectorId, value: shop_csv}
schema:
  - name: orders
    properties:
      - {name: id, physicalType: BIGINT, primaryKey: true}
      - name: customer_id
        physicalType: VARCHAR
        required: true
        relationships: [{type: foreignKey, to: payments.customers.id}]
"""
)
CUSTOMERS = AssetKey(["fivetran", "payments", "customers"])
ORDERS = AssetKey(["fivetran", "shop", "orders"])
PUBLISHED_CUSTOMERS = AssetKey(["published", "payments", "customers"])
PUBLISHED_ORDERS = AssetKey(["published", "shop", "orders"])
ORPHANS = """SELECT count(*) AS n FROM shop_published.orders
WHERE customer_id NOT IN (
    SELECT id FROM payments_published.customers
    WHERE id IS NOT NULL AND NOT coalesce(_fivetran_deleted, false))"""


@pytest.fixture
def orders(tmp_path, monkeypatch):
    """Connector `shop` replays orders.csv; returns a writer of its rows (id, customer_id)."""
    folder = replay_connector(tmp_path, monkeypatch, "shop", SHOP)

    def write(*rows: tuple[int, str]) -> None:
        lines = "".join(f"{order},{customer}\n" for order, customer in rows)
        (folder / "orders.csv").write_text("id,customer_id\n" + lines)

    return write


def query(sql: str) -> list[dict]:
    return DuckDBWarehouse(path=str(duckdb_path())).query(sql)


def gate(instance: DagsterInstance, keys: set[AssetKey]):
    """Sync, check and publish just these assets (with their checks), in-process."""
    job = build_definitions().resolve_implicit_global_asset_job_def()
    return job.get_subset(asset_selection=keys).execute_in_process(
        instance=instance, raise_on_error=False
    )


def test_a_parent_in_another_connector_never_publishes_a_deletion_its_children_reference(orders):
    """An order points to a customer that payments then deletes: the order's foreign key fails
    and orders is held back, so Looker keeps the old orders. The new customers, published in
    their own connector's step before, showed Looker that order without its customer."""
    both = {CUSTOMERS, ORDERS, PUBLISHED_CUSTOMERS, PUBLISHED_ORDERS}
    instance = DagsterInstance.ephemeral()
    orders()  # no orders yet: the customers' ids are known once they land
    assert gate(instance, both).success
    [row] = query("SELECT min(id) AS gone, max(id) AS kept FROM payments.customers")
    orders((1, row["gone"]), (2, row["kept"]))
    first = gate(instance, both)
    assert first.success and {PUBLISHED_CUSTOMERS, PUBLISHED_ORDERS} <= materialized(first)
    shown = query("SELECT count(*) AS n FROM shop_published.orders")[0]["n"]
    assert shown == 2

    source_edits.edit_source("payments_sandbox", "customers", delete=[row["gone"]])
    deleted = gate(instance, both)
    assert not deleted.success
    assert not {PUBLISHED_CUSTOMERS, PUBLISHED_ORDERS} & materialized(deleted)
    assert query(ORPHANS)[0]["n"] == 0
    graph = build_definitions().resolve_asset_graph()
    held = {
        h["asset_key"]: h["held_back_by"]
        for h in summarize(instance, deleted.run_id, graph)["held_back"]
    }
    assert held["published/payments/customers"] == ["fivetran/shop/orders foreign_keys_resolve"]

    alone = gate(instance, {PUBLISHED_CUSTOMERS})  # a later run of the parent alone
    assert not alone.success and not materialized(alone)
    assert query(ORPHANS)[0]["n"] == 0
    message = alone.get_step_failure_events()[0].step_failure_data.error.message
    assert (
        "Refusing to publish payments_published.customers: its version v" in message
        and " drops rows that shop_published.orders (version v" in message
        and f"still references: customer_id -> payments.customers.id: 1 rows (e.g. {row['gone']})"
        in message
    )

    # The order moves to a customer that lands with the deletion: both publish, together.
    source_edits.edit_source(
        "payments_sandbox",
        "customers",
        upsert=[{"id": "cus_new", "country": "NL", "created": "2026-11-28T00:00:00"}],
    )
    orders((1, "cus_new"), (2, row["kept"]))
    moved = gate(instance, both)
    assert moved.success and {PUBLISHED_CUSTOMERS, PUBLISHED_ORDERS} <= materialized(moved)
    assert "publish__payments__shop" in {e.step_key for e in moved.all_events}
    assert query(ORPHANS)[0]["n"] == 0
    # The replay upserts by the contract's primary key, as Fivetran does: one row per order.
    assert query(
        "SELECT id, customer_id, _fivetran_deleted FROM shop_published.orders ORDER BY id"
    ) == [
        {"id": 1, "customer_id": "cus_new", "_fivetran_deleted": False},
        {"id": 2, "customer_id": row["kept"], "_fivetran_deleted": False},
    ]
