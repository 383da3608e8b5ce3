"""The SQL of a Data Pool's table: its DDL, what counts its rows, and what Preview Data reads.

The columns of a pool fed by a source, and the statement that loads a landed delivery into them,
come from the pool's source type (pools/sources/); a pool fed by a Materialized View has its own
columns (DataPool.columns).
"""

from __future__ import annotations

from django.conf import settings

from console.warehouse.base import quote_identifier
from pools import sources, table_layout


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
            for n, t, about in sources.of_pool(pool).columns
        ]
    rows = [(n, t, INTERNAL_COLUMNS.get(n, ""), n in INTERNAL_COLUMNS) for n, t in pool.columns]
    if INSERT_VERSION_COLUMN in pool.engine:
        rows.append((INSERT_VERSION_COLUMN, "UInt64", INTERNAL_COLUMNS[INSERT_VERSION_COLUMN], True))
    return rows


def create_table(pool) -> str:
    """The DDL of a pool's table: its source's columns, or the columns of its Materialized View."""
    if not pool.columns:
        return create_change_event_table(pool)
    columns = table_layout.checked_columns(pool.columns)
    if INSERT_VERSION_COLUMN in pool.engine:
        columns.append((INSERT_VERSION_COLUMN, INSERT_VERSION_TYPE))
    return _create(pool, columns)


def create_change_event_table(pool) -> str:
    """The DDL of a pool's table with its source's columns (DynamoDB change events by default)."""
    return _create(pool, [(n, t) for n, t, _ in sources.of_pool(pool).columns])


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


def stored_select(pool, delivery_received_ms: dict[int, int]) -> str:
    """SELECT _delivery_id, count() of the given deliveries' rows in a pool: what was stored is
    read from the data. _received_at (the sorting key) narrows the scan to their granules."""
    conditions = " OR ".join(
        f"(_received_at = fromUnixTimestamp64Milli(toInt64({int(ms)}), 'UTC') AND _delivery_id = {int(d)})"
        for d, ms in delivery_received_ms.items()
    )
    table = table_ref(pool.name)
    return f"SELECT _delivery_id, count() FROM {table} WHERE {conditions} GROUP BY _delivery_id"


def preview_select(pool, limit: int) -> str:
    if pool.columns:  # a pool fed by a Materialized View: its own columns, newest first if timed
        order = f" ORDER BY {quote_identifier(pool.timestamp_column)} DESC" if pool.timestamp_column else ""
        return f"SELECT * FROM {table_ref(pool.name)}{order} LIMIT {int(limit)}"
    columns = ", ".join(quote_identifier(c) for c in sources.of_pool(pool).preview_columns)
    return (
        f"SELECT {columns} FROM {table_ref(pool.name)} "
        f"ORDER BY _received_at DESC, _delivery_id DESC LIMIT {int(limit)}"
    )
