"""User SQL cannot leave the pools on any path: the MV wizard's Test, `create_mv`, the view's DDL and
backfill, and column types. Through the real web path (CSRF on), the commands and a real worker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from console import warehouse_client
from pools import column_types, table_layout, tables
from pools.models import DataPool
from tests.helpers.firehose import change_record
from tests.helpers.pools import land_direct
from tests.helpers.roles import signed_in
from tests.helpers.waiting import wait_for
from views_mv.models import MaterializedView
from views_mv.tasks import warehouse_create_mv


@pytest.fixture
def secret_file():
    """A file in the data folder standing for SECRET_KEY and the SQLite database."""
    path = Path(settings.DATA_DIR) / f"secret_probe_{uuid.uuid4().hex[:6]}"
    value = f"TOPSECRET-{uuid.uuid4().hex}"
    path.write_text(value)
    yield path, value
    path.unlink(missing_ok=True)


def _loaded(pool, count=1):
    wait_for(lambda: DataPool.objects.get(pk=pool.pk).record_count >= count, timeout=60, message="load")


PROBES = [
    "SELECT event_id, file('{path}') AS k FROM {pool}",
    "SELECT event_id, extractAll(file('{path}'), '[A-Za-z0-9-]+') AS k FROM {pool}",
    "SELECT event_id FROM {pool} WHERE event_id IN (SELECT name FROM system.tables)",
    "SELECT * FROM file('{path}', 'LineAsString')",
    "SELECT event_id, (SELECT any(line) FROM url('http://127.0.0.1:1/', LineAsString)) FROM {pool}",
]


@pytest.mark.parametrize("probe", PROBES)
def test_it_refuses_the_wizard_test_of_sql_reaching_outside(probe, pool, warehouse_worker, secret_file):
    path, value = secret_file
    land_direct(pool, [change_record("o1")])
    _loaded(pool)
    client = signed_in(Client(enforce_csrf_checks=True), "editor")
    client.get("/views/new/?restart=1")
    page = client.get("/views/new/sql/")
    token = page.cookies["csrftoken"].value
    reply = client.post(
        "/views/new/sql/",
        {"sql": probe.format(path=path, pool=pool.name), "action": "test", "csrfmiddlewaretoken": token},
    )
    assert reply.status_code == 200
    text = reply.content.decode()
    assert value not in text
    assert "is not allowed in a Materialized View" in text or "not available in a Materialized View" in text


def test_create_mv_refuses_a_scalar_file_read(pool, warehouse_worker, secret_file, tmp_path):
    path, _ = secret_file
    sql_file = tmp_path / "view.sql"
    sql_file.write_text(f"SELECT event_id, file('{path}') AS k FROM {pool.name}")
    with pytest.raises(CommandError, match=r"function file\(\) is not allowed in a Materialized View"):
        call_command("create_mv", "leak", "--sql-file", str(sql_file), "--target-pool", "leak_target")
    assert not MaterializedView.objects.exists()
    assert not DataPool.objects.filter(name="leak_target").exists()


def test_create_mv_refuses_a_type_that_carries_sql(pool, warehouse_worker, secret_file, tmp_path):
    path, _ = secret_file
    land_direct(pool, [change_record("o1")])
    _loaded(pool)
    sql_file = tmp_path / "view.sql"
    sql_file.write_text(f"SELECT event_id, event_name FROM {pool.name}")
    injected = f"event_name=String, injected String ALIAS file('{path}')"
    with pytest.raises(CommandError, match="not a ClickHouse type"):
        call_command(
            "create_mv", "typed", "--sql-file", str(sql_file), "--target-pool", "typed", "--type", injected
        )
    assert not MaterializedView.objects.exists() and not DataPool.objects.filter(name="typed").exists()


def test_the_warehouse_refuses_a_type_the_grammar_admits(pool, warehouse_worker, tmp_path):
    sql_file = tmp_path / "view.sql"
    sql_file.write_text(f"SELECT event_id, size_bytes FROM {pool.name}")
    with pytest.raises(CommandError, match="size_bytes"):
        call_command(
            "create_mv",
            "dec",
            "--sql-file",
            str(sql_file),
            "--target-pool",
            "dec",
            "--type",
            "size_bytes=Decimal(99, 2)",
        )
    assert not DataPool.objects.filter(name="dec").exists()


def test_the_view_sql_is_checked_again_right_before_create(pool, warehouse_worker, secret_file):
    """A view row whose SQL changed after the wizard checked it (the admin, the database) is not
    created: the check runs again in the task that builds the DDL."""
    path, value = secret_file
    target = DataPool.objects.create(
        name=f"t_{pool.name}",
        kind=DataPool.Kind.MATERIALIZED,
        columns=[["event_id", "String"], ["k", "String"]],
        engine="MergeTree",
        sorting_key="event_id",
        partition_key="",
        timestamp_column="",
        access_key="",
    )
    mv = MaterializedView.objects.create(
        name=f"mv_{pool.name}",
        sql=f"SELECT event_id, file('{path}') AS k FROM {pool.name}",
        source_pool=pool,
        target_pool=target,
    )
    assert warehouse_client.call(warehouse_create_mv, mv.pk, False) == "failed"
    mv.refresh_from_db()
    assert mv.status == MaterializedView.Status.FAILED
    assert "function file() is not allowed in a Materialized View" in mv.status_detail
    from console.tasks import run_sql

    found = warehouse_client.call(run_sql, f"EXISTS TABLE {mv.warehouse_name}")
    assert found["rows"] == [[0]]


def test_the_wizard_refuses_a_type_field_with_sql(pool, warehouse_worker):
    land_direct(pool, [change_record("o1")])
    _loaded(pool)
    client = signed_in(Client(), "editor")
    client.get("/views/new/?restart=1")
    sql = f"SELECT keys.order_id.S AS order_id, event_name FROM {pool.name}"
    assert client.post("/views/new/sql/", {"sql": sql}).status_code == 302
    assert (
        client.post("/views/new/destination/", {"kind": "new", "new_name": f"d_{pool.name}"}).status_code
        == 302
    )
    reply = client.post(
        "/views/new/table/",
        {
            "mode": "mutable",
            "unique": ["order_id"],
            "type__order_id": "String",
            "type__event_name": "String DEFAULT file('/etc/hostname')",
        },
    )
    assert reply.status_code == 200, reply
    text = reply.content.decode()
    assert "is not a ClickHouse type Shoal accepts" in text, text[text.find("<form") :]


# --- the grammar and the layout check (no warehouse) -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("String", "String"),
        ("Nullable(Int32)", "Nullable(Int32)"),
        ("LowCardinality( String )", "LowCardinality(String)"),
        ("Array(Nullable(String))", "Array(Nullable(String))"),
        ("Map(String,Array(UInt64))", "Map(String, Array(UInt64))"),
        ("Tuple(a Int64, b String)", "Tuple(a Int64, b String)"),
        ("DateTime64(3, 'UTC')", "DateTime64(3, 'UTC')"),
        ("DateTime('Europe/Paris')", "DateTime('Europe/Paris')"),
        ("Decimal(18, 4)", "Decimal(18, 4)"),
        ("Enum8('a' = 1, 'b' = 2)", "Enum8('a' = 1, 'b' = 2)"),
        ("JSON", "JSON"),
        ("Bool", "Bool"),
    ],
)
def test_it_accepts_clickhouse_types(text, expected):
    assert column_types.canonical(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "String, injected String ALIAS file('/x')",
        "String DEFAULT file('/x')",
        "String CODEC(ZSTD(3))",
        "String MATERIALIZED 1",
        "String -- comment",
        "String /* c */",
        "Nullable(String) ALIAS 1",
        "DateTime64(3, 'UTC'')",
        "DateTime('a'' || file(''x'')')",
        "Int32)",
        "Nullable(",
        "Strin",
        "String(1)",
        "",
        "Array(" * 20 + "Int8" + ")" * 20,
    ],
)
def test_it_refuses_anything_but_a_type(text):
    with pytest.raises(column_types.TypeSyntaxError):
        column_types.canonical(text)


def test_table_ddl_refuses_a_tampered_engine_or_key():
    pool = DataPool(
        name="p",
        kind=DataPool.Kind.MATERIALIZED,
        columns=[["id", "String"]],
        engine="MergeTree",
        sorting_key="id",
        partition_key="",
    )
    assert "ORDER BY (id)" in tables.create_table(pool)
    for field, value in [
        ("engine", "MergeTree ORDER BY id SETTINGS x = 1 --"),
        ("engine", "ReplacingMergeTree(file('/x'))"),
        ("sorting_key", "id, file('/x')"),
        ("sorting_key", "nope"),
        ("partition_key", "file('/x')"),
    ]:
        bad = DataPool(**{**{f.name: getattr(pool, f.name) for f in DataPool._meta.fields}, field: value})
        with pytest.raises(table_layout.UnsafeLayout):
            tables.create_table(bad)
    pool.columns = [["id", "String ALIAS file('/x')"]]
    with pytest.raises(table_layout.UnsafeLayout):
        tables.create_table(pool)
