"""A snapshot's pages: one page of a segment's parallel Scan, its items as INSERT change records,
stored as one delivery; and the read-capacity budget the segments share.

Each page is stored with `pools.ingest.landing.land_records` (the one path into a pool) under a request id
made of the snapshot, segment, page number and a digest of the page's records: a page read again
after a crash with the same content is stored once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable

from pools.ingest import records

SNAPSHOT_CREATION_TIME = 0  # older than every streamed change (those carry epoch milliseconds)


# --- Records ------------------------------------------------------------------------------------


def canonical_key(keys: dict) -> str:
    return json.dumps(
        keys, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=records.json_default
    )


def event_id(keys: dict) -> str:
    """The same item always gets the same id: a re-scan repeats records rather than adding new ones."""
    return "snapshot-" + hashlib.sha1(canonical_key(keys).encode()).hexdigest()


def item_to_change_record(
    item: dict, key_names: list[str], table_name: str, region: str, *, created: int = SNAPSHOT_CREATION_TIME
) -> bytes:
    """A KDS-shaped INSERT change record of an item in DynamoDB JSON, as the low-level client's Scan
    returns it (binary values as bytes are written as base64). A Scan's creation time is 0, older
    than any streamed change, so that a streamed change of the same item wins; an export's is the
    export's time (pools/aws/export_snapshot.py), so that a change before it loses."""
    keys = {name: item[name] for name in key_names if name in item}
    record = records.change_record(
        "INSERT",
        keys=keys,
        new_image=item,
        event_id=event_id(keys),
        created=created,
        table_name=table_name,
        region=region,
    )
    return records.encode_record(record)


def page_request_id(snapshot_uid: str, segment: int, page: int, page_records: list[bytes]) -> str:
    digest = hashlib.sha1(b"\n".join(page_records)).hexdigest()[:16]
    return f"snapshot-{snapshot_uid}-{segment}-{page}-{digest}"


def now_ms() -> int:
    """A page's timestamp: when Shoal read it (as Firehose stamps a delivery when it sends it)."""
    return int(time.time() * 1000)


def key_to_json(key: dict | None) -> dict | None:
    """A LastEvaluatedKey as JSON for the database: binary key values (B) as base64."""
    if key is None:
        return None
    return {
        name: {"B": base64.b64encode(value["B"]).decode()} if isinstance(value.get("B"), bytes) else value
        for name, value in key.items()
    }


def key_from_json(key: dict | None) -> dict | None:
    if key is None:
        return None
    return {
        name: {"B": base64.b64decode(value["B"])} if isinstance(value.get("B"), str) else value
        for name, value in key.items()
    }


def scan_segment(
    client, table: str, segment: int, total_segments: int, exclusive_start_key: dict | None, page_limit: int
) -> tuple[list[dict], dict | None, float]:
    """One page of one segment: (items, LastEvaluatedKey or None at its end, consumed RCU)."""
    params: dict = {
        "TableName": table,
        "Segment": segment,
        "TotalSegments": total_segments,
        "ReturnConsumedCapacity": "TOTAL",
        "ConsistentRead": False,
    }
    if exclusive_start_key:
        params["ExclusiveStartKey"] = exclusive_start_key
    if page_limit:
        params["Limit"] = page_limit
    page = client.scan(**params)
    consumed = float((page.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0)
    return page.get("Items", []), page.get("LastEvaluatedKey"), consumed


class CapacityBudget:
    """Keeps the read capacity the segments consume together under `rcu_per_second`.

    A Scan page's cost is known only after it is read, so each page is paid for afterwards: the
    budget is a queue in time, and a page of u units takes u / rate seconds of it. The caller
    sleeps until its page is paid for, so over any run the average stays at or under the budget.
    0 means no limit.
    """

    def __init__(
        self,
        rcu_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = float(rcu_per_second or 0)
        self.clock = clock
        self.sleep = sleep
        self._paid_until = 0.0
        self._lock = threading.Lock()

    def spend(self, units: float) -> float:
        """Account for a page's units; sleeps as long as needed and returns the seconds slept."""
        if self.rate <= 0 or units <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            self._paid_until = max(self._paid_until, now) + units / self.rate
            wait = self._paid_until - now
        if wait > 0:
            self.sleep(wait)
        return max(wait, 0.0)
