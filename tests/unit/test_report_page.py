"""The HTML page: every chart for every host, self-contained, tables carrying exact values."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from perfanalysis.report.build import Report
from perfanalysis.report.config import Thresholds
from perfanalysis.report.cpu import core_lines
from perfanalysis.report.page import render_page
from perfanalysis.report.recommend import recommend
from perfanalysis.report.timerange import Grid
from tests.unit.test_report_recommend import link
from tests.unit.test_report_support import Behaviour, analysed, config_for, constant

GRID = Grid(1_700_000_000, 60, 90)
PER_HOST = {"cpu": 3, "memory": 3, "disk": 5, "network": 3, "filesystem": 1}


def page_for(behaviours: dict[str, Behaviour]) -> tuple[str, Report]:
    hosts = [analysed(name, GRID, how) for name, how in behaviours.items()]
    config = config_for(tuple(behaviours))
    report = Report(
        config,
        GRID,
        "pa_acme",
        hosts,
        recommend(hosts, Thresholds(), link, timezone="UTC"),
        "https://admin.test",
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    return render_page(report), report


def test_every_section_has_its_charts_for_every_host_side_by_side() -> None:
    page, _ = page_for({"web-01": Behaviour(), "web-02": Behaviour(), "db-01": Behaviour()})
    for section, count in PER_HOST.items():
        hosts = re.findall(
            rf'<figure class="chart" data-section="{section}" data-chart="[^"]+" data-host="([^"]+)"',
            page,
        )
        assert sorted(hosts) == sorted(["web-01", "web-02", "db-01"] * count), section
    assert len(re.findall(r'data-section="summary" data-chart=', page)) == 2
    assert page.count("<svg") == 2 + 3 * sum(PER_HOST.values())
    assert page.count('<table class="stats"') == len(PER_HOST)


def test_the_page_is_self_contained() -> None:
    page, _ = page_for({"web-01": Behaviour(cpu_busy=constant(0.95))})
    assert "<script" not in page
    assert "<link" not in page
    assert "src=" not in page
    assert "@import" not in page
    assert "url(" not in page
    outside = set(re.findall(r"https?://[^\"'<\s)]+", page)) - {"http://www.w3.org/2000/svg"}
    assert outside == {
        "https://admin.test/tenants/acme/collectors/7/rightsizing#web-01"
    }  # a link, not a fetch


def test_table_cells_carry_the_exact_figures() -> None:
    page, report = page_for({"web-01": Behaviour(cpu_busy=lambda i: 0.01 * (i % 50))})
    summary = report.hosts[0].summaries["cpu.busy"]
    row = re.search(r'<tr data-metric="cpu.busy" data-host="web-01">(.*?)</tr>', page)
    assert row is not None
    cells = dict(re.findall(r'data-stat="([^"]+)" data-value="([^"]+)"', row[1]))
    assert float(cells["p95"]) == summary.percentiles[95]
    assert float(cells["p97.5"]) == summary.percentiles[97.5]
    assert float(cells["p99"]) == summary.percentiles[99]
    assert float(cells["max"]) == summary.maximum


def test_gaps_are_shaded_counted_and_reported() -> None:
    page, report = page_for({"web-01": Behaviour(missing=set(range(20, 35)))})
    assert report.hosts[0].coverage == (90 - 15) / 90
    assert 'class="gap"' in page
    assert '<li><i class="gap"></i>no data</li>' in page
    assert "Data is missing for web-01 (16.7% of the steps)" in page
    assert "16.7% of the period has no data from this host" in page


def test_a_host_without_disk_data_says_so_and_keeps_its_charts() -> None:
    page, report = page_for({"web-01": Behaviour(), "web-02": Behaviour(has_disk=False)})
    for chart in ("disk.throughput", "disk.iops", "disk.latency", "disk.busy", "disk.queue"):
        figure = re.search(rf'data-chart="{chart}" data-host="web-02">(.*?)</figure>', page, re.S)
        assert figure is not None
        assert "No disk statistics (node_disk_*) for this host in this range." in figure[1]
    assert report.hosts[1].summaries["disk.busy"].count == 0
    assert "web-01: vda" in page


def test_many_cores_are_drawn_as_busiest_mean_and_least_busy() -> None:
    cores: dict[str, list[float | None]] = {str(c): [float(c)] * 3 for c in range(16)}
    lines = core_lines(cores, 3)
    assert [m.label for m in lines] == ["busiest core", "mean of cores", "least busy core"]
    assert [m.values[0] for m in lines] == [15.0, 7.5, 0.0]
    two: dict[str, list[float | None]] = {"0": [1.0], "1": [2.0]}
    assert len(core_lines(two, 1)) == 2
