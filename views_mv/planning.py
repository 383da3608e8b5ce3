"""What a view's SELECT would make, asked of the warehouse before anything is created: its source
pool, typed output columns, a few rows, and the names the guide suggests for the view and its pool."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from console import warehouse_client
from pools import column_types
from pools import sources as source_types
from pools.models import DataPool
from views_mv import tasks


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


def inspect(sql: str, user: str = "") -> Plan:
    """Ask the warehouse what the SELECT reads and returns; ValidationError if it cannot be a view.
    `user` is whose Test it is (console/user_queries.py serves each user in turn)."""
    if not sql.strip():
        raise ValidationError("Write the SELECT that defines the view.")
    try:
        found = warehouse_client.call(tasks.warehouse_inspect_sql, sql, 10, user)
    except warehouse_client.WarehouseUnavailable as exc:
        raise ValidationError(str(exc)) from None
    if "error" in found:
        raise ValidationError(found["error"])  # a refusal too: it says when to try again
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
    if not source_types.fed_by_source(source):
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


ACCEPT_CHANGES = "Tick “Store these values changed” to accept this, or keep the query's type."


def check_type_changes(plan: Plan, columns: dict[str, str], *, keys: set[str], accepted: bool) -> None:
    """Refuse, unless `accepted`, a column stored as another type than the SELECT declares when
    that changes values: name the sampled values it would change (NULL → 0, 2.5 → 2 …) and say
    that a NULL arriving later becomes the type's default. Key columns keep their own rule
    (check_key_values)."""
    declared = {c["name"]: column_types.canonical(c["type"]) for c in plan.columns}
    chosen = {n: (declared[n], t) for n, t in columns.items() if n in declared and n not in keys}
    chosen = {n: (was, t) for n, (was, t) in chosen.items() if t != was}
    if accepted or not chosen:
        return
    try:
        found = warehouse_client.call(tasks.warehouse_type_changes, plan.runs, chosen)
    except warehouse_client.WarehouseUnavailable as exc:
        raise ValidationError(str(exc)) from None
    if "error" in found:
        raise ValidationError({"column_types": [f"Shoal could not compare the types: {found['error']}"]})
    messages = []
    for name, (was, type_) in chosen.items():
        info, later = found["columns"][name], ""
        if _may_be_null(was) and not _may_be_null(type_):
            later = f" A NULL arriving later would be stored as {type_}'s default, not as NULL."
        if info["changed"]:
            shown = ", ".join(f"{before} → {after}" for before, after in info["examples"])
            messages.append(
                f"{name} as {type_} instead of the query's {was}: {info['changed']:,} of the "
                f"{info['sampled']:,} rows sampled would be stored differently ({shown}).{later}"
            )
        elif later:
            messages.append(f"{name} as {type_} instead of the query's {was}: no sampled row changes.{later}")
    if messages:
        raise ValidationError({"column_types": [*messages, ACCEPT_CHANGES]})


def _may_be_null(type_: str) -> bool:
    return type_ == "Dynamic" or type_.startswith("Nullable(")


def dynamodb_table_name(source: DataPool, seen_in_events: str = "") -> str:
    """The DynamoDB table a pool receives: its pipeline's table, else the events' table_name."""
    pipeline = source.aws_pipelines.exclude(table_name="").first()
    return pipeline.table_name if pipeline else seen_in_events


def suggested_names(source: DataPool, seen_in_events: str = "") -> tuple[str, str]:
    """(pool, view) names as the guide suggests them: dynamodb_<TABLE_NAME> and
    flattened_dynamodb_<TABLE_NAME>_materialized_view, from the source's name without a table."""
    table = re.sub(r"[^A-Za-z0-9_]", "_", dynamodb_table_name(source, seen_in_events) or source.name)
    return f"dynamodb_{table}"[:63], f"flattened_dynamodb_{table}_materialized_view"[:63]
