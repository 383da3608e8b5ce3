"""Creating and removing Materialized Views; used by the wizard and by `create_mv` alike."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from console import warehouse_client
from pools import column_types, table_settings
from pools.models import DataPool, name_validator

__all__ = [
    "DataPool",
    "Plan",
    "create_mv",
    "delete_mv",
    "inspect",
    "mv_as_dict",
    "replace_sql",
    "target_settings",
]
from pools.services import RESERVED_NAMES, validate_pool_name
from pools.tables import INSERT_VERSION_COLUMN
from views_mv import tasks, versioning
from views_mv.models import MaterializedView

log = logging.getLogger(__name__)

DELETE_FLAG_NAMES = ("deleted", "is_deleted", "_deleted", versioning.DELETED_COLUMN)
# `version=ARRIVAL`: the last change received wins (the guide's empty version column, literally).
ARRIVAL = "arrival"
DELETE_FLAG_TYPES = ("Bool", "UInt8")


@dataclass
class Plan:
    """What a view would be: its SQL, source pool, typed output columns and target table."""

    sql: str
    source: DataPool
    columns: list[dict]
    rows: list = field(default_factory=list)
    formatted: str = ""  # the effective SQL in ClickHouse's canonical format
    effective: str = ""  # what runs: `sql` with JSON paths made readable (console.json_paths)
    table_name: str = ""  # the DynamoDB table the source's events come from, when known

    @property
    def runs(self) -> str:
        return self.effective or self.sql


def inspect(sql: str) -> Plan:
    """Ask the warehouse what the SELECT reads and returns; ValidationError if it cannot be a view."""
    if not sql.strip():
        raise ValidationError("Write the SELECT that defines the view.")
    try:
        found = warehouse_client.call(tasks.warehouse_inspect_sql, sql)
    except warehouse_client.WarehouseUnavailable as exc:
        raise ValidationError(str(exc)) from None
    if "error" in found:
        raise ValidationError(found["error"])
    sources = found["sources"]
    if len(sources) != 1:
        raise ValidationError(
            "A Materialized View reads exactly one Data Pool"
            + (f"; this query reads {', '.join(sources)}." if sources else "; this query reads none.")
        )
    name = sources[0].split(".")[-1]
    source = DataPool.objects.filter(name=name).first()
    if source is None or "." in sources[0] and not sources[0].startswith("shoal."):
        raise ValidationError(f"{sources[0]} is not a Data Pool.")
    if source.kind != DataPool.Kind.DYNAMODB:
        # Views run over the deliveries the loader brings (views_mv/apply.py); a view's own pool
        # has no deliveries.
        raise ValidationError(
            f"{source.name} is fed by a Materialized View; a view reads a DynamoDB Data Pool."
        )
    return Plan(
        sql=sql.strip().rstrip(";"),
        source=source,
        columns=found["columns"],
        rows=found["rows"],
        formatted=found.get("formatted", ""),
        effective=found.get("effective", ""),
        table_name=found.get("table_name", ""),
    )


def check_key_values(
    columns: list[dict],
    *,
    unique: list[str],
    time_column: str | None,
    filters: list[str],
    nullable_confirmed: bool = False,
) -> None:
    """Refuse a unique, time or filter column that is NULL in the sampled rows, or that may be NULL
    (Nullable) unless the user accepts its default: a sorting key cannot hold NULL, so Shoal stores
    the type's default there, and every record with NULL would become the same record."""
    info = {c["name"]: c for c in columns}
    errors: dict[str, list[str]] = {}
    chosen = [("unique", n) for n in unique] + [("filters", n) for n in filters]
    chosen += [("time_column", time_column)] if time_column else []
    for field_name, name in chosen:
        column = info.get(name)
        if column is None:
            continue
        nulls, sampled = column.get("nulls", 0), column.get("sampled", 0)
        if nulls:
            errors.setdefault(field_name, []).append(
                f"{name} is NULL in {nulls:,} of the {sampled:,} rows sampled. A key column cannot hold "
                "NULL: it would be stored as its type's default (an empty string, 0 or 1970-01-01), "
                f"and all {nulls:,} would become one record. Choose another column, or give it a "
                "value in the SELECT (ifNull(…))."
            )
        elif column["type"].startswith("Nullable(") and not nullable_confirmed:
            errors.setdefault(field_name, []).append(
                f"{name} is {column['type']}: none of the rows sampled is NULL, but a NULL arriving "
                "later would be stored as the type's default. Tick “Store NULL as the default” to "
                "accept that, or choose another column."
            )
    if errors:
        raise ValidationError(errors)


