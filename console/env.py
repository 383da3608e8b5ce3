"""Typed readers for settings that come from the environment.

Every setting Shoal has is read here or through these helpers, and a bad value stops the process
with an ImproperlyConfigured that names the variable, rather than surfacing later as a puzzle.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def adopt_sealed_environment() -> None:
    """Take the variables the sandbox launcher (console/sandbox.py) handed over through a pipe.

    They join os.environ (the process's heap), not the environment the process was started with,
    which /proc/self/environ shows to anything that can read files, chDB's file() included.
    """
    fd = os.environ.pop("SHOAL_SEALED_ENV_FD", "")
    if not fd:
        return
    with os.fdopen(int(fd), "rb") as pipe:
        os.environ.update(json.loads(pipe.read() or b"{}"))


def env_str(name: str, default: str = "") -> str:
    """A string, also read from the file named by NAME_FILE (for container secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    return value


def default_sqlite_url(data_dir: Path) -> str:
    """SQLite in a folder of its own (`db/`): the warehouse worker's sandbox has to open the
    database's folder (SQLite creates its -wal and -shm files there) and must not open secret_key,
    which lives in the data folder itself."""
    legacy = data_dir / "shoal.sqlite3"
    folder = data_dir / "db"
    if legacy.exists() and not (folder / "shoal.sqlite3").exists():
        return f"sqlite:///{legacy}"  # an install from before: docs/security.md says how to move it
    if not folder.exists():
        folder.mkdir()
    return f"sqlite:///{folder / 'shoal.sqlite3'}"


def database_from_url(url: str, *, data_dir: Path) -> dict:
    """Django DATABASES['default'] from sqlite:///path or postgres://user:pass@host:port/name."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = dict(parse_qsl(parts.query))
    if scheme == "sqlite":
        raw_path = unquote(parts.path)
        # sqlite:///relative.db → relative to the data folder; sqlite:////abs/path.db → absolute.
        path = Path(raw_path[1:]) if raw_path.startswith("/") else Path(raw_path)
        if not path.is_absolute():
            path = data_dir / path
        if not path.name:
            raise ImproperlyConfigured(f"DATABASE_URL={url!r} names no database file")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            # WAL lets the web process and the workers read while one writes; IMMEDIATE takes the
            # write lock at BEGIN so that concurrent writers queue on busy_timeout instead of failing.
            # synchronous=NORMAL: commits do not wait for fsync (the database stays consistent; a
            # power cut may lose the last commits). Landed data does not depend on it: its journal
            # file is fsync'ed before the 200, and rows lost that way are rebuilt from the journal.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            "TEST": {"NAME": str(path.with_name(f"test_{path.name}"))},
        }
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL={url!r} names no database")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL={url!r}: unsupported scheme {scheme!r} (use sqlite:///… or postgres://…)"
    )


@dataclass(frozen=True)
class WarehouseConfig:
    """Where the warehouse lives: the embedded chDB folder, or a ClickHouse server."""

    backend: str  # "chdb" or "clickhouse"
    path: str = ""  # chdb: the data folder
    host: str = ""
    port: int = 8123
    username: str = "default"
    password: str = ""
    database: str = "shoal"
    secure: bool = False


def warehouse_from_url(url: str, *, data_dir: Path) -> WarehouseConfig:
    if not url:
        return WarehouseConfig(backend="chdb", path=str(data_dir / "warehouse"))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = dict(parse_qsl(parts.query))
    database = options.get("database") or "shoal"
    if scheme == "chdb":
        raw = unquote(parts.netloc + parts.path)
        path = Path(raw) if raw else data_dir / "warehouse"
        if not path.is_absolute():
            path = data_dir / path
        return WarehouseConfig(backend="chdb", path=str(path), database=database)
    if scheme in {"clickhouse", "clickhouses", "http", "https"}:
        if not parts.hostname:
            raise ImproperlyConfigured(f"WAREHOUSE_URL={url!r} names no host")
        secure = scheme in {"clickhouses", "https"}
        return WarehouseConfig(
            backend="clickhouse",
            host=parts.hostname,
            port=parts.port or (8443 if secure else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")) or database,
            secure=secure,
        )
    raise ImproperlyConfigured(
        f"WAREHOUSE_URL={url!r}: unsupported scheme {scheme!r} "
        "(use chdb:///path or clickhouse://user:pass@host:8123/db)"
    )
