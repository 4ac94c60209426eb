"""The connectors the Fivetran sandbox serves, and what a sync of each lands."""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import pandas as pd

from pipeline.sandbox import csv_replay, landing, sample_crm, sample_payments
from pipeline.sandbox.defects import (
    DEFECTS,
    apply_defects,
    requested_defects,
    unhashed,
    validated,
)

__all__ = ["DEFECTS", "GROUP_ID", "SandboxTable", "Source", "requested_defects", "sources"]

GROUP_ID = "tollgate_sandbox"  # the Fivetran group (destination) the example connectors are in


@dataclass(frozen=True)
class SandboxTable:
    name: str
    columns: dict[str, str]  # destination column -> DuckDB type, without _fivetran_* columns
    hashed: frozenset[str] = frozenset()  # Fivetran column hashing delivers these hashed
    blocked: frozenset[str] = frozenset()  # disabled in Fivetran's schema config: never land


@dataclass(frozen=True)
class Source:
    connector_id: str
    schema: str
    service: str
    tables: dict[str, SandboxTable]
    # The rows as the source system holds them: all declared columns, PII still raw.
    read: Callable[[], dict[str, pd.DataFrame]] = field(repr=False, compare=False, kw_only=True)
    group_id: str = field(default=GROUP_ID, kw_only=True)

    def land(self, defects: frozenset[str], synced_at: datetime) -> dict[str, pd.DataFrame]:
        """What one sync writes: declared types, hashed and blocked columns, system columns."""
        defects = validated(defects)
        rows = self.read()
        landed = {}
        for name, table in self.tables.items():
            frame = landing.typed(rows[name], table.columns)
            for column in table.hashed - unhashed(self.connector_id, name, defects):
                frame[column] = landing.sha256(frame[column])
            frame = frame.drop(columns=list(table.blocked))
            landed[name] = landing.with_system_columns(frame, synced_at)
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
        ),
        SandboxTable(
            "charges",
            {"id": "VARCHAR", "customer_id": "VARCHAR", "invoice_id": "VARCHAR", "amount": "BIGINT",
             "currency": "VARCHAR", "status": "VARCHAR", "description": "VARCHAR",
             "created": "TIMESTAMP"},
        ),
        SandboxTable(
            "invoices",
            {"id": "VARCHAR", "customer_id": "VARCHAR", "amount_due": "BIGINT",
             "amount_paid": "BIGINT", "status": "VARCHAR", "due_date": "DATE",
             "created": "TIMESTAMP"},
        ),
    ),
    read=sample_payments.frames,
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
        ),
        SandboxTable(
            "contacts",
            {"id": "BIGINT", "company_id": "BIGINT", "email": "VARCHAR", "phone": "VARCHAR",
             "first_name": "VARCHAR", "last_name": "VARCHAR", "job_title": "VARCHAR",
             "lifecycle_stage": "VARCHAR", "created_at": "TIMESTAMP"},
            hashed=frozenset({"email", "phone"}),
            blocked=frozenset({"last_name"}),
        ),
        SandboxTable(
            "deals",
            {"id": "BIGINT", "company_id": "BIGINT", "contact_id": "BIGINT",
             "amount": "DECIMAL(18,2)", "stage": "VARCHAR", "close_date": "DATE",
             "notes": "VARCHAR", "created_at": "TIMESTAMP"},
        ),
    ),
    read=sample_crm.frames,
)  # fmt: skip


def sources() -> list[Source]:
    """The two example connectors (or TOLLGATE_SANDBOX_SCALE's), then one per CSV replay folder."""
    from pipeline.sandbox import scale

    found = scale.sources() or [PAYMENTS, CRM]
    csv_dir = os.environ.get("TOLLGATE_SANDBOX_CSV_DIR")
    for folder in csv_replay.connector_folders(Path(csv_dir)) if csv_dir else []:
        if folder.name in {s.schema for s in found}:
            # One destination schema per connector, as Fivetran enforces.
            raise ValueError(
                f"CSV folder {folder} would land in schema {folder.name!r}, already used"
            )
        tables = {
            name: SandboxTable(name, cols) for name, cols in csv_replay.tables(folder).items()
        }
        read = partial(csv_replay.read, folder)
        found.append(Source(f"{folder.name}_csv", folder.name, "csv", tables, read=read))
    return found
