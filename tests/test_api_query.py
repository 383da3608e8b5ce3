"""The query APIs against real components: API keys, POST /api/v1/sql and the /clickhouse
interface with clickhouse-connect (and pandas) as a real client, a real warehouse worker, Redis."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from urllib.parse import urlsplit

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from django.utils import timezone

from console.access.api import keys
from console.access.api.models import ApiKey
from pools.services import create_pool
from tests.helpers.firehose import deliver as fill
from tests.helpers.pools import GUIDE_STEP_4
from tests.helpers.servers import http


def api_sql(live_server, key: str | None, payload: dict):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return http("POST", live_server.url + "/api/v1/sql", json.dumps(payload).encode(), headers)


@pytest.fixture
def other_pool(transactional_db, pool_name):
    return create_pool(pool_name + "_other")


def ch_client(live_server, name: str, key: str, **kwargs):
    url = urlsplit(live_server.url)
    return clickhouse_connect.get_client(
        host=url.hostname, port=url.port, username=name, password=key, proxy_path="/clickhouse", **kwargs
    )


def test_sql_api_answers_json_with_types_statistics_and_cost_headers(live_server, pool, warehouse_worker):
    fill(live_server, pool)
    key = keys.create_key("app", "query").key
    sql = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name) + " ORDER BY order_id, quantity"
    reply = api_sql(live_server, key, {"sql": sql})
    assert reply.status == 200, reply.body
    data = reply.json()
    assert data["columns"][:3] == ["order_id", "timestamp", "deleted"]
    assert data["types"][2] == "Bool" and len(data["types"]) == len(data["columns"]) == 9
    assert [(r[0], r[2], r[4]) for r in data["rows"]] == [
        ("o1", False, 3),
        ("o1", False, 4),
        ("o2", False, 1),
        ("o2", True, None),
    ]
    assert data["statistics"]["rows_read"] == 4 and data["statistics"]["rows"] == 4
    assert int(reply.headers["X-Shoal-Rows-Read"]) == 4
    assert float(reply.headers["X-Shoal-Elapsed-Ms"]) > 0
    assert ApiKey.objects.get(name="app").last_used_at is not None


def test_sql_api_binds_parameters_and_streams_csv_jsoneachrow_and_parquet(
    live_server, pool, warehouse_worker
):
    import pyarrow.parquet as pq

    fill(live_server, pool)
    key = keys.create_key("exporter", "query", pools=[pool.name]).key
    sql = (
        f"SELECT toString(keys.order_id.S) AS id, count() AS n FROM {pool.name} "
        "WHERE event_name = {e:String} GROUP BY id ORDER BY id"
    )
    reply = api_sql(live_server, key, {"sql": sql, "parameters": {"e": "INSERT"}})
    assert reply.json()["rows"] == [["o1", 1], ["o2", 1]]
    csv = api_sql(live_server, key, {"sql": sql, "parameters": {"e": "MODIFY"}, "format": "CSV"})
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert csv.body == b'"o1",1\n'
    lines = api_sql(live_server, key, {"sql": sql, "parameters": {"e": "INSERT"}, "format": "JSONEachRow"})
    assert [json.loads(line) for line in lines.body.splitlines()] == [
        {"id": "o1", "n": 1},
        {"id": "o2", "n": 1},
    ]
    parquet = api_sql(live_server, key, {"sql": sql, "parameters": {"e": "INSERT"}, "format": "Parquet"})
    table = pq.read_table(io.BytesIO(parquet.body))
    assert table.column("id").to_pylist() == ["o1", "o2"] and table.column("n").to_pylist() == [1, 1]
    big = api_sql(live_server, key, {"sql": "SELECT number FROM numbers(300000)", "format": "Parquet"})
    assert big.status == 200 and pq.read_table(io.BytesIO(big.body)).num_rows == 300000


def test_sql_api_refuses_without_a_valid_key_and_outside_the_guard(
    live_server, pool, other_pool, warehouse_worker
):
    fill(live_server, pool)
    assert api_sql(live_server, None, {"sql": "SELECT 1"}).status == 401
    assert api_sql(live_server, "shoal_nope", {"sql": "SELECT 1"}).status == 401
    key = keys.create_key("limited", "query", pools=[pool.name]).key
    assert api_sql(live_server, key, {"sql": f"SELECT count() FROM {pool.name}"}).json()["rows"] == [[4]]
    refused = api_sql(live_server, key, {"sql": f"SELECT count() FROM {other_pool.name}"})
    assert refused.status == 403 and refused.headers["Content-Type"] == "application/problem+json"
    assert f"Data Pool {other_pool.name} is not available to this API key" in refused.json()["detail"]
    inside = api_sql(live_server, key, {"sql": f"SELECT 1 WHERE 1 IN (SELECT 1 FROM {other_pool.name})"})
    assert inside.status == 403
    assert api_sql(live_server, key, {"sql": "SELECT * FROM system.tables"}).status == 403
    assert api_sql(live_server, key, {"sql": f"DROP TABLE {pool.name}"}).status == 403
    syntax = api_sql(live_server, key, {"sql": "SELEC 1"})
    assert syntax.status == 400 and syntax.json()["code"] == 62
    # A WITH name that is not a pool is fine for a limited key.
    cte = api_sql(
        live_server, key, {"sql": f"WITH t AS (SELECT count() AS c FROM {pool.name}) SELECT c FROM t"}
    )
    assert cte.json()["rows"] == [[4]]


def test_the_rate_limit_is_per_key(live_server, warehouse_worker, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    first = keys.create_key("busy", "query").key
    second = keys.create_key("calm", "query").key
    statuses = [api_sql(live_server, first, {"sql": "SELECT 1"}).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert api_sql(live_server, second, {"sql": "SELECT 1"}).status == 200


def test_clickhouse_connect_reads_the_guides_step_4_with_a_query_key(
    live_server, pool, other_pool, warehouse_worker
):
    fill(live_server, pool)
    new = keys.create_key("notebook", "query", pools=[pool.name])
    client = ch_client(live_server, "notebook", new.key)
    sql = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name) + " ORDER BY order_id, quantity"
    result = client.query(sql)
    assert list(result.column_names[:3]) == ["order_id", "timestamp", "deleted"]
    rows = result.named_results()
    rows = list(rows)
    assert [(r["order_id"], r["deleted"], r["quantity"]) for r in rows] == [
        ("o1", False, 3),
        ("o1", False, 4),
        ("o2", False, 1),
        ("o2", True, None),
    ]
    assert rows[0]["timestamp"].year == 2024 and rows[0]["total_price"] == 12.5
    df = client.query_df(
        f"SELECT toString(keys.order_id.S) AS id, event_name FROM {pool.name} ORDER BY _received_at, id"
    )
    assert list(df.columns) == ["id", "event_name"] and len(df) == 4
    assert client.query("SELECT {n:UInt32} + 1 AS x", parameters={"n": 41}).result_rows == [(42,)]

    with pytest.raises(DatabaseError, match=f"Data Pool {other_pool.name} is not available"):
        client.query(f"SELECT count() FROM {other_pool.name}")
    with pytest.raises(DatabaseError, match="readonly|not allowed"):
        client.command(f"INSERT INTO {pool.name} (event_name) VALUES ('x')")
    with pytest.raises(DatabaseError, match="system tables are not available"):
        client.query("SELECT query FROM system.query_log")


def test_revoked_expired_and_wrong_name_keys_are_refused(live_server, warehouse_worker):
    revoked = keys.create_key("old", "query")
    keys.revoke(revoked.api_key)
    with pytest.raises(DatabaseError, match="revoked"):
        ch_client(live_server, "old", revoked.key)
    expiring = keys.create_key("brief", "query", expires_at=timezone.now() + timedelta(seconds=60))
    assert ch_client(live_server, "brief", expiring.key).query("SELECT 1").result_rows == [(1,)]
    ApiKey.objects.filter(pk=expiring.api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(DatabaseError, match="expired"):
        ch_client(live_server, "brief", expiring.key)
    good = keys.create_key("good", "query")
    with pytest.raises(DatabaseError, match="not valid"):
        ch_client(live_server, "someone-else", good.key)
    assert api_sql(live_server, revoked.key, {"sql": "SELECT 1"}).status == 401


def test_a_parameter_cannot_smuggle_a_table_past_the_guard(live_server, pool, other_pool, warehouse_worker):
    key = keys.create_key("sly", "query", pools=[pool.name]).key
    for table in ("system.tables", other_pool.name):
        reply = api_sql(live_server, key, {"sql": "SELECT * FROM {t:Identifier}", "parameters": {"t": table}})
        assert reply.status == 403, (table, reply.body)
    ok = api_sql(
        live_server, key, {"sql": "SELECT count() FROM {t:Identifier}", "parameters": {"t": pool.name}}
    )
    assert ok.status == 200 and ok.json()["rows"] == [[0]]


def test_a_failed_export_leaves_nothing_for_the_next_answer(local_warehouse):
    from console.warehouse import WarehouseError

    for _ in range(2):
        with pytest.raises(WarehouseError):
            # Blocks of 65,536 rows: the first ones are written out before the third one fails.
            local_warehouse.query_format(
                "SELECT number FROM numbers(200000) WHERE number % 100 = 0 AND throwIf(number = 150000) = 0",
                "CSV",
                max_rows=1_000_000,
            )
        good = local_warehouse.query_format("SELECT 1 AS one", "CSV", max_rows=1_000_000)
        assert good.data == b"1\n"
