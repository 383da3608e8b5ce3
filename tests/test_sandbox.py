"""The warehouse worker's sandbox (console/sandbox.py): SQL that reaches chDB with no guard in front
of it still cannot read Shoal's secrets, reach the network, or see other processes."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from console import sandbox, warehouse_client
from console.env import WarehouseConfig
from tests.helpers.workers import ROOT
from tests.probe_tasks import warehouse_unguarded_sql

landlock = pytest.mark.skipif(sandbox.abi_version() < 1, reason="this kernel has no Landlock")


def unguarded(sql: str, readonly: bool = True) -> dict:
    """Run SQL in the real (sandboxed) warehouse worker, bypassing console.sql_guard."""
    return warehouse_client.call(warehouse_unguarded_sql, sql, readonly)


def read_file(path: Path | str) -> dict:
    return unguarded(f"SELECT file('{path}')")


def sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@landlock
def test_it_refuses_the_secret_key_file_and_the_data_folder(warehouse_worker):
    data = Path(settings.DATA_DIR)
    token = secrets.token_urlsafe(24)
    (data / "landing").mkdir(exist_ok=True)
    allowed = data / "landing" / "sandbox-probe.txt"
    allowed.write_text(token)
    key_file = data / "secret_key"
    created = not key_file.exists()
    if created:
        key_file.write_text(secrets.token_urlsafe(50))
    try:
        # The probe itself works: a file the loader hands to file() is read.
        assert read_file(allowed) == {"rows": [[token]]}
        for secret in (key_file, data / "worker-warehouse.log", data / "celerybeat-schedule"):
            secret.touch()
            answer = read_file(secret)
            assert "rows" not in answer and "Permission denied" in answer["error"], secret
    finally:
        allowed.unlink()
        if created:
            key_file.unlink()


def test_the_database_file_holds_no_session_key(admin_user, client):
    from django.contrib.sessions.models import Session
    from django.db import connection

    client.force_login(admin_user)
    session_key = client.session.session_key
    assert session_key and client.get("/pools/").status_code == 200
    assert not Session.objects.exists()  # the session is in Redis

    # The engine can read the SQLite file (docs/security.md), so it must hold no session. Read by a
    # process of its own: a process that opens and closes an SQLite file outside SQLite drops every
    # POSIX lock it holds on that file (an SQLite caveat). Read through the worker's chDB, the
    # worker's connections lost theirs and it went on reading a stale WAL; read here, this process
    # lost its own and its writes later corrupted the database beside the workers'.
    database = Path(connection.settings_dict["NAME"])
    files = [str(path) for path in (database, Path(f"{database}-wal")) if path.exists()]
    whole = subprocess.run(["cat", *files], capture_output=True, check=True).stdout
    assert b"admin" in whole and session_key.encode() not in whole


@landlock
@landlock
def test_it_works_in_a_private_temporary_folder_and_cannot_read_tmp(warehouse_worker):
    private = Path(settings.DATA_DIR) / "tmp"
    environ = unguarded("SELECT replaceAll(file('/proc/self/environ'), '\\0', '\\n')")["rows"][0][0]
    variables = dict(line.split("=", 1) for line in environ.splitlines() if "=" in line)
    assert variables["TMPDIR"] == str(private.resolve())
    token = secrets.token_urlsafe(16)
    (private / "relative-probe.txt").write_text(token)
    shared = Path("/tmp") / f"shoal-sandbox-probe-{token}"
    shared.write_text(token)
    try:
        # A relative path resolves in the private folder (the working directory), not the checkout.
        assert unguarded("SELECT file('relative-probe.txt')") == {"rows": [[token]]}
        for outside in (shared, Path("/var/tmp")):
            answer = read_file(outside)
            assert "rows" not in answer and "Permission denied" in answer["error"], outside
        # chDB still spills to disk (its temporary files go to its own folders, not /tmp).
        spilled = unguarded(
            "SELECT count() FROM (SELECT number % 100000 AS k, any(number) FROM numbers(300000) GROUP BY k) "
            "SETTINGS max_bytes_before_external_group_by = 1000000",
            readonly=False,
        )
        assert spilled == {"rows": [[100000]]}, spilled
    finally:
        shared.unlink()
        (private / "relative-probe.txt").unlink()


def test_its_environment_holds_no_secret_and_other_processes_are_hidden(warehouse_worker):
    environ = unguarded("SELECT replaceAll(file('/proc/self/environ'), '\\0', '\\n')")["rows"][0][0]
    names = {line.split("=", 1)[0] for line in environ.splitlines() if "=" in line}
    assert "SHOAL_SECRETS_WITHHELD" in names and "DJANGO_SETTINGS_MODULE" in names
    assert not names & {"SECRET_KEY", "AWS_SECRETS_KEY", "AWS_SECRET_ACCESS_KEY", "REDIS_URL"}
    assert settings.SECRET_KEY not in environ

    # The test process started the worker, with SECRET_KEY in its environment.
    answer = read_file(f"/proc/{os.getpid()}/environ")
    assert "Permission denied" in answer["error"]


@pytest.mark.skipif(sandbox.abi_version() < 4, reason="Landlock restricts TCP from ABI 4 (Linux 6.7)")
def test_it_cannot_reach_the_network(warehouse_worker, live_server):
    # On the read-write connection (where a view's SELECT runs), which allows table functions.
    url = f"http://127.0.0.1:{live_server.url.rsplit(':', 1)[1]}/login/"
    answer = unguarded(f"SELECT * FROM url('{url}', 'RawBLOB') SETTINGS http_max_tries = 1", readonly=False)
    assert "rows" not in answer, answer
    assert "Permission denied" in answer["error"], answer


# --- The policy and the launcher, without a worker ----------------------------------------------


def test_the_policy_grants_code_and_engine_folders_but_not_the_data_folder():
    policy = sandbox.warehouse_policy(settings)
    data = Path(settings.DATA_DIR)
    granted = [p.resolve() for p in policy.granted()]
    assert Path(settings.WAREHOUSE.path).resolve() in granted
    assert (data / "landing").resolve() in granted and (data / "spool").resolve() in granted
    assert Path(sys.prefix).resolve() in granted  # the virtualenv, which may be a symlink
    assert (ROOT / "console").resolve() in granted
    assert ROOT.resolve() not in granted and ROOT.resolve() in [p.resolve() for p in policy.list_only]
    assert data.resolve() not in granted
    assert sandbox.exposed(policy, sandbox.protected_files(settings, {})) == []
    assert policy.connect_ports == [6379]  # Redis, and nothing else (tests run on SQLite)
    for broad in ("/", "/proc", "/dev", "/etc", "/home", "/root", "/tmp", "/var/tmp"):
        assert Path(broad) not in granted, broad
    assert (data / "tmp").resolve() in [p.resolve() for p in policy.write]  # its own temporary folder


def test_it_reports_a_secret_that_lies_under_a_granted_folder(tmp_path):
    fake = SimpleNamespace(
        DATA_DIR=tmp_path,
        BASE_DIR=ROOT,
        WAREHOUSE=WarehouseConfig(backend="chdb", path=str(tmp_path / "warehouse")),
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}},
        REDIS_URL="redis://127.0.0.1:6379/0",
        WAREHOUSE_SANDBOX_READ=[],
    )
    policy = sandbox.warehouse_policy(fake)  # the database beside secret_key: its folder is granted
    assert sandbox.exposed(policy, [tmp_path / "secret_key"]) == [tmp_path / "secret_key"]


def test_secrets_leave_the_environment_and_service_urls_travel_sealed():
    public, sealed = sandbox.split_environment(
        {
            "SECRET_KEY": "k" * 40,
            "AWS_SECRETS_KEY": "x",
            "AWS_ACCESS_KEY_ID": "AKIA",
            "AWS_SECRET_ACCESS_KEY": "s",
            "SENTRY_DSN_URL": "https://user:pw@sentry.example/1",
            "DATABASE_URL": "postgres://shoal:pw@db:5432/shoal",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "PUBLIC_BASE_URL": "https://shoal.example.com",
            "SQL_MAX_RESULT_ROWS": "100",
            "PATH": "/usr/bin",
        }
    )
    assert set(public) == {"PUBLIC_BASE_URL", "SQL_MAX_RESULT_ROWS", "PATH", "SHOAL_SECRETS_WITHHELD"}
    assert sealed == {
        "DATABASE_URL": "postgres://shoal:pw@db:5432/shoal",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }


CHILD = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
from django.conf import settings
print(json.dumps({
    "redis_url": settings.REDIS_URL,
    "secret_key": settings.SECRET_KEY,
    "withheld": settings.SECRETS_WITHHELD,
    "proc_environ": open("/proc/self/environ", "rb").read().decode(errors="replace"),
}))
"""


