"""The users page in Debian's Chromium: a platform admin reaches it from the navigation, disables
a user after confirming (a dismissed confirmation sends nothing), which signs that user's open
browser out on its next page; enables them again and makes them platform admin. Their own row
is labelled and asks in its own words. At a phone's width the page scrolls no wider than the
window and the header's Log out stays on screen. No console error, no CSP violation.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.browser.conftest import WAIT_MS, Browser, _watch_for_problems, log_in

pytestmark = pytest.mark.integration

ROOT, ANA = "root@platform.test", "ana@acme.test"
PHONE = 375
SIDEWAYS = "() => [document.scrollingElement.scrollWidth, window.innerWidth]"


@pytest.fixture
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return {"width": getattr(request, "param", 1280), "height": 900}


@pytest.fixture
def people(make_user: Any, make_tenant: Any) -> None:
    make_user(ROOT, platform_admin=True)
    make_tenant("acme", {ANA: "analyst"})


def answer_next_confirmation(page: Page, accept: bool) -> list[str]:
    """Accept or dismiss the next confirmation; the list gets its text."""
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.once("dialog", answer)
    return asked


def open_users_page(page: Page) -> None:
    log_in(page, ROOT, r"/tenants$")
    page.get_by_role("navigation").get_by_role("link", name="Users").click()
    expect(page).to_have_url(re.compile(r"/users$"))


@pytest.mark.usefixtures("people")
def test_disable_enable_and_grant_from_the_users_page(browser: Browser, base_url: str) -> None:
    page = browser.page
    open_users_page(page)
    mine = page.locator("tr", has_text=ROOT)
    expect(mine).to_contain_text("(you)")
    expect(mine.get_by_role("button", name="Disable my account")).to_be_visible()
    row = page.locator("tr", has_text=ANA)
    expect(row).to_contain_text("Acme analyst")

    context = page.context.browser.new_context(base_url=base_url)  # type: ignore[union-attr]
    context.set_default_timeout(WAIT_MS)
    try:
        ana = Browser(context.new_page())
        _watch_for_problems(ana)
        log_in(ana.page, ANA, r"/tenants/acme$")
        refuse_then_disable(page, row)
        ana.page.reload()
        expect(ana.page).to_have_url(re.compile(r"/login\?next=/tenants/acme$"))
        assert ana.problems == []
    finally:
        context.close()

    row.get_by_role("button", name="Enable").click()
    expect(page.locator(".flash")).to_contain_text(f"{ANA} enabled")
    expect(row.locator(".badge")).to_have_text("active")
    asked = answer_next_confirmation(page, accept=True)
    row.get_by_role("button", name="Make platform admin").click()
    expect(page.locator(".flash")).to_have_text(f"{ANA} is now a platform admin.")
    expect(row.get_by_role("button", name="Revoke platform admin")).to_be_visible()
    assert asked == [f"Make {ANA} a platform admin? They may manage every tenant and user."]
    assert browser.problems == []


def refuse_then_disable(page: Page, row: Locator) -> None:
    """A dismissed confirmation sends nothing; an accepted one disables the user."""
    posts: list[str] = []
    page.on(
        "request", lambda request: posts.append(request.url) if request.method == "POST" else None
    )
    dismissed = answer_next_confirmation(page, accept=False)
    row.get_by_role("button", name="Disable").click()
    assert dismissed == [
        f"Disable {ANA}? They cannot log in, their sessions end and their API tokens are "
        "refused until they are enabled again."
    ]
    assert posts == []
    expect(row.locator(".badge")).to_have_text("active")

    accepted = answer_next_confirmation(page, accept=True)
    row.get_by_role("button", name="Disable").click()
    expect(page.locator(".flash")).to_contain_text(f"{ANA} disabled: they cannot log in")
    expect(row.locator(".badge")).to_have_text("disabled")
    assert len(accepted) == 1
    assert [url.rsplit("/", 2)[-1] for url in posts] == ["disable"]


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize("viewport", [PHONE], indirect=True)
def test_the_users_page_fits_a_phone(browser: Browser) -> None:
    page = browser.page
    open_users_page(page)
    expect(page.get_by_role("button", name="Log out")).to_be_in_viewport(ratio=1)
    scroll_width, width = page.evaluate(SIDEWAYS)
    assert scroll_width <= width
    assert browser.problems == []
