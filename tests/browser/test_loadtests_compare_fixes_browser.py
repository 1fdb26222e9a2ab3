"""The price-performance chart in Chromium orders its bars as the API ranks the runs: a run whose
100% level was not accepted comes after every ranked run, labelled as not ranked, even when its
units per $/hour are the highest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.loadtests.compare import price_performance
from tenants.loadtests.examples import load_examples
from tenants.loadtests.models import LoadTestRun
from tenants.loadtests.prices import seed_prices
from tests.browser.conftest import Browser, log_in

pytestmark = pytest.mark.integration

ANALYST = "ana@acme.test"
SEED = Path(__file__).resolve().parents[2] / "provisioning" / "prices.yaml"
# (bar labels, bar values) of the price-performance chart
VALUE_BARS = """
() => {
  const chart = window.Chart.getChart(document.getElementById("chart-value"));
  return [chart.data.labels, chart.data.datasets[0].data];
}
"""


@pytest.fixture
def disturbed_best(app: Flask, make_tenant: Any) -> tuple[list[int], str]:
    """The four example runs, priced; the one of the best value has its 100% level not
    accepted. Its ids and that run's name."""
    make_tenant("acme", {ANALYST: "analyst"})
    with app.app_context():
        db = database.session()
        seed_prices(db, system_actor(), SEED)
        load_examples(db, system_actor(), tenant_for(db, system_actor(), "acme"))
        runs = list(db.scalars(select(LoadTestRun).order_by(LoadTestRun.id)))
        best = max(runs, key=lambda run: price_performance(run.max_units_per_second,
                                                           run.price_usd_per_hour) or 0)  # fmt: skip
        best.levels[-1].accepted = False
        best.all_levels_accepted = False
        db.commit()
        return [run.id for run in runs], best.display_name


def test_the_value_chart_puts_an_unranked_run_after_the_ranked_ones(
    browser: Browser, disturbed_best: tuple[list[int], str]
) -> None:
    ids, unranked = disturbed_best
    page = browser.page
    log_in(page, ANALYST, r"/tenants/acme$")
    page.goto(f"/tenants/acme/loadtests/compare?ids={','.join(map(str, ids))}")
    expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)
    labels, values = page.evaluate(VALUE_BARS)
    assert labels[-1] == f"{unranked} (not ranked)"
    assert values[-1] == max(values)  # the highest value, yet not first
    assert values[:-1] == sorted(values[:-1], reverse=True)
    assert not any(label.endswith("(not ranked)") for label in labels[:-1])
    expect(page.locator("table.value tbody tr").last).to_contain_text(unranked)
    expect(page.locator("table.value tbody tr.unranked")).to_have_count(1)
    assert browser.problems == []
