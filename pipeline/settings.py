"""Local paths and names shared by the pipeline, the sandbox and the tests."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Folder for the embedded warehouse and sandbox state (TOLLGATE_DATA_DIR, else ./.tollgate)."""
    path = Path(os.environ.get("TOLLGATE_DATA_DIR") or REPO_ROOT / ".tollgate")
    path.mkdir(parents=True, exist_ok=True)
    return path


def duckdb_path() -> Path:
    return data_dir() / "warehouse.duckdb"


def sandbox_dir() -> Path:
    path = data_dir() / "sandbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def reports_dir() -> Path:
    """Folder for per-run check reports (TOLLGATE_REPORTS_DIR, else <data dir>/reports)."""
    path = Path(os.environ.get("TOLLGATE_REPORTS_DIR") or data_dir() / "reports")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Folder for results of loading kept under a digest of their inputs (<data dir>/cache)."""
    return data_dir() / "cache"
