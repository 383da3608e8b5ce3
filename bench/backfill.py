"""Backfill benchmark: a Materialized View with the guide's Step 4 SQL over N change events.

    .venv/bin/python bench/backfill.py [--events 5000000]

Fills a source pool with N DynamoDB change events generated inside the warehouse (the
change-event table exactly as the loader writes it), then runs Shoal's backfill (chunked,
resumable, deduplicated INSERT … SELECT, as the warehouse worker runs it) and, in the same run,
the same INSERT … SELECT straight into an identical table: the ceiling. Once with Shoal's default
for a DynamoDB source (the change time as version, added to the SELECT) and once in arrival order
(the guide's literal answers, `--version arrival`: the source is read in one stream).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import guide_sql  # noqa: E402

# Change events made by the warehouse: 1 in 3 orders is modified, 1 in 10 removed.
FILL = """INSERT INTO {table}
SELECT
  generateUUIDv4() AS event_id,
  multiIf(number % 10 = 9, 'REMOVE', number % 3 = 1, 'MODIFY', 'INSERT') AS event_name,
  'aws:dynamodb', 'application/json', 'us-east-1', 'orders', '{{}}' AS user_identity,
  1719347890000 + number AS approximate_creation_date_time, 'MILLISECOND',
  concat('{{"order_id":{{"S":"o', toString(intDiv(number, 3)), '"}},"timestamp":{{"S":"2024-06-25T20:',
         leftPad(toString(number % 60), 2, '0'), ':00Z"}}}}') AS keys,
  if(event_name = 'REMOVE', '{{}}', concat('{{"order_id":{{"S":"o', toString(intDiv(number, 3)),
         '"}},"taqueria":{{"S":"', ['El Farolito','La Taqueria','Tacos Don Chuy'][number % 3 + 1],
         '"}},"quantity":{{"N":"', toString(number % 7 + 1), '"}},"total_price":{{"S":"',
         toString(number % 50 + 3), '.50"}},"orderItems":{{"L":[{{"M":{{"name":{{"S":"al pastor"}},',
         '"qty":{{"N":"2"}}}}}}]}}}}')) AS new_image,
  if(event_name = 'INSERT', '{{}}', '{{"order_id":{{"S":"o0"}},"quantity":{{"N":"1"}}}}') AS old_image,
  180, toDateTime64('2026-11-27 00:00:00', 3, 'UTC') + toIntervalMillisecond(intDiv(number, 1700) * 250),
  intDiv(number, 1700) + 1 AS _delivery_id, '' AS _payload
FROM numbers({events})"""


def _setup(events: int):
    """A data folder of its own, Django set up, the warehouse opened in this process (as a
    warehouse worker holds it, its tasks run in place) and a source pool of `events` changes."""
    data_dir = Path(tempfile.mkdtemp(prefix="shoal-bench-backfill-"))
    os.environ.update(
        SHOAL_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="console.settings",
        LOG_LEVEL="WARNING",
    )
    # The view's creation task is queued (nothing here consumes it): on the caller's Redis
    # database when REDIS_URL is set, so that a shared machine's other databases stay untouched.
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    import django

    django.setup()
    from console import warehouse_client
    from console.warehouse import get_warehouse
    from pools import loader
    from pools.models import DataPool

    warehouse_client.call = lambda task, *task_args, **_: task(*task_args)
    warehouse = get_warehouse()
    source = DataPool.objects.create(name="bench_orders_change_events")
    loader.ensure_table(warehouse, source)
    started = time.perf_counter()
    warehouse.execute(FILL.format(table=source.table, events=events))
    print(f"source: {events:,} events in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    # Merge the source into one part first, so that its background merges do not run during (and
    # skew) one of the measurements.
    warehouse.execute(f"OPTIMIZE TABLE {source.table} FINAL")
    return data_dir, warehouse, source


def _settle(warehouse) -> None:
    while warehouse.query("SELECT count() FROM system.merges").rows[0][0]:
        time.sleep(0.5)


def _measure(warehouse, source, suffix: str, version: str | None, events: int) -> dict:
    """Shoal's backfill of the guide's view, then the same INSERT … SELECT into an identical
    table in one go (the ceiling)."""
    from pools import loader, tables
    from pools.models import DataPool
    from views_mv import ddl, planning, services
    from views_mv.models import Backfill
    from views_mv.tasks import plan_backfill, warehouse_run_backfill

    plan = planning.inspect(guide_sql("bench_orders_change_events", ""))  # as the wizard does
    mv = services.create_mv(
        f"bench_mv_{suffix}",
        plan.sql,
        plan=plan,
        target_pool=f"bench_target_{suffix}",
        mutable=True,
        unique=["order_id"],
        time_column="timestamp",
        version=version,
    )
    loader.ensure_table(warehouse, mv.target_pool)
    plan_backfill(mv, warehouse.query(ddl.delivery_rows(source.name)).rows)
    _settle(warehouse)
    started = time.perf_counter()
    assert warehouse_run_backfill(mv.pk) == "done"
    backfill_s = time.perf_counter() - started

    target = mv.target_pool
    ceiling = DataPool(
        name=f"bench_ceiling_{suffix}",
        columns=target.columns,
        engine=target.engine,
        sorting_key=target.sorting_key,
        partition_key=target.partition_key,
    )
    warehouse.execute(tables.create_table(ceiling))
    names = ", ".join(f"`{n}`" for n, _ in target.columns)
    _settle(warehouse)
    started = time.perf_counter()
    warehouse.execute(f"INSERT INTO {ceiling.table} ({names}) {mv.sql}")
    ceiling_s = time.perf_counter() - started
    return {
        "backfill_rows_per_s": round(events / backfill_s),
        "ceiling_rows_per_s": round(events / ceiling_s),
        "ratio": round(ceiling_s / backfill_s, 2),
        "chunks": len(Backfill.objects.get(mv=mv).chunks),
        "engine": target.engine,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    data_dir, warehouse, source = _setup(args.events)
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "events": args.events,
    }
    variants = {
        "mutable, change-time version (the default for a DynamoDB source)": ("chg", None),
        "mutable, arrival order (--version arrival: one read stream)": ("arr", "arrival"),
    }
    for label, (suffix, version) in variants.items():
        results[label] = _measure(warehouse, source, suffix, version, args.events)
        print(label, results[label], file=sys.stderr)
    print(json.dumps(results, indent=2))
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
