"""Running an API key's query in the warehouse worker and reading its answer (both query APIs)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from console import warehouse_client
from console.access.api import channel
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
    output: dict[str, str] | None = None,
) -> Answer:
    """Send the query to a warehouse worker and wait for the head of its answer (statistics or
    the error); the rows follow through answer.reader. WarehouseUnavailable when nobody answers."""
    if not warehouse_client.worker_alive():
        raise warehouse_client.WarehouseUnavailable("No warehouse worker is running; try again shortly.")
    reply_to = channel.new_channel()
    wait = settings.WAREHOUSE_TIMEOUT + settings.SQL_MAX_EXECUTION_SECONDS
    api_query.apply_async(
        (reply_to, sql, fmt),
        {
            "params": params or None,
            "pools": api_key.readable_pools(),
            "max_rows": max_rows,
            "where": WHERE,
            "output": output,
        },
        expires=settings.WAREHOUSE_TIMEOUT,
    )
    reader = channel.Reader(reply_to)
    try:
        header = reader.header(wait)
    except channel.ChannelTimeout:
        reader.close()
        raise warehouse_client.WarehouseUnavailable(
            f"The warehouse worker did not answer within {wait:g} s (it may be busy); try again."
        ) from None
    return Answer(header, reader)
