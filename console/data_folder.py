"""The data folder is Shoal's alone: every folder in it 0700, every file 0600.

It holds the SQLite database (password hashes, encrypted secrets), the landing journal and spool
(change records), the warehouse and the generated secret_key. `restrict_umask()` (called by
console/settings.py before anything is created) makes everything Shoal's processes create
owner-only, whatever the shell's umask; `secure()` (called once at start, console/apps.py)
tightens what an earlier version, or a copy made with another umask, left readable by others,
and says so in one log line. It fixes rather than refuses: the folder is Shoal's by construction,
nothing else is meant to read it, and refusing would only make every upgraded install stop until
someone ran the chmod that Shoal can run itself (docs/security.md).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

OTHERS = 0o077  # the group's and others' bits


def restrict_umask() -> None:
    """Files and folders created from now on by this process (and its children) are owner-only."""
    current = os.umask(OTHERS)
    os.umask(current | OTHERS)


def secure(folder: Path) -> list[tuple[Path, int]]:
    """Remove group and other permissions from `folder` and everything under it (symbolic links
    are not followed); returns (path, former mode) of what was tightened."""
    tightened = []
    for path in [folder, *_walk(folder)]:
        try:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or not st.st_mode & OTHERS or st.st_uid != os.getuid():
                continue
            path.chmod(stat.S_IMODE(st.st_mode) & ~OTHERS)
        except OSError:  # gone meanwhile, or not ours to change: nothing to do here
            continue
        tightened.append((path, stat.S_IMODE(st.st_mode)))
    return tightened


def _walk(folder: Path):
    for root, dirs, files in os.walk(folder, onerror=lambda exc: None):
        for name in dirs + files:
            yield Path(root) / name


def secure_and_say(folder: Path) -> None:
    """`secure(folder)`, with one warning line naming what was wider than owner-only."""
    tightened = secure(folder)
    if not tightened:
        return
    examples = ", ".join(
        f"{p.relative_to(folder) if p != folder else p} was {m:04o}" for p, m in tightened[:3]
    )
    log.warning(
        "data folder %s: %d path(s) were readable by other users and are now owner-only (0700 "
        "folders, 0600 files): %s%s. Shoal keeps its data folder to itself (docs/security.md).",
        folder,
        len(tightened),
        examples,
        ", …" if len(tightened) > 3 else "",
    )
