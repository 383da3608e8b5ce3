"""The ClickHouse-server backend runs the same SQL as chDB. No server can be installed on the
development machines, so these tests run only where SHOAL_TEST_CLICKHOUSE_URL names one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from console.env import warehouse_from_url
from console.warehouse import WarehouseError
from pools import tables
from pools.models import DataPool
from pools.sources import dynamodb_stream
from tests.helpers.firehose import change_record, firehose_body

URL = os.environ.get("SHOAL_TEST_CLICKHOUSE_URL", "")
pytestmark = [
    pytest.mark.clickhouse,
    pytest.mark.skipif(not URL, reason="set SHOAL_TEST_CLICKHOUSE_URL to a ClickHouse server to run"),
]


@pytest.fixture
def server(settings, tmp_path):
    from console.warehouse.clickhouse_backend import ClickHouseWarehouse

    config = warehouse_from_url(URL, data_dir=tmp_path)
    settings.WAREHOUSE = config
    warehouse = ClickHouseWarehouse(config)
    warehouse.bootstrap()
    yield warehouse
    warehouse.close()


def test_it_loads_a_delivery_once_and_quarantines_bad_records(server, tmp_path: Path):
    pool = DataPool(name=f"ch_{uuid.uuid4().hex[:8]}")
    server.execute(tables.create_change_event_table(pool))
    _, body = firehose_body([change_record("o1"), b"not json", change_record("o2")])
    path = tmp_path / "body.json"
    path.write_bytes(body)
    token = {"insert_deduplication_token": f"test/{pool.name}"}
    select = dynamodb_stream.load_select([(path.name, 1, 1)])
    assert server.insert_files(select, pool.table, [path], settings=token) == 2
    server.insert_files(select, pool.table, [path], settings=token)  # a retry
    rows = server.query(f"SELECT keys.order_id.S FROM {pool.name} ORDER BY 1").rows
    assert rows == [["o1"], ["o2"]]
    rejected = server.query_file(dynamodb_stream.rejected_select(), path).rows
    assert [(r[0], r[2]) for r in rejected] == [(1, "record is not JSON")]
    server.execute(tables.drop_table(pool.name))


def test_user_queries_are_read_only(server):
    with pytest.raises(WarehouseError, match="readonly"):
        server.query("CREATE TABLE t (x Int8) ENGINE = Memory", readonly=True)
