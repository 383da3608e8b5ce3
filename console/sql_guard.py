"""What a user's SQL may read: the Data Pools' database, and nothing else.

Every path that runs SQL a user wrote passes this one check, inside the warehouse worker, because
the check asks the warehouse itself: the SQL Console and the `sql` command (console.tasks.run_sql),
and a Materialized View's SELECT when it is inspected or tested, right before its
CREATE MATERIALIZED VIEW, and before each backfill or repair that runs it (`checked_select`, whose
result is the only text views_mv.ddl builds view DDL from). Preview Data and the Replica check run
SQL that Shoal builds, on the same read-only connection, through the same check.

1. `formatQuery(<the query as a string literal>)` parses the text with ClickHouse's own parser.
   A syntax error comes back as ClickHouse words it ("failed at position N", N counted in the
   user's text), and so does more than one statement; the query cannot run anything here, as it
   is only a string.
2. `EXPLAIN AST <the query>` (read-only, parses without running) gives the syntax tree, which is
   walked for the statement kind, tables, databases and table functions.

The read-only connection (readonly=1, fixed limits) already refuses writes, SET and the file/url
table functions; this check closes what readonly=1 leaves open: reading system.*,
information_schema and other databases (directly, through IN, merge(), cluster() …), the scalar
file() function and INTO OUTFILE, which clickhouse-local writes even in readonly mode, and USE,
which would move the connection to another database for the queries after it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass, field

from django.conf import settings

from console.warehouse import Warehouse, WarehouseError
from console.warehouse.base import quote_string

# ClickHouse's error codes, so that a refusal reads like the warehouse's own errors.
SYNTAX_ERROR = 62
READONLY = 164
ACCESS_DENIED = 497

# Table functions that read nothing outside the query itself. Every other one is refused (file,
# url, s3, remote, mysql, merge, cluster, input, …), whether or not readonly=1 allows it.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "generate_series", "generateseries", "generaterandom", "values", "null", "view"}
)
# Scalar functions are judged by what they can reach, from the category ClickHouse's own catalog
# (system.functions) gives each of them, aliases through what they alias:
# - these categories compute over their arguments and the rows only, and are allowed whole;
PURE_CATEGORIES = frozenset(
    {
        "Aggregate Functions", "Arithmetic", "Arrays", "Bit", "Bitmap", "Comparison", "Conditional",
        "Dates and Times", "Distance", "Encoding", "Encryption", "Financial", "Geo", "Geo Polygon",
        "Hash", "IP Address", "JSON", "Logical", "Map", "Mathematical", "Null", "NumericIndexedVector",
        "QBit", "Random Number", "Rounding", "String", "String Replacement", "String Search",
        "String Splitting", "Time Series", "Time Window", "Tuple", "Type Conversion", "URL", "UUID",
    }
)  # fmt: skip
# - every other category is refused (Dictionary, Embedded Dictionary: dictionaries and the files
#   behind them; Machine Learning: model files (naiveBayesClassifier, catboost); AI: calls to a
#   provider over the network; Introspection: the server's binary and logs; Internal), and so is a
#   category a newer engine brings, until it is classified here; except these, from the catch-all
#   "Other" and from "Internal" (`_CAST`: a bound parameter, `CASE x WHEN`), which compute over
#   their arguments, the rows or the query's own text:
PURE_FUNCTIONS = frozenset(
    name.lower()
    for name in (
        "_CAST", "bar", "blockNumber", "blockSerializedSize", "blockSize", "byteSize", "caseWithExpression",
        "colorOKLABToSRGB", "colorOKLCHToSRGB", "colorSRGBToOKLAB", "colorSRGBToOKLCH", "countDigits",
        "currentDatabase", "currentQueryID", "currentUser", "authenticatedUser", "defaultValueOfArgumentType",
        "defaultValueOfTypeName", "digits", "dumpColumnStructure", "errorCodeToName", "finalizeAggregation",
        "flipCoordinates", "formatQuery", "formatQueryOrNull", "formatQuerySingleLine",
        "formatQuerySingleLineOrNull", "formatReadableDecimalSize", "formatReadableQuantity",
        "formatReadableSize", "formatReadableTimeDelta", "generateRandomStructure", "getSetting",
        "getSettingOrDefault", "getSizeOfEnumType", "getSubcolumn", "getTypeSerializationStreams",
        "highlightQuery", "icebergBucket", "icebergTruncate", "identity", "ignore", "indexHint",
        "initializeAggregation", "initialQueryID", "initialQueryStartTime", "isConstant",
        "isDecimalOverflow", "lowCardinalityIndices", "lowCardinalityKeys", "MACNumToString",
        "MACStringToNum", "MACStringToOUI", "materialize", "minSampleSizeContinuous",
        "minSampleSizeConversion", "normalizedQueryHash", "normalizedQueryHashKeepNames",
        "normalizeQuery", "normalizeQueryKeepNames", "obfuscateQuery", "obfuscateQueryWithSeed",
        "parseISO8601Duration", "parseReadableSize", "parseReadableSizeOrNull",
        "parseReadableSizeOrZero", "parseTimeDelta", "partitionId", "queryID", "revision",
        "rowNumberInAllBlocks", "rowNumberInBlock", "runningAccumulate", "runningDifference",
        "runningDifferenceStartingWithFirstValue", "structureToCapnProtoSchema",
        "structureToProtobufSchema", "throwIf", "tokenizeQuery", "toColumnTypeName", "toTypeName",
        "transform", "variantElement", "variantType", "version", "visibleWidth",
    )
)  # fmt: skip
# Refused whatever their category says: files, Join tables, other databases' tables, models.
DENIED_FUNCTIONS = frozenset({"file", "joinget", "joingetornull", "hascolumnintable", "catboostevaluate"})
# Not in system.functions but produced by the parser for the query's own syntax (`x -> …`).
SYNTAX_FUNCTIONS = frozenset({"lambda"})

STATEMENTS = "SELECT, DESCRIBE, EXISTS, SHOW CREATE TABLE and EXPLAIN"
_READ_STATEMENTS = {
    "SelectWithUnionQuery",
    "DescribeQuery",
    "ExistsTableQuery",
    "ShowCreateTableQuery",
    "Explain",
}
_CHILDREN = re.compile(r" \(children (\d+)\)$")
_POSITION = re.compile(r"failed at position (\d+)")


class QueryRefused(WarehouseError):
    """The query was not run: it is not valid, or it reaches outside the Data Pools."""

    def __init__(self, message: str, code: int | None = ACCESS_DENIED):
        super().__init__(message, code)


@dataclass
class Node:
    kind: str
    text: str  # what follows the kind on its line, as printed: a name, an alias
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.text.strip().split(" ", 1)[0]

    def walk(self, parent: Node | None = None):
        yield self, parent
        for child in self.children:
            yield from child.walk(self)


CONSOLE = "the SQL Console"
VIEW = "a Materialized View"


class CheckedSelect(str):
    """A user's SELECT that passed `check` as a view's query: the only kind of text the builders
    of view DDL (views_mv.ddl) accept, so that no path can create or fill a view with SQL that
    skipped the guard."""


def check(
    warehouse: Warehouse,
    sql: str,
    *,
    where: str = CONSOLE,
    select_only: bool = False,
    pools: Collection[str] | None = None,
    params: dict[str, str] | None = None,
) -> None:
    """Raise QueryRefused (or WarehouseError) unless `sql` is one statement that reads only the
    pool database; return quietly when it may run. `where` names the place in messages;
    `select_only` admits SELECT alone (a view's query); `pools`, when given, are the only tables
    of the pool database the query may name (an API key limited to some pools); `params` are the
    query's {name:Type} parameters, which the tree is read with, since a parameter can be a table
    name ({t:Identifier})."""
    if not sql.strip():
        raise QueryRefused("There is no SQL to run.", SYNTAX_ERROR)
    load_catalog(warehouse)
    formatted, databases, tables = _parse(warehouse, sql, where, with_tables=pools is not None)
    tree = parse_tree(_explain(warehouse, sql, params), where)
    if select_only and tree.kind != "SelectWithUnionQuery":
        verb = formatted.split(" ", 1)[0].upper() or tree.kind
        raise QueryRefused(f"{where} is defined by one SELECT; this statement is {verb}.", READONLY)
    check_tree(tree, database=warehouse.database, databases=databases, statement=formatted, where=where)
    if pools is not None:
        check_pools(tree, database=warehouse.database, tables=tables, pools=pools, where=where)


def _explain(warehouse: Warehouse, sql: str, params: dict[str, str] | None) -> list[str]:
    if not params:
        return [row[0] for row in warehouse.query("EXPLAIN AST " + sql, readonly=True).rows]
    raw = warehouse.query_format(
        "EXPLAIN AST " + sql, "JSONCompact", max_rows=settings.SQL_MAX_RESULT_ROWS, params=params
    )
    return [row[0] for row in json.loads(raw.data)["data"]]


def checked_select(warehouse: Warehouse, sql: str) -> CheckedSelect:
    """The view query `sql`, checked right now (QueryRefused if it reaches outside the pools)."""
    sql = sql.strip()
    while sql.endswith(";"):
        sql = sql[:-1].rstrip()
    check(warehouse, sql, where=VIEW, select_only=True)
    return CheckedSelect(sql)


def _parse(
    warehouse: Warehouse, sql: str, where: str = CONSOLE, *, with_tables: bool = False
) -> tuple[str, list[str], list[str]]:
    tables = (
        f", (SELECT groupArray(name) FROM system.tables WHERE database = {quote_string(warehouse.database)})"
        if with_tables
        else ""
    )
    try:
        result = warehouse.query(
            f"SELECT formatQuerySingleLine({quote_string(sql)}), "
            f"(SELECT groupArray(name) FROM system.databases){tables}",
            readonly=True,
        )
    except WarehouseError as exc:
        raise QueryRefused(_syntax_message(str(exc)), exc.code or SYNTAX_ERROR) from None
    row = result.rows[0]
    return row[0], list(row[1]), list(row[2]) if with_tables else []


def _syntax_message(message: str) -> str:
    """ClickHouse's syntax error about the user's text, without the wrapper it was parsed in."""
    code_name = re.search(r" \(([A-Z_]+)\)\s*$", message)
    cut = message.find(" In scope SELECT formatQuerySingleLine(")
    if cut >= 0:
        message = message[:cut].rstrip(" :.") + "."
        if code_name:
            message += f" ({code_name.group(1)})"
    if "Multi-statements are not allowed" in message:
        position = _POSITION.search(message)
        at = f" (failed at position {position.group(1)})" if position else ""
        return f"Only one statement can run at a time: multi-statements are not allowed{at}."
    return message


def parse_tree(lines: list[str], where: str = CONSOLE) -> Node:
    """EXPLAIN AST's indented dump as a tree. Every node states its number of children, so the
    dump is read strictly: a line out of place (a name with a line break in it, a cut-off
    result) makes the whole query refused rather than half-read."""
    entries = []
    for line in lines:
        depth = len(line) - len(line.lstrip(" "))
        entries.append((depth, line.strip()))
    position = 0

    def node(depth: int) -> Node:
        nonlocal position
        if position >= len(entries) or entries[position][0] != depth or not entries[position][1]:
            raise _unreadable(where)
        _, text = entries[position]
        position += 1
        count = 0
        match = _CHILDREN.search(text)
        if match:
            count = int(match.group(1))
            text = text[: match.start()]
        kind, _, rest = text.partition(" ")
        item = Node(kind, rest)
        item.children = [node(depth + 1) for _ in range(count)]
        return item

    tree = node(0)
    if position != len(entries):
        raise _unreadable(where)
    return tree


def _unreadable(where: str = CONSOLE) -> QueryRefused:
    return QueryRefused(
        f"Shoal could not check this query for {where} (a name with a line break in it, or a query "
        "too large to check); simplify it."
    )


def check_tree(
    tree: Node, *, database: str, databases: list[str], statement: str = "", where: str = CONSOLE
) -> None:
    _check_statement(tree, database, statement, where)
    others = {d for d in databases if d != database} | {"system", "information_schema", "INFORMATION_SCHEMA"}
    for item, parent in tree.walk():
        if item.kind == "TableIdentifier":
            db, dot, table = item.name.partition(".")
            if dot and (db != database or "." in table):
                raise QueryRefused(_outside(db, database, where))
        elif item.kind == "Identifier" and "." in item.name:
            # `x IN other_db.table` names a table with a plain identifier.
            db = item.name.split(".", 1)[0]
            if db in others:
                raise QueryRefused(_outside(db, database, where))
        elif item.kind == "Function":
            _check_function(
                item.name, as_table=parent is not None and parent.kind == "TableExpression", where=where
            )


def check_pools(
    tree: Node, *, database: str, tables: Collection[str], pools: Collection[str], where: str = CONSOLE
) -> None:
    """Refuse a query that names a table of the pool database outside `pools`. Only names of
    tables that exist count, so that a WITH clause's names still work; `x IN other_pool` names
    its table with a plain identifier, which is checked the same way."""
    allowed = set(pools)
    forbidden = set(tables) - allowed
    if tree.kind in ("ExistsTableQuery", "ShowCreateTableQuery"):
        names = [tree.text.rstrip(" ").split(" ")[-1]]
    else:
        names = []
    for item, _parent in tree.walk():
        if item.kind in ("TableIdentifier", "Identifier"):
            db, dot, table = item.name.partition(".")
            if not dot:
                names.append(db)
            elif db == database:
                names.append(table)
    for name in names:
        if name in forbidden:
            readable = ", ".join(sorted(allowed)) or "no Data Pool"
            raise QueryRefused(f"Data Pool {name} is not available to this API key: it may read {readable}.")


def _check_statement(tree: Node, database: str, statement: str, where: str = CONSOLE) -> None:
    place = where[0].upper() + where[1:]
    verb = (
        " ".join(statement.split()[:2]) if statement.upper().startswith("SHOW") else statement.split(" ")[0]
    )
    verb = verb.upper() or tree.kind
    if tree.kind not in _READ_STATEMENTS:
        if tree.kind.startswith("Show"):
            raise QueryRefused(
                f"{verb} is not available in {where}; the Data Pools and their columns are "
                "listed beside the editor, and DESCRIBE <pool> shows a pool's columns."
            )
        if tree.kind == "UseQuery":
            raise QueryRefused(f"USE is not allowed: {where} always reads the Data Pools' database.")
        if tree.kind == "Set":
            raise QueryRefused(
                f"SET is not allowed: {where} is readonly and its time and size limits are fixed.",
                READONLY,
            )
        if tree.kind.startswith(("Exists", "Describe", "Check")):
            raise QueryRefused(f"{verb} is not available in {where}; it runs {STATEMENTS} statements.")
        raise QueryRefused(
            f"{verb} is not allowed: {where} is readonly; it runs {STATEMENTS} statements.",
            READONLY,
        )
    if tree.kind in ("ExistsTableQuery", "ShowCreateTableQuery"):
        # "ExistsTableQuery <database> <table>": the database is empty when not given.
        parts = tree.text.rstrip(" ").split(" ")
        if len(parts) != 2 or len(tree.children) != (2 if parts[0] else 1):
            raise _no_format(place)
        if parts[0] and parts[0] != database:
            raise QueryRefused(_outside(parts[0], database, where))
        return
    if tree.kind == "Explain":
        selects = [c for c in tree.children if c.kind == "SelectWithUnionQuery"]
        if len(selects) != 1 or any(c.kind not in ("SelectWithUnionQuery", "Set") for c in tree.children):
            raise QueryRefused("EXPLAIN is available for SELECT only, without FORMAT or INTO OUTFILE.")
        tree = selects[0]
    # A SELECT's only child is its list of selects; FORMAT and INTO OUTFILE add more.
    if len(tree.children) != 1:
        raise _no_format(place)


def _no_format(place: str = "The SQL Console") -> QueryRefused:
    return QueryRefused(
        f"FORMAT and INTO OUTFILE are not available here: {place} takes results as a table "
        "(the `sql` command prints them as a table or JSON)."
    )


def _check_function(name: str, *, as_table: bool, where: str = CONSOLE) -> None:
    lowered = name.lower()
    catalog = _catalog()
    if as_table and lowered not in ALLOWED_TABLE_FUNCTIONS:
        raise QueryRefused(f"table function {name}() is not allowed in {where}.")
    if lowered in catalog.table_only and lowered not in ALLOWED_TABLE_FUNCTIONS:
        raise QueryRefused(f"table function {name}() is not allowed in {where}.")
    if lowered in DENIED_FUNCTIONS or lowered in catalog.reaching:
        raise QueryRefused(
            f"function {name}() is not allowed in {where}: it reads outside the Data Pools "
            "(dictionaries, files, models, the network or the server itself)."
        )


@dataclass(frozen=True)
class _Catalog:
    table_only: frozenset[str]  # table functions that are not also scalar functions, lowercased
    reaching: frozenset[str] = frozenset()  # scalar functions that reach outside the query, lowercased


_catalog_lock = threading.Lock()
_catalog_value: _Catalog | None = None


def load_catalog(warehouse: Warehouse) -> None:
    """Learn the warehouse's table functions once per process (they change with its version)."""
    global _catalog_value
    with _catalog_lock:
        if _catalog_value is not None:
            return
        rows = warehouse.query(
            "SELECT lower(name) FROM system.table_functions WHERE lower(name) NOT IN "
            "(SELECT lower(name) FROM system.functions)",
            readonly=True,
        ).rows
        functions = warehouse.query(
            "SELECT name, alias_to, categories FROM system.functions", readonly=True
        ).rows
        _catalog_value = _Catalog(table_only=frozenset(r[0] for r in rows), reaching=reaching(functions))


def reaching(functions: list) -> frozenset[str]:
    """The lowercased names, aliases included, of the functions that may reach outside the query,
    from system.functions' (name, alias_to, categories) rows."""
    category = {name: categories for name, _alias, categories in functions if not _alias}
    denied = set()
    for name, alias_to, _categories in functions:
        real = alias_to or name
        pure = real.lower() in PURE_FUNCTIONS or category.get(real, "") in PURE_CATEGORIES
        if not pure or real.lower() in DENIED_FUNCTIONS:
            denied.add(name.lower())
    # A name is refused if any function of that name (in any case) is.
    return frozenset(denied - SYNTAX_FUNCTIONS)


def _catalog() -> _Catalog:
    if _catalog_value is None:
        raise RuntimeError("sql_guard.load_catalog(warehouse) was not called")
    return _catalog_value


def _outside(db: str, database: str, where: str = CONSOLE) -> str:
    if db == "system":
        return f"system tables are not available in {where}: it reads the Data Pools only."
    if db.lower() == "information_schema":
        return (
            f"information_schema is not available in {where}; the Data Pools and their columns "
            "are listed beside the editor."
        )
    return (
        f"database {db} is not available in {where}: only the Data Pools (database {database}) "
        "are; write a pool's name alone, e.g. SELECT … FROM my_pool."
    )


def error_position(message: str, sql: str) -> int | None:
    """The character offset (from 0) in `sql` of ClickHouse's "failed at position N", which counts
    bytes from 1."""
    match = _POSITION.search(message)
    if not match:
        return None
    offset = max(int(match.group(1)) - 1, 0)
    return len(sql.encode()[:offset].decode("utf-8", "ignore"))
