"""Load ODCS v3 data contracts (one YAML per connector) into plain, validated objects."""

import os
from dataclasses import dataclass
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

CONTRACTS_DIR = Path(__file__).parent / "contracts"
PII_HANDLING = ("hashed", "blocked", "allowed")


class ContractError(ValueError):
    """A contract that cannot be used; the message names the file, table and column."""

    def __init__(self, file: Path, message: str, table: str | None = None, column: str | None = None):
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
    required: bool = False
    primary_key: bool = False
    unique: bool = False
    classification: str | None = None
    pii_handling: str | None = None
    references: tuple[str, ...] = ()  # "table.column" targets of foreign keys
    description: str = ""


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

    def column(self, name: str) -> ColumnContract | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class Contract:
    file: Path
    connector: str
    connector_id: str | None
    owner: str
    tables: dict[str, TableContract]


def contracts_dir() -> Path:
    return Path(os.environ.get("TOLLGATE_CONTRACTS_DIR") or CONTRACTS_DIR)


def load_contracts(folder: Path | None = None) -> dict[str, Contract]:
    """Every contract in the folder, keyed by connector name (the contract's id)."""
    contracts = [load_contract(path) for path in sorted((folder or contracts_dir()).glob("*.yaml"))]
    return {contract.connector: contract for contract in contracts}


def load_contract(path: Path) -> Contract:
    """Parse one ODCS file; raise ContractError naming file, table and column on any problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ContractError(path, f"is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ContractError(path, "must be a YAML mapping (an ODCS v3 data contract)")
    try:
        odcs = OpenDataContractStandard.model_validate(raw)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise ContractError(path, f"not a valid ODCS contract at {location}: {first['msg']}") from None
    connector = odcs.id or odcs.name
    if not connector:
        raise ContractError(path, "needs an `id` naming the connector (its destination schema)")
    owner = _team_owner(odcs)
    tables = {obj.name: _table(path, connector, owner, obj) for obj in odcs.schema_ or []}
    return Contract(path, connector, _custom(odcs.customProperties).get("fivetranConnectorId"), owner, tables)


def _team_owner(odcs: OpenDataContractStandard) -> str:
    team = odcs.team
    name = getattr(team, "name", None) if team is not None and not isinstance(team, list) else None
    return f"team:{name}" if name else "team:data-platform"


def _custom(properties: list[CustomProperty] | None) -> dict[str, Any]:
    return {p.property: p.value for p in properties or [] if p.property}


def _table(path: Path, connector: str, owner: str, obj: SchemaObject) -> TableContract:
    if not obj.name:
        raise ContractError(path, "every schema object needs a `name`")
    custom = _custom(obj.customProperties)
    bounds = custom.get("rowCount") or {}
    columns = tuple(_column(path, obj.name, prop) for prop in obj.properties or [])
    return TableContract(
        connector=connector,
        name=obj.name,
        owner=custom.get("owner") or owner,
        description=obj.description or "",
        columns=columns,
        freshness_hours=custom.get("freshnessHours"),
        row_count_min=bounds.get("min"),
        row_count_max=bounds.get("max"),
    )


def _column(path: Path, table: str, prop: SchemaProperty) -> ColumnContract:
    if not prop.name:
        raise ContractError(path, "every property needs a `name`", table)
    handling = _custom(prop.customProperties).get("piiHandling")
    if handling is not None and handling not in PII_HANDLING:
        raise ContractError(
            path, f"piiHandling {handling!r} is not one of {', '.join(PII_HANDLING)}", table, prop.name
        )
    references = tuple(
        target
        for rel in prop.relationships or []
        for target in ([rel.to] if isinstance(rel.to, str) else rel.to or [])
    )
    return ColumnContract(
        name=prop.name,
        physical_type=(prop.physicalType or prop.logicalType or "").upper(),
        required=bool(prop.required or prop.primaryKey),
        primary_key=bool(prop.primaryKey),
        unique=bool(prop.unique or prop.primaryKey),
        classification=prop.classification,
        pii_handling=handling,
        references=references,
        description=prop.description or "",
    )
