"""The SQL of a DynamoDB Data Pool's table: its DDL and the statement that loads a delivery.

Loading happens inside the warehouse: the delivery body goes in as one blob and ClickHouse splits
the records, base64-decodes them, validates them and extracts the columns, so no Python runs per
record.
"""

from __future__ import annotations

from django.conf import settings

from console.warehouse.base import quote_identifier, quote_string

# Columns of the DynamoDB change-event table, in the guide's names, with their types.
CHANGE_EVENT_COLUMNS: list[tuple[str, str, str]] = [
    ("event_id", "String", "eventID: the id of the change"),
    ("event_name", "LowCardinality(String)", "INSERT, MODIFY or REMOVE"),
    ("event_source", "LowCardinality(String)", "aws:dynamodb"),
    ("record_format", "LowCardinality(String)", "application/json"),
    ("aws_region", "LowCardinality(String)", "region of the table"),
    ("table_name", "LowCardinality(String)", "the DynamoDB table"),
    ("user_identity", "JSON", "null for normal writes; the TTL service for expiry deletes"),
    ("approximate_creation_date_time", "Int64", "ApproximateCreationDateTime as sent (ms or µs)"),
    ("approximate_creation_date_time_precision", "LowCardinality(String)", "MILLISECOND or MICROSECOND"),
    ("keys", "JSON", "the item's primary key (DynamoDB JSON)"),
    ("new_image", "JSON", "the item after the change (INSERT, MODIFY)"),
    ("old_image", "JSON", "the item before the change (MODIFY, REMOVE)"),
    ("size_bytes", "Int64", "SizeBytes"),
    ("_received_at", "DateTime64(3, 'UTC')", "when Shoal received the delivery"),
    ("_delivery_id", "UInt64", "the delivery the record came in"),
    ("_payload", "String CODEC(ZSTD(3))", "the raw change record"),
]

VALID_EVENT_NAMES = ("INSERT", "MODIFY", "REMOVE")


def table_ref(name: str) -> str:
    return f"{quote_identifier(settings.WAREHOUSE.database)}.{quote_identifier(name)}"


def create_change_event_table(pool) -> str:
    columns = ",\n  ".join(f"{quote_identifier(n)} {t}" for n, t, _ in CHANGE_EVENT_COLUMNS)
    partition = f"\nPARTITION BY {pool.partition_key}" if pool.partition_key else ""
    # The deduplication window makes a repeated load of a delivery (same token) a no-op on a
    # plain MergeTree, as Replicated tables do by default.
    return (
        f"CREATE TABLE IF NOT EXISTS {table_ref(pool.name)} (\n  {columns}\n)\n"
        f"ENGINE = {pool.engine}{partition}\nORDER BY ({pool.sorting_key})\n"
        "SETTINGS non_replicated_deduplication_window = 10000"
    )


def drop_table(name: str) -> str:
    return f"DROP TABLE IF EXISTS {table_ref(name)}"


def _json_or_empty(*path: str) -> str:
    args = ", ".join(quote_string(p) for p in path)
    # A missing or null image becomes {} so that new_image.x.S reads as NULL rather than failing.
    return f"if(JSONType(r, {args}) = 'Object', JSONExtractRaw(r, {args}), '{{}}')"


# Why a record is refused, or '' when it is a DynamoDB change record. Evaluated in the warehouse.
_REASON = f"""multiIf(
    JSONType(entry) != 'Object' OR NOT JSONHas(entry, 'data'), 'entry has no "data" field',
    JSONType(entry, 'data') != 'String', '"data" is not a string',
    JSONExtractString(entry, 'data') = '', 'record is empty',
    r = '', 'data is not valid base64',
    NOT isValidJSON(r), 'record is not JSON',
    JSONType(r) != 'Object', 'record is not a JSON object',
    JSONExtractString(r, 'eventName') NOT IN {VALID_EVENT_NAMES!r},
        'eventName is missing or not INSERT, MODIFY or REMOVE',
    JSONType(r, 'dynamodb') != 'Object', 'dynamodb is missing',
    JSONType(r, 'dynamodb', 'Keys') != 'Object', 'dynamodb.Keys is missing',
    '')"""

_RECORDS = f"""SELECT position, entry, r, {_REASON} AS reason
FROM (
    SELECT entry, position, tryBase64Decode(JSONExtractString(entry, 'data')) AS r
    FROM {{source}}
    ARRAY JOIN JSONExtractArrayRaw(raw_blob, 'records') AS entry,
               arrayEnumerate(JSONExtractArrayRaw(raw_blob, 'records')) AS position
)"""


def load_select(delivery_id: int, received_at_ms: int) -> str:
    """SELECT of a delivery's valid records as rows of the change-event table ({source}: blob)."""
    names = ", ".join(quote_identifier(n) for n, _, _ in CHANGE_EVENT_COLUMNS)
    return f"""SELECT {names} FROM (
SELECT
    JSONExtractString(r, 'eventID') AS event_id,
    JSONExtractString(r, 'eventName') AS event_name,
    JSONExtractString(r, 'eventSource') AS event_source,
    JSONExtractString(r, 'recordFormat') AS record_format,
    JSONExtractString(r, 'awsRegion') AS aws_region,
    JSONExtractString(r, 'tableName') AS table_name,
    {_json_or_empty("userIdentity")} AS user_identity,
    JSONExtractInt(r, 'dynamodb', 'ApproximateCreationDateTime') AS approximate_creation_date_time,
    JSONExtractString(r, 'dynamodb', 'ApproximateCreationDateTimePrecision')
        AS approximate_creation_date_time_precision,
    JSONExtractRaw(r, 'dynamodb', 'Keys') AS keys,
    {_json_or_empty("dynamodb", "NewImage")} AS new_image,
    {_json_or_empty("dynamodb", "OldImage")} AS old_image,
    JSONExtractInt(r, 'dynamodb', 'SizeBytes') AS size_bytes,
    fromUnixTimestamp64Milli(toInt64({int(received_at_ms)}), 'UTC') AS _received_at,
    toUInt64({int(delivery_id)}) AS _delivery_id,
    r AS _payload
FROM ({_RECORDS})
WHERE reason = ''
)"""


def rejected_select() -> str:
    """SELECT position, data, reason of a delivery's records that are not change records."""
    return f"""SELECT toInt32(position - 1) AS position,
    if(JSONType(entry, 'data') = 'String', JSONExtractString(entry, 'data'), entry) AS data,
    reason
FROM ({_RECORDS})
WHERE reason != ''
ORDER BY position"""


def preview_select(name: str, limit: int) -> str:
    return (
        f"SELECT * EXCEPT (_payload) FROM {table_ref(name)} "
        f"ORDER BY _received_at DESC, _delivery_id DESC LIMIT {int(limit)}"
    )
