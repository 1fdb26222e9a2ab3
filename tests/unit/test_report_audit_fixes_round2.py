"""Audit fixes of the report, second round: one tenant's points only (the database and every
query), rates over the real time between samples, steps on the clock of time.timezone with the
range never silently widened, charts that tell more than ten hosts apart, the first step's rate,
a period without data, a host that starts mid-period, and an unusable --output refused first.

Live InfluxDB checks of the same fixes: tests/integration/test_report_audit_fixes_live.py.
"""

from __future__ import annotations

import io
import re
import textwrap
from dataclasses import replace
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from perfanalysis.report import build, cli, fetch
from perfanalysis.report import metrics as m
from perfanalysis.report.build import (
    Report,
    build_report,
    period_warnings,
    report_grid,
    requested_range,
    step_notes,
)
from perfanalysis.report.config import InfluxAccess, TimeSpec, load_config
from perfanalysis.report.fetch import Discovery, HostData, Selection, statements
from perfanalysis.report.influx import InfluxReader, SeriesRows
from perfanalysis.report.page import render_page
from perfanalysis.report.recommend import recommend
from perfanalysis.report.series import rate
from perfanalysis.report.source import SettingError, Source, database_for, open_source
from perfanalysis.report.timerange import Grid, clock_offset, offset_changes
from perfanalysis.report.validate import ReportConfigError
from tests.unit.test_report_recommend import LIMITS, link
from tests.unit.test_report_support import Behaviour, analysed, config_for, synthetic_host

TENANT_FILTER = "\"tenant\" = 'acme'"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "report.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


# -- 1. tenant isolation


def test_another_tenants_database_is_refused_naming_the_file_and_key(tmp_path: Path) -> None:
    """tenant: acme with influxdb.database: pa_globex made a report headed acme of globex's
    hosts."""
    path = write(
        tmp_path,
        """\
        tenant: acme
        hosts: [web-01]
        time: {last: 1h}
        influxdb: {database: pa_globex, username: reader, password_env: PW}
        """,
    )
    with pytest.raises(ReportConfigError) as caught:
        load_config(path, {"PW": "secret"})
    assert caught.value.errors == [
        f"{path}: line 4: influxdb.database: pa_globex is not the database of tenant acme (pa_acme): a "
        "report reads only its own tenant's database; leave influxdb.database out or set it to "
        "pa_acme"
    ]


def test_the_tenants_own_database_is_accepted_as_the_admin_app_names_it(tmp_path: Path) -> None:
    from tenants.tenancy import database_name

    path = write(
        tmp_path,
        """\
        tenant: acme-prod
        hosts: [web-01]
        time: {last: 1h}
        influxdb: {database: pa_acme_prod, username: reader, password_env: PW}
        """,
    )
    config = load_config(path, {"PW": "secret"})
    assert config.influxdb is not None
    assert config.influxdb.database == database_name("acme-prod") == "pa_acme_prod"
    for slug in ("acme", "acme-prod", "a-b-c", "x9"):
        assert database_for(slug) == database_name(slug)


def test_a_config_built_with_another_database_is_refused_when_opened() -> None:
    config = replace(
        config_for(("web-01",)),
        influxdb=InfluxAccess("reader", "pw", "http://influx:8086", "pa_globex"),
    )
    settings = {"influxdb_url": "http://127.0.0.1:8086", "influxdb_timeout": 5.0}
    with pytest.raises(SettingError, match=r"influxdb\.database: pa_globex is not tenant 'acme'"):
        open_source(config, settings)
    own = replace(config, influxdb=InfluxAccess("reader", "pw", "http://influx:8086", "pa_acme"))
    reader = open_source(own, settings).reader
    assert (reader.database, reader.tenant) == ("pa_acme", "acme")


def test_a_reader_needs_its_tenant() -> None:
    with pytest.raises(ValueError, match="one tenant's points"):
        InfluxReader("http://influx:8086", "pa_acme", "", "reader", "pw")


class Recorder:
    """Stands in for InfluxReader: records every statement, answers with no series."""

    database = "pa_acme"

    def __init__(self, tenant: str = "acme") -> None:
        self.tenant = tenant
        self.sent: list[str] = []

    def query(self, statements: list[str]) -> list[list[SeriesRows]]:
        self.sent += statements
        return [[] for _ in statements]

    def close(self) -> None:
        pass


