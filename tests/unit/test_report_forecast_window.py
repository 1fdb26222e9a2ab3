"""A fill trend is forecast only from enough data for how far ahead it looks (report.trend).

An audit found a report over two minutes turning a two-minute trend into "full in 6 days". A
trend is now extrapolated at most four times as far ahead as its data spans (node-mixin predicts
24h ahead from 6h), from ten steps with data or more; with less, the report says so, in the
header, above the recommendations and on stderr, instead of forecasting or keeping quiet.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from perfanalysis.report.config import Thresholds
from perfanalysis.report.page import render_page
from perfanalysis.report.recommend import recommend, trend_notes
from perfanalysis.report.timerange import Grid
from perfanalysis.report.trend import ShortData, fitted_slope, short_data, span_needed
from tests.unit.test_report_audit_fixes import built, loaded
from tests.unit.test_report_recommend import link
from tests.unit.test_report_support import GIB, Behaviour, analysed

START = 1_700_000_000
WEEK_AHEAD = Thresholds()  # filesystem_full_within: 7d
DAY_AHEAD = Thresholds(filesystem_full_within=86400)
# free space falls from 50 GiB by 50 GiB in six days: "full in 6 days" at the fitted rate
SIX_DAYS_TO_FULL = 0.5 / (6 * 86400)  # of the disk, a second


def creeping(step: int) -> Behaviour:
    return Behaviour(fs_fill=lambda i: 0.5 + SIX_DAYS_TO_FULL * step * i)


def test_two_minutes_of_data_forecast_nothing_and_say_so() -> None:
    grid = Grid(START, 10, 12)  # 2 minutes in steps of 10s
    host = analysed("web-01", grid, creeping(10), WEEK_AHEAD)
    # what the report used to extrapolate: the fitted rate fills the 50 GiB in six days
    free = [(grid.time_of(i), (0.5 - SIX_DAYS_TO_FULL * 10 * i) * 100 * GIB) for i in range(12)]
    slope = fitted_slope(free)
    assert slope is not None
    assert 50 * GIB / -slope == pytest.approx(6 * 86400)

    assert recommend([host], WEEK_AHEAD, link, timezone="UTC") == []
    (fill,) = host.forecasts
    assert (fill.seconds_to_full, fill.bytes_per_day) == (None, None)
    assert fill.used_percent == pytest.approx(50.0, abs=0.05)  # the latest fill is still shown
    assert trend_notes([host], WEEK_AHEAD) == [
        "filesystem fill trend not forecast (web-01 /): 2m of data, 1d 18h needed, to forecast "
        "7d ahead (thresholds.filesystem_full_within). A trend is extrapolated at most 4 times "
        "as far ahead as its data spans (as node-mixin's alert, 24h ahead from 6h), and from "
        "10 steps with data or more: report a longer period, or set "
        "thresholds.filesystem_full_within to at most 8m"
    ]


def test_a_week_of_data_still_forecasts_a_week_ahead() -> None:
    grid = Grid(START, 3600, 7 * 24)
    # from 30% to 70% full in the week: 30 GiB left at 5.7 GiB a day
    filling = Behaviour(fs_fill=lambda i: 0.3 + 0.4 * i / (7 * 24 - 1))
    host = analysed("web-01", grid, filling, WEEK_AHEAD)
    (found,) = recommend([host], WEEK_AHEAD, link, timezone="UTC")
    assert found.area == "filesystem"
    assert found.text.startswith(
        "Filesystem / fills by 5.75 GiB a day: at that rate it is full in about 5d 4h"
    )
    assert trend_notes([host], WEEK_AHEAD) == []


@pytest.mark.parametrize(("steps", "forecast"), [(36, True), (35, False)])
def test_a_day_ahead_needs_six_hours_of_data(steps: int, forecast: bool) -> None:
    """36 steps of 10m are 6h: a quarter of the day looked ahead; 35 are 10 minutes short."""
    assert span_needed(86400) == 6 * 3600
    grid = Grid(START, 600, steps)
    filling = Behaviour(fs_fill=lambda i: 0.5 + 0.004 * i)  # full in about 15h
    host = analysed("web-01", grid, filling, DAY_AHEAD)
    areas = [r.area for r in recommend([host], DAY_AHEAD, link, timezone="UTC")]
    assert areas == (["filesystem"] if forecast else [])
    notes = trend_notes([host], DAY_AHEAD)
    if forecast:
        assert notes == []
    else:
        (note,) = notes
        assert "(web-01 /): 5h 50m of data, 6h needed, to forecast 1d ahead" in note
        assert note.endswith("set thresholds.filesystem_full_within to at most 23h20m")


def test_too_few_steps_with_data_are_named_with_what_to_change() -> None:
    grid = Grid(START, 3600, 8)  # 8h: long enough for a day ahead, but 8 values
    host = analysed("web-01", grid, Behaviour(fs_fill=lambda i: 0.5 + 0.03 * i), DAY_AHEAD)
    assert [r.area for r in recommend([host], DAY_AHEAD, link, timezone="UTC")] == []
    (note,) = trend_notes([host], DAY_AHEAD)
    assert "(web-01 /): 8 steps with data, 10 needed, to forecast 1d ahead" in note
    assert note.endswith(": give a shorter time.step, for more steps with data")


def test_the_span_runs_from_the_first_to_the_last_step_with_data() -> None:
    """A gap inside the data does not shorten it; steps without data at either end do."""
    inside = [True] * 10 + [False] * 30 + [True] * 10
    assert short_data(inside, 600, 86400) is None  # 50 steps of 10m: 8h20m
    at_the_ends = [False] * 20 + [True] * 30 + [False] * 20
    assert short_data(at_the_ends, 600, 86400) == ShortData(30, 18000, 86400)
    assert str(ShortData(3, 60, 86400)) == "1m of data, 6h needed, and 3 steps with data, 10 needed"
    # the longest horizon suggested is in whole minutes: 4 x 1h59m35s is 7h58m20s
    (note,) = trend_notes(
        [analysed("web-01", Grid(START, 7, 1025), Behaviour(), DAY_AHEAD)], DAY_AHEAD
    )
    assert note.endswith("set thresholds.filesystem_full_within to at most 7h58m")


def test_hosts_with_the_same_shortfall_share_one_note() -> None:
    grid = Grid(START, 10, 12)
    hosts = [analysed(name, grid, creeping(10), WEEK_AHEAD) for name in ("web-01", "web-02")]
    (note,) = trend_notes(hosts, WEEK_AHEAD)
    assert note.startswith("filesystem fill trend not forecast (web-01 /; web-02 /): 2m of data")


def test_no_forecast_asked_for_no_note() -> None:
    off = replace(WEEK_AHEAD, filesystem_full_within=None)
    host = analysed("web-01", Grid(START, 10, 12), creeping(10), off)
    assert trend_notes([host], off) == []
    assert host.forecasts[0].not_forecast is None


def test_a_short_report_says_so_on_stderr_atop_the_page_and_above_the_recommendations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = loaded(tmp_path, "{last: 2m, step: 10s}")
    report, err = built(monkeypatch, config, 5, creeping(10))
    expected = (
        "filesystem fill trend not forecast (web-01 /): 2m of data, 1d 18h needed, to forecast "
        "7d ahead"
    )
    assert f"perfanalysis report: note: {expected}" in err
    assert [r for r in report.recommendations if r.area == "filesystem"] == []
    page = render_page(report)
    header, rest = page.split('<section id="summary"')
    assert f'<p class="note">{expected}' in header
    recommendations = rest.split('<section id="recommendations">')[1].split("</section>")[0]
    assert f'<p class="note" data-note="trend">{expected}' in recommendations
    assert "only from steps with data spanning at least 1d 18h and numbering at least 10" in page
