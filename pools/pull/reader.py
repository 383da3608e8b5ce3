"""One pass of a pull reader over a pipeline's stream: every readable shard (pools/pull/lineage.py)
from its checkpoint, page by page, through the one reading loop (pools/reading.py): each page is
landed as one delivery with the shard's checkpoint saved in the same database transaction. A crash
between the two cannot happen: either both are stored or neither, and the next pass reads again
from the checkpoint, so nothing is skipped and nothing is stored twice.

`shard_pages` walks the shards and is shared with the sandbox relay, which keeps its positions
elsewhere and lands over HTTP (pools/aws/sandbox.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pools.aws.models import Pipeline, ShardCheckpoint
from pools.pull import lineage
from pools.reading import Batch, Tally, into_pool, land_batches

log = logging.getLogger(__name__)

MAX_PAGES_PER_SHARD = 10  # a pass moves on to the other shards after this many pages of one
ITERATOR_REUSE_SECONDS = 240  # AWS's shard iterators expire after 5 minutes


@dataclass
class Position:
    """Where a reading is in one shard (ShardCheckpoint has the same fields, kept in the database)."""

    shard_id: str
    sequence_number: str = ""
    finished: bool = False


def shard_pages(
    stream, saved: dict, new_position, prefix: str, iterators: dict | None = None
) -> Iterator[Batch]:
    """A batch per page of each readable shard, from its saved position; `position` of each batch is
    (the shard's position, the page, closed). The caller saves the position (updating it in place)
    before the next batch is asked for, so each request id starts where the last page ended.

    A page without records while the stream says it is behind (Kinesis may answer empty pages
    before the records further on) is read past; `iterators` keeps each shard's iterator from one
    pass to the next, so such a stretch longer than a pass is crossed rather than started over
    (an iterator is used again only from the same checkpoint and while AWS still honours it)."""
    shards = stream.shards()
    finished = {shard_id for shard_id, p in saved.items() if p.finished}
    ending = {s["ShardId"]: s.get("SequenceNumberRange", {}).get("EndingSequenceNumber") for s in shards}
    kept = iterators if iterators is not None else {}
    for shard_id in lineage.readable(shards, finished):
        position = saved.get(shard_id) or new_position(shard_id)
        iterator = _kept_iterator(kept, shard_id, position) or stream.iterator(
            shard_id, position.sequence_number or None
        )
        closed = False
        for _ in range(MAX_PAGES_PER_SHARD):
            page = stream.page(iterator)
            closed = page.next_iterator is None or _read_to_its_end(position, page, ending.get(shard_id))
            if page.last_sequence or closed:
                first = position.sequence_number or "start"
                request_id = f"{prefix}:{shard_id}:{first}:{page.last_sequence}"
                yield Batch(request_id, page.records, position=(position, page, closed))
            iterator = page.next_iterator
            if closed or (page.last_sequence is None and not page.lag_ms):
                break  # the shard is finished, or caught up with for now
        if closed or not iterator:
            kept.pop(shard_id, None)
        else:
            kept[shard_id] = (position.sequence_number, iterator, time.monotonic())


def _kept_iterator(kept: dict, shard_id: str, position) -> str | None:
    held = kept.get(shard_id)
    if held is None:
        return None
    sequence, iterator, made = held
    if sequence != position.sequence_number or time.monotonic() - made > ITERATOR_REUSE_SECONDS:
        return None
    return iterator


def _read_to_its_end(position, page, ending: str | None) -> bool:
    """A closed shard (it lists an ending sequence number) whose last record is landed. AWS then
    answers no next iterator; moto keeps answering one, so the listing is read too (moto lists an
    empty closed shard as ending at 0, and its children wait for it)."""
    if page.last_sequence or not ending:
        return False
    return int(position.sequence_number or 0) >= int(ending)


def advance(batch: Batch):
    """Move a shard's position to the end of the batch's page (a batch of `shard_pages`); returns
    the position, for the caller to keep it."""
    position, page, closed = batch.position
    position.sequence_number = page.last_sequence or position.sequence_number
    position.finished = closed
    return position


def read_once(pipeline: Pipeline, stream, iterators: dict | None = None) -> Tally:
    """Read what each readable shard holds now; returns what was landed. `iterators`: the reader's
    iterators of this pipeline's shards, kept from one pass to the next (shard_pages)."""
    saved = {c.shard_id: c for c in ShardCheckpoint.objects.filter(pipeline=pipeline, stream=stream.arn)}

    def new_checkpoint(shard_id: str) -> ShardCheckpoint:
        return ShardCheckpoint(pipeline=pipeline, stream=stream.arn, shard_id=shard_id)

    def save(batch: Batch, stored: bool) -> None:
        checkpoint = advance(batch)
        checkpoint.records += len(batch.records)
        checkpoint.lag_ms = batch.position[1].lag_ms
        checkpoint.save()

    return land_batches(
        shard_pages(stream, saved, new_checkpoint, f"pull:{pipeline.pk}", iterators),
        land=into_pool(pipeline.pool, source_arn=stream.arn),
        save=save,
    )
