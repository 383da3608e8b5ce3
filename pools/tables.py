"""The SQL of a DynamoDB Data Pool's table: its DDL and the statement that loads a delivery.

Loading happens inside the warehouse: the delivery body goes in as one blob and ClickHouse splits
the records, base64-decodes them, validates them and extracts the columns, so no Python runs per
record.
"""

from __future__ import annotations

from django.conf import settings

from console.warehouse.base import quote_identifier, quote_string
from pools import table_layout

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


# A mutable pool without a version column keeps the last record received (as Propel does). The
# table numbers rows as they arrive (insert time in ns plus the row's place in the insert) and uses
# that as the version, so that ties cannot occur and a delete flag works.
INSERT_VERSION_COLUMN = "_shoal_arrival"
INSERT_VERSION_TYPE = "UInt64 DEFAULT toUnixTimestamp64Nano(now64(9)) + rowNumberInAllBlocks()"


# Columns Shoal adds of its own, shown labelled wherever columns are listed (Schema, Preview).
INTERNAL_COLUMNS: dict[str, str] = {
    "_received_at": "when Shoal received the delivery",
    "_delivery_id": "the delivery the record came in",
    "_payload": "the raw change record (not shown in Preview)",
    INSERT_VERSION_COLUMN: "order of arrival: the version when no other is chosen",
    "_shoal_version": "the time of the DynamoDB change: the version (latest wins)",
    "_shoal_deleted": "the change was a REMOVE: the record is hidden",
}


def schema_rows(pool) -> list[tuple[str, str, str, bool]]:
    """(name, type, what it holds, Shoal's own?) of every column of the pool's table."""
    if not pool.columns:
        return [
            (n, t, INTERNAL_COLUMNS.get(n, about), n in INTERNAL_COLUMNS)
            for n, t, about in CHANGE_EVENT_COLUMNS
        ]
    rows = [(n, t, INTERNAL_COLUMNS.get(n, ""), n in INTERNAL_COLUMNS) for n, t in pool.columns]
    if INSERT_VERSION_COLUMN in pool.engine:
        rows.append((INSERT_VERSION_COLUMN, "UInt64", INTERNAL_COLUMNS[INSERT_VERSION_COLUMN], True))
    return rows


def create_table(pool) -> str:
    """The DDL of a pool's table: change-event columns, or the columns of its Materialized View."""
    if not pool.columns:
        return create_change_event_table(pool)
    columns = table_layout.checked_columns(pool.columns)
    if INSERT_VERSION_COLUMN in pool.engine:
        columns.append((INSERT_VERSION_COLUMN, INSERT_VERSION_TYPE))
    return _create(pool, columns)


def create_change_event_table(pool) -> str:
    return _create(pool, [(n, t) for n, t, _ in CHANGE_EVENT_COLUMNS])


def _create(pool, column_types: list[tuple[str, str]]) -> str:
    table_layout.check(
        engine=pool.engine,
        sorting_key=pool.sorting_key,
        partition_key=pool.partition_key,
        column_names=[n for n, _ in column_types],
    )
    columns = ",\n  ".join(f"{quote_identifier(n)} {t}" for n, t in column_types)
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


def stored_select(pool, delivery_received_ms: dict[int, int]) -> str:
    """SELECT _delivery_id, count() of the given deliveries' rows in a pool: what was stored is
    read from the data. _received_at (the sorting key) narrows the scan to their granules."""
    conditions = " OR ".join(
        f"(_received_at = fromUnixTimestamp64Milli(toInt64({int(ms)}), 'UTC') AND _delivery_id = {int(d)})"
        for d, ms in delivery_received_ms.items()
    )
    table = table_ref(pool.name)
    return f"SELECT _delivery_id, count() FROM {table} WHERE {conditions} GROUP BY _delivery_id"


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


def preview_select(pool, limit: int) -> str:
    if pool.columns:  # a pool fed by a Materialized View: its own columns, newest first if timed
        order = f" ORDER BY {quote_identifier(pool.timestamp_column)} DESC" if pool.timestamp_column else ""
        return f"SELECT * FROM {table_ref(pool.name)}{order} LIMIT {int(limit)}"
    columns = ", ".join(quote_identifier(c) for c in PREVIEW_COLUMNS)
    return (
        f"SELECT {columns} FROM {table_ref(pool.name)} "
        f"ORDER BY _received_at DESC, _delivery_id DESC LIMIT {int(limit)}"
    )
