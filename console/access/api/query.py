"""Running an API key's query in the warehouse worker and reading its answer (both query APIs)."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings

from console import admission, warehouse_client
from console.access.api import channel, compressed_blocks
from console.access.api.models import ApiKey
from console.access.api.tasks import api_query

WHERE = "the query API"

# Output formats a caller may ask for, with their media types. Everything here is produced by
# ClickHouse itself; formats that write files or read input are not offered.
FORMATS = {
    "Native": "application/octet-stream",
    "RowBinary": "application/octet-stream",
    "RowBinaryWithNames": "application/octet-stream",
    "RowBinaryWithNamesAndTypes": "application/octet-stream",
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNamesAndTypes": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "TSVWithNames": "text/tab-separated-values; charset=UTF-8",
    "TSVWithNamesAndTypes": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
    "CSVWithNames": "text/csv; charset=UTF-8",
    "CSVWithNamesAndTypes": "text/csv; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONStrings": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "JSONCompactEachRow": "application/x-ndjson; charset=UTF-8",
    "JSONStringsEachRow": "application/x-ndjson; charset=UTF-8",
    "Parquet": "application/vnd.apache.parquet",
    "Arrow": "application/vnd.apache.arrow.file",
    "ArrowStream": "application/vnd.apache.arrow.stream",
    "Values": "text/plain; charset=UTF-8",
}


@dataclass
class Answer:
    header: dict
    reader: channel.Reader

    @property
    def error(self) -> str | None:
        return self.header.get("error")

    @property
    def code(self) -> int | None:
        return self.header.get("code")

    @property
    def refused(self) -> bool:
        """Not admitted (over the key's running and queued bounds): answer 429."""
        return bool(self.header.get("refused"))

    @property
    def retry_after(self) -> int:
        return int(self.header.get("retry_after") or 1)

    @property
    def length(self) -> int | None:
        """The answer's size in bytes when it was complete before it started, else None."""
        return self.header.get("bytes") if self.header.get("complete", True) else None

    def stream(self, *, gzip: bool = False, blocks: bool = False) -> Iterator[bytes]:
        """The answer's bytes for a streamed response, gzip-compressed as they go when asked
        (closing it closes the reader, whose slot is given back); a query that fails half way
        ends with ClickHouse's error text, then the response is cut short, so that a client sees
        an incomplete answer, never a whole one."""
        return _Streamed(self.reader, gzip, blocks)

    def cost_headers(self) -> dict[str, str]:
        """A query's cost: rows and bytes the warehouse read, and its time there."""
        return {
            "X-Shoal-Rows-Read": str(self.header.get("rows_read", 0)),
            "X-Shoal-Bytes-Read": str(self.header.get("bytes_read", 0)),
            "X-Shoal-Elapsed-Ms": str(self.header.get("elapsed_ms", 0)),
        }


def run(
    api_key: ApiKey,
    sql: str,
    fmt: str,
    *,
    params: dict[str, str] | None = None,
    max_rows: int,
    max_bytes: int,
    output: dict[str, str] | None = None,
) -> Answer:
    """Send the query to a warehouse worker and wait for the head of its answer (statistics or
    the error); the rows follow through answer.reader, which holds one of the web process's query
    slots until it is closed. admission.Busy when no slot is free (or the key holds its share),
    WarehouseUnavailable when nobody answers."""
    if not warehouse_client.worker_alive():
        raise warehouse_client.WarehouseUnavailable("No warehouse worker is running; try again shortly.")
    identity = f"key:{api_key.pk}"
    admission.take_slot(identity)
    reader = channel.Reader(channel.new_channel(), on_close=lambda: admission.give_slot(identity))
    wait = channel.header_wait()
    try:
        api_query.apply_async(
            (reader.channel, sql, fmt),
            {
                "params": params or None,
                "pools": api_key.readable_pools(),
                "max_rows": max_rows,
                "max_bytes": max_bytes,
                "where": WHERE,
                "output": output,
                "identity": identity,
                # A query that could not end before the caller stops waiting is not started.
                "deadline": time.time() + wait - settings.SQL_MAX_EXECUTION_SECONDS,
            },
            expires=settings.WAREHOUSE_TIMEOUT,
        )
        header = reader.header(wait)
    except channel.ChannelTimeout:
        reader.close()
        raise warehouse_client.WarehouseUnavailable(
            f"The warehouse worker did not answer within {wait:g} s (it may be busy); try again."
        ) from None
    except BaseException:
        reader.close()
        raise
    return Answer(header, reader)


class _Streamed:
    def __init__(self, reader: channel.Reader, gzip: bool, blocks: bool):
        self._reader = reader
        self._chunks = reader.chunks()
        # compress=1: ClickHouse's own compressed blocks (then gzip, if asked for too).
        self._blocks = blocks
        self._failed: channel.StreamFailed | None = None
        # 31: a gzip header and trailer
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
        self._ended = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._failed is not None:
            raise self._failed  # after its text: the server cuts the response short
        while True:
            try:
                data = next(self._chunks)
            except channel.StreamFailed as exc:
                self._failed = exc
                # As ClickHouse does, the error is written as text, outside any compressed block.
                self._blocks = False
                return self._out(f"\nCode: {exc.code or 0}. DB::Exception: {exc}\n".encode(), flush=True)
            except StopIteration:
                if self._compressor is None or self._ended:
                    raise
                self._ended = True
                return self._compressor.flush()
            out = self._out(data)
            if out:
                return out

    def _out(self, data: bytes, flush: bool = False) -> bytes:
        if self._blocks and data:
            data = b"".join(compressed_blocks.frames([data]))
        if self._compressor is None:
            return data
        out = self._compressor.compress(data)
        return out + self._compressor.flush(zlib.Z_SYNC_FLUSH) if flush else out

    def close(self) -> None:
        self._chunks.close()
        self._reader.close()
