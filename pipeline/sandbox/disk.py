"""Sandbox state shared by every process through small JSON files under one file lock."""

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.settings import sandbox_dir


def folder(name: str) -> Path:
    path = sandbox_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path` (every process and thread takes the same lock)."""
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def edit_json(path: Path, default: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Read a JSON document under its lock, let the caller change it, write it back atomically."""
    with locked(path):
        data = json.loads(path.read_text()) if path.exists() else dict(default)
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        tmp.replace(path)


def read_json(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    with locked(path):
        return json.loads(path.read_text()) if path.exists() else dict(default)


def append_line(path: Path, record: dict[str, Any]) -> None:
    with locked(path), path.open("a") as log:
        log.write(json.dumps(record, default=str) + "\n")


def read_lines(path: Path) -> list[dict[str, Any]]:
    with locked(path):
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]
