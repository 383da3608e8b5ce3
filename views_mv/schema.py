"""What a Materialized View's SELECT reads and returns, asked of the warehouse itself.

The guide's SELECT yields `Dynamic` columns (`keys.order_id.S`, `toInt32OrNull(new_image.…)` over
JSON paths), and a table cannot be sorted by a Dynamic column; so each Dynamic column gets the
concrete type its values actually have in the source (`dynamicType`), which the user may change.
Runs in the warehouse worker, on SELECTs that console.sql_guard.checked_select has passed.
"""

from __future__ import annotations

import re
from collections import Counter

from console.sql_guard import CheckedSelect
from console.warehouse import Warehouse, WarehouseError
from console.warehouse.base import quote_identifier

SAMPLE_ROWS = 100_000
_TABLE = re.compile(r'^\s*"?\s*TableIdentifier (\S+?)(?: \(alias [^)]*\))?"?\s*$')
_FUNCTION_TABLE = re.compile(r'^\s*"?\s*TableExpression')
_NOT_NULLABLE = ("Array(", "Map(", "Tuple(", "JSON", "Dynamic", "Variant(", "Nullable(", "LowCardinality(")


class QueryError(ValueError):
    pass


def source_tables(warehouse: Warehouse, sql: str) -> list[str]:
    """The tables the SELECT reads, from ClickHouse's own parse tree (comments and strings safe)."""
    try:
        tree = warehouse.query("EXPLAIN AST " + _strip(sql), readonly=True)
    except WarehouseError as exc:
        raise QueryError(str(exc)) from None
    names = []
    for (line,) in tree.rows:
        match = _TABLE.match(str(line))
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names


def output_columns(warehouse: Warehouse, sql: str) -> list[tuple[str, str]]:
    try:
        described = warehouse.query(f"DESCRIBE (\n{_strip(sql)}\n)", readonly=True)
    except WarehouseError as exc:
        raise QueryError(str(exc)) from None
    return [(row[0], row[1]) for row in described.rows]


def concrete_types(warehouse: Warehouse, sql: str, columns: list[tuple[str, str]]) -> list[dict]:
    """Each output column with a storable type: Dynamic ones resolved from the data. Each also
    says how many of the sampled rows hold NULL in it ("nulls" of "sampled"), so that a NULL key
    column can be refused before it collapses records."""
    dynamic = [name for name, type_ in columns if type_ == "Dynamic"]
    nullable = [name for name, type_ in columns if type_ == "Dynamic" or type_.startswith("Nullable(")]
    probes = [f"topK(5)(dynamicType({quote_identifier(n)}))" for n in dynamic]
    probes += [f"countIf(isNull({quote_identifier(n)}))" for n in nullable]
    row = warehouse.query(
        f"SELECT count(), {', '.join(probes) or '0'} FROM (\n{_strip(sql)}\nLIMIT {SAMPLE_ROWS})",
        readonly=True,
    ).rows[0]
    sampled = int(row[0])
    seen = {name: Counter(t for t in row[1 + i] if t != "None") for i, name in enumerate(dynamic)}
    nulls = {name: int(row[1 + len(dynamic) + i]) for i, name in enumerate(nullable)}
    result = []
    for name, type_ in columns:
        column = {
            "name": name,
            "type": type_,
            "inferred": "",
            "nulls": nulls.get(name, 0),
            "sampled": sampled,
        }
        if type_ == "Dynamic":
            types = seen[name]
            chosen = types.most_common(1)[0][0] if types else "String"
            if nulls[name] and not chosen.startswith(_NOT_NULLABLE):
                chosen = f"Nullable({chosen})"
            column["type"] = chosen
            column["inferred"] = f"Dynamic ({', '.join(types) or 'only NULL'})"
        result.append(column)
    return result


def dynamodb_table(warehouse: Warehouse, sources: list[str]) -> str:
    """The DynamoDB table the events of a change-event source came from ('' if none says)."""
    if len(sources) != 1:
        return ""
    table = ".".join(quote_identifier(part) for part in sources[0].split("."))
    described = warehouse.query(f"DESCRIBE TABLE {table}", readonly=True).rows
    if "table_name" not in [row[0] for row in described]:
        return ""
    rows = warehouse.query(
        f"SELECT table_name FROM {table} WHERE table_name != '' LIMIT 1", readonly=True
    ).rows
    return str(rows[0][0]) if rows else ""


def sample(warehouse: Warehouse, sql: str, limit: int = 10):
    try:
        return warehouse.query(f"SELECT * FROM (\n{_strip(sql)}\n) LIMIT {int(limit)}", readonly=True)
    except WarehouseError as exc:
        raise QueryError(str(exc)) from None


def formatted(warehouse: Warehouse, sql: str) -> str:
    """The query in ClickHouse's canonical format (comments dropped, one clause per line)."""
    literal = "'" + _strip(sql).replace("\\", "\\\\").replace("'", "\\'") + "'"
    try:
        return str(warehouse.query(f"SELECT formatQuery({literal})", readonly=True).rows[0][0])
    except WarehouseError as exc:
        raise QueryError(str(exc)) from None


def _strip(sql: CheckedSelect) -> str:
    if not isinstance(sql, CheckedSelect):
        raise TypeError("views_mv.schema runs only SELECTs returned by sql_guard.checked_select")
    return str(sql)
