"""Files of a benchmark run, written so that a killed run never leaves a broken one.

Every JSON file is written to a temporary file in the same folder and renamed
over the target (``os.replace`` is atomic on POSIX and Windows), so readers see
the old or the new content, never half of it. Cell files are named by their
cell id and the first 12 hex digits of their config key, so a rerun with the
same arguments finds them and a changed argument that changes results looks
for another file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path


def json_safe(value):
    """NaN / inf -> None, tuples -> lists, Paths -> str, recursively (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; reports are for everyone who may read OUT
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def read_json(path: Path):
    """The parsed file, or None when it is missing or unreadable (a cache miss, not an error)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


class CellStore:
    """``OUT/cells/<method>/<cell id>-<key12>.json``: one finished cell each."""

    def __init__(self, out: Path):
        self.root = Path(out) / "cells"

    def path(self, cell) -> Path:
        return self.root / cell.method / f"{cell.id}-{cell.key[:12]}.json"

    def load(self, cell) -> dict | None:
        """The cached record of ``cell`` if a finished one with the same full key exists."""
        record = read_json(self.path(cell))
        if not isinstance(record, dict) or record.get("key") != cell.key or record.get("status") != "ok":
            return None
        return record

    def save(self, cell, record: dict) -> Path:
        path = self.path(cell)
        write_json(path, record)
        return path
