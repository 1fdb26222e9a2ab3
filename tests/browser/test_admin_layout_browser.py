"""The admin pages at a phone's width (375 px) and a desktop's (1280 px), in Debian's Chromium.

A collector with a 100-character name and a 253-character hostname, a key with a 100-character
name and a tenant with a 100-character name, none with a space to wrap at: no page scrolls
sideways (a wide table scrolls inside its card), the header's Log out stays on screen, the
collector's row actions stay reachable, and the copy-once key dialog holds its heading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.collectors import register_collector
from tenants.keys import issue_key
from tenants.loadtests.examples import load_examples
from tenants.loadtests.models import LoadTestRun
from tenants.loadtests.prices import seed_prices
from tenants.tenancy import rename_tenant
from tests.browser.conftest import Browser, log_in

pytestmark = pytest.mark.integration

ROOT = "root@platform.test"
SEED = Path(__file__).resolve().parents[2] / "provisioning" / "prices.yaml"
LONG_NAME = "C" * 100
LONG_HOSTNAME = ".".join(["h" * 63, "o" * 63, "s" * 63, "t" * 61])
LONG_KEY_NAME = "N" * 100
LONG_TENANT_NAME = "Ünïcødé租户" + "L" * 90
PHONE, DESKTOP = 375, 1280
SIDEWAYS = "() => [document.scrollingElement.scrollWidth, window.innerWidth]"


@dataclass(frozen=True)
class Seeded:
    collector_id: int
    run_ids: list[int]


@pytest.fixture(params=[PHONE, DESKTOP], ids=["phone", "desktop"])
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return {"width": request.param, "height": 800}


@pytest.fixture
def seeded(app: Flask, make_user: Any, make_tenant: Any) -> Seeded:
    make_user(ROOT, platform_admin=True)
    make_tenant("acme", {ROOT: "admin"})
    with app.app_context():
        db, actor = database.session(), system_actor()
        tenant = tenant_for(db, actor, "acme")
        fields = {"name": LONG_NAME, "hostname": LONG_HOSTNAME, "labels": "team=" + "z" * 80}
        collector = register_collector(db, actor, tenant, fields)
        issue_key(db, actor, tenant, collector, app.extensions["pa_hasher"], LONG_KEY_NAME)
        register_collector(db, actor, tenant, {"name": "web1", "hostname": "web1.acme.test"})
        seed_prices(db, actor, SEED)
        load_examples(db, actor, tenant)
        rename_tenant(db, actor, tenant, LONG_TENANT_NAME)
        run_ids = list(db.scalars(select(LoadTestRun.id).order_by(LoadTestRun.id)))
        return Seeded(collector.id, run_ids)


def main_pages(seeded: Seeded) -> list[str]:
    collector = f"/tenants/acme/collectors/{seeded.collector_id}"
    ids = ",".join(str(run_id) for run_id in seeded.run_ids)
    return [
        "/tenants",
        "/tenants/acme",
        collector,
        f"{collector}/rightsizing",
        "/tenants/acme/settings",
        "/tenants/acme/audit",
        "/tenants/acme/loadtests",
        f"/tenants/acme/loadtests/{seeded.run_ids[0]}",
        f"/tenants/acme/loadtests/compare?ids={ids}",
        "/tenants/acme/prices",
        "/account",
        "/audit",
        "/users",
    ]


def test_no_page_scrolls_sideways_with_long_names(
    browser: Browser, seeded: Seeded, viewport: dict[str, int]
) -> None:
    page = browser.page
    log_in(page, ROOT, r"/tenants$")
    sideways = {}
    for path in main_pages(seeded):
        page.goto(path)
        expect(page.get_by_role("button", name="Log out")).to_be_in_viewport(ratio=1)
        scroll_width, width = page.evaluate(SIDEWAYS)
        if scroll_width > width:
            sideways[path] = scroll_width
    assert sideways == {}, f"wider than the {viewport['width']} px window"
    assert browser.problems == []


def test_the_long_collectors_actions_and_key_dialog_stay_on_screen(
    browser: Browser, seeded: Seeded, viewport: dict[str, int]
) -> None:
    page = browser.page
    log_in(page, ROOT, r"/tenants$")
    page.goto("/tenants/acme")
    row = page.locator("#collectors tbody tr", has_text=LONG_NAME)
    if viewport["width"] == DESKTOP:
        expect(row.get_by_role("button", name="Disable")).to_be_in_viewport(ratio=1)
    page.goto(f"/tenants/acme/collectors/{seeded.collector_id}")
    form = page.locator("form[action='/tenants/acme/keys']")
    form.evaluate("form => form.closest('details').open = true")
    form.get_by_role("button", name="Issue key").click()
    dialog = page.locator("dialog#key-dialog")
    expect(dialog).to_be_visible()
    heading = dialog.get_by_role("heading", name=re.compile("Copy the new key"))
    assert heading.evaluate("element => element.scrollWidth <= element.clientWidth")
    assert dialog.evaluate("element => element.scrollWidth <= element.clientWidth")
    expect(dialog.get_by_role("link", name=re.compile("Done"))).to_be_in_viewport(ratio=1)
    scroll_width, width = page.evaluate(SIDEWAYS)
    assert scroll_width <= width
    assert browser.problems == []


@pytest.mark.parametrize("viewport", [PHONE], indirect=True)
def test_compare_charts_fit_a_phone(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    log_in(page, ROOT, r"/tenants$")
    ids = ",".join(str(run_id) for run_id in seeded.run_ids)
    page.goto(f"/tenants/acme/loadtests/compare?ids={ids}")
    expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)
    for chart in ("chart-lines", "chart-bars", "chart-difference", "chart-value"):
        box = page.locator(f"#{chart}").bounding_box()
        assert box is not None
        assert box["x"] >= 0, chart
        assert box["x"] + box["width"] <= PHONE, chart
    assert browser.problems == []
