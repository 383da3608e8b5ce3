"""Grafana's and Metabase's ClickHouse drivers, by their recorded requests (issue 19).

Neither driver can run here (Grafana's is Go inside Grafana's server, Metabase's a JVM driver that
needs Maven Central), so tests/data/clickhouse_driver_requests.json writes down, from the drivers'
sources, what each sends when a user adds the data source, tests it, browses the schema and runs
a query: method, path, URL parameters, headers, credentials and the SQL. Each is replayed exactly
against gunicorn-less Shoal (Django's live server, a real warehouse worker) with a key limited to
one pool, and its answer checked: the status, ClickHouse's headers and error shape, and, for
Metabase's compress=1, ClickHouse's compressed blocks. What the rows say is checked by asking the
same SQL again with default_format=JSONCompact (the recorded formats are binary).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings

from console.access.api import compressed_blocks, keys
from pools.services import create_pool
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct
from tests.helpers.servers import http
from tests.helpers.waiting import wait_for

RECORDED = json.loads((Path(__file__).parent / "data" / "clickhouse_driver_requests.json").read_text())


@pytest.fixture
def shoal(live_server, warehouse_worker):
    from pools.models import Delivery

    mine, other = create_pool("drivers_mine"), create_pool("drivers_other")
    land_direct(mine, [change_record("o1"), change_record("o1", "MODIFY")])
    wait_for(lambda: Delivery.objects.filter(pool=mine, status="loaded").exists(), message="load")
    key = keys.create_key("bi", "query", pools=[mine.name]).key
    values = {"db": settings.WAREHOUSE.database, "pool": mine.name, "other": other.name}
    return live_server.url, key, values


def fill(value, values: dict):
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def send(url: str, key: str, driver: dict, sql: str, values: dict, **override):
    params = {**fill(driver["params"], values), **override}
    headers = fill(driver["headers"], values)
    headers["Authorization"] = "Basic " + base64.b64encode(f"bi:{key}".encode()).decode()
    return http(driver["method"], f"{url}{driver['path']}?{urlencode(params)}", sql.encode(), headers)


@pytest.mark.parametrize(
    "recorded", RECORDED["requests"], ids=[f"{r['driver']}: {r['step']}" for r in RECORDED["requests"]]
)
def test_a_recorded_driver_request_is_answered_as_clickhouse_would(shoal, recorded):
    url, key, values = shoal
    driver = RECORDED["drivers"][recorded["driver"]]
    sql = fill(recorded["sql"], values)
    expect = fill(recorded["expect"], values)
    reply = send(url, key, driver, sql, values)
    assert reply.status == expect["status"], reply.body[:500]
    if reply.status != 200:
        # ClickHouse's error shape: plain text and the code in a header, never an HTML page.
        assert reply.headers["X-ClickHouse-Exception-Code"] == str(expect["code"])
        assert reply.body.startswith(f"Code: {expect['code']}. DB::Exception: ".encode()), reply.body
        assert values["other"] not in reply.body.decode() or "drivers_other" in sql
        return
    asked = driver["params"].get("default_format") or driver["headers"].get("X-ClickHouse-Format")
    assert reply.headers["X-ClickHouse-Format"] == asked
    body = reply.body
    if driver["params"].get("compress") == "1":
        body = compressed_blocks.read(body)  # checksums checked, as the Java client does
    assert body or expect.get("rows") == 0

    # What the rows say, asked again in JSON.
    again = send(url, key, driver, sql, values, default_format="JSONCompact", compress="0")
    assert again.status == 200, again.body[:500]
    answer = json.loads(again.body)
    rows, names = answer["data"], [m["name"] for m in answer["meta"]]
    if "rows" in expect:
        assert len(rows) == expect["rows"], rows
    if "first_column" in expect:
        assert [r[0] for r in rows] == expect["first_column"]
    for needle in expect.get("contains", []):
        assert any(needle in map(str, r) for r in rows), (needle, rows[:5])
    if "only_tables" in expect:
        assert {r[names.index("table")] for r in rows} == set(expect["only_tables"])
    for column, wanted in expect.get("columns", {}).items():
        assert sorted({r[names.index(column)] for r in rows}) == wanted, rows[:3]


def read_uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def test_clickhouse_go_s_hello_is_native_at_the_revision_it_names(shoal):
    """clickhouse-go reads its first answer with block info and a custom-serialization byte per
    column (the layout of the revision it sends); the revision Shoal reports is 0, so it reads
    every later answer as the plain Native chDB writes."""
    url, key, values = shoal
    driver = RECORDED["drivers"]["grafana"]
    reply = send(url, key, driver, "SELECT displayName(), version(), revision(), timezone()", values)
    assert reply.status == 200 and reply.headers["X-ClickHouse-Format"] == "Native"
    data = reply.body
    at = 0
    field, at = read_uvarint(data, at)
    assert field == 1 and data[at] == 0  # is_overflows
    field, at = read_uvarint(data, at + 1)
    assert field == 2  # bucket_num, then the end of the block info
    end, at = read_uvarint(data, at + 4)
    assert end == 0
    columns, at = read_uvarint(data, at)
    rows, at = read_uvarint(data, at)
    assert (columns, rows) == (4, 1)
    found = {}
    for _ in range(columns):
        size, at = read_uvarint(data, at)
        name = data[at : at + size].decode()
        size, at = read_uvarint(data, at + size)
        kind = data[at : at + size].decode()
        at += size
        assert data[at] == 0  # no custom serialization
        at += 1
        if kind == "String":
            size, at = read_uvarint(data, at)
            found[name] = data[at : at + size].decode()
            at += size
        else:
            found[name] = int.from_bytes(data[at : at + 4], "little")
            at += 4
    assert at == len(data)
    assert found["displayName()"] == "shoal" and found["revision()"] == 0 and found["timezone()"] == "UTC"
    assert found["version()"][0].isdigit()
