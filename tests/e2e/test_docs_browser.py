"""``/docs`` in a real browser: Debian's Chromium, driven by Playwright, renders Swagger UI from a
real ``goticket serve`` with every outside origin cut off, and the page's CSP holds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, Route, sync_playwright

from tests.e2e.test_process import Served, environment, fresh_database

pytestmark = pytest.mark.slow

# make test installs Debian's chromium; Playwright's own browser download cannot work here.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# The page reports each CSP violation here (the init script runs before the page's own).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no browser at {CHROMIUM}: make test installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_docs_renders_every_operation_offline_under_its_csp(
    server_url: str, tmp_path: Path, page: Page
) -> None:
    outside: list[str] = []
    seen: list[str] = []
    errors: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:  # as on a machine without internet
            outside.append(route.request.url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_request(request: Request) -> None:
        seen.append(request.url)

    page.route("**/*", only_loopback)
    page.on("request", on_request)
    page.on("console", on_console)
    page.add_init_script(RECORD_VIOLATIONS)

    with fresh_database(server_url) as url:
        env = environment(
            database_url=url, data_dir=str(tmp_path / "data"), jwt_secret="docs-" + "d" * 40
        )
        with Served(env, tmp_path, workers=1) as server:
            server.wait_ready()
            operations = sum(
                method in ("get", "post", "put", "patch", "delete")
                for path in server.http.get("/openapi.json").json()["paths"].values()
                for method in path
            )
            response = page.goto(f"{server.base_url}/docs", timeout=30_000)
            assert response is not None
            assert response.status == 200
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "default-src 'none'" in policy

            # Swagger UI has fetched /openapi.json and drawn one block per operation.
            page.locator('.opblock-get .opblock-summary-path[data-path="/events"]').wait_for(
                timeout=30_000
            )
            assert page.locator(".opblock").count() == operations
            assert page.locator(".info .title").inner_text().startswith("GoTicket API")
            violations = page.evaluate("window.__violations")
            assert server.terminate() == 0, server.log

    assert outside == [], "the page asked for an outside origin"
    assert all(urlsplit(url).hostname in LOOPBACK for url in seen), seen
    assert f"{server.base_url}/openapi.json" in seen
    assert violations == [], violations
    assert errors == [], errors
