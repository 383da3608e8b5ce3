"""The warehouse task behind /api/v1/sql and /clickhouse (runs on the `warehouse` queue).

The Celery thread only hands the query to the users' fair pool (console/user_queries.py) and is
free again at once, so an API key's queries never hold the threads that load deliveries."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator

from console import sql_guard, user_queries
from console.access.api import channel
from console.celery import shared_task
from console.warehouse import WarehouseError, get_warehouse

RESULT_TOO_LARGE = 396  # ClickHouse's TOO_MANY_ROWS_OR_BYTES
# A result up to this size is read whole before the answer starts, so that its header carries
# the complete statistics (and its length); a larger one streams.
HEAD_BYTES = channel.CHUNK_BYTES


@shared_task(ignore_result=True, acks_late=False)
def api_query(
    reply_to: str,
    sql: str,
    fmt: str,
    *,
    params: dict[str, str] | None = None,
    pools: list[str] | None = None,
    max_rows: int,
    max_bytes: int = 0,
    where: str,
    output: dict[str, str] | None = None,
    identity: str = "",
    deadline: float = 0.0,
) -> None:
    """Check `sql` with the SQL Console's guard (limited to `pools` when given), run it on a
    read-only connection and stream the answer, in ClickHouse format `fmt`, to channel
    `reply_to`, stopping with an error past `max_bytes` (0: no limit). It waits its turn on the
    users' pool as `identity`; one refused there is answered at once (the web side says 429)."""

    def job() -> None:
        if deadline and time.time() > deadline:
            channel.publish(reply_to, {"error": "The query waited too long for the warehouse; run it again."})
            return
        _answer(
            reply_to,
            sql,
            fmt,
            params=params,
            pools=pools,
            max_rows=max_rows,
            max_bytes=max_bytes,
            where=where,
            output=output,
        )

    refusal = user_queries.submit(identity, job)
    if refusal is not None:
        channel.publish(reply_to, refusal.as_error())


def _answer(reply_to: str, sql: str, fmt: str, *, params, pools, max_rows, max_bytes, where, output) -> None:
    warehouse = get_warehouse()
    try:
        sql_guard.check(warehouse, sql, where=where, pools=pools, params=params)
        stream = warehouse.stream_format(sql, fmt, max_rows=max_rows, params=params, output=output)
        blocks = _limited(stream.chunks, max_bytes)
        head, complete = _head(blocks)
    except WarehouseError as exc:
        channel.publish(reply_to, {"error": str(exc), "code": exc.code})
        return
    header = {
        "rows_read": int(stream.stats.get("rows_read", 0)),
        "bytes_read": int(stream.stats.get("bytes_read", 0)),
        "elapsed_ms": round(stream.stats.get("elapsed_ms", 0.0), 2),
        "complete": complete,
    }
    if complete:
        header["bytes"] = sum(len(b) for b in head)
    try:
        channel.publish_stream(reply_to, header, _chain(head, [] if complete else blocks))
    finally:
        blocks.close()  # a reader gone half way: the query is cancelled


def _head(blocks: Iterator[bytes]) -> tuple[list[bytes], bool]:
    """The first blocks, up to HEAD_BYTES; True when that was the whole answer."""
    head: list[bytes] = []
    size = 0
    for block in blocks:
        head.append(block)
        size += len(block)
        if size >= HEAD_BYTES:
            return head, False
    return head, True


def _chain(head: list[bytes], rest) -> Iterator[bytes]:
    yield from head
    yield from rest


def _limited(chunks: Iterator[bytes], max_bytes: int) -> Generator[bytes, None, None]:
    """The chunks, until `max_bytes` would be passed: then a WarehouseError saying which limit."""
    sent = 0
    try:
        for chunk in chunks:
            sent += len(chunk)
            if max_bytes and sent > max_bytes:
                raise WarehouseError(
                    f"The result is larger than {max_bytes} bytes (SQL_MAX_RESULT_BYTES, or "
                    "API_JSON_MAX_BYTES for JSON answers): narrow the query with WHERE or LIMIT, "
                    "or ask for a streamed format.",
                    RESULT_TOO_LARGE,
                )
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
