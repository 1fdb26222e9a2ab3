"""An invitation in Debian's Chromium: a tenant admin invites an address and copies the link shown
once; the invited person, whose account a platform admin made, opens it in a fresh browser, logs
in from it, comes back to it, joins and lands in the tenant with the invited role. No console
error and no CSP violation on either side, and no Referer carrying the link's secret.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import WAIT_MS, Browser, _watch_for_problems, log_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.integration

ADMIN = "boss@acme.test"
NEWCOMER = "new.person@elsewhere.test"
LINK = re.compile(r"^http://127\.0\.0\.1:\d+/invitations/pai_[a-z2-7]{13}_[A-Za-z0-9_-]{43}$")


def test_invite_copy_the_link_then_log_in_from_it_and_join_in_a_fresh_browser(
    browser: Browser, base_url: str, make_tenant: Any, make_user: Any
) -> None:
    page = browser.page
    make_tenant("acme", {ADMIN: "admin"})
    make_user(NEWCOMER)  # by a platform admin: the link makes no account
    log_in(page, ADMIN, r"/tenants/acme$")
    link = invite_and_copy_the_link(page)
    expect(page.locator("#invitations")).to_contain_text(NEWCOMER)

    context = page.context.browser.new_context(base_url=base_url)  # type: ignore[union-attr]
    context.set_default_timeout(WAIT_MS)
    try:
        fresh = Browser(context.new_page())
        _watch_for_problems(fresh)
        referers: list[str] = []
        fresh.page.on("request", lambda r: referers.append(r.headers.get("referer", "")))
        log_in_from_the_link_and_join(fresh.page, urlsplit(link).path)
        assert fresh.problems == []
        secret = link.split("/invitations/", 1)[1].split("_", 2)[2]
        assert referers
        assert not [referer for referer in referers if secret in referer]
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


def log_in_from_the_link_and_join(page: Page, path: str) -> None:
    page.goto(path)
    expect(page.locator("h1")).to_have_text("Join Acme")
    invitation = page.locator("#invitation")
    expect(invitation).to_contain_text(NEWCOMER)
    expect(invitation).to_contain_text("No account for this address yet? Ask a platform")
    expect(invitation.locator("input[type=password]")).to_have_count(0)  # no sign-up
    invitation.get_by_role("link", name="Log in to accept").click()
    page.get_by_label("E-mail").fill(NEWCOMER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    page.get_by_role("button", name="Join Acme").click()
    expect(page).to_have_url(re.compile(r"/tenants/acme$"))
    expect(page.locator(".flash")).to_contain_text("You are now analyst in Acme")
    expect(page.locator("header .who")).to_have_text(NEWCOMER)


def test_a_platform_admin_adds_an_existing_user_directly_and_a_tenant_admin_has_no_such_form(
    browser: Browser, make_tenant: Any, make_user: Any
) -> None:
    page = browser.page
    make_tenant("acme", {ADMIN: "admin"})
    make_user(NEWCOMER)
    make_user("root@platform.test", platform_admin=True)
    log_in(page, ADMIN, r"/tenants/acme$")
    expect(page.locator("#members summary")).to_have_count(1)  # "Invite a member" alone
    page.get_by_role("button", name="Log out").click()
    log_in(page, "root@platform.test", r"/tenants$")
    page.goto("/tenants/acme")
    page.locator("#members summary", has_text="Add an existing user").click()
    form = page.locator("form[action='/tenants/acme/members']")
    form.get_by_label("E-mail of an existing user").fill(NEWCOMER)
    form.get_by_label("Role").select_option("viewer")
    form.get_by_role("button", name="Add member").click()
    expect(page).to_have_url(re.compile(r"/tenants/acme#members$"))
    expect(page.locator(".flash")).to_contain_text(f"{NEWCOMER} is now viewer in Acme")
    expect(page.locator("#members")).to_contain_text(NEWCOMER)
    assert browser.problems == []
