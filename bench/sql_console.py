"""SQL Console benchmark: click Run → rows on the page, over HTTP against `make run`'s stack.

    .venv/bin/python bench/sql_console.py [--runs 50] [--records 20000]

Starts the same processes as `make run` (gunicorn web, warehouse worker, default worker, beat) on
a free port, with their own data folder and Redis database, creates a user and a pool fed with
realistic DynamoDB change records through the Firehose endpoint, signs in, and then does what the
console's editor does on Ctrl-Enter, timing each run from the POST until the rows are in hand:

    POST /sql/run/ (HX-Request)  → rows, or a panel that polls
    GET  /sql/runs/<id>/         → repeated while it answers "still running"

The round trip includes the guard (two parses in the warehouse), the Celery hop through Redis in
both directions, the query, the history row and the rendering of the result table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import Stack  # noqa: E402
from pools.firehose_client import FirehoseSender, batches  # noqa: E402
from pools.firehose_replay import percentile  # noqa: E402
from pools.samples import make_records  # noqa: E402

QUERIES = {
    "count by event": (
        "SELECT event_name, count() AS changes FROM bench_orders GROUP BY event_name ORDER BY 1"
    ),
    "newest 20 orders": (
        "SELECT keys.order_id.S AS order_id, event_name, toInt32OrNull(new_image.quantity.N) AS quantity\n"
        "FROM bench_orders ORDER BY _received_at DESC LIMIT 20"
    ),
}
POLL = re.compile(r'hx-get="(/sql/runs/\d+/)"')


def _feed(manage, records: int) -> None:
    """A pool of `records` realistic change records, sent through the Firehose endpoint."""
    pool = json.loads(manage("create_pool", "bench_orders", "--json"))
    time.sleep(1.0)  # let the warehouse create the table
    with FirehoseSender(pool["endpoint_url"], pool["access_key"]) as sender:
        for batch in batches(make_records(records, seed=11), 1 << 20):
            result = sender.send(batch)
            if not result.ok:
                raise SystemExit(f"a delivery failed: {result.error}")


class Console:
    """A signed-in browser's session on the SQL Console: Run, then poll until rows are in hand."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.session = requests.Session()
        self.session.get(f"{base}/login/")
        self.session.post(
            f"{base}/login/",
            data={"username": username, "password": password},
            headers={"X-CSRFToken": self.session.cookies["csrftoken"], "Referer": f"{base}/login/"},
        ).raise_for_status()
        self.headers = {
            "HX-Request": "true",
            "X-CSRFToken": self.session.cookies["csrftoken"],
            "Referer": f"{base}/sql/",
        }

    def run(self, sql: str) -> tuple[float, int, str]:
        """(milliseconds from the POST to the rows, polls it took, the rows' HTML)."""
        started = time.perf_counter()
        reply = self.session.post(f"{self.base}/sql/run/", data={"sql": sql}, headers=self.headers)
        polls = 0
        while match := POLL.search(reply.text):
            polls += 1
            reply = self.session.get(self.base + match.group(1), headers=self.headers)
        elapsed = (time.perf_counter() - started) * 1000
        if "sql-rows" not in reply.text:
            raise SystemExit(f"no rows for {sql!r}: {reply.text[:400]}")
        return elapsed, polls, reply.text

    def wait_loaded(self, records: int) -> None:
        """Until every record is queryable, then once more each query (the worker learns its
        catalogue once)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, _, html = self.run("SELECT count() AS n FROM bench_orders")
            if f">{records}<" in html:
                break
            time.sleep(0.5)
        else:
            raise SystemExit("the records were not loaded within 2 minutes")
        for sql in QUERIES.values():
            self.run(sql)

    def measure(self, sql: str, runs: int) -> dict:
        times, polled = [], 0
        for _ in range(runs):
            elapsed, polls, _ = self.run(sql)
            times.append(elapsed)
            polled += polls > 0
        return {
            "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1),
            "answered_in_one_round_trip": f"{runs - polled}/{runs}",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs per query")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--redis-db", type=int, default=12)
    args = parser.parse_args()

    password = "bench-Password-2024"
    stack = Stack(
        redis_db=args.redis_db, prefix="shoal-bench-sql-", env={"DJANGO_SUPERUSER_PASSWORD": password}
    )
    with stack:
        stack.manage("createsuperuser", "--noinput", "--username", "bench", "--email", "bench@example.com")
        _feed(stack.manage, args.records)
        console = Console(stack.base_url, "bench", password)
        console.wait_loaded(args.records)
        figures = {name: console.measure(sql, args.runs) for name, sql in QUERIES.items()}

    print(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "machine": (
                    f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
                ),
                "records_in_pool": args.records,
                "runs_per_query": args.runs,
                "queries": figures,
            },
            indent=2,
        )
    )
    stack.remove()


if __name__ == "__main__":
    main()
