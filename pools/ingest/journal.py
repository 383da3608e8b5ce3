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
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, directory / name)
    except BaseException:  # a full disk, an I/O error: leave no partial or empty file behind
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return f"{pool_key}/{name}"


def free_bytes() -> int:
    """Free space for unprivileged writers on the data folder's filesystem."""
    stats = os.statvfs(settings.DATA_DIR)
    return stats.f_bavail * stats.f_frsize


def path_of(relative: str) -> Path:
    return folder() / relative


def discard(relative: str) -> None:
    if relative:
        path_of(relative).unlink(missing_ok=True)


def recover_orphans(referenced: set[str], older_than: float = 30.0) -> list[tuple[str, Path]]:
    """Journal files that no delivery refers to, older than `older_than` seconds.

    The journal, not the database row, is what a 200 promises: with SQLite in WAL mode and
    synchronous=NORMAL a committed row can be lost in a power cut while its fsync'ed file is not.
    Such a file (or one whose process died before its row was written, when no 200 was sent) is
    returned here so that the caller can land it again; a duplicate is then recognised by its
    request id and discarded.
    """
    cutoff = time.time() - older_than
    found = []
    if not folder().exists():
        return found
    for path in folder().glob("*/*.json"):
        relative = f"{path.parent.name}/{path.name}"
        if relative in referenced:
            continue
        try:
            if path.stat().st_mtime < cutoff:
                found.append((path.parent.name, path))
        except FileNotFoundError:
            pass
    for tmp in folder().glob("*/.*.tmp"):  # never renamed: the request failed before any 200
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except FileNotFoundError:
            pass
    return found
