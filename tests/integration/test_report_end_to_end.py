"""The report on data the real exporter pushed through real ingest into real InfluxDB.

Two exporters (``--push.host`` web-01 and web-02, one-second interval) push for about half a
minute through ingest (gunicorn) into InfluxDB 1.6.7 with authentication on; the tenant was
provisioned by the admin app, so the report reads with the tenant's read-only user, whose
password it decrypts from the admin database. Then:

* every chart is there: per section, the expected figures for each host, each an inline SVG;
* each figure of the percentile tables (p95, p97.5, p99, max, mean) equals the one computed here
  from the raw points, queried with plain InfluxQL, with this file's own bucketing, rates (the
  increase between two steps' last samples over the time between those samples, the first step's
  from the step before the period) and percentiles (statistics.quantiles, inclusive method);
* the busiest disk and interface chosen are the ones the raw counters say;
* the page renders in Chromium with no console error and no request beyond the file, the PDF
  prints, and a bad configuration or an unknown host fails with a clear message.
"""

from __future__ import annotations

import html
import io
import math
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ingest.testing import IngestProcess, ingest_environment, issue_collector_key
from perfanalysis.report.cli import run
from perfanalysis.testing.servers import InfluxDB, ServerRegistry, wait_until
from tenants.access import system_actor
from tenants.app import create_app
from tenants.settings import load
from tenants.tenancy import create_tenant
from tests.conftest import TEST_SECRET, empty_tables

pytestmark = pytest.mark.integration

HOSTS = ("web-01", "web-02")
STEP = 2
PUSH_SECONDS = 16
ADMIN_URL = "http://admin.example.test"
COLLECTORS = [
    "--collector.disable-defaults",
    "--collector.cpu",
    "--collector.meminfo",
    "--collector.diskstats",
    "--collector.netdev",
    "--collector.filesystem",
    "--collector.loadavg",
]
CHARTS = {  # section -> charts per host
    "cpu": ["cpu.overall", "cpu.per_core", "cpu.modes"],
    "memory": ["memory.usage", "memory.used_percent", "memory.swap"],
    "disk": ["disk.throughput", "disk.iops", "disk.latency", "disk.busy", "disk.queue"],
    "network": ["network.bandwidth", "network.packets", "network.errors"],
    "filesystem": ["filesystem.fill"],
}
EXCLUDED_FSTYPES = {"tmpfs", "ramfs", "devtmpfs", "rootfs", "squashfs", "overlay", "iso9660", "nsfs",
                    "fuse.lxcfs"}  # fmt: skip


@dataclass
class Stack:
    influxdb: InfluxDB
    database_url: str
    database: str
    collector_ids: dict[str, int]
    start: int
    end: int
    workdir: Path
    html_path: Path
    pdf_path: Path
    stderr: str
    exit_code: int

    @property
    def page(self) -> str:
        return self.html_path.read_text()

    def flags(self) -> list[str]:
        return [
            "--influxdb.url",
            self.influxdb.url,
            "--database-url",
            self.database_url,
            "--secret-key",
            TEST_SECRET,
            "--admin-url",
            ADMIN_URL,
            "--no-progress",
        ]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerRegistry]:
    with ServerRegistry(tmp_path_factory.mktemp("report-servers")) as servers:
        yield servers


