"""Creating, fixing and removing Materialized Views: what the wizard, the API and `create_mv` call.

What a SELECT would make is asked first (views_mv/planning.py); the target pool's types and
settings follow from it (views_mv/targets.py). The names callers use from both are here too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError
from django.db import transaction

from pools.models import DataPool, name_validator
from pools.services import RESERVED_NAMES, validate_pool_name
from views_mv import targets, tasks, typecheck, versioning
from views_mv.models import MaterializedView
from views_mv.planning import Plan, check_key_values, check_type_changes, inspect, suggested_names
from views_mv.targets import ARRIVAL, describe_target, target_settings

__all__ = [
    "ARRIVAL",
    "DataPool",
    "Plan",
    "check_key_values",
    "check_type_changes",
    "create_mv",
    "delete_mv",
    "describe_target",
    "inspect",
    "mv_as_dict",
    "rebuild_mv",
    "replace_sql",
    "suggested_names",
    "target_settings",
    "targets",
    "versioning",
]


@transaction.atomic
@dataclass(frozen=True)
class _Layout:
    """The table-settings answers for a new target pool."""

    mutable: bool
    unique: list[str]
    time_column: str | None
    filters: list[str]
    version: str | None
    deleted: str | None

    def key_columns(self) -> set[str]:
        """Columns in the sorting key, the time column and the filters: never NULL."""
        keys = set(self.unique) if self.mutable else set()
        return keys | set(self.filters) | ({self.time_column} if self.time_column else set())


def create_mv(
    name: str,
    sql: str,
    *,
    target_pool: str,
    description: str = "",
    mutable: bool = False,
    unique: list[str] | None = None,
    time_column: str | None = None,
    filters: list[str] | None = None,
    version: str | None = None,
    deleted: str | None = None,
    column_types: dict[str, str] | None = None,
    backfill: bool = False,
    plan: Plan | None = None,
    nullable_keys: bool = False,
    accept_type_changes: bool = False,
) -> MaterializedView:
    """Create the target pool (new, or an existing one with the same columns) and the view.

    The warehouse work (target table, view, backfill) happens in a warehouse task after commit.
    """
    name_validator(name)
    if name.lower() in RESERVED_NAMES or MaterializedView.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"A Materialized View named {name!r} already exists."})
    plan = plan or inspect(sql)
    layout = _Layout(mutable, unique or [], time_column, filters or [], version, deleted)
    existing = DataPool.objects.filter(name=target_pool).first()
    if existing is None:
        check_key_values(
            plan.columns,
            unique=layout.unique if mutable else [],
            time_column=time_column,
            filters=layout.filters,
            nullable_confirmed=nullable_keys,
        )
    columns = targets.typed_columns(plan.columns, column_types)
    targets.check_types_in_warehouse(columns)
    check_type_changes(plan, columns, keys=layout.key_columns(), accepted=accept_type_changes)
    view_sql, note = plan.runs, ""
    if existing is not None:
        target = targets.existing_target(existing, columns, plan.source)
    else:
        if mutable:
            view_sql, version, deleted, note = targets.default_version(plan, columns, version, deleted)
            layout = replace(layout, version=version, deleted=deleted)
        target = _new_target(name, target_pool, plan, columns, layout)
    mv = MaterializedView.objects.create(
        name=name,
        description=description,
        sql=view_sql,
        user_sql=plan.sql,
        source_pool=plan.source,
        target_pool=target,
        versioning=note,
        backfill_requested=backfill,
    )
    tasks.warehouse_create_mv.enqueue_on_commit(mv.pk, backfill)
    return mv


def _new_target(
    name: str, target_pool: str, plan: Plan, columns: dict[str, str], layout: _Layout
) -> DataPool:
    """The view's new target pool: its engine and keys from the layout; key columns not NULL."""
    validate_pool_name(target_pool)
    as_key = targets.key_types(columns, plan.columns)
    settings, engine, deleted = target_settings(
        as_key,
        mutable=layout.mutable,
        unique=layout.unique,
        time_column=layout.time_column,
        filters=layout.filters,
        version=layout.version,
        deleted=layout.deleted,
    )
    keys = layout.key_columns() | ({settings.version_column, deleted} & set(columns))  # the engine's too
    return DataPool.objects.create(
        name=target_pool,
        kind=DataPool.Kind.MATERIALIZED,
        description=f"Fed by the Materialized View {name}.",
        columns=[[n, targets.not_null(as_key[n]) if n in keys else t] for n, t in columns.items()],
        engine=engine,
        sorting_key=settings.sorting_key,
        partition_key=settings.partition_key,
        timestamp_column=settings.timestamp_column,
        version_column=settings.version_column,
        deleted_column=deleted,
        access_key="",
    )


