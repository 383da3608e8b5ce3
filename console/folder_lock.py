"""Locks that say which processes hold Shoal's data folder, so that a second stack (or a worker
left over from an earlier one) is refused at start with a message naming them, instead of two
sets of processes sharing one warehouse folder and one set of queues.

Two flock(2) locks, released by the kernel when the last process holding them exits:
- `<data folder>/shoal.lock`: taken by the supervisor (`make run`) and inherited by every process
  it starts, so it stays held as long as any of them lives;
- `<warehouse folder>/.shoal-worker.lock`: taken by the warehouse worker, the only process that
  opens chDB (inside the folder, which the sandboxed worker may write: console/sandbox.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


def warehouse_lock(warehouse_path: str | Path) -> Path:
    return Path(warehouse_path) / ".shoal-worker.lock"


class FolderHeld(Exception):
    """Someone else holds the lock; `pids` are the processes that have it open (when visible)."""

    def __init__(self, path: Path, pids: list[int]):
        self.path = path
        self.pids = pids
        super().__init__(describe(path, pids))


def acquire(path: Path) -> int:
    """Take the lock without waiting; returns its file descriptor (keep it open to hold it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FolderHeld(path, holders(path)) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def check_free(path: Path) -> None:
    """Raise FolderHeld if someone holds the lock now; hold nothing afterwards."""
    if path.exists():
        os.close(acquire(path))


def holders(path: Path) -> list[int]:
    """Processes with the lock file open (inherited descriptors included), from /proc."""
    target = str(path.resolve())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        found.append(int(proc.name))
                        break
    return sorted(found)


def command_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    return "?"


def describe(path: Path, pids: list[int]) -> str:
    listed = "; ".join(f"{pid} ({command_line(pid)})" for pid in pids) or "not visible from here"
    stop = f" Stop them (`kill {' '.join(map(str, pids))}`) and start again." if pids else ""
    return f"An earlier Shoal process still holds {path.parent} ({path.name}): {listed}.{stop}"
