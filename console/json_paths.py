"""A JSON path that names a whole DynamoDB attribute reads as that attribute, as DynamoDB sent it.

In a ClickHouse JSON column only leaves have values: `new_image.orderItems` (a list attribute,
`{"L": [...]}`) or `new_image.customer` (a map) reads as NULL in every row, though the guide's
Step 4 writes `new_image.orderItems AS order_items` to keep the attribute. ClickHouse reads a
sub-object with `new_image.^orderItems`; so every identifier that names an object is rewritten to

    (nullIf(toJSONString(new_image.^`orderItems`), '{}') AS `new_image.orderItems`)

a Nullable(String) holding the attribute's DynamoDB JSON (NULL when the item lacks it), under the
name the identifier had. Leaves (`new_image.quantity.N`) and explicit syntax (`.^`, `.:Type`) are
left alone, and so is everything inside comments and string literals (`'…'`, `$$…$$`,
`$tag$…$tag$`): only identifiers are rewritten.

Which paths name objects:
- in a DynamoDB image (`keys`, `new_image`, `old_image`), the DynamoDB JSON grammar decides:
  attribute names and type descriptors alternate (`orderItems` → `L`, `customer` → `M` → `name` →
  `S`), so a path ending on an attribute name, or on `M`, names an object;
- in any other JSON column, the data decides: a path under which the column has other paths.

`rewrite` is a pure function of the text. Callers check the text the user wrote with
console.sql_guard (so that errors point into it), apply `effective_sql` after the check, and check
the rewritten text again before it runs (console.tasks.execute; views_mv.tasks, whose
`checked_select` result is what view DDL accepts): the rewrite adds no table, database or function
outside toJSONString and nullIf, and what runs is always a statement the guard passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from console.warehouse import Warehouse
from console.warehouse.base import quote_identifier

IMAGE_COLUMNS = frozenset({"keys", "new_image", "old_image"})
# DynamoDB's attribute type descriptors; after M comes an attribute name again.
LEAF_DESCRIPTORS = frozenset({"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L"})
# The type a JSON column stores each scalar descriptor's value as (DynamoDB sends S, N and B as
# JSON strings, BOOL and NULL as JSON booleans). Sets and lists have no NULL-able form: a
# missing one reads as an empty array, so they keep no declared type here.
SCALAR_TYPES = {"S": "String", "N": "String", "B": "String", "BOOL": "Bool", "NULL": "Bool"}
PATH_SAMPLE_ROWS = 10_000

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# A heredoc string, as ClickHouse's lexer reads one: $$…$$ or $tag$…$tag$.
_HEREDOC_TAG = re.compile(r"\$[A-Za-z0-9_]*\$")


@dataclass(frozen=True)
class JsonColumns:
    """What `rewrite` needs to know about the tables a query may read."""

    images: frozenset[str] = IMAGE_COLUMNS  # JSON columns holding DynamoDB JSON
    others: frozenset[str] = frozenset()  # other JSON columns
    objects: frozenset[str] = field(default_factory=frozenset)  # "column.a.b" seen with sub-paths

    def names_object(self, column: str, path: list[str]) -> bool:
        if not path:
            return False
        if column in self.images:
            return len(path) % 2 == 1 or path[-1] == "M"
        return ".".join([column, *path]) in self.objects


@dataclass
class _Chain:
    start: int
    end: int
    parts: list[str]  # unquoted names
    explicit: bool  # followed by .^ or .: (the user's own sub-column syntax)


def rewrite(sql: str, columns: JsonColumns) -> str:
    """`sql` with every identifier that names a JSON sub-object replaced by its JSON text."""
    out: list[str] = []
    last = 0
    for chain in chains(sql):
        replacement = _replacement(chain, columns)
        if replacement is not None:
            out.append(sql[last : chain.start])
            out.append(replacement)
            last = chain.end
    out.append(sql[last:])
    return "".join(out)


def _replacement(chain: _Chain, columns: JsonColumns) -> str | None:
    if chain.explicit or len(chain.parts) < 2:
        return None
    known = columns.images | columns.others
    parts = chain.parts
    # `new_image.x` or, qualified by a table (or its alias), `t.new_image.x`.
    at = 0 if parts[0] in known else 1 if len(parts) > 2 and parts[1] in known else -1
    if at < 0 or not columns.names_object(parts[at], parts[at + 1 :]):
        return None
    column = ".".join(_name(p) for p in parts[: at + 1])
    path = _name(".".join(parts[at + 1 :]))
    name = quote_identifier(".".join(parts))
    return f"(nullIf(toJSONString({column}.^{path}), '{{}}') AS {name})"


def typed_leaves(sql: str, columns: JsonColumns | None = None) -> str:
    """`sql` with every scalar leaf of a DynamoDB image read as the type the grammar gives it, for
    asking the warehouse which type each output column declares (`DESCRIBE`), never for running:
    `new_image.quantity.N` (Dynamic) becomes `new_image.quantity.N.:String` (Nullable(String)), so
    `toInt32OrNull(new_image.quantity.N)` declares Nullable(Int32). A path in `keys` names a part
    of the primary key, which every change record carries: it declares String, not Nullable."""
    columns = columns or JsonColumns()
    out: list[str] = []
    last = 0
    for chain in chains(sql):
        replacement = _typed_leaf(chain, columns)
        if replacement is not None:
            out.append(sql[last : chain.start])
            out.append(replacement)
            last = chain.end
    out.append(sql[last:])
    return "".join(out)


def _typed_leaf(chain: _Chain, columns: JsonColumns) -> str | None:
    parts = chain.parts
    if chain.explicit or len(parts) < 3:
        return None
    at = 0 if parts[0] in columns.images else 1 if len(parts) > 3 and parts[1] in columns.images else -1
    path = parts[at + 1 :]
    if at < 0 or len(path) % 2 or path[-1] not in SCALAR_TYPES:
        return None
    typed = ".".join(_name(p) for p in parts) + ".:" + SCALAR_TYPES[path[-1]]
    if parts[at] == "keys":
        typed = f"assumeNotNull({typed})"
    return f"({typed} AS {quote_identifier('.'.join(parts))})"


def _name(name: str) -> str:
    return name if _WORD.fullmatch(name) else quote_identifier(name)


def chains(sql: str) -> Iterator[_Chain]:
    """Dotted identifiers outside comments and string literals ('…', $$…$$, $tag$…$tag$) (`a.b.c`,
    `` a.`b c` ``)."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith(("--", "# ", "#!"), i):
            i = _line_end(sql, i)
        elif sql.startswith("/*", i):
            i = _comment_end(sql, i)
        elif c == "'":
            i = _quoted_end(sql, i, "'")
        elif c == "$":
            i = _heredoc_end(sql, i)
        elif c.isdigit():
            i = _number_end(sql, i)
        elif c in '`"' or _WORD.match(sql, i):
            if i > 0 and sql[i - 1] in ".^":  # `x.^name`, `t.1`: not the start of a chain
                i = _name_end(sql, i)
                continue
            chain = _chain(sql, i)
            yield chain
            i = chain.end
        else:
            i += 1


