"""HTTP API benchmark: small queries through /api/v1/sql and clickhouse-connect, and a
1,000,000-row Parquet export streamed by the web process, against `make run`'s stack.

    .venv/bin/python bench/api.py [--runs 100] [--records 20000] [--export-rows 1000000]

Starts the same processes as `make run` on a free port with their own data folder and Redis
database, feeds a pool with realistic change records through the Firehose endpoint, creates a
query key with `create_api_key`, then measures:

- the round trip of a small query (POST → rows in hand), through /api/v1/sql (JSON) and through
  clickhouse-connect's `client.query` at /clickhouse (Native), over kept-alive connections;
- a Parquet export of --export-rows rows through /api/v1/sql, read as a stream, against the
  warehouse's own export rate (the same query in chDB, in this process, to Parquet in memory), with
  the peak resident memory of the gunicorn workers sampled while it streams.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import Stack  # noqa: E402
from pools.firehose_client import FirehoseSender, batches  # noqa: E402
from pools.firehose_replay import percentile  # noqa: E402
from pools.samples import make_records  # noqa: E402

SMALL = (
    "SELECT keys.order_id.S AS order_id, event_name, toInt32OrNull(new_image.quantity.N) AS quantity "
    "FROM bench_orders ORDER BY _received_at DESC LIMIT 20"
)


def export_sql(rows: int) -> str:
    return (
        f"SELECT number AS id, toString(number) AS label, number * 2.5 AS amount, "
        f"toDateTime('2024-01-01 00:00:00') + number AS at FROM numbers({rows})"
    )


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def gunicorn_workers(root: int) -> list[int]:
    pids = []
    for pid in descendants(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"gunicorn" in cmdline:
            pids.append(pid)
    return pids


def timed(fn, runs: int) -> dict:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(percentile(times, 50), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "max_ms": round(max(times), 1),
    }


def _feed(stack: Stack, records: int) -> str:
    """A pool of `records` change records through the endpoint; returns a query key for it."""
    pool = json.loads(stack.manage("create_pool", "bench_orders", "--json"))
    key = json.loads(stack.manage("create_api_key", "bench", "--scope", "query", "--json"))["key"]
    time.sleep(1.0)
    with FirehoseSender(pool["endpoint_url"], pool["access_key"]) as sender:
        for batch in batches(make_records(records, seed=11), 1 << 20):
            if not sender.send(batch).ok:
                raise SystemExit("a delivery failed")
    return key


class Api:
    """`POST /api/v1/sql` with a key."""

    def __init__(self, base: str, key: str):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def __call__(self, sql: str, **extra) -> requests.Response:
        reply = self.session.post(f"{self.base}/api/v1/sql", json={"sql": sql, **extra})
        if not reply.ok:
            raise SystemExit(f"{reply.status_code}: {reply.text}")
        return reply

    def wait_loaded(self, records: int) -> None:
        deadline = time.monotonic() + 120
        while self("SELECT count() FROM bench_orders").json()["rows"][0][0] < records:
            if time.monotonic() > deadline:
                raise SystemExit("the records were not loaded within 2 minutes")
            time.sleep(0.5)


def _export(api: Api, stack: Stack, rows: int) -> dict:
    """The Parquet export, streamed, with the web workers' memory sampled meanwhile."""
    workers = gunicorn_workers(stack.proc.pid)
    before = {pid: rss_kib(pid) for pid in workers}
    peak = dict(before)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid in workers:
                peak[pid] = max(peak[pid], rss_kib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    size = 0
    with api.session.post(
        f"{api.base}/api/v1/sql", json={"sql": export_sql(rows), "format": "Parquet"}, stream=True
    ) as reply:
        reply.raise_for_status()
        for chunk in reply.iter_content(1 << 20):
            size += len(chunk)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    growth_mib = max(peak[p] - before[p] for p in workers) / 1024
    return {"bytes": size, "seconds": seconds, "growth_mib": growth_mib}


def _warehouse_own(rows: int) -> tuple[float, int]:
    """The same export by chDB in this process: (seconds, bytes)."""
    import chdb

    local = chdb.connect(":memory:")
    local.query(export_sql(1000), "Parquet")
    started = time.perf_counter()
    own = local.query(export_sql(rows), "Parquet")
    return time.perf_counter() - started, len(own.bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--redis-db", type=int, default=3)
    args = parser.parse_args()

    stack = Stack(redis_db=args.redis_db, prefix="shoal-bench-api-", env={"API_RATE_LIMIT_PER_MINUTE": "0"})
    with stack:
        key = _feed(stack, args.records)
        api = Api(stack.base_url, key)
        api.wait_loaded(args.records)
        import clickhouse_connect

        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=stack.port, username="bench", password=key, proxy_path="/clickhouse"
        )
        for _ in range(5):  # warm up: the worker learns its catalogue, connections open
            api(SMALL)
            client.query(SMALL)
        small = {
            "/api/v1/sql (JSON)": timed(lambda: api(SMALL).json()["rows"], args.runs),
            "clickhouse-connect query (Native)": timed(lambda: client.query(SMALL).result_rows, args.runs),
        }
        export = _export(api, stack, args.export_rows)
    own_seconds, own_bytes = _warehouse_own(args.export_rows)
    print(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "records_in_pool": args.records,
                "runs": args.runs,
                "small_query_round_trip": small,
                "parquet_export": {
                    "rows": args.export_rows,
                    "bytes": export["bytes"],
                    "seconds": round(export["seconds"], 3),
                    "rows_per_s": round(args.export_rows / export["seconds"]),
                    "warehouse_own_seconds": round(own_seconds, 3),
                    "warehouse_own_rows_per_s": round(args.export_rows / own_seconds),
                    "warehouse_own_bytes": own_bytes,
                    "ratio": round(own_seconds / export["seconds"], 2),
                    "web_worker_peak_rss_growth_mib": round(export["growth_mib"], 1),
                },
            },
            indent=2,
        )
    )
    stack.remove()


if __name__ == "__main__":
    main()
