"""Realistic DynamoDB change records, as "Kinesis Data Streams for DynamoDB" writes them.

The taqueria orders table of Propel's DynamoDB guide (see README.md), so that its Step 4 SQL runs
unchanged on the result: partition key `order_id` (S), sort key `timestamp` (S, ISO 8601),
`taqueria`, `quantity` (N), `total_price` (S), `orderItems` (L of M) and a nested `customer` map;
status, rating and tags come with later changes. Orders are created, modified and removed in a
plausible sequence, with the images each event carries (the shape: pools/ingest/records.py).
Deterministic for a seed, so benchmarks repeat. Used by the benchmarks and by "Send test events".

    python bench/records.py 100000 var/orders.jsonl [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from pools.ingest.records import change_record, encode_record, item_size

TABLE = "orders"
REGION = "us-east-1"
START_MS = 1719347890000  # 2024-06-25T20:38:10Z, a fixed start keeps output reproducible
MAX_TRACKED_ORDERS = 5000  # older orders simply never change again

TAQUERIAS = [
    "El Buen Sabor",
    "La Esquina",
    "Tacos Don Chuy",
    "El Farolito",
    "Taqueria Cancún",
    "Los Cuates",
]
MENU = [  # name, price in cents
    ("Taco al pastor", 325),
    ("Taco de carnitas", 350),
    ("Taco de pescado", 425),
    ("Burrito de asada", 1195),
    ("Quesadilla", 875),
    ("Elote", 450),
    ("Horchata", 300),
    ("Guacamole y totopos", 650),
]
NAMES = ["Ana", "Luis", "María", "José", "Sofía", "Diego", "Camila", "Mateo", "Lucía", "Pablo"]
TAGS = ["pickup", "delivery", "spicy", "vegetarian", "catering", "first-order", "loyalty"]
STATUSES = ["placed", "preparing", "ready", "delivered"]
TTL_SERVICE = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _order_items(rng: random.Random, count: int) -> tuple[list[dict], int, int]:
    """(orderItems L values, total quantity, total cents)."""
    items, quantity, cents = [], 0, 0
    for name, price in rng.sample(MENU, count):
        q = rng.choice((1, 1, 1, 2, 2, 3))
        quantity += q
        cents += q * price
        items.append({"M": {"name": {"S": name}, "qty": {"N": str(q)}}})
    return items, quantity, cents


def _new_order(rng: random.Random, seq: int, now_ms: int) -> dict:
    items, quantity, cents = _order_items(rng, rng.choice((1, 1, 1, 2)))
    return {
        "order_id": {"S": f"{rng.getrandbits(16):04x}{seq:06x}"},
        "timestamp": {"S": _iso(now_ms - rng.randint(5, 300))},  # the client's clock, a bit earlier
        "taqueria": {"S": rng.choice(TAQUERIAS)},
        "quantity": {"N": str(quantity)},
        "total_price": {"S": _money(cents)},  # a string, as in the guide (toFloat64OrNull(….S))
        "orderItems": {"L": items},
        "customer": {"M": {"name": {"S": rng.choice(NAMES)}}},
    }


def _modified(rng: random.Random, old: dict) -> dict:
    """The next version of an order: it moves on a status and sometimes gains an item."""
    new = dict(old)  # shallow: changed attributes get new values, the old image stays intact
    status = STATUSES.index(old["status"]["S"]) if "status" in old else 0
    if status == len(STATUSES) - 1:
        # Delivered: the customer rates it (again). DynamoDB emits no record for a no-op update.
        previous = old.get("rating", {}).get("N")
        new["rating"] = {"N": rng.choice([r for r in "12345" if r != previous])}
        return new
    new["status"] = {"S": STATUSES[status + 1]}
    if rng.random() < 0.25:
        items, quantity, cents = _order_items(rng, 1)
        new["orderItems"] = {"L": old["orderItems"]["L"] + items}
        new["quantity"] = {"N": str(int(old["quantity"]["N"]) + quantity)}
        total = old["total_price"]["S"].split(".")
        new["total_price"] = {"S": _money(int(total[0]) * 100 + int(total[1]) + cents)}
    return new


def _event_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iter_records(n: int, seed: int = 0) -> Iterator[bytes]:
    """n change records as compact JSON bytes (no newline): ~82 % INSERT, 12 % MODIFY, 6 % REMOVE.

    An append-heavy order table: records average about 600 bytes (a MODIFY carries two images).
    """
    rng = random.Random(seed)
    live: list[tuple[dict, int]] = []  # (latest image, its size): sizing is the costly part
    now = START_MS
    for seq in range(n):
        now += rng.randint(0, 40)
        roll = rng.random()
        identity = None
        old = new = None
        if not live or roll < 0.82:
            event, new = "INSERT", _new_order(rng, seq, now)
            entry = (new, item_size(new))
            if len(live) >= MAX_TRACKED_ORDERS:
                live[rng.randrange(len(live))] = entry
            else:
                live.append(entry)
            size = entry[1]
        elif roll < 0.94:
            i = rng.randrange(len(live))
            event, (old, old_size) = "MODIFY", live[i]
            new = _modified(rng, old)
            live[i] = (new, item_size(new))
            size = old_size + live[i][1]
        else:
            i = rng.randrange(len(live))
            event, (old, size) = "REMOVE", live[i]
            live[i] = live[-1]
            live.pop()
            if rng.random() < 0.2:
                identity = TTL_SERVICE  # expired by TTL rather than deleted by the application
        item = new or old
        keys = {"order_id": item["order_id"], "timestamp": item["timestamp"]}
        record = change_record(
            event,
            keys=keys,
            new_image=new,
            old_image=old,
            event_id=_event_id(rng),
            created=now,
            table_name=TABLE,
            region=REGION,
            user_identity=identity,
            size_bytes=item_size(keys) + size,
        )
        yield encode_record(record, ascii_only=False)


def make_records(n: int, seed: int = 0) -> list[bytes]:
    """n records in memory; for large n prefer iter_records or write_jsonl."""
    return list(iter_records(n, seed))


def write_jsonl(path: str | Path, n: int, seed: int = 0) -> int:
    """Write n records, one per line, to path ("-" for stdout); returns the bytes written."""
    out = sys.stdout.buffer if str(path) == "-" else open(path, "wb")  # noqa: SIM115
    written = 0
    try:
        for record in iter_records(n, seed):
            out.write(record + b"\n")
            written += len(record) + 1
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write DynamoDB change records (taqueria orders) as JSONL.")
    parser.add_argument("n", type=int, help="number of records")
    parser.add_argument("out", help="output file, - for stdout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error("n must not be negative")
    try:
        written = write_jsonl(args.out, args.n, args.seed)
    except BrokenPipeError:  # piped into head: stop quietly, without a traceback at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    if args.out != "-":
        print(f"{args.n} records, {written / 1048576:.1f} MiB -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
