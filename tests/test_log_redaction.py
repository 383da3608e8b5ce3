"""ClickHouse's error messages quote the data they could not take ("Cannot parse 'x' as UInt32"):
logs keep the error's code and name, and the message stays where the role-checked pages show it."""

from __future__ import annotations

import logging

import pytest

from console.warehouse import WarehouseError, loggable
from pools.loader import claims
from pools.models import DataPool, Delivery

SECRET = "4111-1111-1111-1111"
CHDB_ERROR = (
    f"Code: 6. DB::Exception: Cannot parse string '{SECRET}' as UInt32: syntax error at begin of "
    "string. Note: there are toUInt32OrZero and toUInt32OrNull functions, which returns zero/NULL "
    "instead of throwing exception.: while executing 'FUNCTION toUInt32(...)'. (CANNOT_PARSE_TEXT)"
)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (CHDB_ERROR, "ClickHouse error 6 (CANNOT_PARSE_TEXT)"),
        (WarehouseError(CHDB_ERROR, code=6), "ClickHouse error 6 (CANNOT_PARSE_TEXT)"),
        (
            f"Code: 27. DB::Exception: Cannot parse input: expected '\"' before: '{SECRET}': (at row 1)\n"
            ": While executing ParallelParsingBlockInputFormat. (CANNOT_PARSE_INPUT_ASSERTION_FAILED) "
            "(version 24.8.4.13 (official build))",
            "ClickHouse error 27 (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
        ),
        (WarehouseError(f"the view refused '{SECRET}'"), "warehouse error (details on its page)"),
        # Shoal's own errors say nothing about the data: they stay as they are.
        (ConnectionError("Error 111 connecting to 127.0.0.1:6379"), "Error 111 connecting to 127.0.0.1:6379"),
    ],
)
def test_it_keeps_the_code_and_name_and_drops_the_message(error, expected):
    assert loggable(error) == expected
    assert SECRET not in loggable(error)


@pytest.mark.django_db
def test_a_failed_load_logs_no_record_data(caplog):
    pool = DataPool.objects.create(name="redacted_orders")
    delivery = Delivery.objects.create(
        pool=pool, request_id="r1", record_count=1, status=Delivery.Status.LOADING, claim_token="t"
    )
    with caplog.at_level(logging.WARNING):
        claims.release(delivery.pk, "t", CHDB_ERROR)
    assert "ClickHouse error 6 (CANNOT_PARSE_TEXT)" in caplog.text
    assert SECRET not in caplog.text
    delivery.refresh_from_db()
    assert SECRET in delivery.error  # the pool page, behind its role, still says what went wrong
