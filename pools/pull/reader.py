"""One pass of a pull reader over a pipeline's stream: every readable shard (pools/pull/lineage.py)
from its checkpoint, page by page, each page landed as one delivery through the one landing path
(pools.ingest.landing.land_records) with the shard's checkpoint saved in the same database
transaction. A crash between the two cannot happen: either both are stored or neither, and the
next pass reads again from the checkpoint, so nothing is skipped and nothing is stored twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from pools.aws.models import Pipeline, ShardCheckpoint
from pools.ingest.landing import land_records
from pools.pull import lineage

log = logging.getLogger(__name__)

MAX_PAGES_PER_SHARD = 10  # a pass moves on to the other shards after this many pages of one


@dataclass
class Pass:
    records: int = 0
    deliveries: int = 0
    finished_shards: list[str] = field(default_factory=list)


def read_once(pipeline: Pipeline, stream, *, start: str = "TRIM_HORIZON") -> Pass:
    """Read what each readable shard holds now; returns what was landed."""
    done = Pass()
    shards = stream.shards()
    saved = {c.shard_id: c for c in ShardCheckpoint.objects.filter(pipeline=pipeline, stream=stream.arn)}
    finished = {shard_id for shard_id, c in saved.items() if c.finished}
    ending = {s["ShardId"]: s.get("SequenceNumberRange", {}).get("EndingSequenceNumber") for s in shards}
    for shard_id in lineage.readable(shards, finished):
        checkpoint = saved.get(shard_id) or ShardCheckpoint(
            pipeline=pipeline, stream=stream.arn, shard_id=shard_id
        )
        _read_shard(pipeline, stream, checkpoint, start, done, ending.get(shard_id))
    return done


def _read_shard(
    pipeline: Pipeline, stream, checkpoint: ShardCheckpoint, start: str, done: Pass, ending: str | None
) -> None:
    iterator = stream.iterator(checkpoint.shard_id, checkpoint.sequence_number or None, start)
    for _ in range(MAX_PAGES_PER_SHARD):
        page = stream.page(iterator)
        closed = page.next_iterator is None or _read_to_its_end(checkpoint, page, ending)
        if page.records or closed:
            _land(pipeline, checkpoint, page, closed, done)
        if closed:
            done.finished_shards.append(checkpoint.shard_id)
            return
        if not page.records:
            return  # caught up with this shard for now
        iterator = page.next_iterator


def _read_to_its_end(checkpoint: ShardCheckpoint, page, ending: str | None) -> bool:
    """A closed shard (it lists an ending sequence number) whose last record is landed. AWS then
    answers no next iterator; moto keeps answering one, so the listing is read too."""
    if page.records or not ending or not checkpoint.sequence_number:
        return False
    return int(checkpoint.sequence_number) >= int(ending)


def _land(pipeline: Pipeline, checkpoint: ShardCheckpoint, page, closed: bool, done: Pass) -> None:
    with transaction.atomic():
        if page.records:
            first = checkpoint.sequence_number or "start"
            request_id = f"pull:{pipeline.pk}:{checkpoint.shard_id}:{first}:{page.last_sequence}"
            stored = land_records(pipeline.pool, request_id, page.records, source_arn=checkpoint.stream)
            done.deliveries += int(stored)
            done.records += len(page.records)
            checkpoint.sequence_number = page.last_sequence or checkpoint.sequence_number
            checkpoint.records += len(page.records)
        checkpoint.finished = closed
        checkpoint.lag_ms = page.lag_ms
        checkpoint.save()
