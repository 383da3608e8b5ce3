"""Which warehouse errors are about the data, and which are about the moment.

A content error (a record the table or a view cannot take) is the same every time the same
records are inserted: retrying cannot help, so the loader isolates the records that cause it
and quarantines them with ClickHouse's reason. Everything else — a full disk, memory, too many
parts, an unreachable server, an error without a code — may pass, so the load is retried with
back-off for as long as it takes and never quarantines anything. An unlisted content error is
therefore retried (visibly, with its message on the pool page) rather than quarantining records
that may be good.
"""

from __future__ import annotations

import re
from datetime import timedelta

from console.warehouse import WarehouseError

# ClickHouse error codes raised by a value that cannot be parsed, converted or stored.
CONTENT_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA (e.g. a duplicate path in a JSON object)
        128,  # TOO_LARGE_ARRAY_SIZE
        131,  # TOO_LARGE_STRING_SIZE
        190,  # SIZES_OF_ARRAYS_DONT_MATCH
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
        407,  # DECIMAL_OVERFLOW
        691,  # UNKNOWN_ELEMENT_OF_ENUM
    }
)

RETRY_FIRST = 2.0
RETRY_LONGEST = 300.0


def is_content_error(exc: BaseException) -> bool:
    return isinstance(exc, WarehouseError) and exc.code in CONTENT_ERROR_CODES


_VIEW = re.compile(r"while pushing to view ([^\s(]+?)\.?(?:\s|\(|$)")


def refusing_view(exc: BaseException) -> str:
    """The Materialized View (database.name) whose SELECT raised `exc`, or ''."""
    match = _VIEW.search(str(exc))
    return match.group(1) if match else ""


def retry_delay(attempts: int) -> timedelta:
    """Back-off before the next attempt of a load that failed `attempts` times: 2 s, 4 s, … 5 min."""
    return timedelta(seconds=min(RETRY_LONGEST, RETRY_FIRST * 2 ** max(0, attempts - 1)))
