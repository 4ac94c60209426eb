"""Scope: contract loading — every malformed case stops with file, table and column named."""

import textwrap

import pytest

from pipeline.contract import ContractError, load_contracts

GOOD = """
apiVersion: v3.0.2
kind: DataContract
id: shop
name: shop
version: 1.0.0
status: active
team: {name: shop-data}
schema:
  - name: customers
    properties:
      - {name: id, physicalType: VARCHAR, primaryKey: true}
      - name: email
        physicalType: VARCHAR
        classification: email
        customProperties: [{property: piiHandling, value: hashed}]
  - name: orders
    customProperties:
      - {property: freshnessHours, value: 6}
      - {property: rowCount, value: {min: 1}}
      - {property: severity, value: {freshness: warn}}
    properties:
      - {name: id, physicalType: BIGINT, primaryKey: true}
      - name: customer_id
        physicalType: VARCHAR
        required: true
        relationships: [{type: foreignKey, to: customers.id}]
"""


def write(tmp_path, text):
    (tmp_path / "shop.yaml").write_text(textwrap.dedent(text))
    return tmp_path


def test_good_contract_loads(tmp_path):
    contract = load_contracts(write(tmp_path, GOOD))["shop"]
    orders = contract.tables["orders"]
    assert contract.owner == "team:shop-data"
    assert orders.freshness_hours == 6 and orders.severity == {"freshness": "warn"}
    assert orders.column("customer_id").references == ("customers.id",)
    assert contract.tables["customers"].column("email").pii_handling == "hashed"


@pytest.mark.parametrize(
    ("change", "message", "table", "column"),
    [
        (("physicalType: BIGINT", "physicalType: BIGNUMBERTHING"), "unknown type", "orders", "id"),
        (
            ("classification: email", "classification: shoe_size"),
            "unknown classification",
            "customers",
            "email",
        ),
        (("value: hashed", "value: encrypted"), "piiHandling 'encrypted'", "customers", "email"),
        (
            ("to: customers.id", "to: clients.id"),
            "no contract has table shop.clients",
            "orders",
            "customer_id",
        ),
        (
            ("to: customers.id", "to: customers.uuid"),
            "has no column 'uuid'",
            "orders",
            "customer_id",
        ),
        (
            ("value: {freshness: warn}", "value: {freshness: loud}"),
            "severity must map",
            "orders",
            None,
        ),
        (
            ("- {name: id, physicalType: BIGINT, primaryKey: true}", "- {name: id}"),
            "needs a physicalType",
            "orders",
            "id",
        ),
    ],
)
def test_each_malformed_case_names_file_table_column(tmp_path, change, message, table, column):
    folder = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ContractError) as raised:
        load_contracts(folder)
    error = raised.value
    assert message in str(error)
    assert error.file.name == "shop.yaml" and error.table == table and error.column == column


def test_pii_without_handling_is_rejected(tmp_path):
    folder = write(
        tmp_path, GOOD.replace("customProperties: [{property: piiHandling, value: hashed}]", "")
    )
    with pytest.raises(ContractError, match="classified email: say how it arrives"):
        load_contracts(folder)


def test_malformed_yaml_names_the_file(tmp_path):
    folder = write(tmp_path, GOOD + "\n  - name: [unclosed\n")
    with pytest.raises(ContractError, match=r"shop\.yaml: is not valid YAML"):
        load_contracts(folder)


def test_not_odcs_names_the_location(tmp_path):
    folder = write(tmp_path, GOOD.replace("team: {name: shop-data}", "team: 42"))
    with pytest.raises(ContractError, match="not a valid ODCS contract at team"):
        load_contracts(folder)


def test_duplicate_column_is_rejected(tmp_path):
    folder = write(
        tmp_path,
        GOOD.replace(
            "      - {name: id, physicalType: BIGINT, primaryKey: true}",
            "      - {name: id, physicalType: BIGINT, primaryKey: true}\n"
            "      - {name: id, physicalType: BIGINT}",
        ),
    )
    with pytest.raises(ContractError, match="'orders', column 'id': is listed twice"):
        load_contracts(folder)
