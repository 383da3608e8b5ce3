"""Views created before a view's columns took its SELECT's declared types (issue 20) may store a
column as a narrower type (Int32 where the SELECT answers Nullable(Int32), so NULL became 0):
which columns, and how to rebuild the target with the declared types."""

from __future__ import annotations

from pools import column_types


def not_null(type_: str) -> str:
    # Sorting-key columns cannot be Nullable; NULL becomes the type's default there.
    return type_[len("Nullable(") : -1] if type_.startswith("Nullable(") else type_


def key_columns(pool) -> set[str]:
    """The target's columns a sorting key, partition or engine needs, which cannot be Nullable."""
    names = {n.strip().strip("`") for n in pool.sorting_key.split(",")} if pool.sorting_key else set()
    return names | {pool.timestamp_column, pool.version_column, pool.deleted_column} - {""}


def declared_type(column: dict, key: bool) -> str:
    """The type a target column should have: the SELECT's, for a key column without Nullable (and
    for a Dynamic one, the type of its sampled values), as views_mv.services.create_mv makes it."""
    want = column_types.canonical(column["type"])
    if key:  # a sorting key holds no NULL and no Dynamic: the key rule
        want = not_null(column.get("key_type") or "String" if want == "Dynamic" else want)
    return want


def narrowed(stored: list[list[str]], declared: list[dict], keys: set[str]) -> list[dict]:
    """[{"column", "stored", "declared"}] for each column whose stored type is not the SELECT's
    declared one (for a key column: the declared type without Nullable, its rule)."""
    have = dict(stored)
    found = []
    for column in declared:
        name = column["name"]
        if name not in have:
            continue
        want = declared_type(column, name in keys)
        if column_types.canonical(have[name]) != want:
            found.append({"column": name, "stored": have[name], "declared": want})
    return found
