"""The ClickHouse clients people install today, each at its latest release (tests/helpers/clients.py),
run as their own docs show against a live Shoal: a query key limited to one pool connects, the
guide's Step 4 SELECT returns typed rows, and another pool, a write and a system table are refused
with ClickHouse's error shape. docs/api.md has the same snippets and the versions checked."""

from __future__ import annotations

import base64
import gzip
import subprocess
from urllib.parse import urlencode, urlsplit

import pytest

from console.access.api import keys
from pools.services import create_pool
from tests.helpers.clients import node_client, python_client, run_program, version_of
from tests.helpers.firehose import deliver
from tests.helpers.pools import GUIDE_STEP_4
from tests.helpers.servers import http

pytestmark = pytest.mark.slow  # installs clients and runs them as programs


class _Server:
    def __init__(self, url: str):
        self.url = url


@pytest.fixture
def shoal(web_server, pool, warehouse_worker, pool_name):
    """Shoal's web process as `make run` starts it (gunicorn: clients may send their bodies
    chunked), the guide's changes in `pool`, a second pool, and a key for the first only."""
    deliver(_Server(web_server), pool)
    other = create_pool(f"{pool_name}_other")
    key = keys.create_key("notebook", "query", pools=[pool.name]).key
    parts = urlsplit(web_server)
    sql = GUIDE_STEP_4.replace("my_dynamo_orders_change_events", pool.name) + " ORDER BY order_id, quantity"
    return {
        "URL": web_server,
        "HOST": parts.hostname,
        "PORT": str(parts.port),
        "NAME": "notebook",
        "KEY": key,
        "POOL": pool.name,
        "OTHER": other.name,
        "GUIDE": sql,
    }


PYTHON = r"""
import datetime, json, os
import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError

e = os.environ
client = clickhouse_connect.get_client(
    host=e["HOST"], port=int(e["PORT"]), username=e["NAME"], password=e["KEY"], proxy_path="/clickhouse"
)
out = {}
result = client.query(e["GUIDE"])
out["columns"] = list(result.column_names)
out["rows"] = [[type(v).__name__ for v in row[:6]] for row in result.result_rows]
out["first"] = [str(v) for v in result.result_rows[0][:6]]
out["df"] = len(client.query_df(f"SELECT event_name FROM {e['POOL']}"))
out["arrow"] = client.query_arrow(f"SELECT event_name FROM {e['POOL']}").num_rows
out["param"] = client.query("SELECT {n:UInt32} + 1 AS x", parameters={"n": 41}).result_rows[0][0]
with client.query_row_block_stream("SELECT number FROM numbers(200000)") as stream:
    out["streamed"] = sum(len(block) for block in stream)
for what, sql in [
    ("other", f"SELECT count() FROM {e['OTHER']}"),
    ("system", "SELECT * FROM system.users"),
    ("write", f"INSERT INTO {e['POOL']} (event_name) VALUES ('x')"),
]:
    try:
        client.command(sql) if what == "write" else client.query(sql)
        out[what] = None
    except DatabaseError as exc:
        out[what] = str(exc)
print(json.dumps(out))
"""


def _check_python_answers(out: dict, shoal: dict) -> None:
    assert out["columns"][:6] == ["order_id", "timestamp", "deleted", "taqueria", "quantity", "total_price"]
    assert out["rows"][0] == ["str", "datetime", "bool", "str", "int", "float"]
    assert out["first"][0] == "o1" and out["first"][1].startswith("2024-")
    assert out["df"] == 4 and out["arrow"] == 4 and out["param"] == 42 and out["streamed"] == 200000
    assert f"Data Pool {shoal['OTHER']} is not available" in out["other"]
    assert "Code: " in out["other"] and "Maybe you meant" not in out["other"]
    assert "system tables are not available" in out["system"]
    assert "readonly" in out["write"].lower() or "not allowed" in out["write"]


def test_clickhouse_connect_at_its_latest_release(shoal):
    python = python_client("clickhouse-connect-latest", "clickhouse-connect", deps=True)
    assert version_of(python, "clickhouse-connect") >= "1.12"
    out = run_program([str(python), "-c"], PYTHON, shoal)
    _check_python_answers(out, shoal)


