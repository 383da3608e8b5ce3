"""Settings from the environment fail loudly on bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from console import env


def test_database_urls(tmp_path):
    sqlite = env.database_from_url("sqlite:///shoal.db", data_dir=tmp_path)
    assert sqlite["NAME"] == str(tmp_path / "shoal.db")
    absolute = env.database_from_url("sqlite:////srv/x/shoal.db", data_dir=tmp_path)
    assert absolute["NAME"] == "/srv/x/shoal.db"
    pg = env.database_from_url("postgres://u:p%40ss@db.internal:5433/shoal", data_dir=tmp_path)
    assert (pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"], pg["NAME"]) == (
        "u",
        "p@ss",
        "db.internal",
        "5433",
        "shoal",
    )
    with pytest.raises(ImproperlyConfigured, match="unsupported scheme"):
        env.database_from_url("mysql://x/y", data_dir=tmp_path)


def test_warehouse_urls(tmp_path):
    assert env.warehouse_from_url("", data_dir=tmp_path) == env.WarehouseConfig(
        backend="chdb", path=str(tmp_path / "warehouse")
    )
    ch = env.warehouse_from_url("clickhouse://reader:secret@ch.internal:8123/analytics", data_dir=tmp_path)
    assert (ch.backend, ch.host, ch.port, ch.username, ch.password, ch.database) == (
        "clickhouse",
        "ch.internal",
        8123,
        "reader",
        "secret",
        "analytics",
    )
    assert env.warehouse_from_url("clickhouses://h", data_dir=tmp_path).port == 8443
    with pytest.raises(ImproperlyConfigured, match="WAREHOUSE_URL"):
        env.warehouse_from_url("ftp://h", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("reader", "raw", "message"),
    [
        (lambda: env.env_int("X_PORT", 1, minimum=1, maximum=65535), "70000", "above the maximum"),
        (lambda: env.env_int("X_PORT", 1), "eighty", "not a whole number"),
        (lambda: env.env_bool("X_PORT"), "maybe", "not a boolean"),
        (lambda: env.env_float("X_PORT", 1.0, minimum=1.0), "0.5", "below the minimum"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, reader, raw, message):
    monkeypatch.setenv("X_PORT", raw)
    with pytest.raises(ImproperlyConfigured, match=message) as exc:
        reader()
    assert "X_PORT" in str(exc.value)


def test_secrets_can_come_from_files(monkeypatch, tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("SOME_SECRET_FILE", str(secret))
    assert env.env_str("SOME_SECRET") == "from-a-file"


def test_settings_render_maps_and_quotes_as_clickhouse_literals():
    from console.warehouse.base import settings_clause

    clause = settings_clause({"additional_table_filters": {"t": "k = 'a'"}, "readonly": True, "x": "it's"})
    assert clause == "\nSETTINGS additional_table_filters = {'t': 'k = \\'a\\''}, readonly = 1, x = 'it\\'s'"
