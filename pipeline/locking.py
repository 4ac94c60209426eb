"""File locks and JSON-lines files shared by every process of a run (sandbox state, reports)."""

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `path` (every process and thread takes the same lock)."""
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_line(path: Path, record: dict[str, Any]) -> None:
    with locked(path), path.open("a") as log:
        log.write(json.dumps(record, default=str) + "\n")


def read_lines(path: Path) -> list[dict[str, Any]]:
    with locked(path):
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]


def write_atomic(path: Path, data: bytes) -> None:
    """Replace the file in one step, so a reader never sees half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
