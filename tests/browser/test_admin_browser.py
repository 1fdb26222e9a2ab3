"""The admin pages in Debian's Chromium, driven by Playwright: log in, create a tenant, register a
collector, issue a key and see it once, revoke it; no console error and no CSP violation.

The app runs on a free loopback port in a thread (werkzeug's threaded server) against the test
database; the browser is /usr/bin/chromium, never a downloaded one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Browser, log_in

pytestmark = pytest.mark.integration

ADMIN = "root@platform.test"
KEY = re.compile(r"^pak_([a-z2-7]{13})_[A-Za-z0-9_-]{43}$")


def test_create_tenant_register_collector_issue_key_once_and_revoke_it(
    browser: Browser, make_user: Any, tmp_path: Path
) -> None:
    page = browser.page
    make_user(ADMIN, platform_admin=True)
    log_in(page, ADMIN, r"/tenants$")
    create_tenant(page)
    register_collector(page)
    plaintext = issue_key_and_read_it_once(page)
    key_id = plaintext.split("_")[1]
    assert_never_shown_again(page, plaintext)
    revoke(page, key_id)

    screenshot = tmp_path / "tenant.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.stat().st_size > 1000
    assert browser.problems == []


def create_tenant(page: Page) -> None:
    form = page.locator("form[action='/tenants']")
    form.get_by_label("Name", exact=True).fill("Acme production")
    form.get_by_label("Slug").fill("acme")
    form.get_by_role("button", name="Create tenant").click()
    expect(page).to_have_url(re.compile(r"/tenants/acme$"))
    expect(page.locator(".flash")).to_contain_text("Tenant Acme production created")


def register_collector(page: Page) -> None:
    form = page.locator("form[action='/tenants/acme/collectors']")
    form.get_by_label("Name", exact=True).fill("web1")
    form.get_by_label("Hostname").fill("web1.acme.test")
    form.get_by_label("Labels").fill("env=prod, team=sre")
    form.get_by_label("vCPUs").fill("8")
    form.get_by_label("Memory (GiB)").fill("32")
    form.get_by_label("Cloud provider").fill("aws")
    form.get_by_label("Region").fill("eu-west-1")
    form.get_by_label("Instance type").fill("m6i.2xlarge")
    form.get_by_role("button", name="Register collector").click()
    expect(page).to_have_url(re.compile(r"/tenants/acme/collectors/\d+$"))
    expect(page.locator(".flash")).to_contain_text("Collector web1 registered")
    expect(page.locator("dl.facts")).to_contain_text("32 GiB")


def issue_key_and_read_it_once(page: Page) -> str:
    form = page.locator("form[action='/tenants/acme/keys']")
    form.locator("input[name=name]").fill("first rollout")
    form.get_by_role("button", name="Issue key").click()
    dialog = page.locator("dialog#key-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("You will not see this key again")
    assert dialog.evaluate("element => element.matches(':modal')")
    plaintext: str = page.locator("#key-plaintext").inner_text().strip()
    assert KEY.match(plaintext), plaintext
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.locator("[data-copy-status]")).to_have_text(re.compile("Copied"))
    assert page.evaluate("navigator.clipboard.readText()") == plaintext
    dialog.get_by_role("link", name=re.compile("Done")).click()
    expect(page).to_have_url(re.compile(r"/tenants/acme/collectors/\d+#keys$"))
    return plaintext


def assert_never_shown_again(page: Page, plaintext: str) -> None:
    def shown() -> bool:
        return plaintext in page.content()

    expect(page.locator("table.keys")).to_contain_text("first rollout")
    assert not shown()
    page.go_back()  # the answer that showed the key was replaced in the history
    assert not shown()
    page.goto("/tenants/acme")
    expect(page.locator("#keys table.keys")).to_contain_text("first rollout")
    page.reload()
    expect(page.locator("#keys table.keys")).to_be_visible()
    assert not shown()


def revoke(page: Page, key_id: str) -> None:
    row = page.locator(f"tr#key-{key_id}")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "active")
    page.once("dialog", lambda dialog: dialog.accept())  # "Revoke key …?" confirmation
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash")).to_contain_text(f"Key {key_id} revoked")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "revoked")
    expect(row.locator(".badge")).to_have_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
