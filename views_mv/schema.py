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
    """Each output column with a storable type: Dynamic ones resolved from the data."""
    dynamic = [name for name, type_ in columns if type_ == "Dynamic"]
    found: dict[str, tuple[Counter, bool]] = {}
    if dynamic:
        probes = ", ".join(
            f"topK(5)(dynamicType({quote_identifier(n)})), countIf(isNull({quote_identifier(n)}))"
            for n in dynamic
        )
        row = warehouse.query(
            f"SELECT {probes} FROM (\n{_strip(sql)}\nLIMIT {SAMPLE_ROWS})", readonly=True
        ).rows[0]
        for i, name in enumerate(dynamic):
            types = Counter(t for t in row[2 * i] if t != "None")
            found[name] = (types, bool(row[2 * i + 1]))
    result = []
    for name, type_ in columns:
        if type_ != "Dynamic":
            result.append({"name": name, "type": type_, "inferred": ""})
            continue
        types, has_null = found[name]
        chosen = types.most_common(1)[0][0] if types else "String"
        if has_null and not chosen.startswith(_NOT_NULLABLE):
            chosen = f"Nullable({chosen})"
        seen = ", ".join(types) or "only NULL"
        result.append({"name": name, "type": chosen, "inferred": f"Dynamic ({seen})"})
    return result


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
