"""Audit fixes of the report on a real InfluxDB (1.6, authentication on), with two tenants
provisioned by the admin app, acme and globex, each with its database and read-only user:

* wrong tenant: acme's database also holds points tagged ``tenant=globex`` (a host of the same
  name 99% busy, and a host only globex has), and globex's database its own; a report of acme,
  through the admin database or explicit credentials, reads acme's points only, knows only
  acme's hosts, refuses globex's database (exit 2, naming the file and key) and is refused by
  InfluxDB with globex's read user;
* a sample lost from a counter growing by exactly 1,000,000/s does not raise its rate: every rate
  is 1,000,000/s at steps of 1m and 30s, and the first step has one too;
* steps of 1d in Asia/Kolkata are its days: the two days asked for, and none of the (99% full)
  memory samples just before and after them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from perfanalysis.report import build
from perfanalysis.report import settings as report_settings
from perfanalysis.report.build import Report, build_report
from perfanalysis.report.cli import run
from perfanalysis.report.config import load_config
from perfanalysis.report.influx import InfluxReader, SeriesRows
from perfanalysis.report.page import render_page
from perfanalysis.testing.servers import InfluxDB, ServerRegistry
from tests.conftest import TEST_SECRET, empty_tables

pytestmark = pytest.mark.integration

GIB = 1024**3
IST = timezone(timedelta(hours=5, minutes=30))


@dataclass
class Tenants:
    influxdb: InfluxDB
    database_url: str
    passwords: dict[str, str]  # tenant -> its read user's password
    workdir: Path
    start: int  # web-01 and drop-01: two hours from here, 10 s samples
    kolkata: tuple[int, int]  # two days, midnight to midnight in India

    def flags(self) -> list[str]:
        return ["--influxdb.url", self.influxdb.url, "--database-url", self.database_url,
                "--secret-key", TEST_SECRET, "--no-progress"]  # fmt: skip

    def config(self, name: str, text: str) -> Path:
        path = self.workdir / f"{name}.yaml"
        path.write_text(text)
        return path

    def explicit(self, tenant: str, user: str, extra: str = "") -> str:
        return (
            f"influxdb: {{url: {self.influxdb.url}, username: pa_{user}_read, "
            f"password_env: PW_{user.upper()}{extra}}}\n"
        )

    def environ(self) -> dict[str, str]:
        return {f"PW_{t.upper()}": p for t, p in self.passwords.items()}

    def build(self, text: str, name: str = "report", flags: tuple[str, ...] = ()) -> Report:
        path = self.config(name, text)
        environ = self.environ()
        values = report_settings.load(["--config", str(path), *self.flags(), *flags], environ)
        return build_report(load_config(path, environ), values, stream=io.StringIO())


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Host:
    def __init__(self, name: str, tenant: str) -> None:
        self.name, self.tenant = name, tenant
        self.counters: dict[str, float] = {}
        self.lines: list[str] = []

    def point(self, measurement: str, tags: str, moment: int, value: float) -> None:
        self.lines.append(
            f"{measurement},{tags + ',' if tags else ''}collector=c-{self.name},host={self.name},"
            f"tenant={self.tenant} value={value!r} {moment}"
        )

    def count(
        self, measurement: str, tags: str, moment: int, increase: float, lost: bool = False
    ) -> None:
        """A counter grown by ``increase``: its sample at ``moment``, unless ``lost``."""
        name = f"{measurement},{tags}"
        self.counters[name] = self.counters.get(name, 1000.0) + increase
        if not lost:
            self.point(measurement, tags, moment, self.counters[name])

    def cpu(self, moment: int, busy: float, seconds: float, lost: bool = False) -> None:
        self.count("node_cpu_seconds_total", "cpu=0,mode=user", moment, busy * seconds, lost)
        self.count("node_cpu_seconds_total", "cpu=0,mode=idle", moment, (1 - busy) * seconds, lost)

    def memory(self, moment: int, used: float) -> None:
        self.point("node_memory_MemTotal_bytes", "", moment, 8.0 * GIB)
        self.point("node_memory_MemAvailable_bytes", "", moment, (1 - used) * 8 * GIB)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerRegistry]:
    with ServerRegistry(tmp_path_factory.mktemp("report-audit-servers")) as servers:
        yield servers


@pytest.fixture(scope="module")
def tenants(
    registry: ServerRegistry,
    database_url: str,
    migrated_engine: Engine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Tenants:
    from tenants import db as admin_db
    from tenants.access import system_actor
    from tenants.app import create_app
    from tenants.crypto import Vault
    from tenants.models import Tenant
    from tenants.settings import load
    from tenants.tenancy import create_tenant

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
    passwords = {}
    with app.app_context():
        session = admin_db.session()
        for slug in ("acme", "globex"):
            create_tenant(session, system_actor(), slug, slug.title(),
                          app.extensions["pa_storage"], app.extensions["pa_vault"])  # fmt: skip
        for tenant in session.scalars(select(Tenant)):
            encrypted = tenant.influx_read_password_encrypted
            passwords[tenant.slug] = Vault(TEST_SECRET).decrypt(encrypted)
    app.extensions["pa_engine"].dispose()

    now = int(datetime.now(UTC).timestamp())
    start = now // 3600 * 3600 - 6 * 3600
    acme, stray, globex = Host("web-01", "acme"), Host("web-01", "globex"), Host("web-01", "globex")
    only_globex, drop = Host("db-01", "globex"), Host("drop-01", "acme")
    for moment in range(start - 600, start + 7200 + 600, 10):
        acme.cpu(moment, 0.20, 10)
        acme.memory(moment, 0.30)
        for other in (stray, globex, only_globex):
            other.cpu(moment, 0.99, 10)
            other.memory(moment, 0.99)
        lost = moment == start + 1790  # a sample lost: the counters grew all the same
        drop.cpu(moment, 0.5, 10, lost)
        drop.count("node_network_receive_bytes_total", "device=eth0", moment, 1e7, lost)

    day_end = (now + 19800) // 86400 * 86400 - 19800 - 86400  # an Indian midnight a day ago
    kolkata = (day_end - 2 * 86400, day_end)
    india = Host("kol-01", "acme")
    for moment in range(kolkata[0] - 6 * 3600, kolkata[1] + 6 * 3600, 60):
        inside = kolkata[0] <= moment < kolkata[1]
        india.cpu(moment, 0.3 if inside else 0.99, 60)
        india.memory(moment, 0.5 if inside else 0.99)

    for database, hosts in (("pa_acme", (acme, stray, only_globex, drop, india)),
                            ("pa_globex", (globex, only_globex))):  # fmt: skip
        lines = [line for host in hosts for line in host.lines]
        for first in range(0, len(lines), 20000):
            influxdb.write(database, "\n".join(lines[first : first + 20000]), precision="s")
    workdir = tmp_path_factory.mktemp("report-audit")
    return Tenants(influxdb, database_url, passwords, workdir, start, kolkata)


def acme_web(t: Tenants, extra: str = "") -> str:
    return (
        f"tenant: acme\nhosts: [web-01]\ntime: {{start: {rfc3339(t.start)}, "
        f"end: {rfc3339(t.start + 7200)}, step: 1m}}\n{extra}"
    )


def figures(report: Report, host: str, key: str) -> Any:
    (found,) = [h for h in report.hosts if h.host == host]
    return found.summaries[key]


# -- wrong tenant


def test_the_admin_database_path_reads_its_own_tenants_points_only(
    tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    query = InfluxReader.query

    def recorded(self: InfluxReader, statements: list[str]) -> list[list[SeriesRows]]:
        sent.extend(statements)
        return query(self, statements)

    monkeypatch.setattr(InfluxReader, "query", recorded)
    report = tenants.build(acme_web(tenants))
    assert report.database == "pa_acme"
    busy = figures(report, "web-01", "cpu.busy")
    assert (busy.maximum, busy.percentiles[95], busy.mean) == pytest.approx((20.0, 20.0, 20.0))
    memory = figures(report, "web-01", "memory.used_percent")
    assert memory.maximum == pytest.approx(30.0)  # globex's web-01 is 99% full
    assert sent
    assert all("\"tenant\" = 'acme'" in s and "globex" not in s for s in sent)
    assert "InfluxDB database pa_acme, points of tenant acme" in render_page(report)


def test_explicit_credentials_read_their_own_tenants_points_only(tenants: Tenants) -> None:
    report = tenants.build(acme_web(tenants, tenants.explicit("acme", "acme")))
    assert figures(report, "web-01", "cpu.busy").maximum == pytest.approx(20.0)


def test_a_host_only_another_tenant_has_is_unknown(tenants: Tenants) -> None:
    config = tenants.config("unknown", acme_web(tenants).replace("[web-01]", "[db-01]"))
    err = io.StringIO()
    output = tenants.workdir / "unknown.html"
    assert (
        run(["--config", str(config), "--output", str(output), *tenants.flags()], stderr=err) == 1
    )
    assert (
        "hosts: no data ever for db-01 in pa_acme (hosts with CPU data: drop-01, kol-01, web-01)"
        in err.getvalue()
    )
    assert not output.exists()


def test_another_tenants_database_is_refused(
    tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in tenants.environ().items():
        monkeypatch.setenv(name, value)
    text = acme_web(tenants, tenants.explicit("acme", "globex", ", database: pa_globex"))
    config = tenants.config("other-database", text)
    err = io.StringIO()
    output = tenants.workdir / "other-database.html"
    assert (
        run(["--config", str(config), "--output", str(output), *tenants.flags()], stderr=err) == 2
    )
    assert (
        f"{config}: line 4: influxdb.database: pa_globex is not the database of tenant acme (pa_acme)"
        in err.getvalue()
    )
    assert not output.exists()


def test_another_tenants_read_user_is_refused_by_influxdb(
    tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in tenants.environ().items():
        monkeypatch.setenv(name, value)
    config = tenants.config("other-user", acme_web(tenants, tenants.explicit("acme", "globex")))
    err = io.StringIO()
    output = tenants.workdir / "other-user.html"
    assert (
        run(["--config", str(config), "--output", str(output), *tenants.flags()], stderr=err) == 1
    )
    assert "InfluxDB refused a query on pa_acme (HTTP 403)" in err.getvalue()
    assert "not authorized" in err.getvalue()
    assert not output.exists()


# -- rates over the real time between samples, the first step included


@pytest.mark.parametrize(("step", "chunk"), [("1m", None), ("30s", None), ("1m", 7)])
def test_a_lost_sample_does_not_inflate_a_rate(
    tenants: Tenants, monkeypatch: pytest.MonkeyPatch, step: str, chunk: int | None
) -> None:
    """A counter growing by 10,000,000 every 10 s, one sample lost: 1,000,000/s in every step
    (the nominal step made 1.17 MB/s of it at 1m, 1.33 MB/s at 30s). Read in chunks of 7 steps
    one after the other too: each chunk's first step has its rate from the chunk before."""
    if chunk is not None:
        monkeypatch.setattr(build, "chunk_buckets", lambda step: chunk)
    report = tenants.build(
        f"tenant: acme\nhosts: [drop-01]\ntime: {{start: {rfc3339(tenants.start)}, "
        f"end: {rfc3339(tenants.start + 7200)}, step: {step}}}\n",
        flags=("--influxdb.concurrency", "1"),
    )
    steps = report.grid.count
    received = figures(report, "drop-01", "network.receive_bytes")
    assert (received.maximum, received.mean) == pytest.approx((1e6, 1e6), rel=1e-12)
    assert figures(report, "drop-01", "network.receive_bytes").percentiles[95] == pytest.approx(1e6)
    busy = figures(report, "drop-01", "cpu.busy")
    assert (busy.maximum, busy.mean) == pytest.approx((50.0, 50.0))
    assert received.count == busy.count == steps  # the first step has its rate


# -- steps on the zone's clock


def test_day_steps_in_kolkata_hold_the_two_days_asked_for_only(tenants: Tenants) -> None:
    start, end = tenants.kolkata
    begin = datetime.fromtimestamp(start, IST).isoformat()
    finish = datetime.fromtimestamp(end, IST).isoformat()
    report = tenants.build(
        f"tenant: acme\nhosts: [kol-01]\ntime: {{start: '{begin}', end: '{finish}', step: 1d, "
        "timezone: Asia/Kolkata}\n"
    )
    assert (report.grid.start, report.grid.end, report.grid.count) == (start, end, 2)
    assert report.warnings == []
    memory = figures(report, "kol-01", "memory.used_percent")
    assert (memory.maximum, memory.percentiles[95]) == pytest.approx((50.0, 50.0))
    busy = figures(report, "kol-01", "cpu.busy")
    assert busy.maximum == pytest.approx(30.0)  # the first day's rate from the day before ends
    assert busy.count == 2
