"""What the pipeline page and /metrics show of a pull: is the reader running, where is each shard,
how far behind is it, and is anything about to age out of the stream's retention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timesince

from pools.aws.models import Pipeline, ShardCheckpoint
from pools.pull.runner import reader_running

# DynamoDB Streams keep records 24 hours; a Kinesis data stream 24 hours unless extended.
RETENTION = timedelta(hours=24)


@dataclass
class PullStatus:
    running: bool
    shards: list[ShardCheckpoint] = field(default_factory=list)
    lag_ms: int | None = None  # the largest of the open shards
    last_read: datetime | None = None  # when a checkpoint last moved
    warning: str = ""


def pull_status(pipeline: Pipeline) -> PullStatus:
    shards = list(pipeline.shard_checkpoints.order_by("finished", "shard_id"))
    lags = [s.lag_ms for s in shards if not s.finished and s.lag_ms is not None]
    status = PullStatus(
        running=reader_running(),
        shards=shards,
        lag_ms=max(lags) if lags else None,
        last_read=max((s.updated_at for s in shards), default=None),
    )
    status.warning = _warning(pipeline, status)
    return status


def _warning(pipeline: Pipeline, status: PullStatus) -> str:
    if pipeline.status != Pipeline.Status.ACTIVE:
        return ""
    if not status.running:
        since = f" since {timesince(status.last_read)} ago" if status.last_read else ""
        return (
            f"The reader is not running{since}: changes wait in the stream, which keeps them "
            f"{RETENTION.total_seconds() / 3600:.0f} hours; older ones are lost. Start Shoal with "
            "`make run` (its reader process)."
        )
    behind = timedelta(milliseconds=status.lag_ms or 0)
    if behind > timedelta(seconds=settings.PULL_LAG_WARN_SECONDS):
        left = RETENTION - behind
        return (
            f"The reader is {timesince(timezone.now() - behind)} behind; records older than "
            f"{RETENTION.total_seconds() / 3600:.0f} hours age out of the stream "
            f"({'now' if left.total_seconds() <= 0 else 'in ' + timesince(timezone.now() - left)})."
        )
    return ""