def test_clickhouse_connect_0_8(shoal):
    python = python_client("clickhouse-connect-0.8", "clickhouse-connect>=0.8,<1", deps=True)
    out = run_program([str(python), "-c"], PYTHON, shoal)
    _check_python_answers(out, shoal)


NODE = r"""
const { createClient } = require('@clickhouse/client')
const e = process.env
;(async () => {
  // As the client's docs show it, with Shoal's URL as the user has it.
  const client = createClient({ url: `${e.URL}/clickhouse`, username: e.NAME, password: e.KEY })
  const out = {}
  let rs = await client.query({ query: e.GUIDE, format: 'JSONEachRow' })
  out.rows = await rs.json()
  rs = await client.query({ query: 'SELECT {n: UInt32} + 1 AS x', format: 'JSON', query_params: { n: 41 } })
  out.json = await rs.json()
  const refused = [['other', `SELECT count() FROM ${e.OTHER}`], ['system', 'SELECT * FROM system.users']]
  for (const [what, query] of refused) {
    try { await client.query({ query, format: 'JSONEachRow' }); out[what] = null }
    catch (err) { out[what] = `${err.code} ${err.type} ${err.message}` }
  }
  try { await client.command({ query: `INSERT INTO ${e.POOL} (event_name) VALUES ('x')` }); out.write = null }
  catch (err) { out.write = `${err.code} ${err.type} ${err.message}` }
  await client.close()
  console.log(JSON.stringify(out))
})().catch((err) => { console.error(err); process.exit(1) })
"""


def test_the_official_node_client(shoal):
    folder = node_client("@clickhouse/client")
    out = run_program(["node", "-e"], NODE, shoal, cwd=folder)
    first = out["rows"][0]
    assert first["order_id"] == "o1" and first["deleted"] is False and first["quantity"] == 3
    assert out["json"]["data"] == [{"x": 42}] and out["json"]["meta"][0]["name"] == "x"
    assert out["other"].startswith("497 ACCESS_DENIED") and f"Data Pool {shoal['OTHER']}" in out["other"]
    assert "system tables are not available" in out["system"]
    assert out["write"].startswith("164 READONLY")


def _curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "-D", "-", *args], capture_output=True, timeout=60)


@pytest.mark.parametrize("how", ["basic", "headers", "url"])
def test_curl_as_clickhouse_s_http_interface_docs_use_it(shoal, how):
    base = f"{shoal['URL']}/clickhouse/"
    params = {"default_format": "JSONEachRow", "database": "default", "query_id": "q-42"}
    auth: list[str] = []
    if how == "basic":
        auth = ["-u", f"{shoal['NAME']}:{shoal['KEY']}"]
    elif how == "headers":
        auth = ["-H", f"X-ClickHouse-User: {shoal['NAME']}", "-H", f"X-ClickHouse-Key: {shoal['KEY']}"]
    else:
        params |= {"user": shoal["NAME"], "password": shoal["KEY"]}
    done = _curl(
        *auth, "--data-binary", f"SELECT count() AS n FROM {shoal['POOL']}", f"{base}?{urlencode(params)}"
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), done.stdout[:500]
    assert b'{"n":4}' in body or b'{"n":"4"}' in body
    for header in (
        b"X-ClickHouse-Query-Id: q-42",
        b"X-ClickHouse-Format: JSONEachRow",
        b"X-ClickHouse-Timezone",
    ):
        assert header in head


def test_gzip_when_the_client_asks_for_it(shoal):
    url = f"{shoal['URL']}/clickhouse/?" + urlencode(
        {"enable_http_compression": "1", "query": "SELECT 1 AS one"}
    )
    auth = base64.b64encode(f"{shoal['NAME']}:{shoal['KEY']}".encode()).decode()
    reply = http("GET", url, None, {"Authorization": f"Basic {auth}", "Accept-Encoding": "gzip"})
    assert reply.status == 200 and reply.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(reply.body) == b"1\n"


