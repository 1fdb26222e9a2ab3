"""Ten compared runs of one provider, the most a comparison takes, each drawn in Chromium in a
style no other run has: a shade, dashed lines and hatched bars beyond the provider's five shades,
and a marker of its own. With three shades cycled, runs 1, 4, 7 and 10 looked the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.loadtests.models import LoadTestRun
from tenants.loadtests.prices import seed_prices
from tenants.loadtests.runs import upload_as_user
from tests.browser.conftest import Browser, log_in
from tests.unit.test_loadtests_support import UNITS, document

pytestmark = pytest.mark.integration

ANALYST = "ana@acme.test"
SEED = Path(__file__).resolve().parents[2] / "provisioning" / "prices.yaml"
TYPES = ["t3.medium", "c5.large", "c6i.large", "m5.large", "m6i.large", "c5.xlarge", "m5.xlarge",
         "t3.medium", "c5.large", "c6i.large"]  # fmt: skip
# per chart: each dataset's look, as a string two datasets share only when they look alike
LOOKS = """
(id) => window.Chart.getChart(document.getElementById(id)).data.datasets.map((d) => [
  d.label,
  [typeof d.borderColor === "string" ? d.borderColor : "?",
   JSON.stringify(d.borderDash || []), d.pointStyle || "",
   typeof d.backgroundColor === "string" ? d.backgroundColor :
     (d.backgroundColor instanceof CanvasPattern ? "hatched " + d.runStyle.colour : "?")
  ].join(" | ")
])
"""
SWATCHES = """
() => [...document.querySelectorAll("table.levels [data-swatch]")].map((s) => {
  const style = getComputedStyle(s);
  return [s.dataset.swatch, style.backgroundColor + " " + style.backgroundImage];
})
"""


@pytest.fixture
def ten_aws_runs(app: Flask, make_tenant: Any) -> list[int]:
    make_tenant("acme", {ANALYST: "analyst"})
    with app.app_context():
        db = database.session()
        seed_prices(db, system_actor(), SEED)
        tenant = tenant_for(db, system_actor(), "acme")
        for i, instance_type in enumerate(TYPES):
            doc = document([u * (1 + i / 20) for u in UNITS], hostname=f"h{i}",
                           cloud_provider="aws", region="us-east-1", instance_type=instance_type,
                           memory_bytes=4 * 2**30)  # fmt: skip
            upload_as_user(db, system_actor(), tenant, json.dumps(doc).encode())
        return list(db.scalars(select(LoadTestRun.id).order_by(LoadTestRun.id)))


def test_ten_runs_of_one_provider_each_look_different(
    browser: Browser, ten_aws_runs: list[int]
) -> None:
    page = browser.page
    log_in(page, ANALYST, r"/tenants/acme$")
    page.goto("/tenants/acme/loadtests/compare?ids=" + ",".join(map(str, ten_aws_runs)))
    expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)
    for chart, count in [("chart-lines", 10), ("chart-bars", 10), ("chart-difference", 9)]:
        looks = page.evaluate(LOOKS, chart)
        assert len(looks) == count, chart
        assert len({look for _, look in looks}) == count, (chart, looks)
    # the provider's five shades, then again dashed (lines) and hatched (bars)
    assert sum("| [6,4] |" in look for _, look in page.evaluate(LOOKS, "chart-lines")) == 5
    assert sum("| hatched #" in look for _, look in page.evaluate(LOOKS, "chart-bars")) == 5
    swatches = page.evaluate(SWATCHES)
    assert len(swatches) == 10
    assert len({look for _, look in swatches}) == 10, swatches
    assert browser.problems == []