@pytest.mark.slow
@landlock
def test_the_launcher_hands_over_passwords_outside_the_environment(tmp_path):
    secret_key = "launcher-test-secret-key-0123456789-abcdefgh"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "SHOAL_DATA_DIR": str(tmp_path),
        "SECRET_KEY": secret_key,
        "REDIS_URL": "redis://:sealed-pw@127.0.0.1:6379/10",
    }
    out = subprocess.run(
        [sys.executable, "-m", "console.sandbox", "--", sys.executable, "-c", "import json\n" + CHILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    child = json.loads(out.stdout)
    assert child["redis_url"] == "redis://:sealed-pw@127.0.0.1:6379/10" and child["withheld"]
    assert child["secret_key"] != secret_key
    assert "sealed-pw" not in child["proc_environ"] and secret_key not in child["proc_environ"]
    assert "warehouse worker sandboxed: Landlock ABI" in out.stderr


def test_it_says_in_one_line_why_it_cannot_confine(monkeypatch, caplog):
    monkeypatch.setattr(sandbox, "abi_version", lambda: 0)
    applied = []
    monkeypatch.setattr(sandbox, "apply", lambda *a: applied.append(a))
    with caplog.at_level(logging.WARNING, logger="shoal.sandbox"):
        sandbox._confine(settings, {})
    assert not applied
    (line,) = [r.getMessage() for r in caplog.records]
    assert "cannot be applied" in line and "no Landlock" in line


def test_off_runs_the_command_as_it_is():
    argv = ["celery", "-A", "console", "worker"]
    assert sandbox.command(argv, mode="off") == argv
    assert sandbox.command(argv, "/py", mode="landlock") == ["/py", "-m", "console.sandbox", "--", *argv]


# --- Users' connections: limits they cannot lift ------------------------------------------------


@pytest.mark.slow
def test_the_memory_limit_stops_a_greedy_query(local_warehouse):
    from console.tasks import execute
    from console.warehouse.chdb_backend import ChdbWarehouse

    lean = ChdbWarehouse(
        local_warehouse.config, sql_max_seconds=20, sql_max_rows=5, sql_max_memory=64 * 2**20
    )
    lean.bootstrap()
    try:
        greedy = execute(lean, "SELECT length(groupArray(number)) FROM numbers(50000000)", max_rows=5)
        modest = execute(lean, "SELECT length(groupArray(number)) FROM numbers(100000)", max_rows=5)
        lifted = execute(lean, "SELECT 1 SETTINGS max_memory_usage = 0", max_rows=5)
    finally:
        lean.close()
    assert greedy["code"] == 241 and "SQL_MAX_MEMORY_BYTES" in greedy["error"], greedy
    assert modest["rows"] == [[100000]]
    assert "error" in lifted and lifted["code"] == 164  # readonly: settings cannot change


def test_sqlite_lives_in_a_folder_without_the_secret_key(tmp_path):
    from console.env import database_from_url, default_sqlite_url

    fresh = database_from_url(default_sqlite_url(tmp_path), data_dir=tmp_path)
    assert fresh["NAME"] == str(tmp_path / "db" / "shoal.sqlite3") and (tmp_path / "db").is_dir()

    older = tmp_path / "older"
    older.mkdir()
    (older / "shoal.sqlite3").touch()  # an install from before keeps its database where it is
    assert database_from_url(default_sqlite_url(older), data_dir=older)["NAME"] == str(
        older / "shoal.sqlite3"
    )


def test_make_run_starts_only_the_warehouse_worker_in_the_sandbox(settings):
    from console import supervisor

    launcher = ["/py", "-m", "console.sandbox", "--"]
    procs = {p.name: p.argv for p in supervisor.plan(8000, "/py")}
    assert procs["warehouse"][:4] == launcher and "warehouse" in procs["warehouse"]
    assert all(argv[:4] != launcher for name, argv in procs.items() if name != "warehouse")
    settings.WAREHOUSE_SANDBOX = "off"
    (warehouse,) = [p.argv for p in supervisor.plan(8000, "/py") if p.name == "warehouse"]
    assert warehouse[:3] == ["/py", "-m", "celery"]