def test_every_query_filters_on_the_tenant_tag() -> None:
    reader: Any = Recorder()
    fetch.known_hosts(reader)
    fetch.discover(reader, "web-01", 1_700_000_000, 1_700_003_600)
    fetch.data_extent(reader, ["web-01", "web-02"])
    grid = Grid(1_700_000_000, 60, 60)
    selection = Selection("web-01", "vda", "eth0", ["/", "/var"])
    fetch.read_values(reader, [selection], grid, 30, 1, lambda: None)
    assert len(reader.sent) > 10
    for statement in reader.sent:
        # once; a sample_spans statement in its subquery (the outer query's WHERE is on time)
        assert statement.count(TENANT_FILTER) == 1, statement
        condition = statement.split(" WHERE ", 1)[1]
        assert condition.startswith(TENANT_FILTER), statement


def test_the_tenant_is_quoted_as_an_influxql_string() -> None:
    reader: Any = Recorder("o'brien\\x")
    fetch.known_hosts(reader)
    assert reader.sent == [
        'SHOW TAG VALUES FROM "node_cpu_seconds_total" WITH KEY = "host" '
        "WHERE \"tenant\" = 'o\\'brien\\\\x'"
    ]


# -- 2. rates over the real time between samples


def test_a_rate_is_the_increase_over_the_time_between_the_two_samples() -> None:
    """A counter growing by exactly 1,000,000 a second, sampled every 10 s with the sample at
    170 s lost and one at 235 s late: in 60 s steps the last samples are at 50, 110, 160 (170
    lost), 235 (the late one) and 290 s. Every increase over its real time is 1,000,000/s; over
    the nominal step the lost sample made 70/60 of it, 1.17 MB/s."""
    times = [50, 110, 160, 235, 290]
    counter = [1e6 * t for t in times]
    seconds = [None, 60.0, 50.0, 75.0, 55.0]
    assert rate(counter, seconds) == [None, 1e6, 1e6, 1e6, 1e6]
    assert rate(counter, [10.0, *seconds[1:]], before=1e6 * 40) == [1e6] * 5


def test_the_times_between_samples_are_read_with_the_counters() -> None:
    """What InfluxDB answers is stored as the series and their spans (nanoseconds)."""
    grid = Grid(1_700_000_040, 60, 3)
    data = HostData(Selection("web-01", None, "eth0", []), grid)
    name = m.NETWORK_COUNTERS["receive_bytes"]
    fetch._store(  # the step before the grid's first goes to ``before``
        data,
        [
            SeriesRows(
                name,
                {"device": "eth0"},
                ["time", "last"],
                [
                    [1_699_999_980, 5e6],
                    [1_700_000_040, 60e6],
                    [1_700_000_100, 110e6],
                    [1_700_000_160, 185e6],
                ],
            )
        ],
    )
    fetch._store(
        data,
        [
            SeriesRows(
                name,
                {"device": "eth0"},
                ["time", "elapsed_ns"],
                [
                    [1_699_999_980, 40e9],
                    [1_700_000_040, 55e9],
                    [1_700_000_100, 50e9],
                    [1_700_000_160, 75e9],
                ],
            )
        ],
    )
    assert data.before == {(name, (("device", "eth0"),)): 5e6}
    assert data.span(name, device="eth0") == [55.0, 50.0, 75.0]
    assert data.rate(name, device="eth0") == [1e6, 1e6, 1e6]


def test_counters_are_read_with_the_time_between_samples_from_the_step_before() -> None:
    start, step = 1_700_000_040, 60
    chosen = statements(Selection("web-01", "vda", "eth0", ["/"]), "acme", start, start + 600, step)
    before = f"time >= {(start - step) * 10**9} AND time < {(start + 600) * 10**9}"
    counters = [s for s in chosen if "last(" in s]
    spans = [s for s in chosen if "elapsed(" in s]
    assert len(counters) == len(spans) == 3  # CPU, disk, network
    for statement in counters + spans:
        assert before in statement, statement
    # the times of one series a group (the exporter pushes a scrape with one timestamp): a
    # CPU's idle time, the disk's io_time, the interface's bytes received; not every counter
    cpu, disk, network = (s.split(" FROM ", 2)[2].split(" WHERE ")[0] for s in spans)
    assert (cpu, disk, network) == (
        '"node_cpu_seconds_total"',
        '"node_disk_io_time_seconds_total"',
        '"node_network_receive_bytes_total"',
    )
    assert "\"mode\" = 'idle'" in spans[0]
    assert spans[0].endswith('GROUP BY time(60s), "cpu" fill(none)')
    gauges = [s for s in chosen if "mean(" in s]
    assert all(f"time >= {start * 10**9} AND" in s for s in gauges)


