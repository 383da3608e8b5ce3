"""/clickhouse spoken over plain HTTP, as ClickHouse's own interface is: the query in the URL or
the body, default_format, settings refused, errors written as ClickHouse writes them."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from console.access.api import keys
from tests.helpers.servers import http


def basic(name: str, key: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{key}".encode()).decode()}


def test_query_in_the_url_or_the_body_with_formats(live_server, warehouse_worker):
    key = keys.create_key("curl", "query").key
    url = live_server.url + "/clickhouse/?"
    reply = http("GET", url + urlencode({"query": "SELECT 1 AS one, 'a' AS s"}), headers=basic("curl", key))
    assert reply.status == 200 and reply.body == b"1\ta\n"
    json_reply = http(
        "POST",
        url + urlencode({"default_format": "JSONEachRow", "param_n": "41"}),
        b"SELECT {n:UInt8} + 1 AS x",
        {"X-ClickHouse-User": "curl", "X-ClickHouse-Key": key},
    )
    assert json_reply.body == b'{"x":42}\n' and json_reply.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert '"read_rows"' in json_reply.headers["X-ClickHouse-Summary"]
    csv = http("POST", url, b"SELECT number FROM numbers(3) FORMAT CSV", basic("curl", key))
    assert csv.body == b"0\n1\n2\n"
    assert http("GET", live_server.url + "/clickhouse/ping").body == b"Ok.\n"


def test_refusals_read_like_clickhouse(live_server, warehouse_worker):
    key = keys.create_key("curl2", "query").key
    url = live_server.url + "/clickhouse/?"
    setting = http("POST", url + urlencode({"max_execution_time": "9999"}), b"SELECT 1", basic("curl2", key))
    assert setting.status == 403 and setting.headers["X-ClickHouse-Exception-Code"] == "164"
    assert setting.body.startswith(b"Code: 164. DB::Exception: Cannot modify 'max_execution_time'")
    system = http("POST", url, b"SELECT * FROM system.users", basic("curl2", key))
    assert system.status == 403 and b"Code: 497." in system.body
    wrong = http("POST", url, b"SELECT 1", basic("curl2", "shoal_wrong"))
    assert wrong.status == 401 and wrong.headers["X-ClickHouse-Exception-Code"] == "516"
    fmt = http("POST", url, b"SELECT 1 FORMAT Pretty", basic("curl2", key))
    assert fmt.status == 400 and b"Unknown format Pretty" in fmt.body
    database = http("POST", url + urlencode({"database": "system"}), b"SELECT 1", basic("curl2", key))
    assert database.status == 404 and b"Code: 81." in database.body


def test_the_catalogue_drivers_ask_for_is_the_keys_pools_not_system_tables(live_server, warehouse_worker):
    from pools.services import create_pool

    mine, other = create_pool("catalog_mine"), create_pool("catalog_other")
    key = keys.create_key("grafana", "query", pools=[mine.name]).key
    url = live_server.url + "/clickhouse/?" + urlencode({"default_format": "TabSeparated"})

    def ask(sql: str) -> bytes:
        reply = http("POST", url, sql.encode(), basic("grafana", key))
        assert reply.status == 200, reply.body
        return reply.body

    assert ask("SELECT name FROM system.databases") == b"shoal\n"
    assert ask("SELECT name FROM system.tables WHERE database = 'shoal'") == b"catalog_mine\n"
    columns = ask("SELECT name, type FROM system.columns WHERE database = 'shoal' AND table = 'catalog_mine'")
    assert b"event_name\t" in columns and b"_received_at\t" in columns
    assert (
        ask(f"SELECT name, type FROM system.columns WHERE database = 'shoal' AND table = '{other.name}'")
        == b""
    )
    # Any wording over those four tables is the key's pools only, never the others.
    assert ask("SELECT name FROM system.tables") == b"catalog_mine\n"
    assert ask(f"SELECT count() FROM system.tables t WHERE t.name = '{other.name}'") == b"0\n"
    # Any other system table still meets the guard.
    for sql in (b"SELECT query FROM system.query_log", b"SELECT * FROM system.tables, system.numbers"):
        refused = http("POST", url, sql, basic("grafana", key))
        assert refused.status == 403, (sql, refused.body)
