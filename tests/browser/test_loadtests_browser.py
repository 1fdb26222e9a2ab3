"""The load-test comparison in Debian's Chromium, driven by Playwright, on the example data set.

An analyst opens the history, picks the four runs of the original system, compares them and
changes the baseline; every chart is drawn (pixels on its canvas, the expected datasets), the
page has no console error and no CSP violation, and a full-page screenshot is written. The
difference chart's axis always holds 0; without a priced run, no empty price-performance chart.
In a fleet of more collectors than the upload form lists, the analyst finds one by its search
and uploads a result for it.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.loadtests.examples import load_examples
from tenants.loadtests.models import LoadTestRun
from tenants.loadtests.prices import seed_prices
from tenants.loadtests.runs import set_run_price
from tenants.models import Collector
from tests.browser.conftest import Browser, log_in
from tests.unit.test_loadtests_support import document

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
# (axis minimum, axis maximum, smallest value, largest value) of the difference chart
DIFFERENCE_AXIS = """
() => {
  const chart = window.Chart.getChart(document.getElementById("chart-difference"));
  const values = chart.data.datasets.flatMap((dataset) => dataset.data).filter((v) => v !== null);
  return [chart.scales.y.min, chart.scales.y.max, Math.min(...values), Math.max(...values)];
}
"""


@pytest.fixture
def viewport() -> dict[str, int]:
    return {"width": 1400, "height": 900}


@pytest.fixture
def examples(app: Flask, make_tenant: Any) -> list[int]:
    """The ids of the four example runs, priced from the seed catalog."""
    make_tenant("acme", {ANALYST: "analyst"})
    with app.app_context():
        db = database.session()
        seed_prices(db, system_actor(), SEED)
        assert load_examples(db, system_actor(), tenant_for(db, system_actor(), "acme")) == 4
        return list(db.scalars(select(LoadTestRun.id).order_by(LoadTestRun.id)))


def test_comparison_of_the_examples_draws_every_chart(
    browser: Browser, examples: list[int], tmp_path: Path
) -> None:
    page = browser.page
    log_in(page, ANALYST, r"/tenants/acme$")
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


def test_the_difference_chart_draws_its_bars_from_zero(
    browser: Browser, examples: list[int]
) -> None:
    page = browser.page
    log_in(page, ANALYST, r"/tenants/acme$")
    signs = set()
    for baseline, other in itertools.permutations(examples, 2):
        page.goto(f"/tenants/acme/loadtests/compare?ids={baseline},{other}&baseline={baseline}")
        expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)
        low, high, smallest, largest = page.evaluate(DIFFERENCE_AXIS)
        assert low <= min(0, smallest), (baseline, other)
        assert max(0, largest) <= high, (baseline, other)
        signs.add("all above" if smallest > 0 else "all below" if largest < 0 else "mixed")
    assert {"all above", "all below"} <= signs  # the cases an axis fitted to the data gets wrong
    assert browser.problems == []


def test_without_a_priced_run_the_value_chart_gives_way_to_a_message(
    app: Flask, browser: Browser, examples: list[int]
) -> None:
    unpriced = examples[:2]
    with app.app_context():
        db, actor = database.session(), system_actor()
        tenant = tenant_for(db, actor, "acme")
        for run in db.scalars(select(LoadTestRun).where(LoadTestRun.id.in_(unpriced))):
            set_run_price(db, actor, tenant, run, None)
    page = browser.page
    log_in(page, ANALYST, r"/tenants/acme$")
    page.goto(f"/tenants/acme/loadtests/compare?ids={unpriced[0]},{unpriced[1]}")
    expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)
    expect(page.locator("#chart-value")).to_have_count(0)
    expect(page.locator("#chart-value-none")).to_have_text(
        "No compared run has a price: set one on a run to rank price-performance."
    )
    for chart in ("chart-lines", "chart-bars", "chart-difference"):
        assert page.evaluate(CHART_STATE, chart)[0] > 2000, chart
    assert browser.problems == []


@pytest.fixture
def fleet(app: Flask, make_tenant: Any) -> None:
    """Tenant acme with 60 collectors node-000 to node-059, and zeta-db after them by name."""
    make_tenant("acme", {ANALYST: "analyst"})
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "acme")
        names = [*(f"node-{n:03d}" for n in range(60)), "zeta-db"]
        db.add_all(Collector(tenant_id=tenant.id, name=name, hostname=f"{name}.acme.test")
                   for name in names)  # fmt: skip
        db.commit()


def test_an_upload_for_a_collector_found_by_the_search(
    browser: Browser, fleet: None, tmp_path: Path
) -> None:
    page = browser.page
    log_in(page, ANALYST, r"/tenants/acme$")
    page.goto("/tenants/acme/loadtests")
    collector = page.locator("#field-upload-collector_id")
    expect(collector.locator("option")).to_have_count(51)  # "none" and a page of 50
    expect(collector.locator("option", has_text="zeta-db")).to_have_count(0)
    expect(page.locator("#field-upload-collector_id-hint")).to_contain_text("find others")

    page.get_by_label("Find collectors by name or hostname").fill("ZETA")
    page.get_by_role("button", name="Find collectors").click()
    expect(page).to_have_url(re.compile(r"/tenants/acme/loadtests\?q=ZETA#upload$"))
    expect(collector.locator("option")).to_have_count(2)
    expect(collector).to_have_value(re.compile(r"^[0-9]+$"))  # the one found, chosen
    expect(collector.locator("option:checked")).to_have_text("zeta-db")

    result = tmp_path / "result.json"
    result.write_text(json.dumps(document(hostname="zeta-db.acme.test")))
    page.locator("#field-upload-file").set_input_files(str(result))
    page.locator("#field-upload-label").fill("zeta after the upgrade")
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/tenants/acme/loadtests/[0-9]+$"))
    expect(page.get_by_text("Load test zeta after the upgrade stored.")).to_be_visible()
    expect(page.locator("dd", has_text="right-sizing")).to_contain_text("zeta-db")
    assert browser.problems == []
