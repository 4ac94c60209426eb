"""Make source rows look as Fivetran lands them: declared types, hashed columns, system columns."""

import hashlib
import re
from datetime import datetime

import pandas as pd
import pyarrow as pa

HASH_SALT = "tollgate-sandbox:"  # Fivetran salts its SHA-256 column hashing; the sandbox's is fixed
# Pandas dtypes that DuckDB reads back as exactly these types, nulls included.
DTYPES = {
    "BIGINT": "Int64",
    "INTEGER": "Int32",
    "SMALLINT": "Int16",
    "DOUBLE": "Float64",
    "BOOLEAN": "boolean",
    "VARCHAR": "string",
    "DATE": pd.ArrowDtype(pa.date32()),
    "TIMESTAMP": "datetime64[us]",
    "TIMESTAMP WITH TIME ZONE": "datetime64[us, UTC]",
}


def dtype(type_name: str):
    """The pandas dtype that lands as `type_name`; None for types left as they come."""
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", type_name)
    if decimal:
        return pd.ArrowDtype(pa.decimal128(int(decimal[1]), int(decimal[2])))
    return DTYPES.get(type_name)


def typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The declared columns, in declared order, each cast to the dtype that lands as its type."""
    cast = {name: dtype(type_name) for name, type_name in columns.items()}
    return frame[list(columns)].astype({name: d for name, d in cast.items() if d is not None})


def sha256(values: pd.Series) -> pd.Series:
    """Lowercase hex SHA-256 of each value, as Fivetran's column hashing delivers it; nulls stay null."""
    hashed = [
        None if pd.isna(v) else hashlib.sha256(f"{HASH_SALT}{v}".encode()).hexdigest()
        for v in values
    ]
    return pd.Series(hashed, index=values.index, dtype="string")


def with_system_columns(
    frame: pd.DataFrame, synced_at: datetime, source: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Fivetran's _fivetran_synced and _fivetran_deleted; a replayed extract keeps its own."""
    synced = pd.Timestamp(synced_at)
    # Fivetran writes _fivetran_synced in UTC; a naive synced_at is taken to be UTC already.
    synced = synced.tz_localize("UTC") if synced.tzinfo is None else synced.tz_convert("UTC")
    stamps = pd.Series(synced, index=frame.index, dtype="datetime64[us, UTC]")
    deleted = pd.Series(False, index=frame.index, dtype="boolean")
    if source is not None and "_fivetran_synced" in source:
        given = pd.to_datetime(source["_fivetran_synced"].astype(object), utc=True)
        stamps = pd.Series(given.to_numpy(), index=frame.index).astype("datetime64[us, UTC]")
    if source is not None and "_fivetran_deleted" in source:
        deleted = pd.Series(source["_fivetran_deleted"].to_numpy(), index=frame.index)
        deleted = deleted.astype("boolean")
    return frame.assign(_fivetran_synced=stamps, _fivetran_deleted=deleted)