# -- 3. steps on the zone's clock, the range not silently widened


def test_day_steps_start_at_midnight_in_the_configured_zone() -> None:
    """Asia/Kolkata (+05:30), 1d: buckets were 05:30 to 05:30, and the range widened to three days
    with data from after its end."""
    spec = TimeSpec(None, datetime.fromisoformat("2026-03-27T00:00:00+05:30"),
                    datetime.fromisoformat("2026-03-29T00:00:00+05:30"), 86400,
                    timezone="Asia/Kolkata")  # fmt: skip
    start, end = requested_range(spec, 0)
    grid = report_grid(spec, start, end, [10.0])
    assert (grid.start, grid.count) == (start, 2)
    assert grid.end == end
    assert grid.offset == 66600  # 18:30 UTC
    assert period_warnings(spec, grid, start, end) == []
    chosen = statements(
        Selection("web-01", None, None, []), "acme", grid.start, grid.end, grid.step, grid.offset
    )
    assert all("GROUP BY time(86400s, 66600s)" in s for s in chosen)


def test_hour_steps_follow_a_half_hour_zone() -> None:
    spec = TimeSpec(3 * 3600, None, None, 3600, timezone="Asia/Kolkata")
    now = epoch("2026-03-28T10:40:00+05:30")
    grid = report_grid(spec, *requested_range(spec, now), [10.0])
    assert grid.end == epoch("2026-03-28T10:00:00+05:30")  # the last whole hour in India
    assert grid.start == epoch("2026-03-28T07:00:00+05:30")
    assert clock_offset(3600, ZoneInfo("UTC"), now) == 0


def test_a_widened_range_is_said_with_how_much() -> None:
    spec = TimeSpec(None, datetime(2026, 3, 2, 10, 7, tzinfo=UTC),
                    datetime(2026, 3, 2, 11, 50, tzinfo=UTC), 3600, timezone="UTC")  # fmt: skip
    start, end = requested_range(spec, 0)
    grid = report_grid(spec, start, end, [10.0])
    (warning,) = period_warnings(spec, grid, start, end)
    assert warning == (
        "time.start and time.end are not both on whole steps of 1h in UTC: the period was "
        "widened to 2026-03-02 10:00:00 UTC to 2026-03-02 12:00:00 UTC, 7m before time.start "
        "and 10m after time.end, and the figures include the data of that time; give a start "
        "and end on whole steps of the time zone's clock (as these) to report exactly the range "
        "asked for"
    )
    spec = TimeSpec(3600, None, None, 1500)  # 1h in steps of 25m: three steps
    grid = report_grid(spec, *requested_range(spec, 1_700_003_520), [10.0])
    assert grid.count == 3
    (warning,) = period_warnings(spec, grid, *requested_range(spec, 1_700_003_520))
    assert warning.startswith(
        "time.last (1h) is not a whole number of steps of 25m: the period is 3 steps, 15m "
        "longer, from 2023-11-14 21:40:00 UTC"
    )


def test_the_change_to_summer_time_is_found_to_the_second() -> None:
    paris = ZoneInfo("Europe/Paris")
    week = (epoch("2026-03-26T00:00:00+01:00"), epoch("2026-04-02T00:00:00+02:00"))
    assert offset_changes(paris, *week) == [(epoch("2026-03-29T01:00:00+00:00"), 3600, 7200)]
    assert offset_changes(ZoneInfo("UTC"), *week) == []


def test_day_steps_across_a_change_of_utc_offset_are_explained() -> None:
    """A local day of 23 hours cannot be an InfluxQL bucket: the days stay 24 hours and the report
    says where they start on each side of the change."""
    spec = TimeSpec(None, datetime.fromisoformat("2026-03-27T00:00:00+01:00"),
                    datetime.fromisoformat("2026-03-31T00:00:00+02:00"), 86400,
                    timezone="Europe/Paris")  # fmt: skip
    start, end = requested_range(spec, 0)
    grid = report_grid(spec, start, end, [10.0])
    assert grid.start == start  # midnight in Paris, in winter time
    assert step_notes(spec, grid) == [
        "Europe/Paris changes from UTC+01:00 to UTC+02:00 at 2026-03-29 03:00:00 CEST, within "
        "the period: every step is a fixed 1d of time (InfluxDB groups by fixed lengths), so the "
        "steps start at 00:00 on the clock before the change and at 01:00 after it"
    ]
    (warning,) = period_warnings(spec, grid, start, end)
    assert "1h after time.end" in warning
    assert warning.endswith("(see the note on the steps): steps of at most 1h can")
    hourly = replace(spec, step=3600)
    grid = report_grid(hourly, start, end, [10.0])
    assert step_notes(hourly, grid) == []
    assert period_warnings(hourly, grid, start, end) == []
    assert grid.count == 4 * 24 - 1  # the day of the change has 23 hours


