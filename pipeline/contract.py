"""Load ODCS v3 data contracts (one YAML per connector) into plain, validated objects."""

import json
import os
import re
from dataclasses import dataclass, field, replace
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

from pipeline import load_cache
from pipeline.contract_quality import METRICS, QualityError, QualityRule, parse_options, parse_rules
from pipeline.contract_schema import (
    UnknownKey,
    dotted,
    logical_type_option_keys,
    schema_error,
    suggest,
    unknown_keys,
    with_logical_types,
)
from pipeline.warehouse.types import LOGICAL, logical_family, type_family

CONTRACTS_DIR = Path(__file__).parent / "contracts"
PII_CLASSES = ("email", "phone", "name", "address", "ssn", "card", "ip", "iban", "dob")
NON_PII_CLASSES = ("public", "internal")
PII_HANDLING = ("hashed", "blocked", "allowed")
SEVERITIES = ("error", "warn")
RULE_FAMILIES = ("not_null", "schema", "new_columns", "pii", "pii_scan", "primary_key",
                 "foreign_keys", "freshness", "volume", "key_whitespace", "deleted_rows",
                 "quality")  # fmt: skip
# tollgate's customProperties, per level. One with a `vendor` other than tollgate belongs to
# another tool and is left alone; every other unknown one refuses to load.
CONTRACT_PROPERTIES = ("fivetranConnectorId", "publishedSchema")
TABLE_PROPERTIES = ("freshnessHours", "freshnessBy", "rowCount", "owner", "piiScan", "severity",
                    "maxDeletedFraction", "blankIsMissing", "fullAuditEvery")  # fmt: skip
FULL_AUDIT_EVERY = 24  # a large table's audits read only new rows, but every 24th reads all
COLUMN_PROPERTIES = ("piiHandling", "maxNullFraction", "blankIsMissing")
# The physical type's family, as the ODCS logicalType whose logicalTypeOptions apply to it.
FAMILY_LOGICAL = {"text": "string", "number": "number", "date": "date", "timestamp": "timestamp",
                  "timestamp_tz": "timestamp", "json": "object", "boolean": "boolean"}  # fmt: skip


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
    # '' and whitespace-only count as missing in required and key text columns
    blank_is_missing: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # checked logicalTypeOptions

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
    # rows: the newest _fivetran_synced; sync: also Fivetran's last successful sync (quiet tables)
    freshness_by: str = "rows"
    file: Path | None = None
    max_deleted_fraction: float | None = None  # bound on soft-deleted rows (_fivetran_deleted)
    quality: tuple[QualityRule, ...] = ()  # ODCS quality rules, table and column level
    published_schema: str = ""  # where the audited version is published for Looker
    # The relation the checks read: the audit snapshot while auditing, else the landing table.
    audited: tuple[str, str] | None = None
    full_audit_every: int = FULL_AUDIT_EVERY  # 1: every audit reads every row

    def column(self, name: str) -> ColumnContract | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def id(self) -> tuple[str, str]:
        """(connector, table): unique across connectors, unlike the table's name."""
        return (self.connector, self.name)

    @property
    def parents(self) -> tuple[tuple[str, str], ...]:
        """(connector, table) of every other table this table's foreign keys reference."""
        found = (
            resolve_reference(self.connector, target)[:2]
            for column in self.columns
            for target in column.references
        )
        return tuple(dict.fromkeys(p for p in found if p != self.id))

    @property
    def relation(self) -> tuple[str, str]:
        """(schema, table) the checks read: the audit snapshot when set, else the landing table."""
        return self.audited or self.id


