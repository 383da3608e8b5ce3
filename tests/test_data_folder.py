"""The data folder is owner-only: what Shoal creates (SQLite database and WAL, landing journal,
warehouse, spool, secret_key) is 0700/0600, and what an earlier version left wider is tightened at
start with a log line that says so."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import uuid
from pathlib import Path

from django.conf import settings

from console import data_folder
from pools.ingest import journal
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct


def _wider_than_owner(folder: Path) -> list[str]:
    paths = [folder, *(Path(root) / n for root, dirs, files in os.walk(folder) for n in dirs + files)]
    wide = [p for p in paths if not p.is_symlink() and p.lstat().st_mode & 0o077]
    return [f"{p} {stat.S_IMODE(p.lstat().st_mode):04o}" for p in wide]


def test_what_shoal_creates_in_the_data_folder_is_owner_only(pool, local_warehouse):
    land_direct(pool, [change_record("o1")])
    assert list(journal.folder().rglob("*")), "the delivery was journaled"
    (Path(settings.DATA_DIR) / "db").mkdir(exist_ok=True)
    probe = Path(settings.DATA_DIR) / "db" / f"probe-{uuid.uuid4().hex}.sqlite3"
    db = sqlite3.connect(probe)  # SQLite creates the database, -wal and -shm files itself
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.commit()
        assert list(probe.parent.glob(probe.name + "-*")), "the WAL"
        for folder in (journal.folder(), probe.parent, Path(local_warehouse.path)):
            assert _wider_than_owner(folder) == [], folder
    finally:
        db.close()
        for path in probe.parent.glob(probe.name + "*"):
            path.unlink()


def test_an_older_wider_folder_is_tightened_at_start_and_said_so(tmp_path, caplog):
    old = tmp_path / "var"
    (old / "landing" / "pool").mkdir(parents=True)
    (old / "db").mkdir()
    (old / "db" / "shoal.sqlite3").write_text("x")
    (old / "landing" / "pool" / "body").write_text("x")
    for path in (old, old / "landing", old / "landing" / "pool", old / "db"):
        path.chmod(0o755)
    for path in (old / "db" / "shoal.sqlite3", old / "landing" / "pool" / "body"):
        path.chmod(0o644)
    (old / "link").symlink_to("/etc/hostname")  # never followed

    with caplog.at_level(logging.WARNING, logger="console.data_folder"):
        data_folder.secure_and_say(old)
    assert _wider_than_owner(old) == []
    assert stat.S_IMODE((old / "db" / "shoal.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((old / "landing").stat().st_mode) == 0o700
    assert "6 path(s) were readable by other users" in caplog.text and "was 0755" in caplog.text
    caplog.clear()
    data_folder.secure_and_say(old)
    assert caplog.text == ""  # said once
