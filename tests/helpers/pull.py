"""What a pull stored, read back from the deliveries' bodies (tests that run no warehouse worker,
which would load the bodies and discard them)."""

from __future__ import annotations

import base64
import json
from collections import Counter

from pools.ingest import journal
from pools.models import Delivery


def stored_event_ids(pool) -> Counter:
    """eventIDs of every record landed, read from the bodies (no warehouse worker runs)."""
    seen: Counter = Counter()
    for delivery in Delivery.objects.filter(pool=pool):
        raw = journal.path_of(delivery.body_path).read_bytes() if delivery.body_path else bytes(delivery.body)
        for entry in json.loads(raw)["records"]:
            seen[json.loads(base64.b64decode(entry["data"]))["eventID"]] += 1
    return seen


def streaming_table(ddb, name: str) -> None:
    """A table keyed by order_id alone with a NEW_AND_OLD_IMAGES stream (the pull tests' table)."""
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
