"""Exports stream in bounded memory, and every answer has a byte bound (issue 18): before, a
300 MB CSV was held whole in the warehouse worker (and a JSON answer whole in the web process)
and no byte limit applied."""

from __future__ import annotations

import http.client
import json
import urllib.request
from pathlib import Path

import pytest

from console.access.api import keys

pytestmark = pytest.mark.django_db(transaction=True)

WIDE = "SELECT repeat('x', 1000) AS wide FROM numbers({rows})"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def stream_sql(live_server, key: str, sql: str, fmt: str):
    body = json.dumps({"sql": sql, "format": fmt}).encode()
    request = urllib.request.Request(
        live_server.url + "/api/v1/sql",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    return urllib.request.urlopen(request, timeout=120)


def test_a_large_csv_export_streams_without_growing_the_warehouse_worker(live_server, warehouse_worker):
    key = keys.create_key("export", "query").key
    # Warm the worker's query path up, then measure what one 400 MB export adds.
    with stream_sql(live_server, key, WIDE.format(rows=1000), "CSV") as reply:
        reply.read()
    before = rss_bytes(warehouse_worker.proc.pid)
    peak, received = before, 0
    with stream_sql(live_server, key, WIDE.format(rows=400_000), "CSV") as reply:
        assert reply.status == 200 and reply.headers.get("Content-Length") is None  # streamed
        while chunk := reply.read(1024 * 1024):
            received += len(chunk)
            peak = max(peak, rss_bytes(warehouse_worker.proc.pid))
    assert received == 400_000 * 1003  # each row: quotes, 1000 x, newline
    assert peak - before < 200 * 1024 * 1024, (peak - before) / 2**20


def test_an_export_past_its_byte_limit_stops_with_clickhouse_s_error(live_server, warehouse_worker, settings):
    settings.SQL_MAX_RESULT_BYTES = 100 * 1024 * 1024
    key = keys.create_key("export", "query").key
    with stream_sql(live_server, key, WIDE.format(rows=300_000), "CSV") as reply:
        assert reply.status == 200
        try:
            partial = reply.read()
        except http.client.IncompleteRead as cut:  # HTTP/1.1 chunked (gunicorn): the cut shows
            partial = cut.partial
    assert len(partial) < 101 * 1024 * 1024
    assert b"Code: 396. DB::Exception: The result is larger than 104857600 bytes (SQL_MAX_RESULT" in partial


def test_a_json_answer_past_its_byte_limit_is_refused_clearly(live_server, warehouse_worker, settings):
    settings.API_JSON_MAX_BYTES = 1024 * 1024
    key = keys.create_key("app", "query").key
    with pytest.raises(urllib.error.HTTPError) as refused:
        stream_sql(live_server, key, WIDE.format(rows=5_000), "JSON")
    assert refused.value.code == 413
    problem = json.loads(refused.value.read())
    assert "API_JSON_MAX_BYTES" in problem["detail"] and problem["code"] == 396


def test_an_empty_answer_keeps_its_format_s_header(live_server, warehouse_worker):
    """chDB's streaming writes nothing for an empty result: the column names and types, which
    clients read even with no rows, must still be there."""
    key = keys.create_key("empty", "query").key
    with stream_sql(live_server, key, "SELECT 1 AS x WHERE 0", "JSON") as reply:
        answer = json.loads(reply.read())
    assert answer["columns"] == ["x"] and answer["types"] == ["UInt8"] and answer["rows"] == []
    with stream_sql(live_server, key, "SELECT 1 AS x WHERE 0", "CSVWithNames") as reply:
        assert reply.read() == b'"x"\n'