@dataclass(frozen=True)
class Contract:
    file: Path
    connector: str
    connector_id: str | None
    owner: str
    tables: dict[str, TableContract]
    published_schema: str = ""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when installed
    """Safe YAML where dates stay strings: ODCS's JSON Schema types `minimum: 2000-01-01` as one."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# Everything a parse depends on besides the text: the parser's version, base and configuration.
_LOADER = repr(
    (
        yaml.__version__,
        [base.__qualname__ for base in _Loader.__mro__],
        _Loader.yaml_implicit_resolvers,
        {tag: f"{f.__module__}.{f.__qualname__}" for tag, f in _Loader.yaml_constructors.items()},
    )
)


def _parse_yaml(text: str) -> Any:
    """The YAML document, kept on disk as JSON under the text's digest when JSON holds it exactly."""
    digest = load_cache.key(_LOADER, text)
    cached = load_cache.get("contract_yaml", digest)
    if cached is not None:
        return cached
    raw = yaml.load(text, Loader=_Loader)
    try:
        stored = json.dumps(raw)
    except (TypeError, ValueError):  # dates, bytes, sets: parsed again each time
        return raw
    if repr(json.loads(stored)) == repr(raw):  # not when JSON would turn a 1: key into "1"
        load_cache.put("contract_yaml", digest, raw)
    return raw


def contracts_dir() -> Path:
    """TOLLGATE_CONTRACTS_DIR, else those generated for TOLLGATE_SANDBOX_SCALE, else the shipped."""
    from pipeline.sandbox import scale  # generates its contracts on first use

    return Path(
        os.environ.get("TOLLGATE_CONTRACTS_DIR") or scale.generated("contracts") or CONTRACTS_DIR
    )


def contract_files(folder: Path | None = None) -> list[Path]:
    """The folder's contract files (*.yaml, *.yml); an error when there is none to read."""
    folder = folder or contracts_dir()
    if not folder.is_dir():
        raise ContractError(folder, "is not a folder: no contract could be read")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise ContractError(folder, "holds no contract (*.yaml or *.yml): nothing would be checked")
    return files


def load_contracts(folder: Path | None = None) -> dict[str, Contract]:
    """Every contract in the folder, keyed by connector name, cross-checked with each other."""
    contracts: dict[str, Contract] = {}
    for path in contract_files(folder):
        contract = load_contract(path)
        if contract.connector in contracts:
            raise ContractError(
                path, f"connector {contract.connector!r} already has a contract in "
                f"{contracts[contract.connector].file.name}"
            )  # fmt: skip
        contracts[contract.connector] = contract
    for contract in contracts.values():
        _check_published_schema(contract, contracts)
        _check_references(contract, contracts)
    return contracts


def _check_published_schema(contract: Contract, contracts: dict[str, Contract]) -> None:
    """Publishing writes into the published schema: never another connector's landing schema,
    the audit schema, or a schema another contract publishes to."""
    from pipeline.publish import AUDIT_SCHEMA  # it imports this module

    schema = contract.published_schema.lower()
    for other in contracts.values():
        if other is contract:
            continue
        if schema == other.connector.lower():
            clash = f"connector {other.connector!r}'s landing schema ({other.file.name})"
        elif schema == other.published_schema.lower():
            clash = f"the published schema of {other.file.name} too"
        else:
            continue
        raise ContractError(
            contract.file, f"publishedSchema {contract.published_schema!r} is {clash}: publishing "
            "would write over its tables, and Looker could not tell them apart"
        )  # fmt: skip
    if schema == AUDIT_SCHEMA:
        raise ContractError(
            contract.file, f"publishedSchema {contract.published_schema!r} is tollgate's audit "
            "schema, where the snapshots and the ledger live"
        )  # fmt: skip


