"""Load ODCS v3 data contracts (one YAML per connector) into plain, validated objects."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml
from open_data_contract_standard.model import (
    CustomProperty,
    OpenDataContractStandard,
    SchemaObject,
    SchemaProperty,
)

from pipeline.warehouse.types import logical_family, type_family

CONTRACTS_DIR = Path(__file__).parent / "contracts"
# libyaml's safe loader when PyYAML was built with it: about 10x faster on 1,000 tables.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
PII_CLASSES = ("email", "phone", "name", "address", "ssn", "card", "ip", "iban", "dob")
NON_PII_CLASSES = ("public", "internal")
PII_HANDLING = ("hashed", "blocked", "allowed")
SEVERITIES = ("error", "warn")
RULE_FAMILIES = ("not_null", "schema", "new_columns", "pii", "pii_scan", "primary_key",
                 "foreign_keys", "freshness", "volume")  # fmt: skip


class ContractError(ValueError):
    """A contract that cannot be used; the message names the file, table and column."""

    def __init__(
        self, file: Path, message: str, table: str | None = None, column: str | None = None
    ):
        where = str(file)
        if table:
            where += f", table {table!r}"
        if column:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")
        self.file, self.table, self.column = file, table, column


@dataclass(frozen=True)
class ColumnContract:
    name: str
    physical_type: str
    family: str = "text"  # type family the warehouse column must have (see warehouse.types)
    required: bool = False
    primary_key: bool = False
    unique: bool = False
    classification: str | None = None
    pii_handling: str | None = None
    references: tuple[str, ...] = ()  # "table.column" or "connector.table.column"
    description: str = ""
    max_null_fraction: float | None = None  # for optional columns: how many nulls are normal

    @property
    def is_pii(self) -> bool:
        return self.classification in PII_CLASSES


@dataclass(frozen=True)
class TableContract:
    connector: str
    name: str
    owner: str
    description: str
    columns: tuple[ColumnContract, ...]
    freshness_hours: float | None = None
    row_count_min: int | None = None
    row_count_max: int | None = None
    severity: dict[str, str] = field(default_factory=dict)  # rule family -> error | warn
    pii_scan: str = "sample"  # sample | exact
    file: Path | None = None
    published_schema: str = ""  # where the audited version is published for Looker
    # The relation the checks read: the audit snapshot while auditing, else the landing table.
    audited: tuple[str, str] | None = None

    def column(self, name: str) -> ColumnContract | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def relation(self) -> tuple[str, str]:
        """(schema, table) the checks read: the audit snapshot when set, else the landing table."""
        return self.audited or (self.connector, self.name)


@dataclass(frozen=True)
class Contract:
    file: Path
    connector: str
    connector_id: str | None
    owner: str
    tables: dict[str, TableContract]
    published_schema: str = ""


def contracts_dir() -> Path:
    """TOLLGATE_CONTRACTS_DIR, else those generated for TOLLGATE_SANDBOX_SCALE, else the shipped."""
    from pipeline.sandbox import scale  # generates its contracts on first use

    return Path(
        os.environ.get("TOLLGATE_CONTRACTS_DIR") or scale.generated("contracts") or CONTRACTS_DIR
    )


def load_contracts(folder: Path | None = None) -> dict[str, Contract]:
    """Every contract in the folder, keyed by connector name, cross-checked with each other."""
    contracts: dict[str, Contract] = {}
    for path in sorted((folder or contracts_dir()).glob("*.yaml")):
        contract = load_contract(path)
        if contract.connector in contracts:
            raise ContractError(
                path, f"connector {contract.connector!r} already has a contract in "
                f"{contracts[contract.connector].file.name}"
            )  # fmt: skip
        contracts[contract.connector] = contract
    for contract in contracts.values():
        _check_references(contract, contracts)
    return contracts


def load_contract(path: Path) -> Contract:
    """Parse one ODCS file; raise ContractError naming file, table and column on any problem."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)
    except yaml.YAMLError as error:
        raise ContractError(path, f"is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ContractError(path, "must be a YAML mapping (an ODCS v3 data contract)")
    try:
        odcs = OpenDataContractStandard.model_validate(raw)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise ContractError(
            path,
            f"not a valid ODCS contract at {location}: {first['msg']}",
            *_named(raw, first["loc"]),
        ) from None
    connector = odcs.id or odcs.name
    if not connector:
        raise ContractError(path, "needs an `id` naming the connector (its destination schema)")
    owner = _team_owner(odcs)
    custom = _custom(odcs.customProperties)
    published = custom.get("publishedSchema") or published_schema_for(connector)
    if not isinstance(published, str) or published.lower() == connector.lower():
        raise ContractError(
            path, f"publishedSchema must be a schema name other than the landing schema "
            f"{connector!r}, got {published!r}"
        )  # fmt: skip
    tables: dict[str, TableContract] = {}
    for obj in odcs.schema_ or []:
        table = _table(path, connector, owner, obj, published)
        if table.name in tables:
            raise ContractError(path, "is listed twice", table.name)
        tables[table.name] = table
    connector_id = custom.get("fivetranConnectorId")
    return Contract(path, connector, connector_id, owner, tables, published)


def published_schema_for(connector: str) -> str:
    """Default schema Looker reads a connector's audited tables from: <landing schema>_published."""
    return f"{connector}_published"


def _named(raw: dict[str, Any], loc: tuple[Any, ...]) -> tuple[str | None, str | None]:
    """Table and column names at a pydantic location like schema.1.properties.0.required."""
    table = column = None
    try:
        if loc[0] == "schema":
            obj = raw["schema"][loc[1]]
            table = obj.get("name")
            if loc[2] == "properties":
                column = obj["properties"][loc[3]].get("name")
    except (IndexError, KeyError, TypeError, AttributeError):
        pass
    return table, column


def _team_owner(odcs: OpenDataContractStandard) -> str:
    team = odcs.team
    name = getattr(team, "name", None) if team is not None and not isinstance(team, list) else None
    return f"team:{name}" if name else "team:data-platform"


def _custom(properties: list[CustomProperty] | None) -> dict[str, Any]:
    return {p.property: p.value for p in properties or [] if p.property}


def _table(
    path: Path, connector: str, owner: str, obj: SchemaObject, published: str
) -> TableContract:
    if not obj.name:
        raise ContractError(path, "every schema object needs a `name`")
    custom = _custom(obj.customProperties)
    bounds = custom.get("rowCount") or {}
    if not isinstance(bounds, dict) or any(
        v is not None and (type(v) is not int or v < 0)
        for v in (bounds.get("min"), bounds.get("max"))
    ):
        raise ContractError(
            path, f"rowCount must be a mapping like {{min: 1, max: 1000}}, got {bounds!r}", obj.name
        )
    hours = custom.get("freshnessHours")
    if hours is not None and (type(hours) not in (int, float) or hours <= 0):
        raise ContractError(
            path, f"freshnessHours must be a positive number, got {hours!r}", obj.name
        )
    if obj.relationships:
        raise ContractError(
            path, "schema-level relationships are not supported: declare each foreign key on its "
            "column (relationships: [{type: foreignKey, to: table.column}])", obj.name
        )  # fmt: skip
    severity = custom.get("severity") or {}
    for family, level in severity.items() if isinstance(severity, dict) else [("severity", None)]:
        if family not in RULE_FAMILIES or level not in SEVERITIES:
            raise ContractError(
                path, f"severity must map rule families ({', '.join(RULE_FAMILIES)}) to "
                f"error or warn, got {family}: {level}", obj.name
            )  # fmt: skip
    pii_scan = custom.get("piiScan", "sample")
    if pii_scan not in ("sample", "exact"):
        raise ContractError(path, f"piiScan must be sample or exact, got {pii_scan!r}", obj.name)
    columns = tuple(_column(path, obj.name, prop) for prop in obj.properties or [])
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise ContractError(path, "is listed twice", obj.name, column.name)
        seen.add(column.name)
    return TableContract(
        connector=connector,
        name=obj.name,
        owner=custom.get("owner") or owner,
        description=obj.description or "",
        columns=columns,
        freshness_hours=hours,
        row_count_min=bounds.get("min"),
        row_count_max=bounds.get("max"),
        severity=dict(severity),
        pii_scan=pii_scan,
        file=path,
        published_schema=published,
    )


def _column(path: Path, table: str, prop: SchemaProperty) -> ColumnContract:
    if not prop.name:
        raise ContractError(path, "every property needs a `name`", table)
    fail = lambda message: ContractError(path, message, table, prop.name)  # noqa: E731
    try:
        if prop.physicalType:
            family = type_family(prop.physicalType)
        elif prop.logicalType:
            family = logical_family(prop.logicalType)
        else:
            raise fail("needs a physicalType (the warehouse type) or a logicalType")
    except ValueError as error:
        raise fail(str(error)) from None
    classification = prop.classification.lower() if prop.classification else None
    if classification and classification not in PII_CLASSES + NON_PII_CLASSES:
        raise fail(
            f"unknown classification {prop.classification!r} "
            f"(one of {', '.join(PII_CLASSES + NON_PII_CLASSES)})"
        )
    custom = _custom(prop.customProperties)
    handling = custom.get("piiHandling")
    max_nulls = custom.get("maxNullFraction")
    if max_nulls is not None and not (
        isinstance(max_nulls, int | float)
        and not isinstance(max_nulls, bool)
        and 0 <= max_nulls <= 1
    ):
        raise fail(f"maxNullFraction must be a number from 0 to 1, got {max_nulls!r}")
    if handling is not None and handling not in PII_HANDLING:
        raise fail(f"piiHandling {handling!r} is not one of {', '.join(PII_HANDLING)}")
    if classification in PII_CLASSES and handling is None:
        raise fail(f"is classified {classification}: say how it arrives with piiHandling")
    if handling and classification not in PII_CLASSES:
        raise fail("has piiHandling but no PII classification")
    references = tuple(
        target
        for rel in prop.relationships or []
        for target in ([rel.to] if isinstance(rel.to, str) else rel.to or [])
    )
    return ColumnContract(
        name=prop.name,
        physical_type=(prop.physicalType or prop.logicalType or "").upper(),
        family=family,
        required=bool(prop.required or prop.primaryKey),
        primary_key=bool(prop.primaryKey),
        unique=bool(prop.unique or prop.primaryKey),
        classification=classification,
        pii_handling=handling,
        references=references,
        description=prop.description or "",
        max_null_fraction=None if max_nulls is None else float(max_nulls),
    )


def resolve_reference(contract: str, target: str) -> tuple[str, str, str]:
    """'table.column' or 'connector.table.column' -> (connector, table, column)."""
    parts = target.split(".")
    if len(parts) == 2:
        return contract, parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise ValueError(
        f"relationship target {target!r} must be table.column or connector.table.column"
    )


def _check_references(contract: Contract, contracts: dict[str, Contract]) -> None:
    for table in contract.tables.values():
        for column in table.columns:
            for target in column.references:
                try:
                    connector, parent, key = resolve_reference(contract.connector, target)
                except ValueError as error:
                    raise ContractError(
                        contract.file, str(error), table.name, column.name
                    ) from None
                other = contracts.get(connector)
                parent_table = other.tables.get(parent) if other else None
                if parent_table is None:
                    raise ContractError(
                        contract.file, f"foreign key to {target}: no contract has table "
                        f"{connector}.{parent}", table.name, column.name
                    )  # fmt: skip
                if parent_table.column(key) is None:
                    raise ContractError(
                        contract.file, f"foreign key to {target}: {connector}.{parent} has no "
                        f"column {key!r}", table.name, column.name
                    )  # fmt: skip
