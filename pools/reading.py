"""Reading is one loop, whatever is read: take batches from somewhere, land each one, then save
where the reading got to. The initial snapshot (Scan pages, export files), the replays (of failed
deliveries from S3, of quarantined records), the sandbox relay and the pull reader (Kinesis,
DynamoDB Streams) all run through `land_batches`; each supplies only what differs: where batches
come from, where they land, and how its position is kept.

The rule they share: a position is saved only once its batch is durable. When the landing is a
row in Shoal's database (`into_pool`), the position is saved in the same transaction as the
delivery (`together=True`), so a crash keeps both or neither and a re-read cannot skip or double.
When the landing or the position is elsewhere (the relay posts to an HTTP endpoint; the S3 replay
archives the object), the position is saved after the landing (`together=False`), and the
landing's own request id makes a batch sent again harmless.

    tally = land_batches(batches, land=into_pool(pool, arn), save=save_position, room=wait, stop=asked)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from pools.ingest.landing import land_records


@dataclass
class Batch:
    """A batch of change records and the position reached once it is stored.

    request_id: the same for the same content read again (a re-read is stored once).
    records: the change records (bytes, or base64 text when `encoded`); none at all for a batch
        that only moves the position (a closed shard's end, a page of records filtered out).
    position: what `save` keeps for this batch (a shard's sequence number, a segment's state…).
    """

    request_id: str
    records: list
    position: Any = None
    encoded: bool = False
    timestamp_ms: int | None = None


@dataclass
class Tally:
    batches: int = 0  # batches landed or with only a position to save
    stored: int = 0  # batches stored now (not stored before under their request id)
    records: int = 0


Land = Callable[[Batch], bool]
Save = Callable[[Batch, bool], None]


def into_pool(pool, source_arn: str = "") -> Land:
    """Land each batch in the pool as one delivery, through the one landing path."""

    def land(batch: Batch) -> bool:
        return land_records(
            pool,
            batch.request_id,
            batch.records,
            source_arn=source_arn,
            encoded=batch.encoded,
            timestamp_ms=batch.timestamp_ms,
        )

    return land


def land_batches(
    batches: Iterable[Batch],
    *,
    land: Land,
    save: Save,
    together: bool = True,
    room: Callable[[], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Tally:
    """Land each batch and save its position, in order, until the batches end or `stop()` says so.

    room: called before each batch with records; it returns when the destination can take more
        (a pool's backlog past its limits makes it wait) and may raise to stop the reading.
    save(batch, stored): keeps the batch's position; `stored` is False when the batch was landed
        before (a re-read after a crash).
    """
    tally = Tally()
    for batch in batches:
        if stop is not None and stop():
            break
        if batch.records and room is not None:
            room()
        with transaction.atomic() if together else contextlib.nullcontext():
            stored = bool(batch.records) and land(batch)
            save(batch, stored)
        tally.batches += 1
        tally.stored += int(stored)
        tally.records += len(batch.records)
    return tally
