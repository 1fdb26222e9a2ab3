"""Gaps stay gaps: rates only between adjacent steps, no interpolation, gaps found and shaded."""

from __future__ import annotations

import itertools
import re
from zoneinfo import ZoneInfo

import pytest

from perfanalysis.report import metrics as m
from perfanalysis.report.build import analyse_host, report_grid
from perfanalysis.report.config import TimeSpec
from perfanalysis.report.fetch import key
from perfanalysis.report.model import PERCENT, Metric, Panel
from perfanalysis.report.series import combine, divide, gaps, present, rate, total
from perfanalysis.report.svg import envelope, render
from perfanalysis.report.timerange import Grid, nice_step, parse_duration
from tests.unit.test_report_support import (
    Behaviour,
    analysed,
    config_for,
    constant,
    synthetic_host,
)


def test_a_rate_needs_its_step_and_the_one_before() -> None:
    counter = [0.0, 10.0, 30.0, None, 50.0, 70.0, 40.0, 60.0]
    seconds = [None, 10.0, 10.0, None, 20.0, 10.0, 10.0, 10.0]  # since the sample before
    # gap, then a reset; the first step has no step before it
    assert rate(counter, seconds) == [None, 1.0, 2.0, None, None, 2.0, None, 2.0]
    # with the value of the step before the period, the first step has its rate
    assert rate(counter, [5.0, *seconds[1:]], before=-5.0)[0] == 1.0


def test_operations_propagate_missing_values() -> None:
    a, b = [1.0, None, 3.0, 4.0], [2.0, 2.0, None, 0.0]
    assert combine(lambda x, y: x + y, a, b) == [3.0, None, None, 4.0]
    assert divide(a, b, 100) == [50.0, None, None, None]  # division by zero gives no value
    assert total([a, b], 4) == [3.0, None, None, 4.0]
    assert total([], 3) == [None, None, None]
    assert present(a, b) == [True, True, True, True]
    assert present([None, 1.0], [None, None]) == [False, True]


def test_gaps_are_runs_of_steps_without_data() -> None:
    assert gaps([True, False, False, True, False]) == [(1, 3), (4, 5)]
    assert gaps([False, True]) == [(0, 1)]
    assert gaps([True, True]) == []


def test_missing_steps_are_left_out_of_percentiles_and_counted_as_missing() -> None:
    grid = Grid(1_700_000_000, 60, 20)
    busy = [0.1 * (i % 10) for i in range(20)]
    host = analysed("web-01", grid, Behaviour(cpu_busy=lambda i: busy[i], missing={5, 6, 7}))
    summary = host.summaries["cpu.busy"]
    # steps 5-7 have no counters, and step 8's rate needs step 7: four steps without a value
    # (step 0's rate comes from the step before the period)
    assert summary.count == 20 - 4
    assert host.coverage == pytest.approx(17 / 20)
    expected = sorted(100 * busy[i] for i in range(20) if i not in {5, 6, 7, 8})
    assert summary.maximum == pytest.approx(expected[-1])
    assert gaps(host.has_data) == [(5, 8)]


def test_charts_break_lines_at_gaps_and_shade_them() -> None:
    grid = Grid(1_700_000_000, 60, 10)
    values = [10.0, 20.0, None, None, 40.0, 50.0, 60.0, None, 80.0, 90.0]
    panel = Panel(
        "cpu.overall",
        "CPU",
        PERCENT,
        [Metric("cpu.busy", "busy", PERCENT, values)],
        [v is not None for v in values],
        y_max=100,
    )
    chart = render(panel, grid, ZoneInfo("UTC"))
    path = re.search(r'<path d="([^"]+)"', chart)
    assert path is not None
    assert path.group(1).count("M") == 3  # three runs of data, nothing drawn across the gaps
    assert chart.count('class="gap"') == 2


def test_long_series_keep_their_extremes_when_reduced_to_the_plot_width() -> None:
    values: list[float | None] = [1.0] * 5000
    values[1234] = 99.0
    values[3000:3100] = [None] * 100
    reduced = envelope(values, 500)
    assert len(reduced) <= 2 * 500 + 10
    assert max(v for _, v in reduced if v is not None) == 99.0
    assert any(v is None for _, v in reduced)  # the gap survives the reduction


def test_automatic_step_keeps_two_samples_per_step_and_bounds_the_points() -> None:
    week = TimeSpec(last=7 * 86400, start=None, end=None, step=None)
    assert report_grid(week, 0, 7 * 86400, [10.0]).step == 300  # 242 s -> 5 min
    short = TimeSpec(last=60, start=None, end=None, step=None)
    assert report_grid(short, 1000, 1060, [1.0, 0.5, None]).step == 2
    assert report_grid(short, 1000, 1060, [None]).step == 1
    assert nice_step(86401) == 2 * 86400
    assert parse_duration("90s") == 90


def test_a_relative_range_ends_at_the_last_whole_step() -> None:
    spec = TimeSpec(last=3600, start=None, end=None, step=60)
    grid = report_grid(spec, 1_699_996_430, 1_700_000_030, [])  # "now" is 50 s into a minute
    assert (grid.start, grid.end, grid.count) == (1_699_996_380, 1_699_999_980, 60)


def test_grids_align_to_multiples_of_the_step_and_split_into_chunks() -> None:
    grid = Grid.covering(1005.0, 1300.5, 60)
    assert (grid.start, grid.end, grid.count) == (960, 1320, 6)
    assert grid.chunks(4) == [(0, 4), (4, 2)]
    assert grid.index_of(1030) == 1


def test_a_constant_cpu_level_survives_gaps_unchanged() -> None:
    grid = Grid(1_700_000_000, 60, 30)
    host = analysed("web-01", grid, Behaviour(cpu_busy=constant(0.5), missing=set(range(10, 20))))
    summary = host.summaries["cpu.busy"]
    assert summary.percentiles[99] == pytest.approx(50.0)
    assert summary.maximum == pytest.approx(50.0)  # no spike from a rate averaged across the gap


def test_cpus_that_report_for_part_of_the_period_count_where_they_report() -> None:
    """A resize from 2 to 4 vCPUs (or a CPU taken offline, which the exporter then omits)."""
    grid = Grid(1_700_000_000, 60, 20)
    data, found = synthetic_host("web-01", grid, Behaviour(cpus=4, cpu_busy=constant(0.5)))
    for cpu, mode in itertools.product(("2", "3"), ("idle", "iowait", "user")):
        data.series[key(m.CPU, cpu=cpu, mode=mode)][:10] = [None] * 10
    host = analyse_host(data, found, config_for(("web-01",)))
    assert host.coverage == 1.0
    busy = host.metric("cpu.busy")
    assert busy is not None
    assert busy.values[0] == pytest.approx(50.0)  # its rate from the step before the period
    assert busy.values[1:] == pytest.approx([50.0] * (grid.count - 1))
    section = host.sections["cpu"]
    [by_mode] = [panel for panel in section.panels if panel.key == "cpu.modes"]
    [user] = [line for line in by_mode.lines if line.key == "cpu.mode.user"]
    assert user.values[1:] == pytest.approx([50.0] * (grid.count - 1))
    assert section.subject == "2 to 4 CPUs (the count changed during the period)"
