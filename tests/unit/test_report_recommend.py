"""Recommendations: each rule fires above its threshold, stays quiet below, and can be switched off."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perfanalysis.report.config import Thresholds
from perfanalysis.report.model import HostReport
from perfanalysis.report.recommend import Recommendation, recommend
from perfanalysis.report.timerange import Grid
from tests.unit.test_report_support import Behaviour, analysed, constant

GRID = Grid(1_700_000_000, 60, 120)  # two hours of minutes
LIMITS = Thresholds()


def link(host: HostReport) -> tuple[str, str]:
    return (
        f"https://admin.test/tenants/acme/collectors/7/rightsizing#{host.host}",
        "the right-sizing ranking",
    )


def advice(how: Behaviour, limits: Thresholds = LIMITS) -> list[Recommendation]:
    return recommend([analysed("web-01", GRID, how, limits)], limits, link, timezone="UTC")


def test_a_quiet_host_gets_no_recommendation() -> None:
    assert advice(Behaviour()) == []


def test_cpu_busy_above_the_threshold_at_p95_points_to_the_right_sizing_ranking() -> None:
    busy = [0.5] * 110 + [0.95] * 10  # p95 falls among the busiest steps
    found = advice(Behaviour(cpu_busy=lambda i: busy[i]))
    assert [r.area for r in found] == ["cpu"]
    assert found[0].text.startswith(
        "CPU busy p95 is 95.0%, above 80%: consider a larger machine type"
    )
    assert found[0].link == "https://admin.test/tenants/acme/collectors/7/rightsizing#web-01"
    assert found[0].link_text == "the right-sizing ranking"


def test_a_short_burst_below_the_percentile_is_not_enough() -> None:
    busy = [0.5] * 117 + [1.0] * 3  # 2.5% of the steps: above p97.5, not at p95
    assert advice(Behaviour(cpu_busy=lambda i: busy[i])) == []
    at_99 = replace(LIMITS, percentile=99.0)
    assert [r.area for r in advice(Behaviour(cpu_busy=lambda i: busy[i]), at_99)] == ["cpu"]


def test_memory_disk_and_filesystem_thresholds() -> None:
    found = advice(
        Behaviour(memory_used=constant(0.93), disk_busy=constant(0.85), fs_fill=constant(0.9))
    )
    assert [r.area for r in found] == ["memory", "disk", "filesystem"]
    assert found[0].text.startswith("Memory used p95 is 93.0%, above 90%")
    assert found[0].link.endswith("/rightsizing#web-01")
    assert found[1].text.startswith("Disk vda was busy 85.0% of the time at p95, above 80%")
    assert found[2].text == "Filesystem / is 90.0% full, above 85%: free space or grow it."


def test_a_filesystem_predicted_full_within_the_horizon() -> None:
    # from 20% to 80% full, 0.5% of the disk a minute: the rest fills in about 40 minutes; two
    # hours of data forecast 8h ahead (trend: at most four times the span)
    within_8h = replace(LIMITS, filesystem_full_within=8 * 3600)
    found = advice(Behaviour(fs_fill=lambda i: min(0.84, 0.2 + 0.005 * i)), within_8h)
    assert [r.area for r in found] == ["filesystem"]
    assert "at that rate it is full in about" in found[0].text
    slow = advice(Behaviour(fs_fill=lambda i: 0.5 + 1e-7 * i), within_8h)  # years away
    assert slow == []


TEN_MINUTES = Grid(1_700_000_000, 600, 120)  # 20 hours, from 2023-11-14 22:13 UTC
QUIET_AFTER_TEN_HOURS = set(range(60, 120))  # the last sample at 07:53, the report ends at 18:13


@pytest.mark.parametrize(
    ("fill_per_step", "expected"),
    [
        # 0.3 GiB a step, 32.3 GiB free at 07:53: full 17h 56m later, 7h 46m after the end
        (0.003, "Filesystem / fills by 43.2 GiB a day: at that rate it is full in about 7h 46m "
         "(around 2023-11-16 02:00 UTC): free space or grow it before then."),
        # 0.55 GiB a step, 17.55 GiB free at 07:53: full 5h 19m later, before the end
        (0.0055, "Filesystem / fills by 79.2 GiB a day: at that rate it was already full by "
         "the end of the period (around 2023-11-15 13:22 UTC, after its last sample): check it "
         "now, free space or grow it."),
    ],
)  # fmt: skip
def test_a_fill_forecast_counts_from_the_last_sample_of_a_host_that_went_quiet(
    fill_per_step: float, expected: str
) -> None:
    """Ten hours of data, a day ahead (1d needs 6h: trend)."""
    how = Behaviour(fs_fill=lambda i: 0.5 + fill_per_step * i, missing=QUIET_AFTER_TEN_HOURS)
    within_1d = replace(LIMITS, filesystem_full_within=86400)
    host = analysed("web-01", TEN_MINUTES, how, within_1d)
    found = recommend([host], within_1d, link, timezone="UTC")
    assert [r.text for r in found if r.area == "filesystem"] == [expected]


def test_network_errors_and_missing_data() -> None:
    found = advice(Behaviour(network_errors=0.5, missing=set(range(30, 60))))
    assert [r.area for r in found] == ["network", "data"]
    assert found[0].text.startswith("Interface eth0 had ")
    assert "0.5/s on average, above 0/s" in found[0].text
    assert found[1].text.startswith(
        "25.0% of the period has no data from this host (1 gap, the longest 30m from "
    )


def test_a_threshold_set_to_null_switches_its_rule_off() -> None:
    off = replace(
        LIMITS,
        cpu_busy_percent=None,
        memory_used_percent=None,
        disk_busy_percent=None,
        filesystem_used_percent=None,
        network_errors_per_second=None,
        data_missing_percent=None,
    )
    loud = Behaviour(
        cpu_busy=constant(0.99),
        memory_used=constant(0.99),
        disk_busy=constant(0.99),
        fs_fill=constant(0.99),
        network_errors=5.0,
        missing=set(range(60)),
    )
    assert {r.area for r in advice(loud)} == {
        "cpu",
        "memory",
        "disk",
        "filesystem",
        "network",
        "data",
    }
    assert advice(loud, off) == []
