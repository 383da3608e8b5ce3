"""What a Materialized View's SELECT reads and returns, asked of the warehouse itself.

The guide's SELECT yields `Dynamic` columns (`keys.order_id.S`, `toInt32OrNull(new_image.…)` over
JSON paths), and a table cannot be sorted by a Dynamic column; so each Dynamic column gets the
type it declares over the values DynamoDB sends (console.json_paths.typed_leaves), never one
guessed from sampled values; the user may change it, and the wizard says which values that changes.
Runs in the warehouse worker, on SELECTs that console.sql_guard.checked_select has passed.
"""

from __future__ import annotations

import re
from collections import Counter

from console.sql_guard import CheckedSelect
from console.warehouse import Warehouse, WarehouseError
from console.warehouse.base import quote_identifier, quote_string

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


def declared_types(
    warehouse: Warehouse, sql: str, probe: CheckedSelect | None = None
) -> list[tuple[str, str, str]]:
    """(name, declared type, how) of each output column: what the engine says the expression
    returns. A path inside a JSON column is Dynamic, and so is a function of one; `probe` (the
    same SELECT with DynamoDB scalar leaves typed by their grammar, console.json_paths.typed_leaves)
    gives those the type the expression has over the values DynamoDB sends."""
    written = output_columns(warehouse, sql)
    typed = output_columns(warehouse, probe) if probe is not None and _has_dynamic(written) else []
    if len(typed) != len(written):
        typed = written
    result = []
    for (name, type_), (_, grammar) in zip(written, typed, strict=True):
        if _has_dynamic(type_) and not _has_dynamic(grammar):
            result.append((name, grammar, f"{type_} over DynamoDB's types"))
        else:
            result.append((name, type_, "the query"))
    return result


def concrete_types(warehouse: Warehouse, sql: str, columns: list[tuple[str, ...]]) -> list[dict]:
    """Each output column with the type its target column takes: the SELECT's declared type, never
    one guessed from sampled values (docs/materialized-views.md, "Types"). A column that declares
    no concrete type (Dynamic) is stored as Dynamic; its "key_type", the type its values have in
    the sample, is what it gets in a sorting key, which cannot hold a Dynamic. Each column also
    says how many of the sampled rows hold NULL in it ("nulls" of "sampled"), so that a NULL key
    column can be refused before it collapses records."""
    columns = [(c[0], c[1], c[2] if len(c) > 2 else "the query") for c in columns]
    probed = [name for name, _, how in columns if how != "the query"]
    dynamic = [name for name, type_, _ in columns if type_ == "Dynamic"]
    nullable = [name for name, type_, how in columns if _may_be_null(type_) or how != "the query"]
    probes = [f"topK(5)(dynamicType({quote_identifier(n)}))" for n in dynamic + probed]
    probes += [f"countIf(isNull({quote_identifier(n)}))" for n in nullable]
    row = warehouse.query(
        f"SELECT count(), {', '.join(probes) or '0'} FROM (\n{_strip(sql)}\nLIMIT {SAMPLE_ROWS})",
        readonly=True,
    ).rows[0]
    sampled = int(row[0])
    seen = {name: Counter(t for t in row[1 + i] if t != "None") for i, name in enumerate(dynamic + probed)}
    base = 1 + len(dynamic) + len(probed)
    nulls = {name: int(row[base + i]) for i, name in enumerate(nullable)}
    result = []
    for name, type_, how in columns:
        column = {"name": name, "type": type_, "inferred": how, "nulls": nulls.get(name, 0)}
        column["sampled"] = sampled
        if how != "the query":
            type_ = _checked_by_sample(type_, seen[name], nulls[name])
            column["type"] = type_
            if type_ == "Dynamic":
                column["inferred"] = "the query: its values are of several types"
        if type_ == "Dynamic":
            types = seen.get(name) or Counter()
            column["key_type"] = types.most_common(1)[0][0] if types else "String"
            column["inferred"] = f"Dynamic ({', '.join(types) or 'only NULL'} in the sample)"
        result.append(column)
    return result


def _checked_by_sample(type_: str, seen: Counter, nulls: int) -> str:
    """A grammar-declared type, widened where the sample contradicts the grammar's assumption:
    a `keys` path that is NULL names no part of the key (Nullable), values of another type than
    declared keep Dynamic. The sample only ever widens a declared type, never narrows it."""
    inner = type_[len("Nullable(") : -1] if type_.startswith("Nullable(") else type_
    if any(t != inner for t in seen):
        return "Dynamic"
    if nulls and not _may_be_null(type_) and not type_.startswith(_NOT_NULLABLE):
        return f"Nullable({type_})"
    return type_


def _has_dynamic(types) -> bool:
    if isinstance(types, str):
        return "Dynamic" in types
    return any("Dynamic" in t for _, t in types)


def _may_be_null(type_: str) -> bool:
    return type_ == "Dynamic" or type_.startswith("Nullable(")


def type_changes(warehouse: Warehouse, sql: str, chosen: dict[str, tuple[str, str]]) -> dict[str, dict]:
    """name → {"changed", "sampled", "examples": [[value, stored as]]} for each column stored as a
    type other than its declared one (`chosen`: name → (declared, chosen), both through the type
    grammar): which sampled values the target would hold differently from what the SELECT
    answers, as the view's INSERT converts them (NULL becomes the type's default in a
    non-Nullable column; a value the chosen type cannot hold exactly is listed too)."""
    if not chosen:
        return {}
    probes = []
    for name, (declared, type_) in chosen.items():
        # The value as the SELECT declares it (a path inside JSON runs as Dynamic).
        column = quote_identifier(name)
        if not _has_dynamic(declared):
            column = f"accurateCastOrNull({column}, {quote_string(declared)})"
        missing = "NULL" if _may_be_null(type_) else f"defaultValueOfTypeName({quote_string(type_)})"
        stored = f"if(isNull({column}), {missing}, accurateCastOrNull({column}, {quote_string(type_)}))"
        back = stored if _has_dynamic(declared) else f"accurateCastOrNull({stored}, {quote_string(declared)})"
        differs = f"isNull({back}) OR toString({column}) != toString({back})"
        changed = f"if(isNull({column}), NOT isNull({stored}), {differs})"
        value = f"if(isNull({column}), 'NULL', toString({column}))"
        shown = f"if(isNull({stored}), {quote_string('(cannot hold it exactly)')}, toString({stored}))"
        probes += [f"countIf({changed})", f"groupArrayIf(5)([{value}, {shown}], {changed})"]
    row = warehouse.query(
        f"SELECT count(), {', '.join(probes)} FROM (\n{_strip(sql)}\nLIMIT {SAMPLE_ROWS})", readonly=True
    ).rows[0]
    return {
        name: {"changed": int(row[1 + 2 * i]), "sampled": int(row[0]), "examples": row[2 + 2 * i]}
        for i, name in enumerate(chosen)
    }


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
