"""The load-test comparison in Debian's Chromium, driven by Playwright, on the example data set.

An analyst opens the history, picks the four runs of the original system, compares them and
changes the baseline; every chart is drawn (pixels on its canvas, the expected datasets), the
page has no console error and no CSP violation, and a full-page screenshot is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.loadtests.examples import load_examples
from tenants.loadtests.prices import seed_prices
from tests.browser.conftest import Browser
from tests.conftest import PASSWORD

pytestmark = pytest.mark.integration

ANALYST = "ana@acme.test"
SEED = Path(__file__).resolve().parents[2] / "provisioning" / "prices.yaml"
CHARTS = ("chart-lines", "chart-bars", "chart-difference", "chart-value")
# (painted pixels, datasets, points in the first dataset) of a Chart.js canvas
CHART_STATE = """
(id) => {
  const canvas = document.getElementById(id);
  const context = canvas.getContext("2d");
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  const chart = window.Chart.getChart(canvas);
  return [painted, chart.data.datasets.length, chart.data.datasets[0].data.length];
}
"""


@pytest.fixture
def viewport() -> dict[str, int]:
    return {"width": 1400, "height": 900}


@pytest.fixture
def examples(app: Flask, make_tenant: Any) -> None:
    make_tenant("acme", {ANALYST: "analyst"})
    with app.app_context():
        db = database.session()
        seed_prices(db, system_actor(), SEED)
        assert load_examples(db, system_actor(), tenant_for(db, system_actor(), "acme")) == 4


def test_comparison_of_the_examples_draws_every_chart(
    browser: Browser, examples: None, tmp_path: Path
) -> None:
    page = browser.page
    log_in(page)
    page.goto("/tenants/acme/loadtests")
    rows = page.locator("table.loadtests tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator("#compare-button")).to_be_disabled()
    for index in range(4):
        rows.nth(index).locator("input[name=ids]").check()
    expect(page.locator("[data-compare-hint]")).to_contain_text("4 selected")
    page.locator("#compare-button").click()
    expect(page).to_have_url(re.compile(r"/tenants/acme/loadtests/compare\?ids="))
    expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)

    states = {chart: page.evaluate(CHART_STATE, chart) for chart in CHARTS}
    assert all(painted > 2000 for painted, _, _ in states.values()), states
    assert states["chart-lines"][1:] == [4, 10]  # four runs of ten levels
    assert states["chart-bars"][1:] == [4, 10]
    assert states["chart-difference"][1:] == [3, 10]  # all but the baseline
    assert states["chart-value"][1:] == [1, 4]  # one bar per priced run
    expect(page.locator("table.value tbody tr")).to_have_count(4)
    expect(page.locator("#price-performance")).to_contain_text("4,842.11")  # 184 / $0.038

    page.locator("#baseline-select").select_option(label="Original: OCI E5.Flex 2 vCPU")
    expect(page.locator("tr.baseline")).to_have_count(2)
    expect(page.locator("tr.baseline").first).to_contain_text("OCI E5.Flex 2 vCPU")
    expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)
    assert page.evaluate(CHART_STATE, "chart-difference")[0] > 2000

    screenshot = tmp_path / "loadtests-compare.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.stat().st_size > 20_000
    assert browser.problems == []


def log_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(ANALYST)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/tenants/acme$"))