def _chain(sql: str, start: int) -> _Chain:
    parts = []
    i = start
    while True:
        end = _name_end(sql, i)
        parts.append(_unquote(sql[i:end]))
        i = end
        if i + 1 < len(sql) and sql[i] == "." and (sql[i + 1] in '`"' or _WORD.match(sql, i + 1)):
            i += 1
            continue
        break
    explicit = sql.startswith((".^", ".:"), i) or sql.startswith(".", i) and sql[i + 1 : i + 2].isdigit()
    return _Chain(start, i, parts, explicit)


def _name_end(sql: str, i: int) -> int:
    if sql[i] in '`"':
        return _quoted_end(sql, i, sql[i])
    match = _WORD.match(sql, i)
    return match.end() if match else i + 1


def _unquote(token: str) -> str:
    if token[:1] in '`"' and len(token) >= 2:
        quote = token[0]
        body = token[1:-1].replace(quote * 2, quote)
        return re.sub(r"\\(.)", r"\1", body)
    return token


def _quoted_end(sql: str, i: int, quote: str) -> int:
    j = i + 1
    while j < len(sql):
        if sql[j] == "\\":
            j += 2
        elif sql[j] == quote:
            if sql[j + 1 : j + 2] == quote:  # '' inside a literal
                j += 2
            else:
                return j + 1
        else:
            j += 1
    return len(sql)


def _heredoc_end(sql: str, i: int) -> int:
    """After the heredoc opening at `i`; just after the `$` where none opens (or none closes)."""
    tag = _HEREDOC_TAG.match(sql, i)
    if tag is None:
        return i + 1
    close = sql.find(tag.group(), tag.end())
    return i + 1 if close < 0 else close + len(tag.group())


def _line_end(sql: str, i: int) -> int:
    j = sql.find("\n", i)
    return len(sql) if j < 0 else j + 1


def _comment_end(sql: str, i: int) -> int:
    depth, j = 0, i
    while j < len(sql):  # ClickHouse nests /* */ comments
        if sql.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(sql)


def _number_end(sql: str, i: int) -> int:
    match = re.compile(r"[0-9][0-9A-Za-z_.]*").match(sql, i)
    return match.end() if match else i + 1


def json_columns(warehouse: Warehouse, sql: str) -> JsonColumns:
    """The pool database's JSON columns, and for those outside DynamoDB images that `sql` reads
    by a dotted path, which paths the data shows to be objects."""
    rows = warehouse.query(
        "SELECT table, name FROM system.columns WHERE database = currentDatabase() AND type LIKE 'JSON%'",
        readonly=True,
    ).rows
    others: dict[str, list[str]] = {}
    for table, name in rows:
        if name not in IMAGE_COLUMNS:
            others.setdefault(name, []).append(table)
    used = {p for c in chains(sql) for p in c.parts[:2]}
    objects: set[str] = set()
    for name in used & set(others):
        for table in others[name]:
            objects |= _object_paths(warehouse, table, name)
    return JsonColumns(others=frozenset(others), objects=frozenset(objects))


def _object_paths(warehouse: Warehouse, table: str, column: str) -> set[str]:
    found = warehouse.query(
        f"SELECT distinctJSONPaths({quote_identifier(column)}) FROM (SELECT {quote_identifier(column)} "
        f"FROM {quote_identifier(table)} LIMIT {PATH_SAMPLE_ROWS})",
        readonly=True,
    ).rows
    paths = found[0][0] if found else []
    objects = set()
    for path in paths:
        parts = path.split(".")
        for k in range(1, len(parts)):
            objects.add(".".join([column, *parts[:k]]))
    return objects


def effective_sql(warehouse: Warehouse, sql: str) -> str:
    """The SQL that runs for the user's `sql` (the same text when nothing names an object)."""
    if not any(len(c.parts) > 1 for c in chains(sql)):
        return sql
    return rewrite(sql, json_columns(warehouse, sql))