@pytest.fixture(scope="module")
def stack(
    registry: ServerRegistry,
    database_url: str,
    migrated_engine: Engine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Stack:
    workdir = tmp_path_factory.mktemp("report")
    influxdb = registry.influxdb(auth=True)
    empty_tables(migrated_engine)
    app = create_app(
        load(
            [],
            {
                "PERFANALYSIS_ADMIN_DATABASE_URL": database_url,
                "PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET,
                "PERFANALYSIS_ADMIN_INFLUXDB_URL": influxdb.url,
                "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_USER": influxdb.admin_user,
                "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD": influxdb.admin_password,
            },
        )
    )
    with app.app_context():
        from tenants import db as admin_db

        session = admin_db.session()
        create_tenant(
            session,
            system_actor(),
            "perf",
            "Perf",
            app.extensions["pa_storage"],
            app.extensions["pa_vault"],
        )
        keys = {
            host: issue_collector_key(
                session, app.extensions["pa_hasher"], "perf", host, hostname=host
            )
            for host in HOSTS
        }
    app.extensions["pa_engine"].dispose()
    (workdir / "ingest-metrics").mkdir()
    environment = ingest_environment(
        TEST_SECRET, database_url, influxdb, workdir / "ingest-metrics"
    )
    ingest = registry.start(IngestProcess(registry.base_dir, environment))
    exporters = []
    for host, key in keys.items():
        key_file = workdir / f"{host}.key"
        key_file.write_text(key.key + "\n")
        key_file.chmod(0o600)
        exporters.append(
            registry.exporter(
                [
                    *COLLECTORS,
                    f"--push.url={ingest.url}",
                    f"--push.key-file={key_file}",
                    "--push.interval=1s",
                    f"--push.spool-dir={workdir / host}",
                    "--push.max-backoff=1s",
                    f"--push.host={host}",
                ]
            )
        )
    database = keys[HOSTS[0]].database
    wait_until(
        lambda: all(_stored(influxdb, database, host) for host in HOSTS),
        30,
        0.5,
        "both hosts' first points",
    )
    start = (int(time.time()) // STEP + 1) * STEP
    time.sleep(PUSH_SECONDS)
    end = int(time.time()) // STEP * STEP
    wait_until(
        lambda: all(_stored(influxdb, database, host, end) for host in HOSTS),
        30,
        0.5,
        "points past the end",
    )
    for exporter in exporters:
        exporter.stop()

    config = workdir / "report.yaml"
    config.write_text(f"""title: End-to-end report
tenant: perf
hosts: [{", ".join(HOSTS)}]
time: {{start: {_rfc3339(start)}, end: {_rfc3339(end)}, step: {STEP}s}}
thresholds: {{cpu_busy_percent: 0}}
""")
    stack = Stack(
        influxdb,
        database_url,
        database,
        {h: k.collector_id for h, k in keys.items()},
        start,
        end,
        workdir,
        workdir / "report.html",
        workdir / "report.pdf",
        "",
        0,
    )
    err = io.StringIO()
    stack.exit_code = run(
        [
            "--config",
            str(config),
            "--output",
            str(stack.html_path),
            "--pdf",
            str(stack.pdf_path),
            *stack.flags(),
        ],
        stderr=err,
    )
    stack.stderr = err.getvalue()
    return stack


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stored(influxdb: InfluxDB, database: str, host: str, after: int = 0) -> bool:
    rows = influxdb.rows(
        f"SELECT last(value) FROM node_load1 WHERE host = '{host}' AND time >= {after}s",  # noqa: S608
        db=database,
    )
    return bool(rows)


# ---------------------------------------------------------------------------------------------
# The figures, computed here from raw points


Points = dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, float]]]


def raw_points(stack: Stack, host: str) -> Points:
    """The host's points from a step before the period (a rate's first base) to its end."""
    wanted = "node_cpu_seconds_total|node_load1|node_memory_.*|node_disk_.*|node_network_.*|node_filesystem_(avail|size)_bytes"
    body = stack.influxdb.query(
        f"SELECT value FROM /^({wanted})$/ WHERE host = '{host}' AND time >= {stack.start - STEP}s AND time < {stack.end}s GROUP BY *",  # noqa: S608
        db=stack.database,
        epoch="ns",
    )
    points: Points = {}
    for series in body["results"][0].get("series", []):
        tags = {
            k: v
            for k, v in series.get("tags", {}).items()
            if k not in ("host", "tenant", "collector") and v
        }
        points[(series["name"], tuple(sorted(tags.items())))] = [
            (int(t), float(v)) for t, v in series["values"]
        ]
    return points


