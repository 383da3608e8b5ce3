"""The reader process killed with SIGKILL at random points, again and again, while the table keeps
changing, loses and duplicates nothing: every change in moto's DynamoDB stream is stored exactly
once (each page's delivery and its shard's checkpoint are saved in one transaction)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from pools.aws import sandbox
from pools.aws.models import Pipeline
from pools.pull import streams
from pools.pull.runner import HEARTBEAT_KEY
from tests.helpers.aws import make_pipeline
from tests.helpers.pull import stored_event_ids
from tests.helpers.workers import child_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.aws, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
TABLE = "orders_killed"


def stream_event_ids(aws, pipeline) -> list[str]:
    """Every record of the table's stream, read directly from its oldest."""
    stream, ids = streams.DynamoDBStream(aws, pipeline), []
    for shard in stream.shards():
        iterator = stream.iterator(shard["ShardId"], None)
        while iterator:
            page = stream.page(iterator)
            ids += [json.loads(r)["eventID"] for r in page.records]
            if not page.records:
                break
            iterator = page.next_iterator
    return ids


def change(aws, rng: random.Random, live: list[dict]) -> None:
    ddb = aws.client("dynamodb")
    roll = rng.random()
    if live and roll < 0.25:
        item = live.pop(rng.randrange(len(live)))
        ddb.delete_item(TableName=TABLE, Key={k: {"S": item[k]} for k in ("order_id", "timestamp")})
    elif live and roll < 0.5:
        item = rng.choice(live)
        ddb.update_item(
            TableName=TABLE,
            Key={k: {"S": item[k]} for k in ("order_id", "timestamp")},
            UpdateExpression="SET quantity = :q",
            ExpressionAttributeValues={":q": {"N": str(rng.randrange(100))}},
        )
    else:
        live.append(sandbox.put_sample_order(aws, TABLE))


def test_a_reader_killed_at_random_points_stores_every_change_once(pool, aws, no_worker):
    sandbox.create_orders_table(aws, TABLE, items=0)
    pipeline = make_pipeline(pool, aws, TABLE)
    Pipeline.objects.filter(pk=pipeline.pk).update(delivery_mode=Pipeline.Mode.STREAMS)
    rng, live = random.Random(22), []
    env = child_env(PULL_PAGE_LIMIT="7")  # many pages: many checkpoints to be killed between
    argv = [sys.executable, "manage.py", "pull_reader", "--idle-seconds", "0.05"]
    for _ in range(12):
        for _ in range(rng.randrange(10, 40)):
            change(aws, rng, live)
        reader = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 2.5))  # Django's start takes part of it: kills land anywhere
        reader.send_signal(signal.SIGKILL)
        reader.wait(10)
    reader = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        expected = stream_event_ids(aws, pipeline)
        deadline = time.monotonic() + 60
        while sum(stored_event_ids(pool).values()) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        reader.terminate()
        reader.wait(20)
        redis.Redis.from_url(settings.REDIS_URL).delete(HEARTBEAT_KEY)  # the killed ones' heartbeat
    stored = stored_event_ids(pool)
    assert len(expected) > 200
    assert [i for i, n in stored.items() if n > 1] == []  # nothing twice
    assert sorted(stored) == sorted(expected)  # nothing lost
