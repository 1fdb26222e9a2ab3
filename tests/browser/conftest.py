"""Debian's Chromium driven by Playwright against the admin app served on a loopback port.

The app runs in a thread (werkzeug's threaded server) against the test database; the browser is
/usr/bin/chromium, never a downloaded one. Every console error, page error and CSP violation is
recorded in ``Browser.problems`` for the test to assert on.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
WAIT_MS = 10_000
# Reports CSP violations to the test: runs before any page script, whatever the page's CSP says.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportProblem(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="admin-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Browser:
    page: Page
    problems: list[str] = field(default_factory=list)

    def record(self, problem: str) -> None:
        self.problems.append(problem)


@pytest.fixture
def viewport() -> dict[str, int]:
    """Override in a test module for wider pages."""
    return {"width": 1280, "height": 900}


@pytest.fixture
def browser(base_url: str, viewport: dict[str, int]) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = chromium.new_context(base_url=base_url, viewport=viewport)  # type: ignore[arg-type]
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
        context.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        watched = Browser(context.new_page())
        _watch_for_problems(watched)
        try:
            yield watched
        finally:
            context.close()
            chromium.close()


def _watch_for_problems(browser: Browser) -> None:
    page = browser.page
    page.expose_function("reportProblem", browser.record)
    page.add_init_script(REPORT_CSP_VIOLATIONS)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            browser.record(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: browser.record(f"page error: {error}"))


def log_in(page: Page, email: str, lands_on: str) -> None:
    """Log in through the login form; the browser then shows the page matching ``lands_on``."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(lands_on))