def test_every_failure_is_clickhouse_s_error_never_a_page(shoal):
    auth = base64.b64encode(f"{shoal['NAME']}:{shoal['KEY']}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}"}
    url = f"{shoal['URL']}/clickhouse/?"
    # A query_id with CR/LF would be a header of its own: refused before anything runs.
    reply = http("POST", url + urlencode({"query_id": "a\r\nX-Evil: 1"}), b"SELECT 1", headers)
    assert reply.status == 400 and reply.body.startswith(b"Code: 36. DB::Exception")
    assert reply.headers["X-ClickHouse-Exception-Code"] == "36"
    # Another pool of a similar name: no "Maybe you meant" naming the key's neighbours.
    reply = http("POST", url, f"SELECT * FROM {shoal['OTHER'][:-1]}".encode(), headers)
    assert reply.body.startswith(b"Code: ") and b"Maybe you meant" not in reply.body
    assert shoal["OTHER"].encode() not in reply.body
    # EXISTS answers for a pool the key cannot read as for one that does not exist.
    other = http("POST", url, f"EXISTS TABLE {shoal['OTHER']}".encode(), headers)
    missing = http("POST", url, b"EXISTS TABLE no_such_pool_at_all", headers)
    assert (other.status, other.body.replace(shoal["OTHER"].encode(), b"X")) == (
        missing.status,
        missing.body.replace(b"no_such_pool_at_all", b"X"),
    )
    wrong = http(
        "POST", url, b"SELECT 1", {"Authorization": "Basic " + base64.b64encode(b"notebook:x").decode()}
    )
    assert wrong.status in (401, 403) and wrong.body.startswith(b"Code: 516")


SQLALCHEMY = r"""
import json, os
import sqlalchemy as sa

e = os.environ
# What Superset's ClickHouse connection (clickhouse-sqlalchemy's HTTP dialect) is given.
engine = sa.create_engine(f"clickhouse+http://{e['NAME']}:{e['KEY']}@{e['HOST']}:{e['PORT']}/default")
out = {}
with engine.connect() as conn:
    rows = conn.execute(sa.text(e["GUIDE"])).fetchall()
    out["first"] = [str(v) for v in rows[0][:3]]
    out["count"] = len(rows)
    out["param"] = conn.execute(sa.text("SELECT :n + 1 AS x"), {"n": 41}).scalar()
    out["tables"] = sa.inspect(conn).get_table_names()
    try:
        conn.execute(sa.text(f"SELECT count() FROM {e['OTHER']}"))
        out["other"] = None
    except Exception as exc:
        out["other"] = str(exc)
print(json.dumps(out))
"""


def test_clickhouse_sqlalchemy_as_superset_uses_it(shoal):
    python = python_client("clickhouse-sqlalchemy", "clickhouse-sqlalchemy", deps=True)
    out = run_program([str(python), "-c"], SQLALCHEMY, shoal)
    assert out["count"] == 4 and out["first"][0] == "o1" and out["first"][1].startswith("2024-")
    assert out["param"] == 42
    assert out["tables"] == [shoal["POOL"]]  # the key's pools only
    assert f"Data Pool {shoal['OTHER']} is not available" in out["other"]


AIOCHCLIENT = r"""
import asyncio, json, os
import aiohttp
from aiochclient import ChClient

async def main():
    e = os.environ
    async with aiohttp.ClientSession() as session:
        client = ChClient(session, url=f"{e['URL']}/clickhouse/", user=e["NAME"], password=e["KEY"])
        out = {"alive": await client.is_alive()}
        # aiochclient knows no Dynamic or JSON type (not from a ClickHouse server either): the
        # guide's columns with their types stated.
        rows = await client.fetch(
            "SELECT toString(keys.order_id.S) AS order_id, "
            "parseDateTimeBestEffort(toString(keys.timestamp.S)) AS timestamp, "
            f"event_name = 'REMOVE' AS deleted FROM {e['POOL']}"
        )
        out["first"] = [type(v).__name__ for v in rows[0].values()]
        out["count"] = len(rows)
        try:
            await client.fetch(f"SELECT count() FROM {e['OTHER']}")
            out["other"] = None
        except Exception as exc:
            out["other"] = str(exc)
        print(json.dumps(out))

asyncio.run(main())
"""


def test_aiochclient(shoal):
    python = python_client("aiochclient", "aiochclient[aiohttp]", deps=True)
    out = run_program([str(python), "-c"], AIOCHCLIENT, shoal)
    assert out["alive"] is True and out["count"] == 4
    assert out["first"] == ["str", "datetime", "int"]  # a comparison is UInt8, as ClickHouse answers it
    assert f"Data Pool {shoal['OTHER']} is not available" in out["other"]
