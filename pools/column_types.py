"""ClickHouse column types as Shoal accepts them: a strict grammar, never free text.

A type a user writes (the view wizard's type fields, `create_mv --type`) and every type stored on a
pool goes through `canonical` before it can reach a CREATE TABLE. The grammar knows type names and
the arguments of parametrised types, and nothing else: no DEFAULT, ALIAS, MATERIALIZED, CODEC,
comments or expressions, so a "type" cannot carry SQL into DDL. What the grammar admits the
warehouse checks as well (views_mv.tasks.warehouse_check_types) before a view is created.
"""

from __future__ import annotations

import re

SIMPLE = frozenset(
    {
        *(f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64, 128, 256)),
        "Float32",
        "Float64",
        "BFloat16",
        "String",
        "Bool",
        "Boolean",
        "Date",
        "Date32",
        "DateTime",
        "UUID",
        "IPv4",
        "IPv6",
        "JSON",
        "Dynamic",
        "Nothing",
    }
)
# Types with one nested type argument, and with two (Map).
WRAPPERS = frozenset({"Nullable", "LowCardinality", "Array"})
# Types whose arguments are numbers (and, for DateTime/DateTime64, a time zone).
NUMERIC_ARGS = {
    "FixedString": (1, 1),
    "Decimal": (1, 2),
    "Decimal32": (1, 1),
    "Decimal64": (1, 1),
    "Decimal128": (1, 1),
    "Decimal256": (1, 1),
    "DateTime64": (1, 1),
}
MAX_LENGTH = 1000
MAX_DEPTH = 16

_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>-?\d+)|(?P<string>'(?:[^'\\]|\\.)*')|(?P<punct>[(),=]))"
)
_TIME_ZONE = re.compile(r"^[A-Za-z0-9_/+\-]{1,64}$")
_ENUM_NAME = re.compile(r"^[^'\\\x00-\x1f]{0,200}$")


class TypeSyntaxError(ValueError):
    """Not a column type Shoal accepts; the message says why, in words a user can act on."""


def canonical(text: str) -> str:
    """The type in ClickHouse's spelling (e.g. `Nullable(Int32)`), or TypeSyntaxError."""
    if not isinstance(text, str) or not text.strip():
        raise TypeSyntaxError("Give a ClickHouse type, e.g. String, Nullable(Int32) or DateTime64(3, 'UTC').")
    if len(text) > MAX_LENGTH:
        raise TypeSyntaxError(f"A type is at most {MAX_LENGTH} characters.")
    parser = _Parser(_tokens(text), text)
    result = parser.type_(0)
    if parser.position != len(parser.tokens):
        raise parser.error("unexpected text after the type")
    return result


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise TypeSyntaxError(
                f"{text!r} is not a ClickHouse type: unexpected {text[position:].strip()[:20]!r}; "
                "a type has names, numbers, quoted time zones or enum names, parentheses and commas only."
            )
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str):
        self.tokens, self.text, self.position = tokens, text, 0

    def error(self, why: str) -> TypeSyntaxError:
        return TypeSyntaxError(f"{self.text!r} is not a ClickHouse type Shoal accepts: {why}.")

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        if self.position >= len(self.tokens):
            return False
        k, v = self.tokens[self.position]
        return (value is None or v == value) and (kind is None or k == kind)

    def take(self, kind: str, value: str | None = None) -> str:
        if not self.peek(value, kind):
            found = self.tokens[self.position][1] if self.position < len(self.tokens) else "the end"
            raise self.error(f"expected {value or kind} but found {found!r}")
        self.position += 1
        return self.tokens[self.position - 1][1]

    def type_(self, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise self.error("types are nested too deeply")
        name = self.take("name")
        if name in WRAPPERS:
            return f"{name}({self.group(lambda: self.type_(depth + 1), 1, 1)[0]})"
        if name == "Map":
            key, value = self.group(lambda: self.type_(depth + 1), 2, 2)
            return f"Map({key}, {value})"
        if name == "Tuple":
            return f"Tuple({', '.join(self.group(lambda: self.element(depth + 1), 1, 1000))})"
        if name in NUMERIC_ARGS:
            low, high = NUMERIC_ARGS[name]
            if name == "DateTime64":
                args = self.group(self.number_or_zone, 1, 2)
                if args[0].startswith("'"):
                    raise self.error("DateTime64 takes its precision (0–9) first")
                if not 0 <= int(args[0]) <= 9:
                    raise self.error("DateTime64's precision is 0 to 9")
                return f"DateTime64({', '.join(args)})"
            args = self.group(lambda: self.take("number"), low, high)
            return f"{name}({', '.join(args)})"
        if name == "DateTime" and self.peek("("):
            return f"DateTime({self.group(self.zone, 1, 1)[0]})"
        if name in ("Enum8", "Enum16", "Enum"):
            return f"{name}({', '.join(self.group(self.enum_value, 1, 1000))})"
        if name in SIMPLE:
            if self.peek("("):
                raise self.error(f"{name} takes no arguments")
            return name
        raise self.error(f"unknown type name {name!r}")

    def group(self, item, low: int, high: int) -> list[str]:
        self.take("punct", "(")
        items = [item()]
        while self.peek(","):
            self.take("punct", ",")
            items.append(item())
        self.take("punct", ")")
        if not low <= len(items) <= high:
            raise self.error(f"wrong number of arguments ({len(items)})")
        return items

    def element(self, depth: int) -> str:
        # A Tuple element is `name Type` or `Type`.
        if (
            self.peek(kind="name")
            and self.position + 1 < len(self.tokens)
            and self.tokens[self.position + 1][0] == "name"
        ):
            name = self.take("name")
            return f"{name} {self.type_(depth)}"
        return self.type_(depth)

    def zone(self) -> str:
        value = self.take("string")
        if not _TIME_ZONE.match(value[1:-1]):
            raise self.error(f"{value} is not a time zone name")
        return value

    def number_or_zone(self) -> str:
        return self.zone() if self.peek(kind="string") else self.take("number")

    def enum_value(self) -> str:
        value = self.take("string")
        if not _ENUM_NAME.match(value[1:-1]):
            raise self.error(f"{value} is not an enum name Shoal accepts")
        self.take("punct", "=")
        return f"{value} = {self.take('number')}"
