"""Test PII detection on your own data, through exactly the check's detection path.

    python -m pipeline.pii classify FILE.csv --column note

Loads the column into a DuckDB table and runs the `no_pii_in_unclassified_columns` queries on it
(the same SQL candidate patterns, every row, grouped by distinct value) and the same Python
confirmation; prints each row's number, its PII classes (or `-`) and the value as the check
would show it (redacted).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from pipeline.checks import pii_scan
from pipeline.checks.redact import redact
from pipeline.checks.rule import TableState
from pipeline.checks.scan_history import ScanHistory
from pipeline.contract import ColumnContract, TableContract
from pipeline.warehouse import DuckDBWarehouse

ROW = "_row"
TABLE = TableContract(
    connector="pii_classify",
    name="rows",
    owner="",
    description="",
    columns=(ColumnContract(ROW, "BIGINT", primary_key=True),),
    pii_scan="exact",
)


def classify(values: list[str], column: str = "value") -> tuple[list[list[str]], int]:
    """Each value's PII classes as the check finds them, and how many were left unconfirmed."""
    frame = pd.DataFrame({ROW: range(len(values)), column: pd.Series(values, dtype="string")})
    state = TableState(
        columns={ROW: "BIGINT", column: "VARCHAR"},
        row_estimate=len(values),
        pii_history=ScanHistory(seed=0, first=True),
    )
    with tempfile.TemporaryDirectory() as folder:
        warehouse = DuckDBWarehouse(path=str(Path(folder) / "classify.duckdb"))
        warehouse.write_table(*TABLE.relation, frame)
        sql = pii_scan.candidates_sql(TABLE, state, column, warehouse.dialect)
        rows = warehouse.query(sql)
    confirmed = rows[: pii_scan.CONFIRM_LIMIT]
    by_value = {row["value"]: pii_scan.value_classes(row) for row in confirmed}
    unconfirmed = pii_scan.confirm(rows)["unconfirmed"] if rows else 0
    return [by_value.get(value, []) for value in values], unconfirmed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.pii", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("classify", help="print each row's PII classes")
    command.add_argument("file", type=Path, help="a CSV file with a header row")
    command.add_argument("--column", required=True, help="the column to classify")
    args = parser.parse_args(argv)
    frame = pd.read_csv(args.file, dtype=str, keep_default_na=False)
    if args.column not in frame.columns:
        parser.error(
            f"{args.file}: no column {args.column!r} (columns: {', '.join(frame.columns)})"
        )
    values = frame[args.column].tolist()
    classes, unconfirmed = classify(values, args.column)
    for number, (value, found) in enumerate(zip(values, classes, strict=True), start=1):
        print(f"{number}\t{','.join(found) or '-'}\t{redact(value) if found else value}")
    if unconfirmed:
        print(f"{unconfirmed} distinct candidate values left unconfirmed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
