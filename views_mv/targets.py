"""The target pool of a view: its column types (checked by the grammar and by the warehouse), its
table settings and engine, and the change-time versioning Shoal adds to a mutable view of a
DynamoDB pool (views_mv/versioning.py)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from console import warehouse_client
from pools import column_types, sources, table_settings
from pools.models import DataPool
from pools.tables import INSERT_VERSION_COLUMN
from views_mv import tasks, versioning
from views_mv.planning import Plan
from views_mv.typecheck import not_null  # noqa: F401 (targets.not_null, as callers know it)

DELETE_FLAG_NAMES = ("deleted", "is_deleted", "_deleted", versioning.DELETED_COLUMN)
# `version=ARRIVAL`: the last change received wins (the guide's empty version column, literally).
ARRIVAL = "arrival"
DELETE_FLAG_TYPES = ("Bool", "UInt8")


def delete_flag(columns: dict[str, str]) -> str:
    """The column that marks a deleted record (as the guide's `deleted`), if the SELECT has one."""
    for name in DELETE_FLAG_NAMES:
        if name in columns and table_settings.base_type(columns[name]) in DELETE_FLAG_TYPES:
            return name
    return ""


def target_settings(
    columns: dict[str, str],
    *,
    mutable: bool,
    unique: list[str],
    time_column: str | None,
    filters: list[str],
    version: str | None,
    deleted: str | None = None,
) -> tuple[table_settings.TableSettings, str, str]:
    """(settings, engine, deleted column) of a view's target pool.

    A mutable pool hides deleted records: ReplacingMergeTree(version, deleted). Without a
    version column, the time of insertion is the version (the last change received wins, as
    with no version at all), so that the delete flag still works.
    """
    mode = table_settings.MUTABLE if mutable else table_settings.APPEND_ONLY
    try:
        settings = table_settings.derive(
            mode, unique=unique, time_column=time_column, filters=filters, version=version, columns=columns
        )
    except table_settings.TableSettingsError as exc:
        raise ValidationError({exc.field or "__all__": str(exc)}) from None
    engine = settings.engine
    deleted = (deleted if deleted is not None else delete_flag(columns)) if mutable else ""
    if deleted:
        if deleted not in columns or table_settings.base_type(columns[deleted]) not in DELETE_FLAG_TYPES:
            raise ValidationError({"deleted": f"{deleted} must be a Bool or UInt8 column of the query."})
        version_column = settings.version_column or INSERT_VERSION_COLUMN
        ident = table_settings.identifier
        engine = f"ReplacingMergeTree({ident(version_column)}, {ident(deleted)})"
    return settings, engine, deleted


def typed_columns(plan_columns: list[dict], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """name → canonical type of a view's output, with the user's overrides; every type (inferred or
    typed) passes pools.column_types' grammar, so nothing but a type reaches the target's DDL."""
    overrides = overrides or {}
    names = {c["name"] for c in plan_columns}
    unknown = sorted(set(overrides) - names)
    if unknown:
        known = ", ".join(sorted(names))
        raise ValidationError(
            {"column_types": f"The query has no column {', '.join(unknown)}; its columns are {known}."}
        )
    columns, errors = {}, []
    for c in plan_columns:
        try:
            columns[c["name"]] = column_types.canonical(overrides.get(c["name"], c["type"]))
        except column_types.TypeSyntaxError as exc:
            errors.append(f"{c['name']}: {exc}")
    if errors:
        raise ValidationError({"column_types": errors})
    return columns


def check_types_in_warehouse(columns: dict[str, str]) -> None:
    """Ask the warehouse whether it knows each type (the grammar admits e.g. Decimal(80, 2))."""
    try:
        bad = warehouse_client.call(tasks.warehouse_check_types, sorted(set(columns.values())))
    except warehouse_client.WarehouseUnavailable as exc:
        raise ValidationError(str(exc)) from None
    errors = [f"{name}: {bad[t]}" for name, t in columns.items() if t in bad]
    if errors:
        raise ValidationError({"column_types": errors})


def describe_target(
    source: DataPool,
    columns: dict[str, str],
    *,
    mutable: bool,
    unique: list[str],
    time_column: str | None,
    filters: list[str],
    version: str | None,
):
    """The target's settings as create_mv will make them, defaults included (for the wizard)."""
    columns = typed_columns([{"name": n, "type": t} for n, t in columns.items()])
    deleted = None
    if mutable and version is None and sources.versions_by_change_time(source):
        deleted = delete_flag(columns)
        columns[versioning.VERSION_COLUMN] = "UInt64"
        if not deleted:
            columns[versioning.DELETED_COLUMN] = "Bool"
            deleted = versioning.DELETED_COLUMN
        version = versioning.VERSION_COLUMN
    elif version == ARRIVAL:
        version = None
    return target_settings(
        columns,
        mutable=mutable,
        unique=unique,
        time_column=time_column,
        filters=filters,
        version=version,
        deleted=deleted,
    )


def default_version(plan: Plan, columns: dict[str, str], version: str | None, deleted: str | None):
    """(SQL, version, delete flag, note) of a mutable view: for a DynamoDB source without a chosen
    version, the change time (see versioning.py); `version=ARRIVAL` keeps arrival order."""
    arrival = "The last change received wins (arrival order)."
    if version == ARRIVAL:
        return plan.runs, None, deleted, arrival
    if version:
        return plan.runs, version, deleted, f"The change with the highest {version} wins."
    if not sources.versions_by_change_time(plan.source) or not plan.formatted:
        return plan.runs, None, deleted, arrival
    extra = [(versioning.VERSION_COLUMN, versioning.VERSION_EXPRESSION)]
    own_flag = deleted if deleted is not None else delete_flag(columns)
    if not own_flag:
        extra.append((versioning.DELETED_COLUMN, versioning.DELETED_EXPRESSION))
    try:
        sql = versioning.add_columns(plan.formatted, extra)
    except versioning.CannotVersion as exc:
        return plan.runs, None, deleted, f"{arrival} Shoal could not add the change time: {exc}."
    columns[versioning.VERSION_COLUMN] = "UInt64"
    if not own_flag:
        columns[versioning.DELETED_COLUMN] = "Bool"
    return sql, versioning.VERSION_COLUMN, own_flag or versioning.DELETED_COLUMN, versioning.EXPLANATION


def existing_target(pool: DataPool, columns: dict[str, str], source: DataPool) -> DataPool:
    if pool.kind != DataPool.Kind.MATERIALIZED:
        raise ValidationError({"target_pool": f"{pool.name} receives Firehose data; choose a new Data Pool."})
    if pool.pk == source.pk:
        raise ValidationError({"target_pool": "A view cannot write into the pool it reads."})
    have = {name for name, _ in pool.columns}
    missing = [name for name in columns if name not in have]
    if missing:
        message = (
            f"{pool.name} has no column {', '.join(missing)}; its columns are {', '.join(sorted(have))}."
        )
        raise ValidationError({"target_pool": message})
    return pool


def key_types(columns: dict[str, str], plan_columns: list[dict]) -> dict[str, str]:
    """`columns` as a sorting key would store them: a Dynamic column takes the type its sampled
    values have ("key_type", views_mv/schema.py), as a sorting key cannot hold a Dynamic."""
    sampled = {c["name"]: c.get("key_type") or "String" for c in plan_columns}
    return {n: sampled.get(n, "String") if t == "Dynamic" else t for n, t in columns.items()}
