"""The warehouse after a failed statement: the thread's chDB connection is discarded, so the next
statement on that thread runs on a clean one."""

from __future__ import annotations

import pytest

from console.warehouse import WarehouseError


@pytest.mark.parametrize("readonly", [False, True])
def test_a_failed_query_does_not_break_the_next_one_on_the_thread(local_warehouse, readonly):
    for _ in range(3):
        with pytest.raises(WarehouseError, match="boom"):
            local_warehouse.query("SELECT throwIf(1, 'boom')", readonly=readonly)
        assert local_warehouse.query("SELECT 1 AS one", readonly=readonly).rows == [[1]]


def test_a_failed_statement_does_not_break_the_next_one_on_the_thread(local_warehouse):
    with pytest.raises(WarehouseError):
        local_warehouse.execute("INSERT INTO no_such_table SELECT throwIf(1, 'boom')")
    assert local_warehouse.query("SELECT 2 AS two").rows == [[2]]
    # The fresh connection is in the pool database with the session settings, as the first was.
    assert local_warehouse.query("SELECT currentDatabase()").rows == [["shoal"]]
    assert local_warehouse.query("SELECT getSetting('input_format_try_infer_dates')").rows == [[0]]
