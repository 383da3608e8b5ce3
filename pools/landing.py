"""Where a delivery's body waits between the 200 and the warehouse: an fsync'ed file journal in
the data folder (single host, the default with SQLite), or Django's database (when web and
workers run on different hosts, the default with PostgreSQL). See INGEST_LANDING."""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)


def uses_files() -> bool:
    return settings.INGEST_LANDING == "files"


def folder() -> Path:
    return Path(settings.DATA_DIR) / "landing"


def write(pool_key: str, data: bytes) -> str:
    """Store a body durably; returns its path relative to the landing folder.

    Written to a temporary name, fsync'ed, renamed, and the folder fsync'ed, so that after a
    crash the file is either whole under its final name or absent.
    """
    directory = folder() / pool_key
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.json"
    tmp = directory / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, directory / name)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return f"{pool_key}/{name}"


def path_of(relative: str) -> Path:
    return folder() / relative


def discard(relative: str) -> None:
    if relative:
        path_of(relative).unlink(missing_ok=True)


def sweep_orphans(referenced: set[str], older_than: float = 3600.0) -> int:
    """Remove journal files no delivery refers to (a process died between the file and its row,
    so no 200 was sent and Firehose sent the batch again)."""
    removed = 0
    cutoff = time.time() - older_than
    if not folder().exists():
        return 0
    for path in folder().glob("*/*"):
        if f"{path.parent.name}/{path.name}" in referenced:
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    if removed:
        log.warning("landing: removed %d journal files that no delivery refers to", removed)
    return removed