def dynamodb_table_name(source: DataPool, seen_in_events: str = "") -> str:
    """The DynamoDB table a pool receives: its pipeline's table, else the events' table_name."""
    pipeline = source.aws_pipelines.exclude(table_name="").first()
    return pipeline.table_name if pipeline else seen_in_events


def suggested_names(source: DataPool, seen_in_events: str = "") -> tuple[str, str]:
    """(pool, view) names as the guide suggests them: dynamodb_<TABLE_NAME> and
    flattened_dynamodb_<TABLE_NAME>_materialized_view, from the source's name without a table."""
    table = re.sub(r"[^A-Za-z0-9_]", "_", dynamodb_table_name(source, seen_in_events) or source.name)
    return f"dynamodb_{table}"[:63], f"flattened_dynamodb_{table}_materialized_view"[:63]


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


@transaction.atomic
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
) -> MaterializedView:
    """Create the target pool (new, or an existing one with the same columns) and the view.

    The warehouse work (target table, view, backfill) happens in a warehouse task after commit.
    """
    name_validator(name)
    if name.lower() in RESERVED_NAMES or MaterializedView.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"A Materialized View named {name!r} already exists."})
    plan = plan or inspect(sql)
    if DataPool.objects.filter(name=target_pool).first() is None:
        check_key_values(
            plan.columns,
            unique=(unique or []) if mutable else [],
            time_column=time_column,
            filters=filters or [],
            nullable_confirmed=nullable_keys,
        )
    columns = typed_columns(plan.columns, column_types)
    check_types_in_warehouse(columns)
    view_sql = plan.runs
    existing = DataPool.objects.filter(name=target_pool).first()
    note = ""
    if mutable and existing is None:
        view_sql, version, deleted, note = _default_version(plan, columns, version, deleted)
    if existing is not None:
        target = _check_existing_target(existing, columns, plan.source)
    else:
        validate_pool_name(target_pool)
        settings, engine, deleted = target_settings(
            columns,
            mutable=mutable,
            unique=unique or [],
            time_column=time_column,
            filters=filters or [],
            version=version,
            deleted=deleted,
        )
        keys = set(unique or []) | set(filters or []) | ({time_column} if time_column else set())
        target = DataPool.objects.create(
            name=target_pool,
            kind=DataPool.Kind.MATERIALIZED,
            description=f"Fed by the Materialized View {name}.",
            columns=[[n, _not_null(t) if n in keys else t] for n, t in columns.items()],
            engine=engine,
            sorting_key=settings.sorting_key,
            partition_key=settings.partition_key,
            timestamp_column=settings.timestamp_column,
            version_column=settings.version_column,
            deleted_column=deleted,
            access_key="",
        )
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
    if mutable and version is None and source.kind == DataPool.Kind.DYNAMODB:
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


def _default_version(plan: Plan, columns: dict[str, str], version: str | None, deleted: str | None):
    """(SQL, version, delete flag, note) of a mutable view: for a DynamoDB source without a chosen
    version, the change time (see versioning.py); `version=ARRIVAL` keeps arrival order."""
    arrival = "The last change received wins (arrival order)."
    if version == ARRIVAL:
        return plan.runs, None, deleted, arrival
    if version:
        return plan.runs, version, deleted, f"The change with the highest {version} wins."
    if plan.source.kind != DataPool.Kind.DYNAMODB or not plan.formatted:
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


def _check_existing_target(pool: DataPool, columns: dict[str, str], source: DataPool) -> DataPool:
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


def _not_null(type_: str) -> str:
    # Sorting-key columns cannot be Nullable; NULL becomes the type's default there.
    return type_[len("Nullable(") : -1] if type_.startswith("Nullable(") else type_


def delete_mv(mv: MaterializedView, *, delete_target: bool = False) -> None:
    MaterializedView.objects.filter(pk=mv.pk).update(status=MaterializedView.Status.DELETING)
    tasks.warehouse_drop_mv.apply_async((mv.pk, delete_target), retry=False)


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
