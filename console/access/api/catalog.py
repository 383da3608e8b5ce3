"""What ClickHouse clients ask of the catalogue, answered from the key's own pools.

Clients and BI drivers ask `system.databases`, `system.tables`, `system.columns` and
`system.settings` in many wordings: column aliases, table aliases, `IN (…)` and `LIKE` filters,
joins between them, columns qualified as `system.columns.type`, ORDER BY, LIMIT (clickhouse-connect,
SQLAlchemy's dialect, Grafana's data source, Metabase's JDBC driver, docs/api.md). Rather than one
pattern per wording, the client's own query runs, with each `system.<table>` replaced by literal
rows Shoal writes (`values(…)`): the databases, the pools this key may read and their columns, and
Shoal's fixed settings. The rewritten query then passes the SQL guard like any other, limited to
the key's pools, so nothing else is readable; the real system tables never are.

Statements that are not SELECTs (SHOW DATABASES, SHOW TABLES, DESCRIBE, EXISTS) are answered as
ClickHouse answers them, over the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings

from console.warehouse.base import quote_string
from pools.models import DataPool

# What clients send for the database besides its name: nothing, 'default' (the user left it
# empty), 'clickhouse' (@clickhouse/client takes the URL's path for a database).
DATABASE_ALIASES = ("", "default", "clickhouse")

# ClickHouse's own output defaults, which its clients parse (Shoal's pages and /api/v1/sql write
# date-times as ISO 8601); system.settings says so.
CLICKHOUSE_OUTPUT = {"date_time_output_format": "simple"}

# The columns of each system table Shoal answers: the ones clients read, typed as ClickHouse types them.
STRUCTURES = {
    "databases": "name String, engine String, comment String",
    "tables": (
        "database String, name String, engine String, engine_full String, is_temporary UInt8, "
        "comment String, partition_key String, sorting_key String, primary_key String, "
        "sampling_key String, total_rows Nullable(UInt64), uuid String"
    ),
    "columns": (
        "database String, table String, name String, type String, position UInt64, "
        "default_kind String, default_expression String, comment String, compression_codec String, "
        "is_in_partition_key UInt8, is_in_sorting_key UInt8, is_in_primary_key UInt8, "
        "is_in_sampling_key UInt8, character_octet_length Nullable(UInt64), "
        "numeric_precision Nullable(UInt64), numeric_precision_radix Nullable(UInt64), "
        "numeric_scale Nullable(UInt64), datetime_precision Nullable(UInt64)"
    ),
    "settings": "name String, value String, changed UInt8, description String, readonly UInt8, type String",
}


def readable_pools(api_key) -> list[DataPool]:
    pools = DataPool.objects.exclude(status=DataPool.Status.DELETING).order_by("name")
    allowed = api_key.readable_pools()
    return [p for p in pools if allowed is None or p.name in allowed]


def ours(database: str | None) -> bool:
    """Whether a client's database name means the pools' database."""
    return (database or "") in (*DATABASE_ALIASES, settings.WAREHOUSE.database)


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    return quote_string(str(value))


def values(structure: str, rows: list[tuple]) -> str:
    """A SELECT over literal rows (values() passes the guard like any query)."""
    if not rows:
        empty = ", ".join(
            "NULL" if "Nullable" in c else "0" if "UInt" in c else "''" for c in structure.split(", ")
        )
        return f"SELECT * FROM values({quote_string(structure)}, ({empty})) WHERE 0"
    body = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    return f"SELECT * FROM values({quote_string(structure)}, {body})"


# --- the rows --------------------------------------------------------------------------------------


def shown(database: str | None) -> str:
    """The pools' database as this client names it: the name it connected with when that is one
    of the aliases ('default', as SQLAlchemy's dialect does, asks `database = 'default'`), else
    the warehouse's own name."""
    return database if database and database in DATABASE_ALIASES else settings.WAREHOUSE.database


def _databases(api_key, database: str) -> list[tuple]:
    return [(database, "Atomic", "Shoal's Data Pools")]


def _tables(api_key, database: str) -> list[tuple]:
    return [
        (
            database,
            p.name,
            p.engine.split("(")[0],
            p.engine,
            0,
            p.description,
            p.partition_key,
            p.sorting_key,
            p.sorting_key,
            "",
            None,
            "",
        )
        for p in readable_pools(api_key)
    ]


def _columns(api_key, database: str) -> list[tuple]:
    rows = []
    for pool in readable_pools(api_key):
        sorting = {c.strip() for c in pool.sorting_key.split(",")}
        for position, (name, type_) in enumerate(pool.column_list(), start=1):
            clean = type_.split(" CODEC(")[0]
            key = int(name in sorting)
            rows.append(
                (
                    database,
                    pool.name,
                    name,
                    clean,
                    position,
                    "",
                    "",
                    "",
                    "",
                    0,
                    key,
                    key,
                    0,
                )
                + (None, None, None, None, None)
            )
    return rows


def _settings(api_key, database: str) -> list[tuple]:
    fixed = [
        ("readonly", "1", "UInt64"),
        ("max_execution_time", str(settings.SQL_MAX_EXECUTION_SECONDS), "Seconds"),
        ("max_result_rows", str(settings.API_EXPORT_MAX_ROWS), "UInt64"),
        ("final", "1", "Bool"),
        ("date_time_output_format", CLICKHOUSE_OUTPUT["date_time_output_format"], "DateTimeOutputFormat"),
    ]
    return [(name, value, 1, "fixed by Shoal", 1, kind) for name, value, kind in fixed]


ROWS: dict[str, Callable] = {
    "databases": _databases,
    "tables": _tables,
    "columns": _columns,
    "settings": _settings,
}


def table_sql(api_key, name: str, database: str | None = None) -> str:
    return values(STRUCTURES[name], ROWS[name](api_key, shown(database)))


# --- the rewrite -----------------------------------------------------------------------------------

_SYSTEM = re.compile(
    r"(?<![\w.`\"])(?:`system`|\"system\"|system)\s*\.\s*(?:`(?P<t1>\w+)`|\"(?P<t2>\w+)\"|(?P<t3>\w+))",
    re.IGNORECASE,
)
# What may follow a table in FROM/JOIN and is not an alias.
_NOT_ALIAS = frozenset(
    [
        "where",
        "join",
        "inner",
        "left",
        "right",
        "full",
        "cross",
        "on",
        "using",
        "order",
        "group",
        "limit",
        "having",
        "union",
        "settings",
        "format",
        "array",
        "prewhere",
        "final",
        "sample",
        "window",
        "qualify",
        "offset",
        "global",
        "any",
        "all",
        "semi",
        "anti",
        "asof",
        "paste",
        "intersect",
        "except",
        "into",
        "with",
    ]
)
_ALIAS = re.compile(r"\s+(?:AS\s+)?(?P<alias>`\w+`|\"\w+\"|\w+)", re.IGNORECASE)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'")


def _table_of(match: re.Match) -> str:
    return (match.group("t1") or match.group("t2") or match.group("t3")).lower()


def mentions_system(text: str) -> bool:
    return bool(_SYSTEM.search(_STRINGS.sub("''", text)))


def rewrite(api_key, text: str, database: str | None = None) -> str | None:
    """The client's query with each system table it reads replaced by Shoal's rows, or None when
    it reads a system table Shoal does not answer (it is then refused as any system table)."""
    masked = _STRINGS.sub(lambda m: "'" + "x" * (len(m.group()) - 2) + "'", text)
    found = list(_SYSTEM.finditer(masked))
    if not found or any(_table_of(m) not in STRUCTURES for m in found):
        return None
    aliases: dict[str, str] = {}
    for m in found:  # the aliases the client gave its system tables
        after = m.end()
        if masked[after : after + 1] != "." and not masked[after:].lstrip().startswith("."):
            alias = _ALIAS.match(masked, after)
            word = alias.group("alias").strip('`"') if alias else ""
            if word and word.lower() not in _NOT_ALIAS:
                aliases.setdefault(_table_of(m), word)
    out, last = [], 0
    for m in found:
        name = _table_of(m)
        out.append(text[last : m.start()])
        rest = masked[m.end() :]
        if rest.lstrip().startswith("."):  # a qualified column: system.columns.type
            out.append(aliases.get(name, f"__shoal_{name}"))
        else:
            subquery = f"({table_sql(api_key, name, database)})"
            out.append(subquery if name in aliases else f"{subquery} AS __shoal_{name}")
        last = m.end()
    out.append(text[last:])
    return "".join(out)


# --- statements that are not SELECTs ---------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_IDENT = r"(?:`(?P<{0}1>\w+)`|\"(?P<{0}2>\w+)\"|(?P<{0}3>\w+))"


def _ident(match: re.Match, group: str) -> str | None:
    return match.group(f"{group}1") or match.group(f"{group}2") or match.group(f"{group}3")


_SHOW_DATABASES = re.compile(r"^SHOW DATABASES$", re.I)
# clickhouse-go's hello over HTTP (Grafana): the server's name, version, revision and time zone.
# displayName() would name the host; Shoal answers its own name.
_HELLO = re.compile(r"^SELECT displayName\(\), version\(\), revision\(\), timezone\(\)$", re.I)
HELLO = (
    "SELECT 'shoal' AS `displayName()`, version() AS `version()`, revision() AS `revision()`, "
    "timezone() AS `timezone()`"
)
_SHOW_TABLES = re.compile(r"^SHOW TABLES( (FROM|IN) " + _IDENT.format("db") + ")?$", re.I)
_DESCRIBE = re.compile(
    r"^(DESC|DESCRIBE)( TABLE)? (" + _IDENT.format("db") + r"\.)?" + _IDENT.format("tb") + "$", re.I
)
_EXISTS = re.compile(
    r"^EXISTS( TEMPORARY)?( TABLE)? (" + _IDENT.format("db") + r"\.)?" + _IDENT.format("tb") + "$", re.I
)


class NoSuchTable(Exception):
    """DESCRIBE of a table this key cannot read: answered as ClickHouse answers a missing table."""

    code = 60  # UNKNOWN_TABLE


def statement_answer(api_key, text: str, database: str | None = None) -> str | None:
    """Shoal's SQL for SHOW DATABASES, SHOW TABLES, DESCRIBE and EXISTS, or None; NoSuchTable for
    DESCRIBE of a table the key cannot read."""
    normalized = _SPACE.sub(" ", text.strip().rstrip(";").strip())
    if _HELLO.match(normalized):
        return HELLO
    if _SHOW_DATABASES.match(normalized):
        return f"SELECT name FROM ({table_sql(api_key, 'databases', database)}) ORDER BY name"
    match = _SHOW_TABLES.match(normalized)
    if match:
        names = [(p.name,) for p in readable_pools(api_key)] if ours(_ident(match, "db")) else []
        return values("name String", names)
    match = _DESCRIBE.match(normalized)
    if match:
        return _describe(api_key, _ident(match, "db"), _ident(match, "tb"))
    match = _EXISTS.match(normalized)
    if match:
        known = ours(_ident(match, "db")) and any(
            p.name == _ident(match, "tb") for p in readable_pools(api_key)
        )
        return values("result UInt8", [(1 if known else 0,)])
    return None


def _describe(api_key, database: str | None, table: str | None) -> str:
    pool = next((p for p in readable_pools(api_key) if p.name == table), None) if ours(database) else None
    if pool is None:
        # As ClickHouse answers for a table that does not exist (another key's pool included).
        raise NoSuchTable(f"Table {database or settings.WAREHOUSE.database}.{table} does not exist.")
    rows = [(name, type_.split(" CODEC(")[0], "", "", "", "", "") for name, type_ in pool.column_list()]
    structure = (
        "name String, type String, default_type String, default_expression String, comment String, "
        "codec_expression String, ttl_expression String"
    )
    return values(structure, rows)
