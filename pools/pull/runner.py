"""The pull reader process (`manage.py pull_reader`, started by `make run` as "reader"): every
active pipeline that pulls is read again and again, one pass at a time (pools/pull/reader.py).

Why one supervised process and not Celery tasks: a pass is short and repeats every second, and a
shard must be read by one reader at a time in order; one loop owns that order without leases, and
the supervisor restarts it like the other processes. A pass goes on with the iterators the last
one ended with (for four minutes: AWS's live five), or asks AWS for fresh ones from the checkpoints,
so an iterator that expired while the reader was stopped or throttled is renewed by the next pass.
Throttling (and any other error) backs that pipeline off, doubling up to a limit, and drops its
iterators, while the others go on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

import redis
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import close_old_connections

from pools.aws.clients import Aws, connect
from pools.aws.errors import error_code
from pools.aws.models import Pipeline
from pools.pull import streams
from pools.pull.reader import read_once

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "shoal:pull:heartbeat"
PULL_MODES = (Pipeline.Mode.KINESIS, Pipeline.Mode.STREAMS)
THROTTLED = {
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}


def stream_for(aws: Aws, pipeline: Pipeline):
    if pipeline.delivery_mode == Pipeline.Mode.STREAMS:
        return streams.DynamoDBStream(aws, pipeline, start_ms=pipeline.pull_start_ms)
    return streams.KinesisStream(aws, pipeline, start_ms=pipeline.pull_start_ms)


@dataclass
class Reader:
    idle_seconds: float = 1.0
    first_backoff: float = 1.0
    max_backoff: float = 60.0
    _waits: dict[int, tuple[float, float]] = field(default_factory=dict)  # id: (next try, back-off)
    _clients: dict[int, tuple[object, Aws]] = field(default_factory=dict)  # connection id: (updated, Aws)
    _iterators: dict[int, dict] = field(default_factory=dict)  # pipeline id: its shards' iterators

    def pipelines(self) -> list[Pipeline]:
        return list(
            Pipeline.objects.filter(
                status=Pipeline.Status.ACTIVE, delivery_mode__in=PULL_MODES
            ).select_related("pool", "connection")
        )

    def aws(self, pipeline: Pipeline) -> Aws:
        connection = pipeline.connection
        cached = self._clients.get(connection.pk)
        if cached is None or cached[0] != connection.updated_at:
            cached = (connection.updated_at, connect(connection))
            self._clients[connection.pk] = cached
        return cached[1]

    def pass_once(self) -> int:
        """One pass over every pulling pipeline not backing off; returns the records landed."""
        landed, now = 0, time.monotonic()
        for pipeline in self.pipelines():
            if self._waits.get(pipeline.pk, (0.0, 0.0))[0] > now:
                continue
            try:
                iterators = self._iterators.setdefault(pipeline.pk, {})
                landed += read_once(pipeline, stream_for(self.aws(pipeline), pipeline), iterators).records
            except (ClientError, BotoCoreError) as exc:
                self._back_off(pipeline, exc)
            except Exception as exc:  # a bad pipeline must not stop the others
                log.exception("pull reader: pipeline %s failed", pipeline.pk)
                self._back_off(pipeline, exc)
            else:
                self._waits.pop(pipeline.pk, None)
        return landed

    def _back_off(self, pipeline: Pipeline, exc: BaseException) -> None:
        self._iterators.pop(pipeline.pk, None)  # an expired or refused iterator is made again
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        wait = min(self.max_backoff, self._waits.get(pipeline.pk, (0.0, self.first_backoff / 2))[1] * 2)
        self._waits[pipeline.pk] = (time.monotonic() + wait, wait)
        level = logging.INFO if code in THROTTLED else logging.WARNING
        log.log(level, "pull reader: pipeline %s: %s; next try in %.0f s", pipeline.pk, code, wait)

    def run(self, stop: threading.Event) -> None:
        beat = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        while not stop.is_set():
            close_old_connections()
            with contextlib.suppress(redis.RedisError):  # it only tells the page the reader runs
                beat.set(HEARTBEAT_KEY, str(time.time()), ex=30)
            landed = self.pass_once()
            if not landed:
                stop.wait(self.idle_seconds)


def reader_running() -> bool:
    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).exists(HEARTBEAT_KEY))
    except redis.RedisError:
        return False
