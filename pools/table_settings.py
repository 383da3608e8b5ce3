"""Table settings from the answers to the Create Data Pool wizard's questions.

`derive` turns "Append-only or Mutable" plus four answers into the engine, sorting key, partition
key and default timestamp of a ClickHouse table, the way Propel's table settings wizard does. It is
pure (no database): the columns come from the default source type's table (pools/sources/), or
from a mapping of name → ClickHouse type, so that the Materialized View wizard can reuse it with a
query's columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from console.warehouse.base import quote_identifier
from pools import sources

APPEND_ONLY = "append_only"
MUTABLE = "mutable"
MODES = {APPEND_ONLY: "Append-only data", MUTABLE: "Mutable data"}

ENGINE_LABELS = {"MergeTree": "MERGE_TREE", "ReplacingMergeTree": "REPLACING_MERGE_TREE"}

DEFAULT_COLUMNS: dict[str, str] = sources.get(sources.DEFAULT).column_types()

_WRAPPERS = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")
_BARE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VERSION_TYPES = re.compile(r"^(?:U?Int(?:8|16|32|64|128|256)|Date|Date32|DateTime|DateTime64)\b")


class TableSettingsError(ValueError):
    """An answer that cannot make a table; `field` names the question it belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TableSettings:
    engine: str  # the ClickHouse engine expression, e.g. ReplacingMergeTree(version)
    engine_label: str  # as Propel shows it, e.g. REPLACING_MERGE_TREE
    sorting_key: str  # what goes inside ORDER BY (…); never empty
    partition_key: str  # PARTITION BY expression, or ""
    timestamp_column: str  # the default timestamp, or ""
    version_column: str  # ReplacingMergeTree's version, or ""

    def pool_fields(self) -> dict[str, str]:
        """The DataPool fields (and create_pool keyword arguments) these settings fill in."""
        fields = asdict(self)
        del fields["engine_label"]
        return fields


def base_type(type_: str) -> str:
    """The type without codec, Nullable or LowCardinality: `LowCardinality(String)` → `String`."""
    type_ = type_.split(" CODEC(", 1)[0].strip()
    while match := _WRAPPERS.match(type_):
        type_ = match.group(1).strip()
    return type_


def is_json(type_: str) -> bool:
    base = base_type(type_)
    return base == "JSON" or base.startswith(("JSON(", "Object("))


def is_time(type_: str) -> bool:
    return base_type(type_).startswith(("Date", "DateTime"))


def can_be_version(type_: str) -> bool:
    # ReplacingMergeTree(ver) takes an unsigned or signed integer, a Date or a DateTime.
    return bool(_VERSION_TYPES.match(base_type(type_)))


def key_columns(columns: Mapping[str, str] | None = None) -> list[str]:
    """Columns that can be in a sorting key (all but JSON), in table order."""
    return [name for name, type_ in _columns(columns).items() if not is_json(type_)]


def time_columns(columns: Mapping[str, str] | None = None) -> list[str]:
    return [name for name, type_ in _columns(columns).items() if is_time(type_)]


def version_columns(columns: Mapping[str, str] | None = None) -> list[str]:
    return [name for name, type_ in _columns(columns).items() if can_be_version(type_)]


def derive(
    mode: str,
    *,
    unique: Iterable[str] = (),
    time_column: str | None = None,
    filters: Iterable[str] = (),
    version: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> TableSettings:
    """The table settings for the wizard's answers; raises TableSettingsError (a ValueError).

    Append-only: MergeTree, sorted by the filter columns then the time column. Mutable:
    ReplacingMergeTree (with the version column, if any), sorted by the filter columns then the
    columns that identify a record, so that rows with the same key replace each other. Answers
    that only apply to mutable data (unique, version) are ignored for append-only data.
    """
    cols = _columns(columns)
    if mode not in MODES:
        raise TableSettingsError(f"Choose {' or '.join(MODES.values())}.", "mode")
    unique = list(unique) if mode == MUTABLE else []
    version = (version or None) if mode == MUTABLE else None
    filters = list(filters)
    time_column = time_column or None

    _check_key("filters", filters, cols)
    _check_key("unique", unique, cols)
    if time_column:
        _check_key("time_column", [time_column], cols)
    if mode == MUTABLE and not unique:
        raise TableSettingsError("Mutable data needs the columns that uniquely identify a record.", "unique")
    if version:
        _check_known("version", [version], cols)
        if not can_be_version(cols[version]):
            raise TableSettingsError(
                f"{version} is {cols[version]}: a version column must be an integer, a Date or a DateTime.",
                "version",
            )

    if mode == MUTABLE:
        key = _unique_in_order(filters + unique)
        engine = f"ReplacingMergeTree({identifier(version)})" if version else "ReplacingMergeTree"
    else:
        key = _unique_in_order(filters + ([time_column] if time_column else []))
        engine = "MergeTree"
    # ReplacingMergeTree replaces rows only within a partition: partition mutable data by time only
    # when the time column is part of what identifies a record (so a record never changes partition).
    partitionable = time_column and is_time(cols[time_column]) and (mode != MUTABLE or time_column in unique)
    partition = f"toYYYYMM({identifier(time_column)})" if partitionable else ""
    return TableSettings(
        engine=engine,
        engine_label=ENGINE_LABELS[engine.split("(", 1)[0]],
        sorting_key=", ".join(identifier(c) for c in key) or "tuple()",
        partition_key=partition,
        timestamp_column=time_column or "",
        version_column=version or "",
    )


def _columns(columns: Mapping[str, str] | None) -> Mapping[str, str]:
    return DEFAULT_COLUMNS if columns is None else columns


def _check_known(field: str, names: list[str], cols: Mapping[str, str]) -> None:
    for name in names:
        if name not in cols:
            raise TableSettingsError(f"There is no column {name!r}.", field)


def _check_key(field: str, names: list[str], cols: Mapping[str, str]) -> None:
    _check_known(field, names, cols)
    for name in names:
        if is_json(cols[name]):
            raise TableSettingsError(f"{name} is JSON, and a JSON column cannot be in a sorting key.", field)


def _unique_in_order(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def identifier(name: str) -> str:
    # Plain names stay readable (event_id); others are quoted as ClickHouse identifiers.
    return name if _BARE_NAME.match(name) else quote_identifier(name)
