"""The management API's browsable docs: Swagger UI from ninja's own static files (no CDN), working
under Shoal's Content-Security-Policy (console/csp.py: no inline script or style, no eval)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def test_the_api_docs_render_offline_under_shoals_csp(live_server, page, user):
    violations, outside = [], []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None)

    login(page, live_server)  # the reference is for signed-in users and API keys
    response = page.goto(live_server.url + "/api/v1/docs")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/pools" in " ".join(paths) and "/api/v1/views/{name}" in " ".join(paths)
    assert violations == [], violations
    assert outside == [], outside
