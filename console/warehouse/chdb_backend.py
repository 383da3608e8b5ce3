"""Embedded ClickHouse (chDB). One data folder, opened by one process: the warehouse worker.

Each thread gets its own connection (chDB runs queries from separate connections concurrently,
while one shared session would serialise them), plus a second, read-only connection for users'
ad-hoc SQL whose limits cannot be lifted from inside the query.

A connection on which anything failed is discarded: chDB can keep a failed statement's output in
the connection and hand it to the next query ("Extra data" in its JSON), so the thread's next
statement opens a clean connection instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import chdb
from django.conf import settings

from console.warehouse.base import (
    SESSION_SETTINGS,
    RawResult,
    Result,
    Stream,
    Warehouse,
    WarehouseError,
    quote_identifier,
    quote_string,
    readonly_settings,
    settings_clause,
    settings_list,
)

_CODE = re.compile(r"Code: (\d+)\. ")
_VERSION = re.compile(r"\s*\(version \d[\w.]*(?: \([^)]*\))?\)")
_REPEATED_NAME = re.compile(r"\(([A-Z][A-Z_]+)\)(?:\.?\s*\(\1\))+")

# Formats whose file has one header and footer: chDB's streaming writes one whole file per block,
# which do not add up to one file, so these are written whole (bounded by the export row limit).
WHOLE_FORMATS = frozenset({"Parquet", "Arrow", "ArrowStream"})
STREAM_BLOCK_ROWS = 4096


def _error(exc: Exception) -> WarehouseError:
    message = str(exc).removeprefix("Streaming query failed: ")
    match = _CODE.search(message)
    # chDB repeats "Code: N. DB::Exception:" when it wraps, and appends the engine's version and
    # the code's name again ("… (READONLY) (version 26.9.2.1). (READONLY)"): keep one of each.
    message = re.sub(r"^(Code: \d+\. DB::Exception: )+", "", message).strip()
    message = _VERSION.sub("", message)
    message = _REPEATED_NAME.sub(r"(\1)", message)
    return WarehouseError(message, int(match.group(1)) if match else None)


def _glob(paths: list[Path]) -> str:
    """One file() path for several files: their common folder, then {a,b,…} (a leading brace
    is not expanded, so the folder comes first)."""
    if len(paths) == 1:
        return str(paths[0])
    folder = os.path.commonpath([str(p) for p in paths])
    return folder + "/{" + ",".join(os.path.relpath(p, folder) for p in paths) + "}"


class ChdbWarehouse(Warehouse):
    def __init__(
        self,
        config,
        *,
        sql_max_seconds: int | None = None,
        sql_max_rows: int | None = None,
        sql_max_memory: int | None = None,
    ):
        super().__init__(config)
        self.path = config.path
        Path(self.path).mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._bootstrapped = False
        self._ro_params = {
            **readonly_settings(
                sql_max_seconds or settings.SQL_MAX_EXECUTION_SECONDS,
                sql_max_rows or settings.SQL_MAX_RESULT_ROWS,
                sql_max_memory,
                max_threads=settings.SQL_MAX_THREADS,
            ),
            **SESSION_SETTINGS,
        }

    def _connection(self, readonly: bool = False):
        attr = "ro" if readonly else "rw"
        conn = getattr(self._local, attr, None)
        if conn is None:
            if readonly:
                conn = chdb.connect(f"{self.path}?{urlencode(self._ro_params)}")
            else:
                conn = chdb.connect(self.path)
                conn.query("SET " + settings_list(SESSION_SETTINGS))
            if self._bootstrapped:
                conn.query(f"USE {quote_identifier(self.database)}")
            setattr(self._local, attr, conn)
        return conn

    def bootstrap(self) -> None:
        super().bootstrap()
        self._bootstrapped = True
        self._connection().query(f"USE {quote_identifier(self.database)}")

    def _discard(self, readonly: bool) -> None:
        """Close a connection whose query failed: chDB keeps the failed query's partial output
        and hands it out at the head of the next result on that connection."""
        attr = "ro" if readonly else "rw"
        conn = getattr(self._local, attr, None)
        setattr(self._local, attr, None)
        if conn is not None:
            # It is being thrown away; a failed close changes nothing.
            with contextlib.suppress(Exception):
                conn.close()

    def execute(self, sql: str, *, settings: dict[str, Any] | None = None) -> int:
        try:
            res = self._connection().query(sql + settings_clause(settings) if settings else sql)
        except Exception as exc:  # chDB raises RuntimeError/ChdbError with ClickHouse's text
            self._discard(readonly=False)
            raise _error(exc) from None
        except BaseException:  # e.g. a worker's soft time limit: the connection's state is unknown
            self._discard(readonly=False)
            raise
        return res.rows_written() if res is not None and hasattr(res, "rows_written") else 0

    def query(self, sql: str, *, settings: dict[str, Any] | None = None, readonly: bool = False) -> Result:
        sql = sql.strip().rstrip(";")
        if settings:
            sql += settings_clause(settings)
        started = time.perf_counter()
        try:
            raw = self._connection(readonly).query(sql, "JSONCompact")
            elapsed = (time.perf_counter() - started) * 1000
            text = raw.bytes() if hasattr(raw, "bytes") else str(raw).encode()
            if not text.strip():
                return Result(columns=[], types=[], rows=[], elapsed_ms=elapsed)
            payload = json.loads(text)
        except Exception as exc:
            self._discard(readonly)
            if isinstance(exc, ValueError):  # output that is not one JSON document
                raise WarehouseError(f"unreadable answer from the warehouse: {exc}") from None
            raise _error(exc) from None
        except BaseException:
            self._discard(readonly)
            raise
        stats = payload.get("statistics") or {}
        return Result(
            columns=[m["name"] for m in payload["meta"]],
            types=[m["type"] for m in payload["meta"]],
            rows=payload["data"],
            elapsed_ms=elapsed,
            rows_read=int(stats.get("rows_read") or 0),
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
        key = (max_rows, tuple(sorted((output or {}).items())))
        conn = self._limited_connection(key)
        started = time.perf_counter()
        try:
            raw = conn.query(sql.strip().rstrip(";"), fmt, params=params or None)
        except Exception as exc:
            # As _discard: a failed query's partial output would head the next result.
            self._local.limited.pop(key, None)
            conn.close()
            raise _error(exc) from None
        elapsed = (time.perf_counter() - started) * 1000
        if raw is None:
            return RawResult(b"", elapsed)
        return RawResult(raw.bytes(), elapsed, int(raw.rows_read()), int(raw.bytes_read()))

    def stream_format(
        self,
        sql: str,
        fmt: str,
        *,
        max_rows: int,
        params: dict[str, str] | None = None,
        output: dict[str, str] | None = None,
    ) -> Stream:
        if fmt in WHOLE_FORMATS:
            raw = self.query_format(sql, fmt, max_rows=max_rows, params=params, output=output)
            stats = {"rows_read": raw.rows_read, "bytes_read": raw.bytes_read, "elapsed_ms": raw.elapsed_ms}
            return Stream(iter([raw.data] if raw.data else []), stats)
        key = (max_rows, tuple(sorted((output or {}).items())))
        conn = self._limited_connection(key)
        stats = {"rows_read": 0, "bytes_read": 0, "elapsed_ms": 0.0}
        started = time.perf_counter()
        try:
            streaming = conn.send_query(sql.strip().rstrip(";"), fmt, params=params or None)
        except Exception as exc:
            self._drop_limited(key)
            raise _error(exc) from None
        chunks = self._chunks(streaming, key, stats, started)
        return Stream(self._with_header(chunks, sql, fmt, max_rows, params, output), stats)

    def _with_header(
        self, chunks: Generator[bytes, None, None], sql: str, fmt: str, max_rows: int, params, output
    ):
        """chDB's streaming writes nothing at all for an empty result, not even the format's
        header (JSON's meta, CSVWithNames' names, RowBinaryWithNamesAndTypes' types, which
        clients read): an empty stream is answered by the query run whole, as small as it is."""
        empty = True
        try:
            for data in chunks:
                empty = False
                yield data
        finally:
            chunks.close()  # abandoned half way: the query is cancelled
        if empty:
            whole = self.query_format(sql, fmt, max_rows=max_rows, params=params, output=output)
            if whole.data:
                yield whole.data

    def _chunks(
        self, streaming, key: tuple, stats: dict[str, float], started: float
    ) -> Generator[bytes, None, None]:
        finished = False
        try:
            for chunk in streaming:
                stats["rows_read"] += int(chunk.rows_read())
                stats["bytes_read"] += int(chunk.bytes_read())
                data = chunk.bytes()
                if data:
                    yield data
            finished = True
        except Exception as exc:
            self._drop_limited(key)
            raise _error(exc) from None
        finally:
            stats["elapsed_ms"] = (time.perf_counter() - started) * 1000
            if not finished:
                # Abandoned half way (the client went away, a byte limit): stop the query.
                with contextlib.suppress(Exception):
                    streaming.cancel()

    def _drop_limited(self, key: tuple) -> None:
        """As _discard, for a limited connection: a failed query's output would head the next."""
        conn = (getattr(self._local, "limited", None) or {}).pop(key, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _limited_connection(self, key: tuple[int, tuple]):
        """A read-only connection like the SQL Console's, with its own result-row limit (API
        exports) and output settings; one per thread, limit and output settings, since they are
        fixed when it opens."""
        max_rows, output = key
        connections = getattr(self._local, "limited", None)
        if connections is None:
            connections = self._local.limited = {}
        conn = connections.get(key)
        if conn is None:
            params = {
                **readonly_settings(settings.SQL_MAX_EXECUTION_SECONDS, max_rows),
                **SESSION_SETTINGS,
                **dict(output),
                # Exports stream whole results: the row limit is the bound, not the bytes.
                "max_result_bytes": 0,
                # chDB's streaming runs ahead of its reader by a few blocks: small blocks keep
                # that bounded (a 400 MB export grew the worker by ~540 MiB at 65,536 rows a
                # block of 1 kB rows, by ~60 MiB at 4,096), bytes as well as rows.
                "max_block_size": min(max_rows + 1, STREAM_BLOCK_ROWS),
                "preferred_block_size_bytes": 1024 * 1024,
            }
            conn = chdb.connect(f"{self.path}?{urlencode(params)}")
            if self._bootstrapped:
                conn.query(f"USE {quote_identifier(self.database)}")
            connections[key] = conn
        return conn

    def insert_files(
        self, select_sql: str, table: str, paths: list[Path], *, settings: dict[str, Any] | None = None
    ) -> int:
        return self.execute(
            f"INSERT INTO {table}{settings_clause(settings)} "
            + select_sql.replace("{source}", f"file({quote_string(_glob(paths))}, 'RawBLOB')")
        )

    def query_file(self, select_sql: str, path: Path) -> Result:
        source = f"file({quote_string(str(path))}, 'RawBLOB')"
        return self.query(select_sql.replace("{source}", source))

    def close(self) -> None:
        for conn in (getattr(self._local, "limited", None) or {}).values():
            conn.close()
        self._local.limited = {}
        for attr in ("rw", "ro"):
            conn = getattr(self._local, attr, None)
            if conn is not None:
                conn.close()
                setattr(self._local, attr, None)
