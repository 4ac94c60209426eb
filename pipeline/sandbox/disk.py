"""Sandbox state shared by every process through small JSON files under one file lock."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.locking import locked, write_atomic
from pipeline.settings import sandbox_dir


def folder(name: str) -> Path:
    path = sandbox_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def edit_json(path: Path, default: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Read a JSON document under its lock, let the caller change it, write it back if changed."""
    with locked(path):
        before = path.read_text() if path.exists() else None
        data = json.loads(before) if before is not None else json.loads(json.dumps(default))
        yield data
        after = json.dumps(data, indent=1, default=str)
        if after != before:  # most edits (a fault that is not set) change nothing
            write_atomic(path, after.encode())


def read_json(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    with locked(path):
        return json.loads(path.read_text()) if path.exists() else dict(default)
