"""A ClickHouse server through clickhouse-connect (HTTP). The SQL is the same as for chDB; only
the transport differs: files are streamed to the server and read there with input()."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError
from clickhouse_connect.driver.external import ExternalData
from django.conf import settings

from console.warehouse.base import (
    SESSION_SETTINGS,
    RawResult,
    Result,
    Stream,
    Warehouse,
    WarehouseError,
    readonly_settings,
)


def _error(exc: Exception) -> WarehouseError:
    code = getattr(exc, "code", None)
    return WarehouseError(str(exc), int(code) if isinstance(code, int) else None)


def _written(summary: Any) -> int:
    counts = getattr(summary, "summary", None) or {}
    return int(counts.get("written_rows", 0))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class ClickHouseWarehouse(Warehouse):
    def __init__(self, config):
        super().__init__(config)
        self._ro = readonly_settings(
            settings.SQL_MAX_EXECUTION_SECONDS,
            settings.SQL_MAX_RESULT_ROWS,
            max_memory=settings.SQL_MAX_MEMORY_BYTES,
            max_threads=settings.SQL_MAX_THREADS,
        )
        self.client = clickhouse_connect.get_client(
            host=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            secure=config.secure,
            settings=SESSION_SETTINGS,
            connect_timeout=10,
            send_receive_timeout=300,
            autogenerate_session_id=False,
        )

    def execute(self, sql: str, *, settings: dict[str, Any] | None = None) -> int:
        try:
            summary = self.client.command(sql, settings=settings or None)
        except ClickHouseError as exc:
            raise _error(exc) from None
        return _written(summary)

    def query(self, sql: str, *, settings: dict[str, Any] | None = None, readonly: bool = False) -> Result:
        merged = {**(self._ro if readonly else {}), **(settings or {})}
        started = time.perf_counter()
        try:
            res = self.client.query(sql.strip().rstrip(";"), settings=merged or None, database=self.database)
        except ClickHouseError as exc:
            raise _error(exc) from None
        return Result(
            columns=list(res.column_names),
            types=[t.name for t in res.column_types],
            rows=[list(r) for r in res.result_rows],
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    def query_format(
        self,
        sql: str,
        fmt: str,
        *,
        max_rows: int,
        params: dict[str, str] | None = None,
        output: dict[str, str] | None = None,
    ) -> RawResult:
        limits = {
            **readonly_settings(settings.SQL_MAX_EXECUTION_SECONDS, max_rows),
            "max_result_bytes": 0,
            **(output or {}),
        }
        started = time.perf_counter()
        try:
            data = self.client.raw_query(
                sql.strip().rstrip(";"), parameters=params or None, settings=limits, fmt=fmt
            )
        except ClickHouseError as exc:
            raise _error(exc) from None
        return RawResult(data, (time.perf_counter() - started) * 1000)

    def stream_format(
        self,
        sql: str,
        fmt: str,
        *,
        max_rows: int,
        params: dict[str, str] | None = None,
        output: dict[str, str] | None = None,
    ) -> Stream:
        limits = {
            **readonly_settings(settings.SQL_MAX_EXECUTION_SECONDS, max_rows),
            "max_result_bytes": 0,
            **(output or {}),
        }
        stats: dict[str, float] = {"rows_read": 0, "bytes_read": 0, "elapsed_ms": 0.0}
        started = time.perf_counter()
        try:
            response = self.client.raw_stream(
                sql.strip().rstrip(";"), parameters=params or None, settings=limits, fmt=fmt
            )
        except ClickHouseError as exc:
            raise _error(exc) from None

        def chunks() -> Iterator[bytes]:
            try:
                yield from response
            except ClickHouseError as exc:
                raise _error(exc) from None
            finally:
                stats["elapsed_ms"] = (time.perf_counter() - started) * 1000
                response.close()

        return Stream(chunks(), stats)

    def insert_files(
        self, select_sql: str, table: str, paths: list[Path], *, settings: dict[str, Any] | None = None
    ) -> int:
        # The bodies travel as RowBinary rows (raw_blob, _file): one length-prefixed string each.
        source = "input('raw_blob String, _file String')"
        statement = f"INSERT INTO {table} " + select_sql.replace("{source}", source) + " FORMAT RowBinary"
        data = bytearray()
        for path in paths:
            for value in (path.read_bytes(), path.name.encode()):
                data += _varint(len(value)) + value
        try:
            summary = self.client.command(statement, data=bytes(data), settings=settings or None)
        except ClickHouseError as exc:
            raise _error(exc) from None
        return _written(summary)

    def query_file(self, select_sql: str, path: Path) -> Result:
        # The file travels with the query as an external table (clickhouse-connect ExternalData).
        blob = ExternalData(
            file_name="shoal_source", data=path.read_bytes(), fmt="RawBLOB", structure="raw_blob String"
        )
        started = time.perf_counter()
        try:
            res = self.client.query(select_sql.replace("{source}", "shoal_source"), external_data=blob)
        except ClickHouseError as exc:
            raise _error(exc) from None
        return Result(
            columns=list(res.column_names),
            types=[t.name for t in res.column_types],
            rows=[list(r) for r in res.result_rows],
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    def close(self) -> None:
        self.client.close()
