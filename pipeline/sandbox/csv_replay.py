"""Replay CSV exports as extra connectors: one folder per connector, one file per table.

Beside the CSVs, an optional `fivetran.yaml` says what Fivetran's column config does to them:

    tables:
      customers: {hashed: [email], blocked: [ssn]}

The CSV holds the rows as the source has them; the replay hashes and drops those columns as
Fivetran would, and reports them hashed or disabled in the sandbox's column config.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import yaml

from pipeline.contract_schema import suggest

# Fivetran's file connectors default to comma-separated files with a header row.
READ_CSV = "SELECT * FROM read_csv($path, header = true, delim = ',')"
SIDECAR = "fivetran.yaml"
SYSTEM_COLUMNS = ("_fivetran_synced", "_fivetran_deleted")  # kept from the CSV when present


@dataclass(frozen=True)
class ColumnConfig:
    hashed: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()


def column_config(connector: Path, columns: dict[str, dict[str, str]]) -> dict[str, ColumnConfig]:
    """Table -> hashed/blocked columns from the connector's fivetran.yaml; strict, like contracts."""
    path = connector / SIDECAR
    if not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from None
    _known(path, raw, ("tables",), "the top level")
    found = {}
    for table, entry in (raw.get("tables") or {}).items():
        if table not in columns:
            raise ValueError(f"{path}: table {table!r} has no CSV in {connector}")
        _known(path, entry, ("hashed", "blocked"), f"table {table!r}")
        lists = {}
        for key in ("hashed", "blocked"):
            names = entry.get(key) or []
            if not isinstance(names, list):
                raise ValueError(f"{path}: table {table!r}: {key} must be a list of columns")
            for name in names:
                if name not in columns[table]:
                    raise ValueError(f"{path}: table {table!r}: {key} names no CSV column {name!r}")
            lists[key] = frozenset(names)
        found[table] = ColumnConfig(**lists)
    return found


def _known(path: Path, value: object, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: {where} must be a mapping with {', '.join(keys)}")
    for key in value:
        if key not in keys:
            hint = suggest(str(key), keys)
            raise ValueError(
                f"{path}: unknown key `{key}` at {where}"
                + (f" (did you mean `{hint}`?)" if hint else f" (known: {', '.join(keys)})")
            )


def connector_folders(folder: Path) -> list[Path]:
    """Subfolders of the replay folder, each one connector; ValueError when it does not exist."""
    if not folder.is_dir():
        raise ValueError(f"TOLLGATE_SANDBOX_CSV_DIR {folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def tables(connector: Path) -> dict[str, dict[str, str]]:
    """Table (file stem) -> column -> DuckDB type, as DuckDB's CSV sniffer infers them."""
    return {path.stem: _describe(path) for path in sorted(connector.glob("*.csv"))}


def header_only(connector: Path) -> set[str]:
    """Tables whose CSV has a header and no rows: the sniffer can only call them VARCHAR."""
    found = set()
    for path in sorted(connector.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = csv.reader(handle)
            next(rows, None)
            if not any(any(cell.strip() for cell in row) for row in rows):
                found.add(path.stem)
    return found


def read(connector: Path) -> dict[str, pd.DataFrame]:
    """Every table of the connector, read by DuckDB with the types its sniffer infers."""
    frames = {}
    for path in sorted(connector.glob("*.csv")):
        with duckdb.connect() as conn:
            try:
                arrow = pa.table(conn.sql(READ_CSV, params={"path": str(path)}).arrow())
            except duckdb.Error as error:
                raise ValueError(f"cannot read CSV {path}: {error}") from error
        frames[path.stem] = arrow.to_pandas(types_mapper=pd.ArrowDtype)
    return frames


def _describe(path: Path) -> dict[str, str]:
    _check_header(path)
    with duckdb.connect() as conn:
        try:
            rows = conn.execute(f"DESCRIBE {READ_CSV}", {"path": str(path)}).fetchall()
        except duckdb.Error as error:
            raise ValueError(f"cannot read CSV {path}: {error}") from error
    return {row[0]: row[1] for row in rows}


def _check_header(path: Path) -> None:
    # DuckDB invents column0... names for a missing or blank header; refuse instead of guessing.
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"cannot read CSV {path}: {error}") from error
    if not header or any(not name.strip() for name in header):
        raise ValueError(f"CSV {path} has an empty header or an unnamed column: {header}")
    if len(set(header)) != len(header):
        raise ValueError(f"CSV {path} repeats a column name: {header}")
