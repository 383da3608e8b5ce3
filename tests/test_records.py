"""The shapes on the wire: the Firehose body, the change record, an item's size."""

from __future__ import annotations

import base64
import json

from pools.ingest import envelope
from pools.ingest.records import change_record, encode_record, firehose_body, item_size


def test_a_body_carries_each_record_base64_encoded():
    body = firehose_body('r"1', [b'{"a":1}', b""], timestamp_ms=5)
    doc = json.loads(body)
    assert doc == {
        "requestId": 'r"1',
        "timestamp": 5,
        "records": [{"data": base64.b64encode(b'{"a":1}').decode()}, {"data": ""}],
    }
    assert envelope.parse(body, header_request_id='r"1').record_count == 2
    assert json.loads(firehose_body("r", []))["records"] == []


def test_a_body_of_encoded_records_keeps_them_as_they_are():
    body = firehose_body("r", ["YQ==", '{"not":"base64"}'], timestamp_ms=1, encoded=True)
    assert json.loads(body)["records"] == [{"data": "YQ=="}, {"data": '{"not":"base64"}'}]


def test_a_change_record_has_the_kinesis_shape():
    keys = {"id": {"S": "a"}}
    record = change_record(
        "MODIFY",
        keys=keys,
        new_image={**keys, "n": {"N": "2"}},
        old_image={**keys, "n": {"N": "1"}},
        event_id="e1",
        created=1719347890793,
        table_name="orders",
        region="us-east-1",
    )
    assert list(record) == [
        "awsRegion",
        "eventID",
        "eventName",
        "userIdentity",
        "recordFormat",
        "tableName",
        "dynamodb",
        "eventSource",
    ]
    assert list(record["dynamodb"]) == [
        "ApproximateCreationDateTime",
        "Keys",
        "NewImage",
        "OldImage",
        "SizeBytes",
        "ApproximateCreationDateTimePrecision",
    ]
    assert record["dynamodb"]["SizeBytes"] == item_size(keys) + 2 * item_size({**keys, "n": {"N": "1"}})
    blob = json.loads(encode_record({"B": b"\0\1", "SS": {"b", "a"}}))
    assert blob == {"B": "AAE=", "SS": ["a", "b"]}


def test_an_items_size_follows_dynamodbs_rules():
    assert item_size({"name": {"S": "café"}}) == 4 + 5
    assert item_size({"n": {"N": "-12.50"}}) == 1 + 3
    assert item_size({"b": {"B": b"\0\1\2"}}) == item_size({"b": {"B": "AAEC"}}) == 1 + 3
    assert item_size({"ok": {"BOOL": True}, "x": {"NULL": True}}) == 3 + 2
    assert item_size({"l": {"L": [{"S": "ab"}]}, "m": {"M": {"k": {"S": "v"}}}}) == (1 + 3 + 1 + 2) + (
        1 + 3 + 2 + 1
    )
    assert item_size({"s": {"SS": ["a", "bc"]}, "ns": {"NS": ["1", "22"]}}) == (1 + 3) + (2 + 2 + 2)
