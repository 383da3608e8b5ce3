"""DynamoDB change data capture: a table's changes through Kinesis Data Streams for DynamoDB and
Amazon Data Firehose, one change record per row (the record's shape: pools/ingest/records.py).

Loading happens inside the warehouse: the delivery body goes in as one blob and ClickHouse splits
the records, base64-decodes them, validates them and extracts the columns, so no Python runs per
record.
"""

from __future__ import annotations

from console.warehouse.base import quote_identifier, quote_string
from pools.ingest.records import EVENT_NAMES
from pools.sources.base import SourceType

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


VALID_EVENT_NAMES = EVENT_NAMES


# The record's scalar fields, read in one parse of the record (missing fields read as defaults).
_SCALARS = (
    "Tuple(eventID String, eventName String, eventSource String, recordFormat String, awsRegion String, "
    "tableName String, dynamodb Tuple(ApproximateCreationDateTime Int64, "
    "ApproximateCreationDateTimePrecision String, SizeBytes Int64))"
)


# Every record of the blob with what it parses to, and why it is refused ('' when it is a DynamoDB
# change record). Each record is parsed a handful of times rather than once per column: this
# query is the whole cost of loading.
_RECORDS_TEMPLATE = f"""SELECT file, position, entry, data, r, s, d, multiIf(
    data IS NULL, 'entry has no string "data" field',
    data = '', 'record is empty',
    r = '', 'data is not valid base64',
    NOT isValidJSON(r), 'record is not JSON',
    s.2 NOT IN {VALID_EVENT_NAMES!r}, 'eventName is missing or not INSERT, MODIFY or REMOVE',
    NOT startsWith(d['Keys'], '{{'), 'dynamodb.Keys is missing',
    '') AS reason
FROM (
    SELECT file, position, entry, data, r,
        JSONExtract(r, '{_SCALARS}') AS s,
        CAST(JSONExtractKeysAndValuesRaw(r, 'dynamodb'), 'Map(String, String)') AS d
    FROM (
        SELECT {{file}} AS file, position, entry, JSONExtract(entry, 'data', 'Nullable(String)') AS data,
            tryBase64Decode(ifNull(data, '')) AS r
        FROM {{source}}
        ARRAY JOIN JSONExtractArrayRaw(raw_blob, 'records') AS entry,
                   arrayEnumerate(JSONExtractArrayRaw(raw_blob, 'records')) AS position
        {{positions}}
    )
)"""


def _records(first: int | None = None, last: int | None = None, *, files: bool = False) -> str:
    """The records query, limited to positions first..last (from 1) when given. With `files`,
    the source is several bodies and `file` names the one each record came from."""
    where = f"WHERE position BETWEEN {int(first)} AND {int(last)}" if first is not None else ""
    return _RECORDS_TEMPLATE.replace("{positions}", where).replace("{file}", "_file" if files else "''")


def _object_or_empty(raw: str) -> str:
    # A missing or null image becomes {} so that new_image.x.S reads as NULL rather than failing.
    return f"if(startsWith({raw}, '{{'), {raw}, '{{}}')"


def load_select(files: list[tuple[str, int, int]], first: int | None = None, last: int | None = None) -> str:
    """SELECT of the valid records of some deliveries as rows of the change-event table.

    `files` lists each body's file name with its delivery id and reception time (ms); {source}
    yields the bodies with their `_file`. With first..last (one delivery), only those positions.
    """
    names = ", ".join(quote_identifier(n) for n, _, _ in CHANGE_EVENT_COLUMNS)
    from_files = "[" + ", ".join(quote_string(name) for name, _, _ in files) + "]"
    ids = "[" + ", ".join(str(int(d)) for _, d, _ in files) + "]"
    received = "[" + ", ".join(str(int(ms)) for _, _, ms in files) + "]"
    delivery_id = f"transform(file, {from_files}, CAST({ids}, 'Array(UInt64)'), toUInt64(0))"
    received_ms = f"transform(file, {from_files}, CAST({received}, 'Array(Int64)'), toInt64(0))"
    return f"""SELECT {names} FROM (
SELECT
    s.1 AS event_id,
    s.2 AS event_name,
    s.3 AS event_source,
    s.4 AS record_format,
    s.5 AS aws_region,
    s.6 AS table_name,
    {_object_or_empty("JSONExtractRaw(r, 'userIdentity')")} AS user_identity,
    s.7.1 AS approximate_creation_date_time,
    s.7.2 AS approximate_creation_date_time_precision,
    d['Keys'] AS keys,
    {_object_or_empty("d['NewImage']")} AS new_image,
    {_object_or_empty("d['OldImage']")} AS old_image,
    s.7.3 AS size_bytes,
    fromUnixTimestamp64Milli({received_ms}, 'UTC') AS _received_at,
    {delivery_id} AS _delivery_id,
    r AS _payload
FROM ({_records(first, last, files=True)})
WHERE reason = ''
)"""


def rejected_select() -> str:
    """SELECT position, data, reason of a delivery's records that are not change records."""
    return f"""SELECT toInt32(position - 1) AS position,
    ifNull(data, entry) AS data,
    reason
FROM ({_records()})
WHERE reason != ''
ORDER BY position"""


def record_select(position: int) -> str:
    """SELECT position (from 0) and data of one record of a delivery (to quarantine it)."""
    return f"""SELECT toInt32(position - 1), ifNull(data, entry) FROM ({_records(position, position)})"""


# Preview Data shows what a user looks for first (the change and its item), then the rest.
PREVIEW_COLUMNS = [
    "_received_at",
    "event_name",
    "keys",
    "new_image",
    "old_image",
    "approximate_creation_date_time",
    "table_name",
    "event_id",
    "user_identity",
    "size_bytes",
    "aws_region",
    "event_source",
    "record_format",
    "approximate_creation_date_time_precision",
    "_delivery_id",
]


SOURCE = SourceType(
    key="dynamodb",
    label="DynamoDB",
    description="Change data capture from a DynamoDB table, delivered by Amazon Data Firehose.",
    columns=tuple(CHANGE_EVENT_COLUMNS),
    load_select=load_select,
    rejected_select=rejected_select,
    record_select=record_select,
    preview_columns=tuple(PREVIEW_COLUMNS),
    # The wizard asks for the source, shows the change-event schema, sets Firehose's
    # authentication, then the table settings and the name.
    wizard_steps=("source", "schema", "auth", "table", "confirm", "name"),
    # Kinesis stream, a bucket for failed deliveries, Firehose's role, the Firehose stream, and
    # last the table's streaming destination, so that no change is lost (see docs/aws.md).
    aws_steps=("stream", "bucket", "role", "firehose", "destination"),
    versions_by_change_time=True,  # ApproximateCreationDateTime
)
