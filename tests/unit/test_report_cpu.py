"""The report's CPU busy counts iowait as idle time, as HostCpuBusy and the dashboards do: a host
mostly waiting for its disk is drawn well below the busy threshold, with iowait shown on its own."""

from __future__ import annotations

import pytest

from perfanalysis.report.recommend import recommend
from perfanalysis.report.timerange import Grid
from tests.unit.test_report_page import page_for
from tests.unit.test_report_recommend import LIMITS, link
from tests.unit.test_report_support import Behaviour, analysed, constant

GRID = Grid(1_700_000_000, 60, 60)
IO_BOUND = Behaviour(cpu_busy=constant(0.10), cpu_iowait=constant(0.85), cpus=4)  # 5% idle


def test_a_host_mostly_in_iowait_is_not_busy() -> None:
    host = analysed("db-01", GRID, IO_BOUND)
    assert host.summaries["cpu.busy"].maximum == pytest.approx(10.0)
    assert host.summaries["cpu.iowait"].mean == pytest.approx(85.0)


def test_each_core_mostly_in_iowait_is_not_busy() -> None:
    section = analysed("db-01", GRID, IO_BOUND).sections["cpu"]
    [per_core] = [panel for panel in section.panels if panel.key == "cpu.per_core"]
    assert [line.label for line in per_core.lines] == ["cpu 0", "cpu 1", "cpu 2", "cpu 3"]
    for line in per_core.lines:  # the step before the period gives the first step its rate
        assert line.values == pytest.approx([10.0] * GRID.count)


def test_iowait_stays_below_the_threshold_line_and_is_drawn_on_its_own() -> None:
    section = analysed("db-01", GRID, IO_BOUND).sections["cpu"]
    [overall] = [panel for panel in section.panels if panel.key == "cpu.overall"]
    assert overall.threshold == LIMITS.cpu_busy_percent == 80.0
    lines = {line.key: line.values[1:] for line in overall.lines}
    assert lines["cpu.busy"] == pytest.approx([10.0] * (GRID.count - 1))
    assert lines["cpu.iowait"] == pytest.approx([85.0] * (GRID.count - 1))
    [by_mode] = [panel for panel in section.panels if panel.key == "cpu.modes"]
    assert [line.label for line in by_mode.lines] == ["user", "iowait"]


def test_an_io_bound_host_gets_no_cpu_recommendation_and_a_cpu_bound_one_does() -> None:
    io_bound = analysed("db-01", GRID, IO_BOUND)
    cpu_bound = analysed("web-01", GRID, Behaviour(cpu_busy=constant(0.95)))
    found = recommend([io_bound, cpu_bound], LIMITS, link, timezone="UTC")
    assert [(r.area, r.host) for r in found if r.area == "cpu"] == [("cpu", "web-01")]


def test_the_busy_charts_say_iowait_is_not_counted() -> None:
    page, _ = page_for({"db-01": IO_BOUND})
    for chart in ("cpu.overall", "cpu.per_core"):
        figure = page[page.index(f'data-chart="{chart}" data-host="db-01"') :]
        note = figure[: figure.index("</figure>")]
        assert "neither idle nor iowait" in note, chart
