"""Type families: DuckDB and Snowflake spell the same column type differently."""

from functools import cache

from sqlglot import exp
from sqlglot.errors import ParseError

T = exp.DataType.Type
_FAMILIES = {
    "boolean": {T.BOOLEAN},
    "date": {T.DATE, T.DATE32},
    "timestamp": {
        T.TIMESTAMP,
        T.TIMESTAMPNTZ,
        T.DATETIME,
        T.TIMESTAMP_S,
        T.TIMESTAMP_MS,
        T.TIMESTAMP_NS,
    },
    "timestamp_tz": {T.TIMESTAMPTZ, T.TIMESTAMPLTZ},
    "time": {T.TIME, T.TIMETZ},
    "json": {T.JSON, T.JSONB, T.VARIANT, T.OBJECT, T.ARRAY, T.STRUCT, T.MAP, T.LIST},
    "binary": {T.BINARY, T.VARBINARY, T.BLOB},
}
# ODCS logical types, for contracts that give no physical type
LOGICAL = {
    "string": "text",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp_tz",
    "object": "json",
    "array": "json",
}


# What a contract's type family accepts as landed beyond itself. Fivetran lands an instant as
# TIMESTAMP_TZ on Snowflake (TIMESTAMP WITH TIME ZONE elsewhere) where a contract says TIMESTAMP:
# the same instants. A contract that says TIMESTAMP_TZ still refuses a naive TIMESTAMP_NTZ.
ACCEPTS = {"timestamp": {"timestamp_tz"}}


def accepts(contract_family: str, landed_type: str) -> bool:
    """Whether a column landed as `landed_type` satisfies a contract column of that family."""
    try:
        landed = type_family(landed_type)
    except ValueError:
        landed = landed_type.lower()
    return landed == contract_family or landed in ACCEPTS.get(contract_family, set())


def logical_family(logical_type: str) -> str:
    """Family of an ODCS logical type; ValueError when ODCS has no such type."""
    if logical_type.lower() not in LOGICAL:
        raise ValueError(f"unknown logicalType {logical_type!r} (one of {', '.join(LOGICAL)})")
    return LOGICAL[logical_type.lower()]


@cache  # a contract of 1,000 tables names a handful of types thousands of times
def type_family(type_name: str) -> str:
    """Family of a SQL type name in either dialect; ValueError when neither dialect knows it."""
    for dialect in ("duckdb", "snowflake"):
        try:
            kind = exp.DataType.build(type_name, dialect=dialect).this
        except (ParseError, ValueError):
            continue
        if kind in exp.DataType.TEXT_TYPES:
            return "text"
        # Snowflake reports every fixed-point column as NUMBER, so integers and decimals share one.
        if kind in exp.DataType.NUMERIC_TYPES:
            return "number"
        for family, kinds in _FAMILIES.items():
            if kind in kinds:
                return family
        if kind != T.USERDEFINED:
            return kind.value.lower()
    raise ValueError(f"unknown type {type_name!r}")