# -- 4. more than ten hosts on a chart


def _overview(page: str, chart: str = "summary.cpu.busy") -> str:
    found = re.search(
        rf'<figure class="chart" data-section="summary" data-chart="{chart}".*?</figure>',
        page,
        re.S,
    )
    assert found is not None
    return found[0]


def _drawn(figure: str) -> list[tuple[str, str]]:
    return [
        (stroke, dash or "")
        for stroke, dash in re.findall(
            r'<path d="[^"]+" fill="none" stroke="([^"]+)"[^>]*?(?: stroke-dasharray="([^"]+)")?/>',
            figure,
        )
    ]


def _legend(figure: str) -> list[tuple[str, str, str]]:
    return [
        (colour, dash, unescape(label))
        for colour, dash, label in re.findall(
            r'data-colour="([^"]+)" data-dash="([^"]*)"></i>([^<]+)</li>', figure
        )
    ]


def _page(count: int) -> str:
    grid = Grid(1_700_000_000, 60, 30)
    hosts = [
        analysed(f"host-{i:02d}", grid, Behaviour(cpu_busy=lambda _, i=i: 0.1 + 0.01 * i))
        for i in range(count)
    ]
    report = Report(config_for(tuple(h.host for h in hosts)), grid, "pa_acme", hosts,
                    recommend(hosts, LIMITS, link, timezone="UTC"), "", datetime(2025, 1, 1, tzinfo=UTC))  # fmt: skip
    return render_page(report)


def test_each_of_22_hosts_has_a_line_style_of_its_own_and_the_legend_shows_it() -> None:
    figure = _overview(_page(22))
    drawn, legend = _drawn(figure), _legend(figure)
    assert len(drawn) == 22
    assert len(set(drawn)) == 22  # colours repeated after ten, never with the same dashes
    assert [(colour, dash) for colour, dash, _ in legend] == drawn
    assert [label for _, _, label in legend] == [f"host-{i:02d}" for i in range(22)]
    assert "repeating-linear-gradient(90deg,#4e79a7 0px 7px,transparent 7px 10px)" in figure


def test_beyond_forty_hosts_the_highest_are_drawn_with_the_median_and_maximum() -> None:
    figure = _overview(_page(45))
    drawn, legend = _drawn(figure), _legend(figure)
    assert len(drawn) == len(set(drawn)) == 40
    labels = [label for _, _, label in legend]
    assert labels == [f"host-{i:02d}" for i in range(7, 45)] + [
        "median of all 45",
        "maximum of all 45",
    ]
    assert (
        "45 lines: the 38 with the highest peaks are drawn, with the median and the maximum of all 45 at each step."
        in figure
    )


# -- 5. the first step, no data, a late start, --output


def test_a_complete_host_has_a_rate_in_every_step() -> None:
    grid = Grid(1_700_000_000, 60, 30)
    host = analysed("web-01", grid)
    for key in ("cpu.busy", "disk.read_bytes", "network.receive_bytes"):
        assert host.summaries[key].count == 30, key
    first = analysed("web-01", grid, Behaviour(sampled_before=False))  # nothing before: none
    assert first.summaries["cpu.busy"].count == 29


