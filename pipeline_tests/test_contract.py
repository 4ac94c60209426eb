"""Scope: contract loading — every malformed case stops with file, table and column named."""

import re
import textwrap

import pytest

from pipeline.contract import ContractError, load_contracts
from pipeline_tests.gate import SHOP_HEADER

GOOD = (
    SHOP_HEADER
    + """
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
)


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
            ("to: customers.id", "to: customers.email"),
            "that key is classified email, and this column holds its values: classify it email",
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
        (  # before: loaded, and no rule held its rows unique
            (
                "- {name: id, physicalType: BIGINT, primaryKey: true}",
                "- {name: id, physicalType: BIGINT}",
            ),
            "declares no primaryKey: mark the column(s) that identify a row",
            "orders",
            None,
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


OTHER = """apiVersion: v3.0.2
kind: DataContract
id: crm
name: crm
version: 1.0.0
status: active
team: {name: revops}
customProperties: [{property: publishedSchema, value: reporting}]
schema:
  - name: customers
    properties:
      - {name: id, physicalType: VARCHAR, primaryKey: true}
"""


@pytest.mark.parametrize(
    ("published", "named", "message"),
    [
        ("crm", "shop.yaml", "publishedSchema 'crm' is connector 'crm''s landing schema (crm.yaml)"),
        ("reporting", "crm.yaml", "publishedSchema 'reporting' is the published schema of shop.yaml"),
        ("tollgate_audit", "shop.yaml", "publishedSchema 'tollgate_audit' is tollgate's audit schema"),
    ],
)  # fmt: skip
def test_a_published_schema_that_would_write_over_other_tables_is_refused(
    tmp_path, published, named, message
):
    """Before: shop published its customers as views into crm's landing schema (or beside crm's
    own published customers), replacing tables there."""
    custom = f"customProperties: [{{property: publishedSchema, value: {published}}}]\nschema:"
    write(tmp_path, GOOD.replace("schema:", custom, 1))
    (tmp_path / "crm.yaml").write_text(OTHER)
    with pytest.raises(ContractError, match=re.escape(message)) as raised:
        load_contracts(tmp_path)
    assert raised.value.file.name == named


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


# --- Strict loading: every misspelt key refuses, naming the key and the closest known one ----

TYPOS = {
    "primarykey": (
        ("{name: id, physicalType: BIGINT, primaryKey: true}",
         "{name: id, physicalType: BIGINT, primarykey: true}"),
        "unknown key `primarykey` at schema.1.properties.0.primarykey (did you mean `primaryKey`?)",
        ("orders", "id"),
    ),
    "requried": (
        ("required: true", "requried: true"),
        "unknown key `requried`", ("orders", "customer_id"),
    ),
    "relationship": (
        ("relationships: [", "relationship: ["),
        "(did you mean `relationships`?)", ("orders", "customer_id"),
    ),
    "relationship key": (
        ("{type: foreignKey, to: customers.id}", "{type: foreignKey, too: customers.id}"),
        "unknown key `too`", ("orders", "customer_id"),
    ),
    "freshnesHours": (
        ("property: freshnessHours", "property: freshnesHours"),
        "unknown customProperty `freshnesHours` (did you mean `freshnessHours`?)",
        ("orders", None),
    ),
    "severty": (
        ("property: severity", "property: severty"),
        "(did you mean `severity`?)", ("orders", None),
    ),
    "fivetranConnectorID": (
        ("team: {name: shop-data}",
         "team: {name: shop-data}\ncustomProperties: [{property: fivetranConnectorID, value: x}]"),
        "unknown customProperty `fivetranConnectorID` (did you mean `fivetranConnectorId`?)",
        (None, None),
    ),
    "rowCount mn": (
        ("value: {min: 1}", "value: {mn: 1}"),
        "unknown key `mn` in rowCount (did you mean `min`?)", ("orders", None),
    ),
    "severity family": (
        ("value: {freshness: warn}", "value: {freshnes: warn}"),
        "(did you mean `freshness`?)", ("orders", None),
    ),
    "table level": (
        ("  - name: orders\n", "  - name: orders\n    physicalTyp: table\n"),
        "unknown key `physicalTyp` at schema.1.physicalTyp (did you mean `physicalType`?)",
        ("orders", None),
    ),
    "top level": (
        ("team: {name: shop-data}", "teams: {name: shop-data}"),
        "unknown key `teams` at teams (did you mean `team`?)", (None, None),
    ),
    "nested ODCS object": (
        ("team: {name: shop-data}", "team: {nme: shop-data}"),
        "unknown key `nme` at team.nme (did you mean `name`?)", (None, None),
    ),
    "logicalTypeOptions": (
        ("{name: id, physicalType: VARCHAR, primaryKey: true}",
         "{name: id, physicalType: VARCHAR, primaryKey: true, logicalTypeOptions: {maxLenght: 9}}"),
        "unknown key `maxLenght` at schema.0.properties.0.logicalTypeOptions.maxLenght "
        "(did you mean `maxLength`?)",
        ("customers", "id"),
    ),
    "quality key": (
        ("physicalType: VARCHAR\n        required: true",
         "physicalType: VARCHAR\n        required: true\n"
         "        quality: [{metric: nullValues, mustBee: 0}]"),
        "unknown key `mustBee`", ("orders", "customer_id"),
    ),
    "quality metric": (
        ("physicalType: VARCHAR\n        required: true",
         "physicalType: VARCHAR\n        required: true\n"
         "        quality: [{metric: nullValue, mustBe: 0}]"),
        "unknown metric `nullValue` at schema.1.properties.1.quality.0 (did you mean `nullValues`?)",
        ("orders", "customer_id"),
    ),
    "quality argument": (
        ("physicalType: VARCHAR\n        required: true",
         "physicalType: VARCHAR\n        required: true\n        quality: [{metric: "
         "invalidValues, arguments: {validValue: [a]}, mustBe: 0}]"),
        "unknown argument `validValue` for invalidValues (did you mean `validValues`?)",
        ("orders", "customer_id"),
    ),
    "quality severity": (
        ("physicalType: VARCHAR\n        required: true",
         "physicalType: VARCHAR\n        required: true\n"
         "        quality: [{metric: nullValues, mustBe: 0, severity: eror}]"),
        "unknown severity 'eror' (did you mean `error`?)", ("orders", "customer_id"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(TYPOS))
def test_each_typo_refuses_naming_key_and_suggestion(tmp_path, case):
    change, message, (table, column) = TYPOS[case]
    assert change[0] in GOOD
    with pytest.raises(ContractError) as raised:
        load_contracts(write(tmp_path, GOOD.replace(*change, 1)))
    assert message in str(raised.value)
    assert (raised.value.file.name, raised.value.table, raised.value.column) == (
        "shop.yaml",
        table,
        column,
    )


QUALITY = "physicalType: VARCHAR\n        required: true"
BAD_VALUES = {
    "rowCount min above max": (("value: {min: 1}", "value: {min: 9, max: 2}"), "rowCount min 9 is above max 2"),
    "freshnessHours zero": (("value: 6}", "value: 0}"), "freshnessHours must be a positive number, got 0"),
    "freshnessHours negative": (("value: 6}", "value: -3}"), "freshnessHours must be a positive number"),
    "maxDeletedFraction": (("value: 6}", "value: 6}\n      - {property: maxDeletedFraction, value: 2}"),
                           "maxDeletedFraction must be a number from 0 to 1, got 2"),
    "freshnessBy": (("value: 6}", "value: 6}\n      - {property: freshnessBy, value: synced}"),
                    "freshnessBy must be rows or sync, got 'synced'"),
    "fullAuditEvery zero": (("value: 6}", "value: 6}\n      - {property: fullAuditEvery, value: 0}"),
                            "fullAuditEvery must be a whole number of audits, 1 or more, got 0"),
    "fullAuditEvery fraction": (("value: 6}", "value: 6}\n      - {property: fullAuditEvery, value: 2.5}"),
                                "fullAuditEvery must be a whole number of audits, 1 or more, got 2.5"),
    "blankIsMissing": (("value: 6}", "value: 6}\n      - {property: blankIsMissing, value: yes please}"),
                       "blankIsMissing must be true or false"),
    "threshold not numeric": ((QUALITY, QUALITY + "\n        quality: [{metric: nullValues, mustBe: none}]"),
                              "mustBe must be a number, got 'none'"),
    "between reversed": ((QUALITY, QUALITY + "\n        quality: [{metric: nullValues, mustBeBetween: [5, 1]}]"),
                         "mustBeBetween needs the smaller number first"),
    "column physicalName": ((QUALITY, QUALITY + "\n        physicalName: CUST_ID"),
                            "physicalName 'CUST_ID' differs from name 'customer_id'"),
    "metric and rule differ": ((QUALITY, QUALITY + "\n        quality: [{metric: nullValues, rule: duplicateValues, mustBe: 0}]"),
                               "gives both `metric: nullValues` and `rule: duplicateValues`"),
    "two operators": ((QUALITY, QUALITY + "\n        quality: [{metric: nullValues, mustBe: 0, mustNotBe: 1}]"),
                      "not a valid ODCS contract"),
    "unit": ((QUALITY, QUALITY + "\n        quality: [{metric: nullValues, mustBe: 0, unit: furlongs}]"),
             "unit must be rows or percent"),
    "text rule": ((QUALITY, QUALITY + "\n        quality: [{type: text, description: be nice}]"),
                  "type text cannot be checked"),
    "sql that writes": ((QUALITY, QUALITY + "\n        quality: [{type: sql, mustBe: 0, query: 'DELETE FROM {object}'}]"),
                        "query must be a single SELECT"),
    "two sql statements": ((QUALITY, QUALITY + "\n        quality: [{type: sql, mustBe: 0, query: 'SELECT 1 FROM {object}; DROP TABLE x'}]"),
                           "query must be a single SELECT"),
    "sql table function": ((QUALITY, QUALITY + "\n        quality: [{type: sql, mustBe: 0, query: \"SELECT count(*) FROM {object}, read_csv('/etc/passwd')\"}]"),
                           "not table functions"),
    "sql without {object}": ((QUALITY, QUALITY + "\n        quality: [{type: sql, mustBe: 0, query: 'SELECT 1'}]"),
                             "through the {object} placeholder"),
    "bad pattern": ((QUALITY, QUALITY + "\n        quality: [{metric: invalidValues, arguments: {pattern: '('}, mustBe: 0}]"),
                    "arguments.pattern is not a regular expression"),
    "options minimum above maximum": (
        (QUALITY, QUALITY + "\n        logicalTypeOptions: {minLength: 5, maxLength: 2}"),
        "minLength is above maxLength"),
    "date option not a date": (
        ("{name: id, physicalType: BIGINT, primaryKey: true}",
         "{name: id, physicalType: BIGINT, primaryKey: true}\n      - {name: d, physicalType: DATE, logicalTypeOptions: {minimum: soon}}"),
        "logicalTypeOptions.minimum must be an ISO date"),
    "tollgate property under another vendor": (("value: 6}", "value: 6, vendor: Tollgate}"),
                                               "has vendor 'Tollgate'"),
    "table physicalName": (("  - name: orders\n", "  - name: orders\n    physicalName: ORDERS_V2\n"),
                           "physicalName 'ORDERS_V2' differs from name 'orders'"),
    "nested properties": (
        ("{name: id, physicalType: BIGINT, primaryKey: true}",
         "{name: id, physicalType: BIGINT, primaryKey: true}\n      - {name: payload, logicalType: object, "
         "properties: [{name: ssn, physicalType: VARCHAR, classification: ssn}]}"),
        "nested properties or items are not checked"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_each_bad_value_refuses(tmp_path, case):
    change, message = BAD_VALUES[case]
    assert change[0] in GOOD
    with pytest.raises(ContractError, match=r"shop\.yaml, table 'orders'") as raised:
        load_contracts(write(tmp_path, GOOD.replace(*change, 1)))
    assert message in str(raised.value)


def test_another_tools_custom_property_is_left_alone(tmp_path):
    text = GOOD.replace(
        "- {property: freshnessHours, value: 6}",
        "- {property: freshnessHours, value: 6}\n      - {property: tier, value: gold, vendor: atlan}",
    )
    assert load_contracts(write(tmp_path, text))["shop"].tables["orders"].freshness_hours == 6


def test_quality_rules_and_options_load_with_stable_names(tmp_path):
    text = GOOD.replace(
        QUALITY,
        QUALITY + "\n        logicalTypeOptions: {pattern: '^cus_', maxLength: 12}\n"
        "        quality:\n"
        "          - {metric: nullValues, mustBe: 0}\n"
        "          - {metric: nullValues, mustBeLessThan: 5, unit: percent}\n"
        "          - {name: Customer is known, type: sql, mustBe: 0, severity: warning,\n"
        "             dimension: consistency, query: 'SELECT count(*) FROM {object} WHERE {property} IS NULL'}",
    )
    orders = load_contracts(write(tmp_path, text))["shop"].tables["orders"]
    assert [q.check_name for q in orders.quality] == [
        "quality_customer_id_null_values",
        "quality_customer_id_null_values_2",
        "quality_customer_is_known",
    ]
    sql = orders.quality[2]
    assert (sql.severity, sql.dimension, sql.metric, sql.column) == (
        "warn",
        "consistency",
        "sql",
        "customer_id",
    )
    assert orders.column("customer_id").options == {"pattern": "^cus_", "maxLength": 12}
