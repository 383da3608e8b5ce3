"""Property: over random deliveries mixing ordinary records, attribute names with dots (some
colliding), every DynamoDB type and records that are not change records, with the loader killed
at a random insert, every acknowledged record ends exactly once in the pool (its images exactly
as sent) or in quarantine with a reason, and no delivery fails. With views attached and records a
view cannot transform, every stored record reaches each view's target once or is listed against
that view."""

from __future__ import annotations

import base64
import json
import random
import uuid

import pytest

from pools import loader
from pools.models import Delivery, QuarantinedRecord
from tests.helpers.firehose import change_record
from tests.helpers.pools import attach_view, land_direct

pytestmark = pytest.mark.django_db(transaction=True)


def attribute_value(rng: random.Random, depth: int = 0) -> dict:
    """A DynamoDB attribute value of any type."""
    kinds = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (["M", "L"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "S":
        return {"S": rng.choice(["", "plain", "ünïcødé ✓", "with.dot", 'quote"and\\\\slash', "1e400"])}
    if kind == "N":
        return {"N": rng.choice(["0", "-12.5", "3", "1E+38", "12345678901234567890123456789012345678"])}
    if kind == "B":
        return {"B": base64.b64encode(rng.randbytes(rng.randint(1, 12))).decode()}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "SS":
        return {"SS": sorted({rng.choice("abcdef") * rng.randint(1, 3) for _ in range(3)})}
    if kind == "NS":
        return {"NS": sorted({str(rng.randint(-5, 500)) for _ in range(3)})}
    if kind == "BS":
        return {"BS": [base64.b64encode(bytes([i])).decode() for i in range(rng.randint(1, 3))]}
    if kind == "M":
        return {"M": item(rng, depth + 1, size=rng.randint(0, 3))}
    return {"L": [attribute_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]}


def item(rng: random.Random, depth: int = 0, size: int = 4) -> dict:
    names = ["name", "user", "user.name", "x", "x.M.S", "a.b.c", "%percent", "ñame", "M", "S"]
    doc = {}
    for name in rng.sample(names, k=min(size, len(names))):
        doc[name] = attribute_value(rng, depth)
    if "x" in doc and "x.M.S" in doc:  # the collision the issue names: x.M.S beside x = {M: {S: …}}
        doc["x"] = {"M": {"S": {"S": "nested"}}}
    return doc


def without_empty_objects(value):
    """What a JSON column gives back: an empty object (an empty DynamoDB map, {"M": {}}) is not a
    path, so it is not kept (a known limit, docs/architecture.md); `_payload` keeps it."""
    if isinstance(value, dict):
        kept = {k: without_empty_objects(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v != {}}
    if isinstance(value, list):
        return [without_empty_objects(v) for v in value]
    return value


def random_record(rng: random.Random) -> tuple[bytes, str]:
    """(record bytes, what must become of it: 'stored' or 'quarantined')."""
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(
            [b"not json", b"[1, 2]", b'{"eventName": "INSERT"}', b'{"dynamodb": {}}']
        ), "quarantined"
    if roll < 0.12:
        return b"\xff\xfe not base64 either", "quarantined"
    record = change_record(f"o-{uuid.uuid4().hex[:8]}", rng.choice(["INSERT", "MODIFY", "REMOVE"]))
    ddb = record["dynamodb"]
    for image in ("NewImage", "OldImage"):
        if image in ddb:
            ddb[image] = {**ddb["Keys"], **item(rng)}
    if roll < 0.20:  # one JSON path twice: refused by the warehouse
        ddb.setdefault("NewImage", dict(ddb["Keys"]))
        ddb["NewImage"]["k.y"] = {"S": "dot"}
        ddb["NewImage"]["k%2Ey"] = {"S": "percent"}
        return json.dumps(record).encode(), "quarantined"
    return json.dumps(record).encode(), "stored"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_acknowledged_record_ends_once_in_the_pool_or_in_quarantine(
    seed, pool, local_warehouse, no_worker, monkeypatch
):
    rng = random.Random(seed)
    expected: dict[str, dict[int, tuple[bytes, str]]] = {}
    for _ in range(rng.randint(3, 6)):
        records = [random_record(rng) for _ in range(rng.randint(1, 25))]
        request_id = land_direct(pool, [raw for raw, _ in records])
        expected[request_id] = dict(enumerate(records))

    # The loader dies at a random insert, then a later load finishes the work.
    real_insert, calls, dies_at = local_warehouse.insert_files, [0], rng.randint(1, 8)

    def insert(*args, **kwargs):
        calls[0] += 1
        if calls[0] == dies_at:
            raise RuntimeError("worker killed")
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(local_warehouse, "insert_files", insert)
    for _ in range(3):
        loader.load_pool(local_warehouse, pool.pk)
        Delivery.objects.filter(pool=pool).update(retry_at=None)  # back-off passes
    assert set(Delivery.objects.filter(pool=pool).values_list("status", flat=True)) == {"loaded"}

    stored = local_warehouse.query(
        f"SELECT _delivery_id, event_id, new_image, old_image, _payload FROM {pool.table}", readonly=True
    ).rows
    by_event: dict[str, list] = {}
    for delivery_id, event_id, new_image, old_image, payload in stored:
        by_event.setdefault(event_id, []).append((delivery_id, new_image, old_image, payload))
    quarantined = {
        (q.delivery.request_id, q.position): q for q in QuarantinedRecord.objects.select_related("delivery")
    }

    for request_id, records in expected.items():
        delivery = Delivery.objects.get(pool=pool, request_id=request_id)
        want_stored = [p for p, (_, fate) in records.items() if fate == "stored"]
        assert (delivery.loaded_count, delivery.quarantined_count) == (
            len(want_stored),
            len(records) - len(want_stored),
        )
        for position, (raw, fate) in records.items():
            if fate == "quarantined":
                assert quarantined[(request_id, position)].reason
                continue
            assert (request_id, position) not in quarantined
            record = json.loads(raw)
            rows = by_event.get(record["eventID"], [])
            assert len(rows) == 1, (record["eventID"], rows)
            delivery_id, new_image, old_image, payload = rows[0]
            assert delivery_id == delivery.pk
            assert payload.encode() == raw
            assert new_image == without_empty_objects(record["dynamodb"].get("NewImage", {}))
            assert old_image == without_empty_objects(record["dynamodb"].get("OldImage", {}))
    assert len(stored) == sum(
        1 for records in expected.values() for _, fate in records.values() if fate == "stored"
    )


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_views_get_every_record_they_can_transform_once_and_list_the_rest(
    seed, pool, local_warehouse, no_worker, monkeypatch
):
    from views_mv.models import ViewFailure

    rng = random.Random(seed)
    strict = attach_view(
        pool,
        "strict",
        f"SELECT event_id, toInt32(new_image.quantity.N) AS qty FROM {pool.name}",
        [["event_id", "String"], ["qty", "Nullable(Int32)"]],
        local_warehouse,
    )
    copy = attach_view(
        pool,
        "copy",
        f"SELECT event_id, event_name FROM {pool.name}",
        [["event_id", "String"], ["event_name", "String"]],
        local_warehouse,
    )
    stored_events, view_failing = set(), set()
    for _ in range(rng.randint(3, 6)):
        records = []
        for _ in range(rng.randint(1, 25)):
            raw, fate = random_record(rng)
            if fate == "stored":
                record = json.loads(raw)
                if "NewImage" in record["dynamodb"]:
                    quantity = "abc" if rng.random() < 0.2 else str(rng.randint(0, 9))
                    record["dynamodb"]["NewImage"]["quantity"] = {"N": quantity}
                    if quantity == "abc":
                        view_failing.add(record["eventID"])
                raw = json.dumps(record).encode()
                stored_events.add(record["eventID"])
            records.append(raw)
        land_direct(pool, records)

    # The worker dies once, at a random write: the pool's insert or one of the views'.
    real_insert, real_execute = local_warehouse.insert_files, local_warehouse.execute
    writes, dies_at = [0], rng.randint(1, 4)

    def dies_once(real, counts):
        def write(sql, *args, **kwargs):
            if counts(sql):
                writes[0] += 1
                if writes[0] == dies_at:
                    raise RuntimeError("worker killed")
            return real(sql, *args, **kwargs)

        return write

    monkeypatch.setattr(local_warehouse, "insert_files", dies_once(real_insert, lambda sql: True))
    monkeypatch.setattr(
        local_warehouse, "execute", dies_once(real_execute, lambda sql: sql.startswith("INSERT"))
    )
    for _ in range(3):
        loader.load_pool(local_warehouse, pool.pk)
        Delivery.objects.filter(pool=pool).update(retry_at=None)  # back-off passes
    monkeypatch.undo()
    assert writes[0] > dies_at  # it died, and the work was done afterwards
    assert set(Delivery.objects.filter(pool=pool).values_list("status", flat=True)) == {"loaded"}

    def events(table: str) -> list[str]:
        return [r[0] for r in local_warehouse.query(f"SELECT event_id FROM {table}").rows]

    assert sorted(events(pool.table)) == sorted(stored_events)
    assert sorted(events(copy.target_pool.table)) == sorted(stored_events)  # each once
    assert sorted(events(strict.target_pool.table)) == sorted(stored_events - view_failing)
    failures = ViewFailure.objects.filter(mv=strict)
    assert sorted(failures.values_list("event_id", flat=True)) == sorted(view_failing)
    assert all("Cannot parse string 'abc'" in f.error for f in failures)
    assert not ViewFailure.objects.filter(mv=copy).exists()
