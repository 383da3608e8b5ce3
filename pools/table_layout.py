"""The engine, sorting key and partition key of a pool's table, checked before they reach DDL.

They are stored as text on the pool (built by pools.table_settings.derive from validated column
names), so the DDL builder re-reads them here: each must be one of the few shapes `derive` makes,
naming only the table's own columns, and column types must pass pools.column_types. Anything else
(an edited database row, a future bug) stops the CREATE TABLE instead of becoming part of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pools import column_types

_IDENT = r"(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`)"
_SORTING_KEY = re.compile(rf"^{_IDENT}(?:, {_IDENT})*$")
_PARTITION = re.compile(rf"^toYYYYMM\(({_IDENT})\)$")
_ENGINE = re.compile(rf"^(MergeTree|ReplacingMergeTree)(?:\(({_IDENT})(?:, ({_IDENT}))?\))?$")
_ONE_IDENT = re.compile(_IDENT)


class UnsafeLayout(ValueError):
    """A stored engine, key or type that Shoal would not have made; the table is not created."""


def _name(token: str) -> str:
    if token.startswith("`"):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _known(token: str, names: set[str], what: str) -> None:
    if _name(token) not in names:
        raise UnsafeLayout(f"{what} names {token}, which is not a column of the table.")


def check(*, engine: str, sorting_key: str, partition_key: str, column_names: Iterable[str]) -> None:
    names = set(column_names)
    if sorting_key != "tuple()":
        if not _SORTING_KEY.match(sorting_key):
            raise UnsafeLayout(f"The sorting key {sorting_key!r} is not a list of the table's columns.")
        for token in _ONE_IDENT.findall(sorting_key):
            _known(token, names, "The sorting key")
    if partition_key:
        match = _PARTITION.match(partition_key)
        if not match:
            raise UnsafeLayout(f"The partition key {partition_key!r} is not toYYYYMM(<time column>).")
        _known(match.group(1), names, "The partition key")
    match = _ENGINE.match(engine)
    if not match:
        raise UnsafeLayout(f"The engine {engine!r} is not MergeTree or ReplacingMergeTree(<columns>).")
    for token in match.groups()[1:]:
        if token:
            _known(token, names, "The engine")


def checked_columns(columns: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(name, canonical type) of a view-fed pool's stored columns; UnsafeLayout if a type is not one."""
    out = []
    for name, type_ in columns:
        try:
            out.append((name, column_types.canonical(type_)))
        except column_types.TypeSyntaxError as exc:
            raise UnsafeLayout(f"Column {name}: {exc}") from None
    return out