def load_contract(path: Path) -> Contract:
    """Parse one ODCS file; raise ContractError naming file, table and column on any problem."""
    try:
        raw = _parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ContractError(path, f"is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ContractError(path, "must be a YAML mapping (an ODCS v3 data contract)")
    _check_keys(path, raw)
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
    custom = _custom(path, odcs.customProperties, CONTRACT_PROPERTIES)
    connector_id = custom.get("fivetranConnectorId")
    if connector_id is not None and not isinstance(connector_id, str):
        raise ContractError(path, f"fivetranConnectorId must be a string, got {connector_id!r}")
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


def _check_keys(path: Path, raw: dict[str, Any]) -> None:
    """Refuse unknown keys (naming the closest known one), then anything ODCS's JSON Schema refuses."""
    problems = [*unknown_keys(raw), *_unknown_options(raw)]
    if problems:
        first = problems[0]
        raise ContractError(path, str(first), *_named(raw, first.path))
    for where, rule in _quality_entries(raw):
        metric = rule.get("metric", rule.get("rule"))
        if isinstance(metric, str) and metric not in METRICS:
            hint = suggest(metric, METRICS)
            raise ContractError(
                path, f"unknown metric `{metric}` at {dotted(where)}"
                + (f" (did you mean `{hint}`?)" if hint else f" (one of {', '.join(METRICS)})"),
                *_named(raw, where),
            )  # fmt: skip
    error = schema_error(with_logical_types(raw, _inferred_logical_types(raw)))
    if error is not None:
        where = tuple(error.absolute_path)
        raise ContractError(
            path,
            f"not a valid ODCS contract at {dotted(where)}: {error.message}",
            *_named(raw, where),
        )


def _quality_entries(raw: dict[str, Any]):
    """(path, rule) for every quality rule of every table and top-level property."""
    places = [(("schema", i), obj) for i, obj in enumerate(raw.get("schema") or [])]
    places += list(_properties(raw))
    for where, node in places:
        if isinstance(node, dict) and isinstance(node.get("quality"), list):
            for k, rule in enumerate(node["quality"]):
                if isinstance(rule, dict):
                    yield (*where, "quality", k), rule


def _properties(raw: dict[str, Any]):
    """(path, property) for every top-level property of every schema object that is a mapping."""
    for i, obj in enumerate(raw.get("schema") or []):
        if isinstance(obj, dict):
            for j, prop in enumerate(obj.get("properties") or []):
                if isinstance(prop, dict):
                    yield ("schema", i, "properties", j), prop


def _logical_of(prop: dict[str, Any]) -> str | None:
    """The ODCS logicalType whose options apply: the declared one, else the physical type's."""
    if isinstance(prop.get("logicalType"), str):
        return prop["logicalType"]
    try:
        return FAMILY_LOGICAL.get(type_family(str(prop.get("physicalType"))))
    except ValueError:
        return None


def _inferred_logical_types(raw: dict[str, Any]) -> dict[tuple, str]:
    return {
        where: logical
        for where, prop in _properties(raw)
        if "logicalTypeOptions" in prop
        and "logicalType" not in prop
        and (logical := _logical_of(prop)) in logical_type_option_keys()
    }


def _unknown_options(raw: dict[str, Any]):
    for where, prop in _properties(raw):
        options = prop.get("logicalTypeOptions")
        if not isinstance(options, dict):
            continue
        known = logical_type_option_keys().get(_logical_of(prop) or "", frozenset())
        for key in options:
            if key not in known:
                yield UnknownKey((*where, "logicalTypeOptions", key), str(key), known)


def _custom(
    path: Path,
    properties: list[CustomProperty] | None,
    known: tuple[str, ...],
    table: str | None = None,
    column: str | None = None,
) -> dict[str, Any]:
    """tollgate's customProperties at one level; an unknown or repeated one refuses to load."""
    found: dict[str, Any] = {}
    for prop in properties or []:
        if prop.vendor and prop.vendor != "tollgate":
            if prop.property in known:  # `vendor: Tollgate`, `tolgate`: a slip would drop a rule
                raise ContractError(
                    path, f"customProperty `{prop.property}` has vendor {prop.vendor!r}: "
                    "tollgate reads its own properties only with vendor tollgate or none",
                    table, column,
                )  # fmt: skip
            continue  # another tool's
        if prop.property not in known:
            hint = suggest(str(prop.property), known)
            raise ContractError(
                path, f"unknown customProperty `{prop.property}`"
                + (f" (did you mean `{hint}`?)" if hint else f" (known here: {', '.join(known)})"),
                table, column,
            )  # fmt: skip
        if prop.property in found:
            raise ContractError(
                path, f"customProperty `{prop.property}` is given twice", table, column
            )
        found[prop.property] = prop.value
    return found


def _fraction(value: Any, name: str, fail) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise fail(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _flag(value: Any, name: str, fail, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise fail(f"{name} must be true or false, got {value!r}")
    return value


def _row_bounds(value: Any, fail) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise fail(f"rowCount must be a mapping like {{min: 1, max: 1000}}, got {value!r}")
    for key in value:
        if key not in ("min", "max"):
            hint = suggest(str(key), ("min", "max"))
            raise fail(
                f"unknown key `{key}` in rowCount" + (f" (did you mean `{hint}`?)" if hint else "")
            )
    low, high = value.get("min"), value.get("max")
    for bound in (low, high):
        if bound is not None and (type(bound) is not int or bound < 0):
            raise fail(f"rowCount must be a mapping like {{min: 1, max: 1000}}, got {value!r}")
    if low is not None and high is not None and low > high:
        raise fail(f"rowCount min {low} is above max {high}")
    return low, high


def _table(
    path: Path, connector: str, owner: str, obj: SchemaObject, published: str
) -> TableContract:
    if not obj.name:
        raise ContractError(path, "every schema object needs a `name`")
    fail = lambda message: ContractError(path, message, obj.name)  # noqa: E731
    if obj.physicalName and obj.physicalName != obj.name:
        raise fail(_renamed(obj.name, obj.physicalName, "table"))
    custom = _custom(path, obj.customProperties, TABLE_PROPERTIES, obj.name)
    low, high = _row_bounds(custom.get("rowCount"), fail)
    hours = custom.get("freshnessHours")
    if hours is not None and (type(hours) not in (int, float) or hours <= 0):
        raise fail(f"freshnessHours must be a positive number, got {hours!r}")
    if obj.relationships:
        raise fail(
            "schema-level relationships are not supported: declare each foreign key on its "
            "column (relationships: [{type: foreignKey, to: table.column}])"
        )
    severity = custom.get("severity") or {}
    if not isinstance(severity, dict):
        raise fail(f"severity must map rule families to error or warn, got {severity!r}")
    for family, level in severity.items():
        if family not in RULE_FAMILIES:
            hint = suggest(str(family), RULE_FAMILIES)
            raise fail(
                f"severity must map rule families ({', '.join(RULE_FAMILIES)}) to error or warn, "
                f"got {family}: {level}" + (f" (did you mean `{hint}`?)" if hint else "")
            )
        if level not in SEVERITIES:
            raise fail(
                f"severity must map rule families ({', '.join(RULE_FAMILIES)}) to "
                f"error or warn, got {family}: {level}"
            )
    freshness_by = custom.get("freshnessBy", "rows")
    if freshness_by not in ("rows", "sync"):
        raise fail(f"freshnessBy must be rows or sync, got {freshness_by!r}")
    pii_scan = custom.get("piiScan", "sample")
    if pii_scan not in ("sample", "exact"):
        raise fail(f"piiScan must be sample or exact, got {pii_scan!r}")
    every = custom.get("fullAuditEvery", FULL_AUDIT_EVERY)
    if type(every) is not int or every < 1:
        raise fail(f"fullAuditEvery must be a whole number of audits, 1 or more, got {every!r}")
    table_owner = custom.get("owner") or owner
    if not isinstance(table_owner, str):
        raise fail(f"owner must be a string, got {table_owner!r}")
    blank = _flag(custom.get("blankIsMissing"), "blankIsMissing", fail, True)
    columns = tuple(_column(path, obj.name, prop, blank) for prop in obj.properties or [])
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise ContractError(path, "is listed twice", obj.name, column.name)
        seen.add(column.name)
    if not any(column.primary_key for column in columns):
        # Else no rule would hold its rows unique, nor its ids to be present.
        raise fail(
            "declares no primaryKey: mark the column(s) that identify a row `primaryKey: true` "
            "(Fivetran's `_fivetran_id` for a source table without one)"
        )
    return TableContract(
        connector=connector,
        name=obj.name,
        owner=table_owner,
        description=obj.description or "",
        columns=columns,
        freshness_hours=hours,
        row_count_min=low,
        row_count_max=high,
        severity=dict(severity),
        pii_scan=pii_scan,
        freshness_by=freshness_by,
        file=path,
        published_schema=published,
        max_deleted_fraction=_fraction(
            custom.get("maxDeletedFraction"), "maxDeletedFraction", fail
        ),
        quality=_quality(path, obj, [c.name for c in columns]),
        full_audit_every=every,
    )


def _quality(path: Path, obj: SchemaObject, column_names: list[str]) -> tuple[QualityRule, ...]:
    """The table's and its columns' quality rules, each with a stable, unique check name."""
    rules: list[QualityRule] = []
    for column, entries in [
        (None, obj.quality),
        *((p.name, p.quality) for p in obj.properties or []),
    ]:
        try:
            rules += parse_rules(entries or [], column, column_names)
        except QualityError as error:
            raise ContractError(path, str(error), obj.name, column) from None
    named: list[QualityRule] = []
    taken: set[str] = set()
    for rule in rules:
        base = _check_name(rule)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        named.append(replace(rule, check_name=name))
    return tuple(named)


def _check_name(rule: QualityRule) -> str:
    """`<name>` when the rule has one, else `<column>_<metric>`: letters, digits, underscores."""
    if rule.name:
        base = rule.name
    else:
        metric = re.sub(r"(?<!^)(?=[A-Z])", "_", rule.metric).lower()
        base = f"{rule.column or 'table'}_{metric}"
    slug = re.sub(r"[^A-Za-z0-9]+", "_", base).strip("_").lower()
    return f"quality_{slug or 'rule'}"


def _renamed(name: str, physical: str, kind: str) -> str:
    return (
        f"physicalName {physical!r} differs from name {name!r}: tollgate checks the {kind} "
        f"`name` gives, so this contract would judge another {kind}; name it as it lands"
    )


def _column(path: Path, table: str, prop: SchemaProperty, blank_default: bool) -> ColumnContract:
    if not prop.name:
        raise ContractError(path, "every property needs a `name`", table)
    fail = lambda message: ContractError(path, message, table, prop.name)  # noqa: E731
    if prop.physicalName and prop.physicalName != prop.name:
        raise fail(_renamed(prop.name, prop.physicalName, "column"))
    if prop.properties or prop.items:  # their rules and classifications would never be checked
        raise fail(
            "nested properties or items are not checked by tollgate: flatten them into "
            "columns, or classify and constrain the parent column"
        )
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
    custom = _custom(path, prop.customProperties, COLUMN_PROPERTIES, table, prop.name)
    handling = custom.get("piiHandling")
    max_nulls = _fraction(custom.get("maxNullFraction"), "maxNullFraction", fail)
    if handling is not None and handling not in PII_HANDLING:
        raise fail(f"piiHandling {handling!r} is not one of {', '.join(PII_HANDLING)}")
    if classification in PII_CLASSES and handling is None:
        raise fail(f"is classified {classification}: say how it arrives with piiHandling")
    if handling and classification not in PII_CLASSES:
        raise fail("has piiHandling but no PII classification")
    options = {}
    if prop.logicalTypeOptions:
        logical = (prop.logicalType or FAMILY_LOGICAL.get(family, "")).lower()
        if LOGICAL.get(logical) is None or family in ("boolean", "json"):
            raise fail(f"logicalTypeOptions do not apply to a {family} column")
        try:
            options = parse_options(prop.logicalTypeOptions, family)
        except QualityError as error:
            raise fail(str(error)) from None
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
        max_null_fraction=max_nulls,
        blank_is_missing=_flag(custom.get("blankIsMissing"), "blankIsMissing", fail, blank_default),
        options=options,
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
                parent_column = parent_table.column(key)
                if parent_column.is_pii and column.classification != parent_column.classification:
                    # Else its values (the same PII) would be scanned, redacted and recorded as
                    # a column that holds none.
                    raise ContractError(
                        contract.file, f"foreign key to {target}: that key is classified "
                        f"{parent_column.classification}, and this column holds its values: "
                        f"classify it {parent_column.classification} too", table.name, column.name
                    )  # fmt: skip
