"""What every rule family provides: the metrics it needs and a verdict on them."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from pipeline.checks.scan_history import ScanHistory
from pipeline.contract import TableContract
from pipeline.warehouse import Warehouse


@dataclass(frozen=True)
class Delta:
    """The rows synced since a rule's last passing audit, and what that audit recorded."""

    since: datetime  # the last passing audit's watermark: rows synced after it are new
    view: tuple[str, str]  # (schema, view) holding exactly those rows of the audited version
    rows: int  # how many there are
    previous: Mapping[str, Any] = field(default_factory=dict)  # the last passing result's metadata
    whole: tuple[str, str] = ("", "")  # (schema, table) of the audited version the delta is in
    live: int = 0  # live (not soft-deleted) rows in that whole version
    replaced: int = 0  # rows of the last passing audit's version that are not there unchanged


@dataclass(frozen=True)
class TableState:
    """What is known about the landed table before profiling it."""

    columns: Mapping[str, str]  # column name -> warehouse type, as the table exists now
    row_estimate: int | None = None
    fivetran_columns: Mapping[str, Mapping[str, Any]] | None = None  # Fivetran's column config
    pii_history: ScanHistory | None = None  # the PII scan's seed and last passing scan
    # contract column -> the name it landed under, when that differs from the contract's by
    # case only (on Snowflake: from the upper-case name Fivetran lands unquoted)
    renamed: Mapping[str, str] = field(default_factory=dict)
    # When Fivetran last finished a successful sync of the table (its latest materialization)
    last_sync: datetime | None = None
    # Set when the rule judges only the rows synced since its last passing audit
    delta: Delta | None = None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)


Metrics = Callable[[TableContract, TableState, str], dict[str, exp.Expression]]
Followup = Callable[[TableContract, TableState, Warehouse, Mapping[str, Any]], dict[str, Any]]


def no_metrics(table: TableContract, state: TableState, dialect: str) -> dict[str, exp.Expression]:
    return {}


@dataclass(frozen=True)
class Rule:
    """One rule family: its check name, the profile slice it needs, and its judgement."""

    check_name: str
    family: str  # the key a contract uses to set this rule's severity
    description: str
    applies: Callable[[TableContract], bool]
    judge: Callable[[TableContract, TableState, Mapping[str, Any]], Verdict]
    metrics: Metrics = no_metrics
    followup: Followup | None = None  # its own queries (keys, joins, failing samples)
    default_severity: str = "error"
    needs_fivetran_config: bool = False
    fixed_severity: str | None = None  # the contract's own severity for this one rule
    # How the rule can judge only the rows synced since its last passing audit: "rows" when its
    # verdict is "no row fails" (rows that passed need no re-reading), "keys" when it compares
    # the new rows with the rest (uniqueness, foreign keys), "count" when it bounds a count of
    # rows (the last result's count, less the rows replaced since, plus the new rows' count),
    # None when it needs every row.
    incremental: Callable[[TableContract], str | None] = lambda table: None
    # Its metrics from the counts the incremental plan already took over every row (total, live,
    # newest and future `_fivetran_synced`), instead of a read of its own.
    from_facts: Callable[[Mapping[str, Any], TableState], dict[str, Any]] | None = None

    def severity(self, table: TableContract) -> str:
        return self.fixed_severity or table.severity.get(self.family, self.default_severity)