class Independent:
    """One host's series per step, from raw points: last value (counters) or mean (gauges)."""

    def __init__(self, stack: Stack, points: Points) -> None:
        self.start, self.count = stack.start, (stack.end - stack.start) // STEP
        self.all_points = points  # with the step before the period
        within = {k: [p for p in ps if p[0] >= self.start * 10**9] for k, ps in points.items()}
        self.points = {k: ps for k, ps in within.items() if ps}

    def groups(self, measurement: str, **tags: str) -> dict[int, list[tuple[int, float]]]:
        """Samples by step (-1: the step before the period)."""
        wanted = set(tags.items())  # like GROUP BY on these tags: other tags are merged
        found = [
            p
            for (name, t), ps in self.all_points.items()
            if name == measurement and wanted <= set(t)
            for p in ps
        ]
        groups: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for stamp, value in found:
            groups[(stamp - self.start * 10**9) // (STEP * 10**9)].append((stamp, value))
        return groups

    def bucketed(self, measurement: str, how: str, **tags: str) -> list[float | None]:
        groups = self.groups(measurement, **tags)
        result: list[float | None] = []
        for index in range(self.count):
            group = groups.get(index)
            if not group:
                result.append(None)
            elif how == "last":
                result.append(max(group)[1])
            else:
                result.append(math.fsum(v for _, v in group) / len(group))
        return result

    def rate(self, measurement: str, **tags: str) -> list[float | None]:
        """Between the last samples of a step and of the step before it: the increase over the
        time between them (nanoseconds apart)."""
        lasts = {index: max(group) for index, group in self.groups(measurement, **tags).items()}
        out: list[float | None] = []
        for index in range(self.count):
            now, before = lasts.get(index), lasts.get(index - 1)
            if now is None or before is None or now[1] < before[1]:
                out.append(None)
            else:
                out.append((now[1] - before[1]) / ((now[0] - before[0]) / 1e9))
        return out

    def gauge(self, measurement: str, **tags: str) -> list[float | None]:
        return self.bucketed(measurement, "mean", **tags)

    def tag_values(self, measurement: str, tag: str) -> set[str]:
        return {
            dict(tags)[tag]
            for name, tags in self.points
            if name == measurement and tag in dict(tags)
        }


def each(function: Callable[..., float | None], *series: list[float | None]) -> list[float | None]:
    return [
        None if any(v is None for v in vs) else function(*vs) for vs in zip(*series, strict=True)
    ]


def busiest(raw: Independent, measurements: tuple[str, str], skip: set[str]) -> str:
    moved: dict[str, float] = defaultdict(float)
    for (name, tags), values in raw.points.items():
        device = dict(tags).get("device")
        if name in measurements and device and device not in skip:
            moved[device] += max(v for _, v in values) - min(v for _, v in values)
    return min((-bytes_moved, device) for device, bytes_moved in moved.items())[1]


def expected_series(raw: Independent) -> tuple[dict[str, list[float | None]], str, str]:
    """Every table series by key, and the disk and interface they are of."""
    cpus = sorted(raw.tag_values("node_cpu_seconds_total", "cpu"))
    modes = sorted(raw.tag_values("node_cpu_seconds_total", "mode"))
    cpu = {(c, m): raw.rate("node_cpu_seconds_total", cpu=c, mode=m) for c in cpus for m in modes}
    whole = each(lambda *v: sum(v), *cpu.values())
    idle = each(lambda *v: sum(v), *(cpu[c, "idle"] for c in cpus))
    iowait = each(lambda *v: sum(v), *(cpu[c, "iowait"] for c in cpus))
    mem = {
        f: raw.gauge(f"node_memory_{f}_bytes")
        for f in (
            "MemTotal",
            "MemAvailable",
            "Buffers",
            "Cached",
            "SReclaimable",
            "SwapTotal",
            "SwapFree",
        )
    }
    disk = busiest(raw, ("node_disk_read_bytes_total", "node_disk_written_bytes_total"), set())
    d = {
        n: raw.rate(f"node_disk_{n}", device=disk)
        for n in (
            "read_bytes_total",
            "written_bytes_total",
            "reads_completed_total",
            "writes_completed_total",
            "read_time_seconds_total",
            "write_time_seconds_total",
            "io_time_seconds_total",
            "io_time_weighted_seconds_total",
        )
    }
    nic = busiest(
        raw, ("node_network_receive_bytes_total", "node_network_transmit_bytes_total"), {"lo"}
    )
    n = {
        f"{way}_{what}": raw.rate(f"node_network_{way}_{what}_total", device=nic)
        for way in ("receive", "transmit")
        for what in ("bytes", "packets", "errs", "drop")
    }
    per_op = lambda a, b: None if b == 0 else 1000 * a / b  # noqa: E731
    expected = {
        # iowait is idle time, as in HostCpuBusy (node-mixin) and the dashboards
        "cpu.busy": each(
            lambda i, io, w: None if w == 0 else 100 * (1 - (i + io) / w), idle, iowait, whole
        ),
        "cpu.iowait": each(lambda i, w: None if w == 0 else 100 * i / w, iowait, whole),
        "cpu.load1": raw.gauge("node_load1"),
        "memory.used_percent": each(
            lambda t, a: None if t == 0 else 100 * (1 - a / t), mem["MemTotal"], mem["MemAvailable"]
        ),
        "memory.used": each(lambda t, a: t - a, mem["MemTotal"], mem["MemAvailable"]),
        "memory.cache": each(
            lambda b, c, r: b + c + r, mem["Buffers"], mem["Cached"], mem["SReclaimable"]
        ),
        "memory.swap_used": each(lambda t, f: t - f, mem["SwapTotal"], mem["SwapFree"]),
        "memory.swap_used_percent": each(
            lambda t, f: None if t == 0 else 100 * (t - f) / t, mem["SwapTotal"], mem["SwapFree"]
        ),
        "disk.read_bytes": d["read_bytes_total"],
        "disk.write_bytes": d["written_bytes_total"],
        "disk.reads": d["reads_completed_total"],
        "disk.writes": d["writes_completed_total"],
        "disk.read_latency": each(per_op, d["read_time_seconds_total"], d["reads_completed_total"]),
        "disk.write_latency": each(
            per_op, d["write_time_seconds_total"], d["writes_completed_total"]
        ),
        "disk.busy": each(lambda v: 100 * v, d["io_time_seconds_total"]),
        "disk.queue": d["io_time_weighted_seconds_total"],
        "network.receive_bytes": n["receive_bytes"],
        "network.transmit_bytes": n["transmit_bytes"],
        "network.receive_packets": n["receive_packets"],
        "network.transmit_packets": n["transmit_packets"],
        "network.errors": each(lambda a, b: a + b, n["receive_errs"], n["transmit_errs"]),
        "network.drops": each(lambda a, b: a + b, n["receive_drop"], n["transmit_drop"]),
    }
    types = {
        dict(t)["mountpoint"]: dict(t).get("fstype", "")
        for name, t in raw.points
        if name == "node_filesystem_size_bytes"
    }
    for mount in (m for m, fstype in types.items() if fstype not in EXCLUDED_FSTYPES):
        avail, size = (
            raw.gauge("node_filesystem_avail_bytes", mountpoint=mount),
            raw.gauge("node_filesystem_size_bytes", mountpoint=mount),
        )
        expected[f"filesystem.used_percent:{mount}"] = each(
            lambda a, s: None if s == 0 else 100 * (1 - a / s), avail, size
        )
    return expected, disk, nic


def expected_stats(values: list[float | None]) -> dict[str, float]:
    present = sorted(v for v in values if v is not None)
    if not present:
        return {}
    cuts = (
        statistics.quantiles(present, n=1000, method="inclusive")
        if len(present) > 1
        else [present[0]] * 999
    )
    return {
        "p95": cuts[949],
        "p97.5": cuts[974],
        "p99": cuts[989],
        "max": present[-1],
        "mean": math.fsum(present) / len(present),
    }


# ---------------------------------------------------------------------------------------------
# Reading the page


def figures(page: str) -> list[dict[str, str]]:
    found = []
    for match in re.finditer(
        r'<figure class="chart" data-section="([^"]+)" data-chart="([^"]+)" data-host="([^"]*)">(.*?)</figure>',
        page,
        re.S,
    ):
        found.append(
            {
                "section": match[1],
                "chart": match[2],
                "host": html.unescape(match[3]),
                "body": match[4],
            }
        )
    return found


def table_rows(page: str) -> dict[tuple[str, str], dict[str, float | None]]:
    rows = {}
    for match in re.finditer(
        r'<tr data-metric="([^"]+)" data-host="([^"]+)">(.*?)</tr>', page, re.S
    ):
        cells: dict[str, float | None] = {}
        for stat, value in re.findall(r'data-stat="([^"]+)"(?: data-value="([^"]+)")?', match[3]):
            cells[stat] = float(value) if value else None
        rows[(html.unescape(match[1]), html.unescape(match[2]))] = cells
    return rows


def subject_of(page: str, section: str) -> str:
    """The devices a section names: "web-01: vda; web-02: vda"."""
    found = re.search(r'<p class="subject">([^<]*)</p>', page.split(f'<section id="{section}"')[1])
    assert found is not None
    return html.unescape(found[1])


# ---------------------------------------------------------------------------------------------
# The tests


def test_the_report_is_built(stack: Stack) -> None:
    assert stack.exit_code == 0, stack.stderr
    assert "report: wrote" in stack.stderr
    assert stack.html_path.stat().st_size > 50_000


def test_every_chart_is_present_for_every_host(stack: Stack) -> None:
    found = figures(stack.page)
    by_section: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for figure in found:
        by_section[figure["section"]].append((figure["chart"], figure["host"]))
        assert figure["body"].count("<svg") == 1, figure["chart"]
    assert sorted(by_section["summary"]) == [
        ("summary.cpu.busy", ""),
        ("summary.memory.used_percent", ""),
    ]
    for section, charts in CHARTS.items():
        assert sorted(by_section[section]) == sorted((c, h) for c in charts for h in HOSTS), section
    assert len(found) == 2 + len(HOSTS) * sum(len(c) for c in CHARTS.values())
    drawn = [f for f in found if "<path d=" in f["body"] or "<polygon" in f["body"]]
    undrawn = {f["chart"] for f in found if f not in drawn}
    assert undrawn <= {"disk.latency"}, undrawn  # latency has values only in steps with I/O


def test_each_percentile_equals_the_one_computed_from_the_raw_points(stack: Stack) -> None:
    rows = table_rows(stack.page)
    checked = 0
    for host in HOSTS:
        raw = Independent(stack, raw_points(stack, host))
        expected, disk, interface = expected_series(raw)
        assert f"{host}: {disk}" in subject_of(stack.page, "disk")
        assert f"{host}: {interface}" in subject_of(stack.page, "network")
        host_rows = {
            metric: cells for (metric, row_host), cells in rows.items() if row_host == host
        }
        assert set(host_rows) <= set(expected), set(host_rows) - set(expected)
        assert {k for k in expected if k.startswith(("cpu.", "network.", "filesystem."))} <= set(
            host_rows
        )
        for metric, cells in host_rows.items():
            stats = expected_stats(expected[metric])
            for stat in ("p95", "p97.5", "p99", "max", "mean"):
                if not stats:
                    assert cells[stat] is None, (host, metric, stat)
                    continue
                assert cells[stat] == pytest.approx(stats[stat], rel=1e-9, abs=1e-9), (
                    host,
                    metric,
                    stat,
                )
                checked += 1
        assert expected_stats(expected["cpu.busy"]), "no CPU values: the comparison would be empty"
    assert checked >= 2 * 5 * 20


def test_recommendations_link_to_the_collectors_right_sizing_ranking(stack: Stack) -> None:
    for host in HOSTS:
        link = f"{ADMIN_URL}/tenants/perf/collectors/{stack.collector_ids[host]}/rightsizing"
        assert f'href="{link}"' in stack.page


def test_the_page_renders_in_chromium_without_errors_or_requests(stack: Stack) -> None:
    from playwright.sync_api import sync_playwright

    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    screenshot = stack.workdir / "report.png"
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(stack.html_path.as_uri())
            page.wait_for_load_state("load")
            assert page.locator("figure.chart svg").count() == 2 + len(HOSTS) * 15
            sizes = page.eval_on_selector_all(
                "figure.chart svg", "els => els.map(e => e.getBoundingClientRect().width)"
            )
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert requests == [stack.html_path.as_uri()]  # self-contained: nothing else is fetched
    assert min(sizes) > 300  # every chart laid out at a readable width
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 100_000


def test_the_pdf_is_printed(stack: Stack) -> None:
    data = stack.pdf_path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 5


def test_a_bad_configuration_exits_2_naming_the_file_and_key(stack: Stack) -> None:
    bad = stack.workdir / "bad.yaml"
    bad.write_text(
        "tenant: perf\nhosts: [web-01]\ntime: {last: 1h, step: fast}\npercentile: [95]\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "perfanalysis.report.cli", "--config", str(bad), *stack.flags()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{bad}: line 3: time.step: 'fast' is not a duration" in result.stderr
    assert f"{bad}: line 4: percentile: unknown key (did you mean 'percentiles'?)" in result.stderr
    assert not (stack.workdir / "bad.html").exists()


def test_an_unknown_host_exits_1_listing_the_hosts_with_data(stack: Stack) -> None:
    config = stack.workdir / "unknown.yaml"
    config.write_text("tenant: perf\nhosts: [web-01, web-09]\ntime: {last: 1h}\n")
    err = io.StringIO()
    assert (
        run(
            [
                "--config",
                str(config),
                "--output",
                str(stack.workdir / "unknown.html"),
                *stack.flags(),
            ],
            stderr=err,
        )
        == 1
    )
    assert (
        "hosts: no data ever for web-09 in pa_perf (hosts with CPU data: web-01, web-02)"
        in err.getvalue()
    )


def test_a_wrong_secret_key_cannot_decrypt_the_read_password(stack: Stack) -> None:
    config = stack.workdir / "other.yaml"
    config.write_text("tenant: perf\nhosts: [web-01]\ntime: {last: 1h}\n")
    flags = [f if f != TEST_SECRET else "another-secret-key-" + "y" * 32 for f in stack.flags()]
    err = io.StringIO()
    assert (
        run(
            ["--config", str(config), "--output", str(stack.workdir / "other.html"), *flags],
            stderr=err,
        )
        == 1
    )
    assert (
        "tenant 'perf': stored credential cannot be decrypted with this secret key"
        in err.getvalue()
    )
