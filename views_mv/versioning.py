"""The default version of a Mutable view over DynamoDB change events: the time of the change.

Kinesis Data Streams for DynamoDB may deliver changes out of order and more than once, and
Firehose may repeat whole batches; with "the last change received wins" (the guide's empty
version column) an old change can overwrite a newer one. So for a view that reads a DynamoDB
change-event pool, Shoal adds to its SELECT

  _shoal_version  the change's ApproximateCreationDateTime in microseconds (normalised by its
                  precision) × 1000 + a stable number from the event id (ties between two
                  different events in the same microsecond are broken the same way every time;
                  duplicates of one event collapse)
  _shoal_deleted  event_name = 'REMOVE' (unless the SELECT has its own delete flag)

and makes the target ReplacingMergeTree(_shoal_version, <delete flag>): the latest change wins
whatever the arrival order, duplicates collapse, and a deleted item disappears.
"""

from __future__ import annotations

VERSION_COLUMN = "_shoal_version"
DELETED_COLUMN = "_shoal_deleted"

VERSION_EXPRESSION = (
    "toUInt64(if(approximate_creation_date_time_precision = 'MICROSECOND'"
    " OR approximate_creation_date_time > 100000000000000,"
    " approximate_creation_date_time, approximate_creation_date_time * 1000)) * 1000"
    " + cityHash64(event_id) % 1000"
)
DELETED_EXPRESSION = "event_name = 'REMOVE'"

EXPLANATION = (
    "The latest change wins, whatever order Kinesis delivers them in: Shoal versions each record "
    "by the time of its DynamoDB change, and a REMOVE deletes it."
)


class CannotVersion(ValueError):
    pass


def add_columns(formatted_sql: str, extra: list[tuple[str, str]]) -> str:
    """Add `expr AS name` items to the top-level SELECT list of a query in ClickHouse's canonical
    format (formatQuery): its list items are indented by four spaces and its FROM starts a line."""
    lines = formatted_sql.rstrip().split("\n")
    if not lines or not lines[0].startswith("SELECT"):
        raise CannotVersion("only a plain SELECT (no WITH, no UNION) can be versioned automatically")
    try:
        at = next(i for i, line in enumerate(lines) if line.startswith("FROM "))
    except StopIteration:
        raise CannotVersion("the SELECT has no FROM") from None
    if any(line.startswith(("UNION", "EXCEPT", "INTERSECT")) for line in lines):
        raise CannotVersion("a UNION cannot be versioned automatically")
    if lines[0].strip() != "SELECT" and not lines[0].startswith("SELECT DISTINCT"):
        # A one-line select list ("SELECT a"): move it to its own line first.
        first = lines[0][len("SELECT ") :]
        lines[0:1] = ["SELECT", f"    {first}"]
        at += 1
    items = [f"    {expr} AS {name}" for name, expr in extra]
    lines[at - 1] = lines[at - 1] + ","
    lines[at:at] = [item + ("," if i < len(items) - 1 else "") for i, item in enumerate(items)]
    return "\n".join(lines)
