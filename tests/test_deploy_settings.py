"""Behind https: `check --deploy` is clean, pages redirect to https and send HSTS, and the Firehose
endpoint is never redirected (Firehose does not follow redirects)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def deploy_env(tmp_path: Path, **extra: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "TRUST_", "DJANGO_", "DEBUG", "SECRET_KEY"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        SHOAL_DATA_DIR=str(tmp_path),
        PUBLIC_BASE_URL="https://shoal.example.com",
        TRUST_X_FORWARDED_PROTO="true",
        SECRET_KEY=secrets.token_urlsafe(50),
    )
    env.update(extra)
    return env


@pytest.mark.slow
def test_check_deploy_is_clean_behind_https(tmp_path):
    reply = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=deploy_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert reply.returncode == 0, reply.stdout + reply.stderr
    assert "no issues" in reply.stdout


PROBE = """
import json, django
django.setup()
from django.test import Client
from django.conf import settings
c = Client()
def probe(method, path, proto):
    r = getattr(c, method)(path, HTTP_X_FORWARDED_PROTO=proto, HTTP_HOST="shoal.example.com")
    return {"status": r.status_code, "location": r.get("Location", ""),
            "hsts": r.get("Strict-Transport-Security", ""), "type": r.get("Content-Type", "")}
print(json.dumps({
    "login_http": probe("get", "/login/", "http"),
    "login_https": probe("get", "/login/", "https"),
    "ingest_http": probe("post", "/ingest/firehose/0123456789abcdef", "http"),
    "health_http": probe("get", "/healthz", "http"),
    "cookies_secure": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE],
}))
"""


def probe(tmp_path: Path, **extra: str) -> dict:
    reply = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=deploy_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(reply.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_pages_redirect_to_https_but_the_endpoint_does_not(tmp_path):
    seen = probe(tmp_path)
    assert seen["login_http"]["status"] == 301
    assert seen["login_http"]["location"] == "https://shoal.example.com/login/"
    assert seen["login_https"]["status"] == 200 and "max-age=" in seen["login_https"]["hsts"]
    # Firehose gets its JSON answer (here: no such pool), never a redirect it would not follow.
    assert seen["ingest_http"]["status"] != 301 and seen["ingest_http"]["type"] == "application/json"
    assert seen["health_http"]["status"] != 301
    assert seen["cookies_secure"] == [True, True]


@pytest.mark.slow
def test_the_forwarded_proto_header_is_trusted_only_when_asked(tmp_path):
    # Without TRUST_X_FORWARDED_PROTO a client could claim https by sending the header itself, so
    # it is ignored, and no redirect is made that a proxy in front would turn into a loop.
    seen = probe(tmp_path, TRUST_X_FORWARDED_PROTO="false")
    assert seen["login_http"]["status"] == 200 and seen["login_https"]["status"] == 200
    assert seen["login_https"]["hsts"] == ""
