"""An invitation in Debian's Chromium: a tenant admin invites an address and copies the link shown
once; a new person opens it in a fresh browser, chooses a password and lands in the tenant with
the invited role. No console error and no CSP violation on either side.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import WAIT_MS, Browser, _watch_for_problems, log_in

pytestmark = pytest.mark.integration

ADMIN = "boss@acme.test"
NEWCOMER = "new.person@elsewhere.test"
LINK = re.compile(r"^http://127\.0\.0\.1:\d+/invitations/pai_[a-z2-7]{13}_[A-Za-z0-9_-]{43}$")


def test_invite_copy_the_link_and_sign_up_in_a_fresh_browser(
    browser: Browser, base_url: str, make_tenant: Any
) -> None:
    page = browser.page
    make_tenant("acme", {ADMIN: "admin"})
    log_in(page, ADMIN, r"/tenants/acme$")
    link = invite_and_copy_the_link(page)
    expect(page.locator("#invitations")).to_contain_text(NEWCOMER)

    context = page.context.browser.new_context(base_url=base_url)  # type: ignore[union-attr]
    context.set_default_timeout(WAIT_MS)
    try:
        fresh = Browser(context.new_page())
        _watch_for_problems(fresh)
        sign_up(fresh.page, urlsplit(link).path)
        assert fresh.problems == []
    finally:
        context.close()

    page.reload()
    expect(page.locator("#members")).to_contain_text(NEWCOMER)
    expect(page.locator("#invitations")).not_to_contain_text(NEWCOMER)
    assert browser.problems == []


def invite_and_copy_the_link(page: Page) -> str:
    page.locator("#members summary", has_text="Invite a member").click()
    form = page.locator("form[action='/tenants/acme/invitations']")
    form.get_by_label("E-mail").fill(NEWCOMER)
    form.get_by_label("Role").select_option("analyst")
    form.get_by_role("button", name="Invite").click()
    dialog = page.locator("dialog#invitation-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("You will not see this link again")
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.locator("[data-copy-status]")).to_have_text(re.compile("Copied"))
    link: str = page.evaluate("navigator.clipboard.readText()")
    assert LINK.match(link), link
    assert link == page.locator("#invitation-link").inner_text().strip()
    dialog.get_by_role("link", name=re.compile("Done")).click()
    expect(page).to_have_url(re.compile(r"/tenants/acme#invitations$"))
    assert link not in page.content()
    return link


def sign_up(page: Page, path: str) -> None:
    page.goto(path)
    expect(page.locator("h1")).to_have_text("Join Acme")
    expect(page.locator("#invitation")).to_contain_text(NEWCOMER)
    page.get_by_label("Password").fill("a long enough new password")
    page.get_by_role("button", name="Create account and join").click()
    expect(page).to_have_url(re.compile(r"/tenants/acme$"))
    expect(page.locator(".flash")).to_contain_text("you are analyst in Acme")
    expect(page.locator("header .who")).to_have_text(NEWCOMER)
