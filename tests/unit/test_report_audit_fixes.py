"""Audit fixes of the report: the period covers the range asked for, a step below the sampling
interval is said to be the cause of missing steps (not the exporter), times in the configured
zone everywhere, and no claim about swap without swap data.

The reports here are built by ``build_report`` itself on the synthetic hosts of
test_report_support, served by a stand-in for InfluxDB (discovery and reads), so no storage runs.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import pytest

from perfanalysis.report import build
from perfanalysis.report.build import Report, build_report, report_grid, requested_range
from perfanalysis.report.config import ReportConfig, Thresholds, TimeSpec, load_config
from perfanalysis.report.fetch import Discovery, HostData, Selection
from perfanalysis.report.influx import ReportError
from perfanalysis.report.model import HostReport
from perfanalysis.report.page import render_page
from perfanalysis.report.recommend import recommend
from perfanalysis.report.source import Source
from perfanalysis.report.timerange import Grid
from perfanalysis.report.validate import ReportConfigError
from tests.unit.test_report_recommend import link
from tests.unit.test_report_support import Behaviour, analysed, synthetic_host

NOW = 1_700_003_520.0  # 2023-11-14 23:12:00 UTC: 12 minutes past a whole hour


def config_errors(tmp_path: Path, time: str) -> list[str]:
    path = tmp_path / "report.yaml"
    path.write_text(f"tenant: acme\nhosts: [web-01]\ntime: {time}\n")
    with pytest.raises(ReportConfigError) as caught:
        load_config(path, {})
    return caught.value.errors


def loaded(tmp_path: Path, time: str) -> ReportConfig:
    path = tmp_path / "report.yaml"
    path.write_text(textwrap.dedent(f"tenant: acme\nhosts: [web-01]\ntime: {time}\n"))
    return load_config(path, {})


class FakeReader:
    database = "pa_acme"

    def close(self) -> None:
        pass


def serve(
    monkeypatch: pytest.MonkeyPatch, interval: int, how: Behaviour | None = None
) -> list[Grid]:
    """Stand in for InfluxDB: web-01 sampled every ``interval`` seconds (its steps without a
    sample are the ones no sample falls in). Returns the grids read, to look at."""
    grids: list[Grid] = []

    def discover(reader: Any, host: str, start: int, end: int) -> Discovery:
        found = Discovery(host, {"vda": 1e9}, {"eth0": 1e6}, {"/": "ext4"}, f"{host}-collector")
        first = -(-start // interval) * interval
        found.sample_times = [float(t) for t in range(first, end, interval)][:200]
        return found

    def read_values(
        reader: Any, selections: list[Selection], grid: Grid, *rest: Any
    ) -> dict[str, HostData]:
        grids.append(grid)
        empty = {i for i in range(grid.count) if not _holds_a_sample(grid, i, interval)}
        base = how or Behaviour()
        before = _holds_a_sample(grid, -1, interval)  # the step before the period, read too
        chosen = replace(base, missing=set(base.missing) | empty, sampled_before=before)
        return {s.host: synthetic_host(s.host, grid, chosen)[0] for s in selections}

    monkeypatch.setattr(build, "open_source", lambda config, settings: Source(FakeReader(), {}))
    monkeypatch.setattr(build, "known_hosts", lambda reader: {"web-01"})
    monkeypatch.setattr(build, "discover", discover)
    monkeypatch.setattr(build, "read_values", read_values)
    return grids


def _holds_a_sample(grid: Grid, index: int, interval: int) -> bool:
    start = grid.time_of(index)
    return -(-start // interval) * interval < start + grid.step


SETTINGS = {"influxdb_concurrency": 1, "progress": False, "admin_url": ""}


def built(
    monkeypatch: pytest.MonkeyPatch,
    config: ReportConfig,
    interval: int = 10,
    how: Behaviour | None = None,
) -> tuple[Report, str]:
    serve(monkeypatch, interval, how)
    err = io.StringIO()
    report = build_report(config, SETTINGS, now=NOW, stream=err)
    return report, err.getvalue()


# -- 9. a step longer than the range; the step in progress


def test_a_step_longer_than_time_last_is_a_configuration_error(tmp_path: Path) -> None:
    """last: 1h with step: 2h made a report of 18:00-20:00 at 21:12: the hour asked for was
    outside it, and the report said all of its data was missing."""
    path = tmp_path / "report.yaml"
    assert config_errors(tmp_path, "{last: 1h, step: 2h}") == [
        f"{path}: line 3: time.step: 2h is longer than time.last (1h): the range must hold at least two "
        "steps, since a rate (CPU, disk, network) needs a step and the one before it; choose a "
        "step of at most 30m, or auto"
    ]
    (half,) = config_errors(tmp_path, "{last: 1h, step: 1h}")  # one step: no rate at all
    assert "time.step: 1h is more than half of time.last (1h)" in half
    (absolute,) = config_errors(
        tmp_path, "{start: 2025-01-01T00:00:00Z, end: 2025-01-01T00:30:00Z, step: 20m}"
    )
    assert absolute.endswith(
        "time.step: 20m is more than half of the range from time.start to time.end (30m): the "
        "range must hold at least two steps, since a rate (CPU, disk, network) needs a step and "
        "the one before it; choose a step of at most 15m, or auto"
    )
    assert loaded(tmp_path, "{last: 1h, step: 30m}").time.step == 1800


@pytest.mark.parametrize(("last", "step"), [(3600, 1800), (3600, 60), (3600, 1500), (600, 7)])
def test_an_accepted_step_reports_the_whole_range_but_the_step_in_progress(
    last: int, step: int
) -> None:
    spec = TimeSpec(last=last, start=None, end=None, step=step)
    start, end = requested_range(spec, NOW)
    grid = report_grid(spec, start, end, [10.0])
    assert grid.start <= start  # the whole range asked for, from its start ...
    assert 0 <= end - grid.end < step  # ... to the last whole step before now
    assert grid.count >= 2


def test_an_automatic_step_too_long_for_the_range_is_refused() -> None:
    """step auto takes at least two sampling intervals, 30 s on 10 s data: a 50 s range holds
    one step of it, which ended up to 30 s before now."""
    spec = TimeSpec(last=50, start=None, end=None, step=None)
    with pytest.raises(ReportError) as caught:
        report_grid(spec, NOW - 50, NOW, [10.0])
    assert str(caught.value) == (
        "time.last: the range (50s) is too short for two steps of 30s (step auto, two samples "
        "of the data's sampling interval of 10s), and a rate (CPU, disk, network) needs a step "
        "and the one before it: give a range of at least 1m"
    )
    assert report_grid(replace(spec, last=60), NOW - 60, NOW, [10.0]).count == 2


def test_the_header_says_the_step_in_progress_is_left_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = loaded(tmp_path, "{last: 2h, step: 30m}")
    report, _ = built(monkeypatch, config)
    assert (report.grid.start, report.grid.end) == (NOW - 720 - 7200, NOW - 720)
    page = render_page(report)
    assert (
        "2023-11-14 21:00:00 UTC to 2023-11-14 23:00:00 UTC (2h); it ends at the last whole "
        "step, so the last 12m (up to 2023-11-14 23:12:00 UTC), a step still in progress, is "
        "left out"
    ) in page
    absolute = loaded(tmp_path, "{start: 2023-11-14T21:00:00Z, end: 2023-11-14T23:00:00Z}")
    assert "left out" not in render_page(built(monkeypatch, absolute)[0])


def test_suggested_durations_are_written_as_a_configuration_takes_them() -> None:
    from perfanalysis.report.timerange import parse_duration, written_duration

    for seconds, text in ((5400, "1h30m"), (90, "1m30s"), (86400, "1d"), (129600, "1d12h")):
        assert written_duration(seconds) == text
        assert parse_duration(text) == seconds


# -- 10. a step below the sampling interval


def test_a_step_below_the_sampling_interval_is_warned_about_not_blamed_on_the_exporter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """step: 5s on 10 s data: every other step holds no sample, so every rate is missing."""
    report, err = built(monkeypatch, loaded(tmp_path, "{last: 10m, step: 5s}"), interval=10)
    (host,) = report.hosts
    busy = host.metric("cpu.busy")
    assert busy is not None
    assert all(value is None for value in busy.values)  # what the warning explains
    (data,) = [r for r in report.recommendations if r.area == "data"]
    assert "exporter runs and pushes" not in data.text
    assert data.text == (
        "50.0% of the steps have no data from this host, but the step (5s) is shorter than its "
        "sampling interval (10s): steps without a sample are unavoidable whatever the exporter "
        "does, and rates (CPU, disk, network) need a sample in two adjacent steps. Set "
        "time.step to at least 30s, or auto, and run the report again to see whether data is "
        "really missing."
    )
    warning = (
        "time.step (5s) is shorter than the sampling interval of web-01 (10s): some steps "
        "cannot hold a sample, and a rate (CPU, disk, network) needs a sample in a step and in "
        "the one before it, so those figures are missing, and the steps without data are the "
        "step's doing, not the exporter's; set time.step to at least 30s (two samples or more "
        "a step, as auto would choose), or auto"
    )
    assert report.warnings == [warning]
    assert f"perfanalysis report: warning: {warning}\n" in err
    page = render_page(report)
    assert (
        f'<p class="warning" role="alert"><strong>Warning:</strong> {escape(warning)}</p>' in page
    )


def test_a_step_at_or_above_the_sampling_interval_gets_no_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for time in ("{last: 10m, step: 10s}", "{last: 10m, step: 1m}", "{last: 10m}"):
        report, err = built(monkeypatch, loaded(tmp_path, time), interval=10)
        assert report.warnings == [], time
        assert "warning" not in err
        assert 'class="warning"' not in render_page(report)


def test_missing_data_with_a_fitting_step_still_points_at_the_exporter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    quiet = Behaviour(missing=set(range(30, 60)))
    report, _ = built(monkeypatch, loaded(tmp_path, "{last: 1h, step: 30s}"), 10, quiet)
    (data,) = [r for r in report.recommendations if r.area == "data"]
    assert "check that its exporter runs and pushes" in data.text
    assert report.warnings == []


# -- 11. the configured time zone in the recommendations


def test_recommendations_show_times_in_the_configured_zone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = loaded(tmp_path, "{last: 2h, step: 1m, timezone: Asia/Kolkata}")
    report, _ = built(monkeypatch, config, 10, Behaviour(missing=set(range(30, 60))))
    (data,) = [r for r in report.recommendations if r.area == "data"]
    assert data.text.endswith(
        "the longest 30m from 2023-11-15 03:12 IST): check that its exporter runs and pushes "
        "(perfanalysis_exporter_push_* metrics)."
    )
    page = render_page(report)
    assert "UTC" not in page.split('<section id="summary"')[0]  # the header, Generated too
    assert "Generated</dt><dd>" in page

    # ten hours of data in steps of 10m, a day ahead (a day needs 6h of data: trend)
    how = Behaviour(fs_fill=lambda i: 0.5 + 0.003 * i, missing=set(range(60, 120)))
    grid = Grid(1_700_000_000, 600, 120)
    within_1d = Thresholds(filesystem_full_within=86400)
    hosts = [analysed("web-01", grid, how, within_1d)]
    found = recommend(hosts, within_1d, link, timezone="Asia/Kolkata")
    texts = {r.area: r.text for r in found}
    # 2023-11-16 02:00 UTC and 2023-11-15 08:13 UTC in India Standard Time (+05:30)
    assert "(around 2023-11-16 07:30 IST)" in texts["filesystem"]
    assert "the longest 10h from 2023-11-15 13:43 IST)" in texts["data"]
    assert "UTC" not in "".join(texts.values())


# -- 12. swap


def test_no_swap_is_claimed_only_when_swap_data_says_so() -> None:
    grid = Grid(1_700_000_000, 60, 30)

    def swap_note(host: HostReport) -> str:
        (panel,) = [p for p in host.sections["memory"].panels if p.key == "memory.swap"]
        return panel.note

    nothing = analysed("web-01", grid, Behaviour(missing=set(range(30))))
    assert swap_note(nothing) == ""  # the section's note speaks: no memory data
    assert nothing.sections["memory"].note == "No memory data (node_memory_*) in this range."
    page = _page([nothing], grid)
    assert "No swap is configured" not in page
    assert page.count("No memory data (node_memory_*) in this range.") == 3  # each chart

    assert swap_note(analysed("web-01", grid)) == "No swap is configured on this host."

    data, found = synthetic_host("web-01", grid)
    for name in ("node_memory_SwapTotal_bytes", "node_memory_SwapFree_bytes"):
        del data.series[(name, ())]
    from perfanalysis.report.build import analyse_host
    from tests.unit.test_report_support import config_for

    without_swap_series = analyse_host(data, found, config_for(("web-01",)))
    assert swap_note(without_swap_series) == (
        "No swap data (node_memory_SwapTotal_bytes) in this range."
    )


def _page(hosts: list[HostReport], grid: Grid) -> str:
    from tests.unit.test_report_support import config_for

    report = Report(
        config_for(tuple(h.host for h in hosts)),
        grid,
        "pa_acme",
        hosts,
        [],
        "",
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    return render_page(report)
