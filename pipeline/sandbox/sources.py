"""The connectors the Fivetran sandbox serves, and what a sync of each lands."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.sandbox.defects import (
    DEFECTS,
    apply_defects,
    requested_defects,
    unhashed,
    validated,
)

# pandas (0.4 s to import) and the modules that build frames load with the first sync: the
# sandbox API answers the workspace's questions while the definitions load without them.
if TYPE_CHECKING:
    import pandas as pd

    from pipeline.contract import TableContract

__all__ = ["DEFECTS", "GROUP_ID", "SandboxTable", "Source", "requested_defects", "sources"]

GROUP_ID = "tollgate_sandbox"  # the Fivetran group (destination) the example connectors are in


@dataclass(frozen=True)
class SandboxTable:
    name: str
    columns: dict[str, str]  # destination column -> DuckDB type, without _fivetran_* columns
    hashed: frozenset[str] = frozenset()  # Fivetran column hashing delivers these hashed
    blocked: frozenset[str] = frozenset()  # disabled in Fivetran's schema config: never land
    key: tuple[str, ...] = ()  # primary key syncs upsert by; none: rows are keyed by content


@dataclass(frozen=True)
class Source:
    connector_id: str
    schema: str
    service: str
    tables: dict[str, SandboxTable]
    # The rows as the source system holds them: all declared columns, PII still raw.
    read: Callable[[], dict[str, pd.DataFrame]] = field(repr=False, compare=False, kw_only=True)
    group_id: str = field(default=GROUP_ID, kw_only=True)

    def land(
        self, defects: frozenset[str], synced_at: datetime, edits: dict[str, Any] | None = None
    ) -> dict[str, pd.DataFrame]:
        """What one sync writes: declared types, hashed and blocked columns, system columns."""
        from pipeline.sandbox import landing
        from pipeline.sandbox.source_edits import applied

        defects = validated(defects)
        rows = self.read()
        landed = {}
        for name, table in self.tables.items():
            source_rows = rows[name]
            if edits and name in edits:
                source_rows = applied(source_rows, edits[name], *table.key[:1])
            frame = landing.typed(source_rows, table.columns)
            for column in table.hashed - unhashed(self.connector_id, name, defects):
                frame[column] = landing.sha256(frame[column])
            frame = frame.drop(columns=list(table.blocked))
            landed[name] = landing.with_system_columns(frame, synced_at, source_rows)
        return apply_defects(self.connector_id, landed, defects)

    def column_config(self, defects: frozenset[str]) -> dict[str, dict[str, dict[str, bool]]]:
        """Table -> column -> enabled/hashed, as Fivetran's schema config reports them."""
        return {
            name: {
                column: {
                    "enabled": column not in table.blocked,
                    "hashed": column in table.hashed - unhashed(self.connector_id, name, defects),
                }
                for column in table.columns
            }
            for name, table in self.tables.items()
        }


def _tables(*tables: SandboxTable) -> dict[str, SandboxTable]:
    return {table.name: table for table in tables}


def _payments() -> dict[str, pd.DataFrame]:
    from pipeline.sandbox import sample_payments

    return sample_payments.frames()


def _crm() -> dict[str, pd.DataFrame]:
    from pipeline.sandbox import sample_crm

    return sample_crm.frames()


