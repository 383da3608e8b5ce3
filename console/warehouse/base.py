"""What every warehouse backend offers, and the settings that make ClickHouse behave the same
in all of them."""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from console.env import WarehouseConfig


class WarehouseError(Exception):
    """A statement failed in the warehouse; `code` is ClickHouse's error code when known."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


_CODE = re.compile(r"\bCode: (\d+)\.")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]{2,})\)")


def loggable(error: BaseException | str) -> str:
    """An error as a log line may say it: ClickHouse's code and name, without its message.

    ClickHouse quotes the values it could not take ("Cannot parse string '…' as UInt32"), and a log
    is no place for pool data; the message itself stays where the role-checked pages show it.
    Errors that are not ClickHouse's (Redis, the database, the disk) are Shoal's own and kept.
    """
    text = str(error)
    code = _CODE.search(text)
    if code:
        names = _NAME.findall(text)
        return f"ClickHouse error {code.group(1)}" + (f" ({names[-1]})" if names else "")
    if isinstance(error, WarehouseError):
        return "warehouse error (details on its page)"
    return text


@dataclass(frozen=True)
class Result:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    elapsed_ms: float = 0.0
    rows_read: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "columns": self.columns,
            "types": self.types,
            "rows": self.rows,
            "elapsed_ms": round(self.elapsed_ms, 2),
        }


@dataclass(frozen=True)
class RawResult:
    """A read-only query's answer in one of ClickHouse's output formats, as the bytes it wrote."""

    data: bytes
    elapsed_ms: float = 0.0
    rows_read: int = 0
    bytes_read: int = 0


@dataclass
class Stream:
    """A read-only query's answer as it is written: `chunks` yields the bytes block by block
    (the engine holds a few blocks, never the whole answer); `stats` (rows_read, bytes_read,
    elapsed_ms) is complete once `chunks` is exhausted. Closing `chunks` cancels the query."""

    chunks: Iterator[bytes]
    stats: dict[str, float] = field(default_factory=dict)


# Settings every session runs with. JSON date inference is off so that a DynamoDB string such as
# "2024-05-08T13:20:37Z" stays a string and the guide's parseDateTimeBestEffort(keys.timestamp.S)
# works as written.
SESSION_SETTINGS: dict[str, Any] = {
    "input_format_try_infer_datetimes": 0,
    "input_format_try_infer_dates": 0,
    "date_time_output_format": "iso",
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_decimals": 0,
    # Let users sort and group by JSON paths (keys.order_id.S is Dynamic) as they would expect.
    "allow_suspicious_types_in_order_by": 1,
    "allow_suspicious_types_in_group_by": 1,
    # DynamoDB allows attribute names with dots ("user.name" beside a map "user"). JSON columns
    # would read the dots as nesting, merging such attributes or refusing the record ("Duplicate
    # path"). Escaped, they stay apart: new_image.`user%2Ename`.S reads the attribute "user.name",
    # and an image is written back out with its names as DynamoDB sent them.
    "json_type_escape_dots_in_keys": 1,
}


def readonly_settings(
    max_seconds: int,
    max_rows: int,
    max_memory: int | None = None,
    *,
    max_threads: int | None = None,
) -> dict[str, Any]:
    """Settings for a user's ad-hoc query: read-only, bounded in time, result size, memory and CPU
    (readonly=1 also forbids changing them from the query).

    Users' queries share the warehouse with loading: each uses at most `max_threads` threads at
    the lowest CPU priority (os_thread_priority, a nice value), so that loading keeps its share of
    the machine, and at most `max_memory` bytes, spilling GROUP BY and ORDER BY to disk past half.
    """
    max_memory = max_memory or settings.SQL_MAX_MEMORY_BYTES
    max_threads = max_threads or settings.SQL_MAX_THREADS
    return {
        "readonly": 1,
        # Mutable pools (ReplacingMergeTree) answer with their current state: deduplicated, and
        # without rows whose is_deleted column is set, without the user writing FINAL.
        "final": 1,
        "max_execution_time": max_seconds,
        "max_result_rows": max_rows + 1,
        # "break" stops at a block boundary: keep blocks and bytes small enough that a wide result
        # (a _payload column) cannot swell the worker before the cut.
        "max_result_bytes": 256 * 1024 * 1024,
        "max_block_size": min(max_rows + 1, 65_536),
        "result_overflow_mode": "break",
        # One query cannot take the warehouse worker's memory (loads run in the same process).
        "max_memory_usage": max_memory,
        "max_bytes_before_external_group_by": max_memory // 2,
        "max_bytes_before_external_sort": max_memory // 2,
        "max_threads": max_threads,
        "os_thread_priority": 19,
    }


class Warehouse(abc.ABC):
    """One warehouse: a database named config.database holding one table per Data Pool."""

    def __init__(self, config: WarehouseConfig):
        self.config = config
        self.database = config.database

    def bootstrap(self) -> None:
        self.execute(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(self.database)}")

    @abc.abstractmethod
    def execute(self, sql: str, *, settings: dict[str, Any] | None = None) -> int:
        """Run a statement that returns no rows (DDL, INSERT … SELECT); returns rows written."""

    @abc.abstractmethod
    def query(self, sql: str, *, settings: dict[str, Any] | None = None, readonly: bool = False) -> Result:
        """Run a SELECT in the pool database; readonly=True uses a session that cannot write."""

    @abc.abstractmethod
    def insert_files(
        self, select_sql: str, table: str, paths: list[Path], *, settings: dict[str, Any] | None = None
    ) -> int:
        """One INSERT INTO table SELECT … over several files (group commit): {source} yields one
        row per file, its bytes in `raw_blob` and its name in `_file` (names must differ)."""

    @abc.abstractmethod
    def query_file(self, select_sql: str, path: Path) -> Result:
        """Run a SELECT whose FROM placeholder `{source}` yields the file as one `raw_blob` row."""

    def query_format(
        self,
        sql: str,
        fmt: str,
        *,
        max_rows: int,
        params: dict[str, str] | None = None,
        output: dict[str, str] | None = None,
    ) -> RawResult:
        """Run a user's checked SELECT on a read-only connection limited to max_rows result rows
        (and the SQL Console's time limit) and answer in ClickHouse output format `fmt`;
        `params` are the query's {name:Type} parameters, bound by ClickHouse itself; `output`
        overrides SESSION_SETTINGS' output settings (ClickHouse's own defaults for its clients)."""
        raise NotImplementedError

    def stream_format(
        self,
        sql: str,
        fmt: str,
        *,
        max_rows: int,
        params: dict[str, str] | None = None,
        output: dict[str, str] | None = None,
    ) -> Stream:
        """As query_format, streamed: errors the engine finds while running are raised (as
        WarehouseError) from the iteration, not from this call."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook; most backends hold nothing to release
        return None


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def settings_clause(settings: dict[str, Any] | None) -> str:
    """A SETTINGS clause to append to a statement.

    It starts on a line of its own, so that a statement ending in a `-- comment` (users' SQL does)
    cannot swallow it.
    """
    return f"\nSETTINGS {settings_list(settings)}" if settings else ""


def settings_list(settings: dict[str, Any]) -> str:
    """`key = literal, …`, as SETTINGS and SET take them."""
    return ", ".join(f"{key} = {_setting_literal(value)}" for key, value in settings.items())


def _setting_literal(value: Any) -> str:
    if isinstance(value, dict):  # a Map setting, e.g. additional_table_filters
        return (
            "{" + ", ".join(f"{quote_string(str(k))}: {quote_string(str(v))}" for k, v in value.items()) + "}"
        )
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, bool):
        return str(int(value))
    return str(value)
