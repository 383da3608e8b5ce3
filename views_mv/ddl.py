"""SQL that creates, fills and removes Materialized Views in the warehouse."""

from __future__ import annotations

from console.sql_guard import CheckedSelect
from console.warehouse.base import quote_identifier, quote_string
from pools.tables import table_ref


def _select(select: CheckedSelect) -> str:
    # Only a SELECT that console.sql_guard.checked_select passed can become part of a statement.
    if not isinstance(select, CheckedSelect):
        raise TypeError("view statements take the SELECT returned by sql_guard.checked_select")
    return str(select)


def drop_view(mv) -> str:
    """Drop the ClickHouse materialized view older versions attached (views now run in the loader)."""
    return f"DROP VIEW IF EXISTS {table_ref(mv.warehouse_name)}"


def delivery_rows(source_name: str) -> str:
    """Each delivery in the source: id, rows, and its first and last _received_at (ms)."""
    return (
        "SELECT _delivery_id, count(), toUnixTimestamp64Milli(min(_received_at)), "
        f"toUnixTimestamp64Milli(max(_received_at)) FROM {table_ref(source_name)} "
        "GROUP BY _delivery_id ORDER BY min(_received_at), _delivery_id"
    )


def backfill_chunk(mv, select: CheckedSelect) -> str:
    """INSERT of the view's SELECT into its target, for the source rows the settings select."""
    columns = ", ".join(quote_identifier(name) for name, _ in mv.target_pool.columns)
    return f"INSERT INTO {table_ref(mv.target_pool.name)} ({columns}) {_select(select)}"


def chunk_filter(
    mv, delivery_ids: list[int], bounds: list[int] | None = None, event_ids: list[str] | None = None
) -> dict:
    """Settings that restrict the source table to some deliveries (ClickHouse's table filters),
    and to some of their records when event ids are given.

    The _received_at bounds let the primary index skip every granule outside the chunk; the
    delivery ids then pick the chunk's rows exactly.
    """
    ids = ",".join(str(int(i)) for i in delivery_ids) or "0"
    condition = f"_delivery_id IN ({ids})"
    if event_ids is not None:
        listed = ", ".join(quote_string(e) for e in event_ids) or "''"
        condition += f" AND event_id IN ({listed})"
    if bounds:
        low, high = (int(b) for b in bounds)
        condition = (
            f"_received_at >= fromUnixTimestamp64Milli(toInt64({low})) AND "
            f"_received_at <= fromUnixTimestamp64Milli(toInt64({high})) AND {condition}"
        )
    source = mv.source_pool.name
    return {
        "additional_table_filters": {source: condition, f"{table_ref(source)}".replace("`", ""): condition}
    }