PAYMENTS = Source(
    connector_id="payments_sandbox",
    schema="payments",
    service="stripe",
    tables=_tables(
        SandboxTable(
            "customers",
            {"id": "VARCHAR", "email": "VARCHAR", "name": "VARCHAR", "country": "VARCHAR",
             "created": "TIMESTAMP", "delinquent": "BOOLEAN"},
            hashed=frozenset({"email"}),
            key=("id",),
        ),
        SandboxTable(
            "charges",
            {"id": "VARCHAR", "customer_id": "VARCHAR", "invoice_id": "VARCHAR", "amount": "BIGINT",
             "currency": "VARCHAR", "status": "VARCHAR", "description": "VARCHAR",
             "created": "TIMESTAMP"},
            key=("id",),
        ),
        SandboxTable(
            "invoices",
            {"id": "VARCHAR", "customer_id": "VARCHAR", "amount_due": "BIGINT",
             "amount_paid": "BIGINT", "status": "VARCHAR", "due_date": "DATE",
             "created": "TIMESTAMP"},
            key=("id",),
        ),
    ),
    read=_payments,
)  # fmt: skip
CRM = Source(
    connector_id="crm_sandbox",
    schema="crm",
    service="hubspot",
    tables=_tables(
        SandboxTable(
            "companies",
            {"id": "BIGINT", "name": "VARCHAR", "domain": "VARCHAR", "industry": "VARCHAR",
             "employee_count": "INTEGER", "created_at": "TIMESTAMP"},
            key=("id",),
        ),
        SandboxTable(
            "contacts",
            {"id": "BIGINT", "company_id": "BIGINT", "email": "VARCHAR", "phone": "VARCHAR",
             "first_name": "VARCHAR", "last_name": "VARCHAR", "job_title": "VARCHAR",
             "lifecycle_stage": "VARCHAR", "created_at": "TIMESTAMP"},
            hashed=frozenset({"email", "phone"}),
            blocked=frozenset({"last_name"}),
            key=("id",),
        ),
        SandboxTable(
            "deals",
            {"id": "BIGINT", "company_id": "BIGINT", "contact_id": "BIGINT",
             "amount": "DECIMAL(18,2)", "stage": "VARCHAR", "close_date": "DATE",
             "notes": "VARCHAR", "created_at": "TIMESTAMP"},
            key=("id",),
        ),
    ),
    read=_crm,
)  # fmt: skip


def sources() -> list[Source]:
    """The two example connectors (or TOLLGATE_SANDBOX_SCALE's), then one per CSV replay folder."""
    from pipeline.sandbox import scale

    found = scale.sources() or [PAYMENTS, CRM]
    csv_dir = os.environ.get("TOLLGATE_SANDBOX_CSV_DIR")
    if not csv_dir:
        return found
    from pipeline.sandbox import csv_replay

    for folder in csv_replay.connector_folders(Path(csv_dir)):
        if folder.name in {s.schema for s in found}:
            # One destination schema per connector, as Fivetran enforces.
            raise ValueError(
                f"CSV folder {folder} would land in schema {folder.name!r}, already used"
            )
        tables = _csv_tables(folder)
        read = partial(csv_replay.read, folder)
        found.append(Source(f"{folder.name}_csv", folder.name, "csv", tables, read=read))
    return found


def _csv_tables(folder: Path) -> dict[str, SandboxTable]:
    """A replayed connector's tables: sniffed types (a header-only CSV takes its contract's),
    Fivetran's system columns kept apart, hashing and blocking from its fivetran.yaml, and the
    contract's primary key to upsert by."""
    from pipeline.sandbox import csv_replay

    sniffed = csv_replay.tables(folder)
    config = csv_replay.column_config(folder, sniffed)
    contracted = _contracted(folder.name)
    header_only = csv_replay.header_only(folder)
    found = {}
    for name, columns in sniffed.items():
        table = contracted.get(name)
        typed = {c.name: c.physical_type for c in table.columns} if table else {}
        types = {
            column: (typed.get(column) if name in header_only else None) or kind
            for column, kind in columns.items()
            if column not in csv_replay.SYSTEM_COLUMNS
        }
        flags = config.get(name, csv_replay.ColumnConfig())
        key = tuple(c.name for c in table.columns if c.primary_key) if table else ()
        # Without a contracted key (or with a key column missing), rows match by their content.
        key = key if set(key) <= set(types) else ()
        found[name] = SandboxTable(name, types, flags.hashed, flags.blocked, key)
    return found


def _contracted(connector: str) -> dict[str, TableContract]:
    """The connector's contracted tables, by name (none without a contract)."""
    from pipeline.contract import load_contracts

    contract = load_contracts().get(connector)
    return dict(contract.tables) if contract else {}
