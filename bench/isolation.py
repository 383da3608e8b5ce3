"""Sharing under load (issue 18): what ingest, health checks, loading and a small query see while
API keys run heavy queries, and what a large CSV export costs the warehouse worker and the web.

    .venv/bin/python bench/isolation.py [--seconds 30] [--export-gb 3]

It starts `make run`'s stack (bench/stack.py), then for --seconds: 20 concurrent heavy queries
from one key and two each from two more keys (retrying after a 429's Retry-After), while it
measures Firehose acks (one delivery every 0.25 s to another pool), how long each delivery took
from its ack to being loaded, /healthz, and a third key's SELECT 1. Then one CSV export of
--export-gb, read as it streams, with the warehouse worker's and web workers' memory sampled.
Prints JSON; docs/benchmarks.md records the figures with their machine and date.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api import descendants, gunicorn_workers, rss_kib  # noqa: E402
from bench.stack import Stack  # noqa: E402
from pools.firehose_client import FirehoseSender  # noqa: E402
from pools.firehose_replay import percentile  # noqa: E402
from pools.samples import make_records  # noqa: E402

HEAVY = "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 1"


def key(stack: Stack, name: str) -> str:
    return json.loads(stack.manage("create_api_key", name, "--scope", "query", "--json"))["key"]


def hammer(base: str, secret: str, stop: threading.Event, outcomes: list) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    while not stop.is_set():
        try:
            reply = session.post(f"{base}/api/v1/sql", json={"sql": HEAVY}, timeout=120)
        except requests.ConnectionError:  # a keep-alive connection the server had closed
            outcomes.append(0)
            continue
        outcomes.append(reply.status_code)
        if reply.status_code >= 500:
            print(f"{reply.status_code}: {reply.text[:300]}", file=sys.stderr)
        if reply.status_code == 429:
            stop.wait(float(reply.headers.get("Retry-After", "1")))


def p(values: list[float], q: float) -> float:
    return round(percentile(values, q) or 0.0, 1)


def _under_load(stack: Stack, seconds: float) -> dict:
    from pools.models import Delivery

    pool = json.loads(stack.manage("create_pool", "iso_target", "--json"))
    heavy_keys = [key(stack, "heavy-a")] * 20 + [key(stack, "heavy-b")] * 2 + [key(stack, "heavy-c")] * 2
    small = requests.Session()
    small.headers["Authorization"] = f"Bearer {key(stack, 'small')}"
    stop, outcomes = threading.Event(), []
    threads = [threading.Thread(target=hammer, args=(stack.base_url, k, stop, outcomes)) for k in heavy_keys]
    for thread in threads:
        thread.start()
    time.sleep(2)
    acks, health, selects, acked_at = [], [], [], {}
    records = iter(make_records(50 * int(seconds * 4 + 10), seed=5))
    with FirehoseSender(pool["endpoint_url"], pool["access_key"]) as sender:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            reply = sender.send([next(records) for _ in range(50)])
            acks.append((time.perf_counter() - started) * 1000)
            acked_at[reply.request_id] = time.time()
            started = time.perf_counter()
            requests.get(f"{stack.base_url}/healthz", timeout=60)
            health.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            small.post(f"{stack.base_url}/api/v1/sql", json={"sql": "SELECT 1"}, timeout=60)
            selects.append((time.perf_counter() - started) * 1000)
            time.sleep(0.25)
    time.sleep(5)
    lags = [
        (d.loaded_at.timestamp() - acked_at[d.request_id]) * 1000
        for d in Delivery.objects.filter(request_id__in=list(acked_at), loaded_at__isnull=False)
    ]
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "firehose_ack_ms": {"p50": p(acks, 50), "p99": p(acks, 99), "n": len(acks)},
        "healthz_ms": {"p50": p(health, 50), "p99": p(health, 99)},
        "loaded_after_ack_ms": {"p50": p(lags, 50), "p99": p(lags, 99), "loaded": len(lags)},
        "third_key_select_1_ms": {"p50": p(selects, 50), "p99": p(selects, 99)},
        "heavy_outcomes": {str(s): outcomes.count(s) for s in sorted(set(outcomes))},
    }


def _export(stack: Stack, gigabytes: float) -> dict:
    rows = int(gigabytes * 1e9 / 1003)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key(stack, 'export')}"
    web = gunicorn_workers(stack.proc.pid)
    worker = [
        p for p in descendants(stack.proc.pid) if b"warehouse" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]
    watched = web + worker
    before = {pid: rss_kib(pid) for pid in watched}
    peak = dict(before)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid in watched:
                peak[pid] = max(peak[pid], rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started, size = time.perf_counter(), 0
    sql = f"SELECT repeat('x', 1000) AS wide FROM numbers({rows})"
    with session.post(
        f"{stack.base_url}/api/v1/sql", json={"sql": sql, "format": "CSV"}, stream=True
    ) as reply:
        reply.raise_for_status()
        for chunk in reply.iter_content(1 << 20):
            size += len(chunk)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    return {
        "bytes": size,
        "seconds": round(seconds, 1),
        "web_growth_mib": round(max(peak[p] - before[p] for p in web) / 1024, 1),
        "warehouse_worker_growth_mib": round(max(peak[p] - before[p] for p in worker) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--export-gb", type=float, default=3)
    parser.add_argument("--redis-db", type=int, default=4)
    args = parser.parse_args()
    stack = Stack(
        redis_db=args.redis_db,
        prefix="shoal-bench-isolation-",
        env={"API_RATE_LIMIT_PER_MINUTE": "0", "SQL_MAX_EXECUTION_SECONDS": "30"},
    )
    with stack:
        import django

        django.setup()
        load = _under_load(stack, args.seconds)
        export = _export(stack, args.export_gb) if args.export_gb else {}
    print(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "load_average": os.getloadavg(),
                "under_heavy_queries": load,
                "csv_export": export,
            },
            indent=2,
        )
    )
    stack.remove()


if __name__ == "__main__":
    main()
