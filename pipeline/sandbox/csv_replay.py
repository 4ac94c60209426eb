"""Replay CSV exports as extra connectors: one folder per connector, one file per table."""

import csv
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

# Fivetran's file connectors default to comma-separated files with a header row.
READ_CSV = "SELECT * FROM read_csv($path, header = true, delim = ',')"


def connector_folders(folder: Path) -> list[Path]:
    """Subfolders of the replay folder, each one connector; ValueError when it does not exist."""
    if not folder.is_dir():
        raise ValueError(f"TOLLGATE_SANDBOX_CSV_DIR {folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def tables(connector: Path) -> dict[str, dict[str, str]]:
    """Table (file stem) -> column -> DuckDB type, as DuckDB's CSV sniffer infers them."""
    return {path.stem: _describe(path) for path in sorted(connector.glob("*.csv"))}


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
