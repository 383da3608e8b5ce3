"""`make run`'s stack for benchmarks: the same processes on a free port, with a data folder and
Redis database of their own, started and stopped around a measurement."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The guide's Step 4 SELECT (comments left out), over a source pool; `extra` adds columns.
GUIDE_SQL = """SELECT
  keys.order_id.S AS order_id,
  parseDateTimeBestEffort(keys.timestamp.S) AS timestamp,
  if(event_name = 'REMOVE', true, false) AS deleted,
  toString(new_image.taqueria.S) AS taqueria,
  toInt32OrNull(new_image.quantity.N) AS quantity,
  toFloat64OrNull(new_image.total_price.S) AS total_price,
  new_image.orderItems AS order_items,
  new_image,
  old_image{extra}
FROM {source}"""


# Roles of runstack's processes, as their command lines name them.
ROLES = ("gunicorn", "warehouse", "default", "beat", "runstack")


def guide_sql(source: str, extra: str = "") -> str:
    return GUIDE_SQL.format(source=source, extra=extra)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the stack did not answer at {url}")


class Stack:
    """`with Stack(redis_db=13) as stack:` runs `manage.py runstack` until the block ends.

    The benchmark process itself is pointed at the same data folder and Redis database, so it can
    use Django's ORM (after django.setup()) to watch what the stack does.
    """

    def __init__(self, *, redis_db: int, prefix: str = "shoal-bench-", env: dict | None = None):
        self.data_dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SHOAL_DATA_DIR": str(self.data_dir),
            "PORT": str(self.port),
            "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        for key in ("SHOAL_DATA_DIR", "PORT", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
            os.environ[key] = self.env[key]
        self.proc: subprocess.Popen | None = None

    def manage(self, *argv: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *argv],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def __enter__(self) -> Stack:
        import redis

        from console.warehouse_client import HEARTBEAT_KEY

        self.manage("migrate", "--noinput")
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        client.flushdb()
        log = open(self.data_dir / "stack.log", "wb")  # noqa: SIM115 - lives as long as the stack
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runstack"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(f"{self.base_url}/healthz")
        deadline = time.monotonic() + 60
        while not client.exists(HEARTBEAT_KEY):
            if time.monotonic() > deadline:
                raise SystemExit("no warehouse worker came up within 60 s")
            time.sleep(0.2)
        return self

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by the stack's processes, by role: where the
        time goes, read from /proc (Linux)."""
        tick = os.sysconf("SC_CLK_TCK")
        stats: dict[int, tuple[int, float, str]] = {}  # pid: (parent, cpu seconds, command line)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                args = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
            cpu = (int(fields[11]) + int(fields[12])) / tick
            stats[int(stat.parent.name)] = (int(fields[1]), cpu, args)
        totals: dict[str, float] = {}
        for pid, (_, cpu, args) in stats.items():
            ancestor = pid
            while ancestor in stats and ancestor != self.proc.pid:
                ancestor = stats[ancestor][0]
            if ancestor == self.proc.pid:  # runstack or one of its descendants
                role = next((r for r in ROLES if r in args), "other")
                totals[role] = totals.get(role, 0.0) + cpu
        return totals

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(60)

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