def _serve_nothing(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    asked: list[list[str]] = []

    def discover(reader: Any, host: str, start: int, end: int) -> Discovery:
        return Discovery(host)

    def read_values(
        reader: Any, selections: list[Selection], grid: Grid, *rest: Any
    ) -> dict[str, HostData]:
        return {s.host: HostData(s, grid) for s in selections}

    def data_extent(reader: Any, hosts: list[str]) -> dict[str, tuple[int, int]]:
        asked.append(list(hosts))
        return {"web-01": (epoch("2026-03-29T00:00:00+00:00"), epoch("2026-03-29T02:00:00+00:00"))}

    monkeypatch.setattr(build, "open_source", lambda config, settings: Source(Recorder(), {}))
    monkeypatch.setattr(build, "known_hosts", lambda reader: {"web-01"})
    monkeypatch.setattr(build, "discover", discover)
    monkeypatch.setattr(build, "read_values", read_values)
    monkeypatch.setattr(build, "data_extent", data_extent)
    return asked


def test_a_period_without_any_data_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked = _serve_nothing(monkeypatch)
    config = load_config(write(tmp_path, """\
        tenant: acme
        hosts: [web-01]
        time: {start: 2026-03-27T00:00:00Z, end: 2026-03-27T02:00:00Z, step: 1m}
        """), {})  # fmt: skip
    err = io.StringIO()
    report = build_report(
        config, {"influxdb_concurrency": 1, "progress": False, "admin_url": ""}, stream=err
    )
    warning = (
        "no data at all from web-01 in the period (2026-03-27 00:00:00 UTC to 2026-03-27 "
        "02:00:00 UTC): every figure is empty. The hosts' CPU data is web-01's from 2026-03-29 "
        "00:00:00 UTC to 2026-03-29 02:00:00 UTC: check time.start and time.end (or time.last) "
        "and time.timezone"
    )
    assert report.warnings == [warning]
    assert asked == [["web-01"]]
    assert f"perfanalysis report: warning: {warning}\n" in err.getvalue()
    assert "<strong>Warning:</strong> no data at all from web-01" in render_page(report)


def test_a_host_that_starts_mid_period_is_told_so_not_to_check_its_exporter() -> None:
    grid = Grid(1_700_000_000, 60, 120)
    late = analysed("web-02", grid, Behaviour(missing=set(range(50)), sampled_before=False))
    (data,) = [r for r in recommend([late], LIMITS, link, timezone="UTC") if r.area == "data"]
    assert data.text == (
        "41.7% of the period has no data from this host: its data starts only at 2023-11-14 "
        "23:03 UTC, 50m into the period (a host added, or an exporter started, then); no step is "
        "missing after that."
    )
    gaps = Behaviour(missing={*range(50), *range(80, 100)}, sampled_before=False)
    (data,) = [
        r
        for r in recommend([analysed("web-02", grid, gaps)], LIMITS, link, timezone="UTC")
        if r.area == "data"
    ]
    assert data.text.endswith(
        "(a host added, or an exporter started, then); after that, 1 gap, the longest 20m from "
        "2023-11-14 23:33 UTC: check that its exporter runs and pushes "
        "(perfanalysis_exporter_push_* metrics)."
    )
    silent = analysed("web-03", grid, Behaviour(missing=set(range(120))))
    (data,) = [r for r in recommend([silent], LIMITS, link, timezone="UTC") if r.area == "data"]
    assert data.text.startswith(
        "No data from this host in the whole period: check that its exporter"
    )


@pytest.mark.parametrize("where", ["missing", "directory", "pdf"])
def test_an_unusable_output_is_refused_before_anything_is_read(
    where: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PERFANALYSIS_REPORT_SECRET_KEY", "s" * 32)
    called: list[Any] = []
    monkeypatch.setattr(cli, "build_report", lambda *args, **kwargs: called.append(args))
    config = write(tmp_path, "tenant: acme\nhosts: [web-01]\ntime: {last: 1h}\n")
    target = {
        "missing": ["--output", str(tmp_path / "nowhere" / "r.html")],
        "directory": ["--output", str(tmp_path)],
        "pdf": ["--output", str(tmp_path / "r.html"), "--pdf", str(tmp_path / "no" / "r.pdf")],
    }[where]
    err = io.StringIO()
    assert cli.run(["--config", str(config), *target], stderr=err) == 2
    expected = {
        "missing": f"flag --output: {tmp_path}/nowhere/r.html: the directory {tmp_path}/nowhere does not exist",
        "directory": f"flag --output: {tmp_path} is a directory: give a file name",
        "pdf": f"flag --pdf: {tmp_path}/no/r.pdf: the directory {tmp_path}/no does not exist",
    }[where]
    assert expected in err.getvalue()
    assert called == []


def test_synthetic_hosts_keep_their_spans() -> None:
    """The stand-in data the other tests use reads a rate over the real time, as InfluxDB's."""
    grid = Grid(1_700_000_000, 60, 10)
    data, _ = synthetic_host("web-01", grid, Behaviour(missing={4}))
    spans = data.span(m.CPU, cpu="0", mode="user")
    assert spans[3:6] == [60, None, 120]
