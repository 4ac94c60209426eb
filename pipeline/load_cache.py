"""Results of slow, pure loading steps, kept on disk under a digest of everything they depend on.

An entry is found only by the digest of its inputs, never by a file's name or age, so a changed
input is a miss and is computed again. Values are JSON; an unreadable or unwritable cache is a miss.
"""

import hashlib
import json
import os
import tempfile
from typing import Any

from pipeline.settings import cache_dir


def key(*parts: str) -> str:
    """sha256 over the parts (each length-prefixed, so no two lists of parts share a digest)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode()
        digest.update(f"{len(data)}:".encode() + data)
    return digest.hexdigest()


def get(kind: str, digest: str) -> Any | None:
    """The stored value, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((cache_dir() / kind / f"{digest}.json").read_bytes())
    except (OSError, ValueError):
        return None


def put(kind: str, digest: str, value: Any) -> None:
    """Store the value; a cache that cannot be written is left alone."""
    folder = cache_dir() / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(handle, "w") as file:
            json.dump(value, file)
        os.replace(tmp, folder / f"{digest}.json")
    except OSError:
        pass
