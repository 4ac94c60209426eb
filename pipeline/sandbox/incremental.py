"""Fivetran's incremental sync: upsert by primary key, soft-delete what the source dropped.

A row whose content is unchanged keeps its `_fivetran_synced`; a new or changed row gets the
sync's time; a row gone from the source stays with `_fivetran_deleted` true (its
`_fivetran_synced` moves to the sync that deleted it). A table without a key is keyed by its
content, as Fivetran's `_fivetran_id` is. The sandbox remembers what it landed on disk, as
Fivetran remembers its cursors, and writes the merged table whole.
"""

from pathlib import Path

import pandas as pd

SYNCED, DELETED = "_fivetran_synced", "_fivetran_deleted"


def merge(
    previous: pd.DataFrame | None,
    fresh: pd.DataFrame,
    synced_at: pd.Timestamp,
    key: tuple[str, ...],
) -> pd.DataFrame:
    """The table after an incremental sync of `fresh` over what the previous sync landed."""
    if previous is None or previous.empty:
        return fresh
    content = [c for c in fresh.columns if c not in (SYNCED, DELETED)]
    fresh = fresh.copy()
    new_prints = _fingerprints(fresh, content)
    if set(content) <= set(previous.columns):
        live = _like(previous[~previous[DELETED].astype(bool)], fresh, content)
        kept = dict(zip(_fingerprints(live, content), live[SYNCED], strict=True))
        # A row's time moves only when its content changed (a backdated time, the `stale`
        # defect, is what the source delivered and lands as it is).
        unchanged = new_prints.isin(kept.keys()) & (fresh[SYNCED] == synced_at)
        fresh.loc[unchanged, SYNCED] = new_prints[unchanged].map(kept)
    previous = _like(previous, fresh, [c for c in content if c in previous.columns])
    gone = previous[~_keys(previous, key, content).isin(set(_keys(fresh, key, content)))]
    if key:  # a row without a key cannot be upserted or deleted by it (defects land such rows)
        gone = gone[gone[list(key)].notna().all(axis=1)]
    if gone.empty:
        return fresh
    gone = gone.reindex(columns=fresh.columns).copy()
    gone.loc[~gone[DELETED].astype(bool), SYNCED] = synced_at
    gone[DELETED] = True
    merged = pd.concat([fresh, gone], ignore_index=True)
    return merged.astype(fresh.dtypes.to_dict(), errors="ignore")


def _fingerprints(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One 64-bit hash per row of these columns' values."""
    if not columns or any(c not in frame.columns for c in columns):
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return pd.util.hash_pandas_object(frame[columns], index=False)


def _like(previous: pd.DataFrame, fresh: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The previous rows in the fresh rows' dtypes (a Parquet round trip may change units), so
    equal values hash equally; unchanged when a column changed type (every row then differs)."""
    try:
        return previous.astype(fresh[columns].dtypes.to_dict())
    except (TypeError, ValueError):
        return previous


def _keys(frame: pd.DataFrame, key: tuple[str, ...], content: list[str]) -> pd.Series:
    if not key or any(c not in frame.columns for c in key):
        return _fingerprints(frame, content)
    return _fingerprints(frame, list(key))


def read_landed(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def remember(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
