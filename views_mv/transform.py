""" "Transform into an entity pool": the guide's Step 4 written for one DynamoDB pool, from its
table's key schema and the attributes its changes carried so far, with the guide's answers.

`seen` (warehouse side) reads what the pool holds; `step4_sql` and `answers` are pure, so the SQL
a pool gets can be tested without a warehouse. The SQL then goes through the same inspection,
guard and wizard as SQL a user writes (views_mv/planning.py, views_mv/wizard.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from console.warehouse import Warehouse
from console.warehouse.base import quote_identifier

SAMPLE_ROWS = 10_000
SCALARS = ("S", "N", "B", "BOOL", "NULL")
# Column names the SQL itself uses.
TAKEN = {"deleted", "new_image", "old_image"}
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Seen:
    """What a DynamoDB pool's changes show: key attributes (name, descriptor), those among them
    whose every value reads as a date and time, and the items' other attributes (name,
    descriptor, whether every N value is whole)."""

    keys: list[tuple[str, str]] = field(default_factory=list)
    time_keys: set[str] = field(default_factory=set)
    attributes: list[tuple[str, str, bool]] = field(default_factory=list)


def seen(warehouse: Warehouse, pool_table: str) -> Seen:
    """The key schema and attributes of the latest SAMPLE_ROWS changes (Keys always holds the
    whole primary key, so one change shows it)."""
    recent = f"(SELECT keys, new_image FROM {pool_table} ORDER BY _received_at DESC LIMIT {SAMPLE_ROWS})"
    key_paths, image_paths = warehouse.query(
        f"SELECT distinctJSONPaths(keys), distinctJSONPaths(new_image) FROM {recent}", readonly=True
    ).rows[0]
    found = Seen(keys=_top_level(key_paths, scalars_only=True))
    attributes = [(n, d) for n, d in _top_level(image_paths) if n not in {k for k, _ in found.keys}]
    probes, names = [], []
    for name, descriptor in found.keys:
        if descriptor == "S":
            value = f"keys.{_path(name)}.S"
            probes.append(f"count() > 0 AND countIf(parseDateTimeBestEffortOrNull({value}) IS NULL) = 0")
            names.append(("time", name))
    for name, descriptor in attributes:
        if descriptor == "N":
            value = f"new_image.{_path(name)}.N"
            probes.append(f"countIf({value} IS NOT NULL AND toInt64OrNull({value}) IS NULL) = 0")
            names.append(("whole", name))
    answers = {}
    if probes:
        row = warehouse.query(f"SELECT {', '.join(probes)} FROM {recent}", readonly=True).rows[0]
        answers = {key: bool(value) for key, value in zip(names, row, strict=True)}
    found.time_keys = {name for (kind, name), yes in answers.items() if kind == "time" and yes}
    found.attributes = [(n, d, answers.get(("whole", n), False)) for n, d in attributes]
    return found


def _top_level(paths: list[str], scalars_only: bool = False) -> list[tuple[str, str]]:
    """(attribute, descriptor) of each top-level attribute, in name order: `order_id.S` →
    (order_id, S); `customer.M.name.S` → (customer, M). Names with dots are stored escaped."""
    found: dict[str, str] = {}
    for path in sorted(paths):
        parts = path.split(".")
        if len(parts) < 2 or (scalars_only and parts[1] not in SCALARS):
            continue
        found.setdefault(parts[0].replace("%2E", "."), parts[1])
    return list(found.items())


def _path(name: str) -> str:
    """An attribute name as a JSON path part (dots are stored as %2E, see docs/architecture.md)."""
    stored = name.replace(".", "%2E")
    return stored if _BARE.match(stored) else quote_identifier(stored)


def column_name(name: str) -> str:
    """The guide's column names: orderItems → order_items."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    snake = re.sub(r"[^a-z0-9_]", "_", snake).strip("_") or "attribute"
    return snake if not snake[0].isdigit() else f"a_{snake}"


def step4_sql(pool: str, found: Seen) -> str:
    """The guide's Step 4 SELECT for this pool: key columns from `keys` (a REMOVE has no
    NewImage), the deleted flag, each attribute seen, and both images."""
    lines, used = [], set(TAKEN)

    def alias(name: str) -> str:
        column = column_name(name)
        while column in used:
            column += "_"
        used.add(column)
        return column

    lines.append("  -- The unique identifier of the entity: the table's key")
    for name, descriptor in found.keys:
        value = f"keys.{_path(name)}.{descriptor}"
        if name in found.time_keys:
            value = f"parseDateTimeBestEffort({value})"
        lines.append(f"  {value} AS {alias(name)},")
    lines.append("  -- Save the deleted flag")
    lines.append("  if(event_name = 'REMOVE', true, false) AS deleted,")
    if found.attributes:
        lines.append("  -- The attributes seen so far")
    for name, descriptor, whole in found.attributes:
        path = f"new_image.{_path(name)}"
        if descriptor == "N":
            value = f"{'toInt64OrNull' if whole else 'toFloat64OrNull'}({path}.N)"
        elif descriptor in SCALARS:
            value = f"{path}.{descriptor}"
        else:  # a map, list or set: the attribute as DynamoDB sent it (docs/materialized-views.md)
            value = path
        lines.append(f"  {value} AS {alias(name)},")
    lines.append("  -- Always save the new and old image")
    lines.append("  new_image,")
    lines.append("  old_image")
    return "SELECT\n" + "\n".join(lines) + f"\nFROM {pool}"


def answers(found: Seen) -> dict:
    """The guide's answers: mutable records, identified by the key attributes that are not a
    time (the guide's order_id), queried by the time key (its timestamp); version left to Shoal."""
    key_columns = [column_name(n) for n, _ in found.keys]
    times = [column_name(n) for n, _ in found.keys if n in found.time_keys]
    unique = [c for c in key_columns if c not in times] or key_columns
    return {
        "mode": "mutable",
        "unique": unique,
        "time_column": times[0] if times else "",
        "filters": [],
        "version": "",
        "nullable_keys": False,
        "accept_type_changes": False,
    }
