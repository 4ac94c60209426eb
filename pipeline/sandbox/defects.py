"""Switchable data defects: each makes the next landing carry one known problem."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a landing damages frames: serving the API needs no pandas
    import pandas as pd

DEFECTS = {
    "null_ids": "payments.charges.id and crm.deals.id are null in a few rows",
    "missing_column": "payments.charges arrives without its currency column",
    "type_change": "payments.invoices.amount_due arrives as VARCHAR ('125.00')",
    "raw_pii": "crm.contacts.email arrives unhashed, and Fivetran's config reports it unhashed",
    "pii_in_free_text": "a few crm.deals.notes carry email addresses and US SSNs",
    "duplicate_pk": "a few payments.customers rows repeat an existing id",
    "orphan_fk": "a few payments.charges.customer_id values name customers that do not exist",
    "stale": "crm.companies lands with _fivetran_synced 3 days before the sync",
}
AFFECTED_ROWS = 12
# raw_pii acts on the hashing itself: (connector id, table, column) that lands unhashed.
UNHASHED = {"raw_pii": ("crm_sandbox", "contacts", "email")}


def requested_defects() -> frozenset[str]:
    """Defects named in TOLLGATE_SANDBOX_DEFECTS (comma-separated); ValueError for unknown ones."""
    raw = os.environ.get("TOLLGATE_SANDBOX_DEFECTS", "")
    return validated(name.strip() for name in raw.split(",") if name.strip())


def validated(names: Iterable[str]) -> frozenset[str]:
    found = frozenset(names)
    unknown = ", ".join(repr(name) for name in sorted(found - DEFECTS.keys()))
    if unknown:
        raise ValueError(f"unknown sandbox defect {unknown}; valid defects: {', '.join(DEFECTS)}")
    return found


def unhashed(connector_id: str, table: str, defects: frozenset[str]) -> frozenset[str]:
    """Columns that the defects make land raw though Fivetran should hash them."""
    return frozenset(
        column
        for defect, (connector, name, column) in UNHASHED.items()
        if defect in defects and (connector, name) == (connector_id, table)
    )


def _rows(frame: pd.DataFrame, offset: int) -> pd.Index:
    """A small, fixed handful of rows spread through the table."""
    return frame.index[offset :: max(1, len(frame) // AFFECTED_ROWS)][:AFFECTED_ROWS]


def _null_ids(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[_rows(frame, 3), "id"] = None
    return frame


def _without_currency(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="currency")


def _amount_due_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(amount_due=frame["amount_due"].map(lambda c: f"{c / 100:.2f}").astype("string"))  # fmt: skip


def _pii_in_notes(frame: pd.DataFrame) -> pd.DataFrame:
    rows = _rows(frame, 5)
    frame.loc[rows, "notes"] = [
        f"call back jane.doe{i}@example.com, SSN {123 + i}-45-{6789 - i}" for i in range(len(rows))
    ]
    return frame


def _repeated_ids(frame: pd.DataFrame) -> pd.DataFrame:
    # The same customer replayed with a changed field: a key clash, not an exact duplicate row.
    import pandas as pd

    copies = frame.loc[_rows(frame, 7)].assign(delinquent=lambda f: ~f["delinquent"])
    return pd.concat([frame, copies], ignore_index=True)


def _orphan_customers(frame: pd.DataFrame) -> pd.DataFrame:
    rows = _rows(frame, 9)
    frame.loc[rows, "customer_id"] = [f"cus_Gone{i:010d}" for i in range(len(rows))]
    return frame


def _three_days_old(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    return frame.assign(_fivetran_synced=frame["_fivetran_synced"] - pd.Timedelta(days=3))


Damage = Callable[["pd.DataFrame"], "pd.DataFrame"]
_DAMAGE: dict[str, list[tuple[str, str, Damage]]] = {
    "null_ids": [("payments_sandbox", "charges", _null_ids), ("crm_sandbox", "deals", _null_ids)],
    "missing_column": [("payments_sandbox", "charges", _without_currency)],
    "type_change": [("payments_sandbox", "invoices", _amount_due_as_text)],
    "pii_in_free_text": [("crm_sandbox", "deals", _pii_in_notes)],
    "duplicate_pk": [("payments_sandbox", "customers", _repeated_ids)],
    "orphan_fk": [("payments_sandbox", "charges", _orphan_customers)],
    "stale": [("crm_sandbox", "companies", _three_days_old)],
}


def apply_defects(
    connector_id: str, frames: dict[str, pd.DataFrame], defects: frozenset[str]
) -> dict[str, pd.DataFrame]:
    """The landed frames with each requested defect's damage done to its target tables."""
    damaged = dict(frames)
    for defect in DEFECTS:
        for connector, table, damage in _DAMAGE.get(defect, []) if defect in defects else []:
            if connector == connector_id:
                damaged[table] = damage(damaged[table].copy())
    return damaged