def replace_sql(mv: MaterializedView, sql: str) -> MaterializedView:
    """Fix a view: new SQL over the same source, giving columns its target pool has.

    It takes effect with the next delivery the loader brings; rows the old SQL could not
    transform are then re-run with `retry` (views_mv/apply.py). Versioning columns Shoal added
    when the view was created are added again.
    """
    plan = inspect(sql)
    if plan.source.pk != mv.source_pool_id:
        raise ValidationError(f"The view reads {mv.source_pool.name}; this query reads {plan.source.name}.")
    target = mv.target_pool
    view_sql = plan.runs
    if target.version_column == versioning.VERSION_COLUMN:
        extra = [(versioning.VERSION_COLUMN, versioning.VERSION_EXPRESSION)]
        if target.deleted_column == versioning.DELETED_COLUMN:
            extra.append((versioning.DELETED_COLUMN, versioning.DELETED_EXPRESSION))
        try:
            view_sql = versioning.add_columns(plan.formatted, extra)
        except versioning.CannotVersion as exc:
            raise ValidationError(f"Shoal could not add the change time to this query: {exc}.") from None
    have = {name for name, _ in target.columns}
    missing = [c["name"] for c in plan.columns if c["name"] not in have]
    if missing:
        raise ValidationError(f"{target.name} has no column {', '.join(missing)}.")
    MaterializedView.objects.filter(pk=mv.pk).update(sql=view_sql, user_sql=plan.sql)
    mv.sql, mv.user_sql = view_sql, plan.sql
    return mv


def rebuild_mv(mv: MaterializedView) -> MaterializedView:
    """Rebuild a view's target with the types its SELECT declares (views_mv/typecheck.py): the
    pool's columns take them, then the warehouse worker recreates the table and copies the
    source again (tasks.warehouse_rebuild_mv). Only a target this view alone feeds: the copy
    brings back this view's rows, not another's."""
    target = mv.target_pool
    if target.fed_by.exclude(pk=mv.pk).exists():
        raise ValidationError(
            f"{target.name} is fed by other views too; rebuilding it would lose their rows."
        )
    plan = inspect(mv.sql)
    keys = typecheck.key_columns(target)
    declared = {c["name"]: c for c in plan.columns}
    columns = []
    for name, type_ in target.columns:
        columns.append(
            [name, typecheck.declared_type(declared[name], name in keys) if name in declared else type_]
        )
    DataPool.objects.filter(pk=target.pk).update(columns=columns)
    MaterializedView.objects.filter(pk=mv.pk).update(
        status=MaterializedView.Status.CREATING, status_detail="Rebuilding with the query's types."
    )
    tasks.warehouse_rebuild_mv.enqueue_on_commit(mv.pk)
    mv.refresh_from_db()
    return mv


def delete_mv(mv: MaterializedView, *, delete_target: bool = False) -> None:
    MaterializedView.objects.filter(pk=mv.pk).update(status=MaterializedView.Status.DELETING)
    tasks.warehouse_drop_mv.enqueue_on_commit(mv.pk, delete_target)


def mv_as_dict(mv: MaterializedView) -> dict:
    target = mv.target_pool
    backfill = getattr(mv, "backfill", None)
    return {
        "id": mv.pk,
        "name": mv.name,
        "status": mv.status,
        "source_pool": mv.source_pool.name,
        "target_pool": target.name,
        "engine": target.engine,
        "sorting_key": target.sorting_key,
        "partition_key": target.partition_key,
        "timestamp_column": target.timestamp_column or None,
        "version_column": target.version_column or None,
        "deleted_column": target.deleted_column or None,
        "columns": target.columns,
        "backfill": None
        if backfill is None
        else {
            "status": backfill.status,
            "rows_total": backfill.rows_total,
            "rows_done": backfill.rows_done,
        },
    }
