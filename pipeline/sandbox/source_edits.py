"""Changes to a sandbox source between syncs, so incremental syncs have something to carry."""

from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.sandbox import disk


def edits_file(folder: Path | None = None) -> Path:
    return (folder or disk.folder("fivetran")) / "source_edits.json"


def edit_source(
    connector_id: str,
    table: str,
    upsert: list[dict[str, Any]] | None = None,
    delete: list[Any] | None = None,
) -> None:
    """Change rows in the source system: upsert whole or partial rows by `id`, delete ids."""
    with disk.edit_json(edits_file(), {}) as edits:
        entry = edits.setdefault(connector_id, {}).setdefault(table, {"upsert": [], "delete": []})
        entry["upsert"] += upsert or []
        entry["delete"] += delete or []


def applied(frame: pd.DataFrame, edits: dict[str, list[Any]], key: str = "id") -> pd.DataFrame:
    """The source rows with the edits applied, in order: upserts, then deletes."""
    frame = frame.copy()
    for row in edits.get("upsert", []):
        match = frame[key].astype(str) == str(row[key])
        if match.any():
            for column, value in row.items():
                frame[column] = frame[column].astype(object)
                frame.loc[match, column] = value
        else:
            frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
    deleted = {str(k) for k in edits.get("delete", [])}
    return frame[~frame[key].astype(str).isin(deleted)].reset_index(drop=True)
