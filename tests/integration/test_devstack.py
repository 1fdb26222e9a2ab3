"""``make up`` / ``make status`` / ``make down``: the local stack, on free ports in a temporary var/.

The stack must come up from nothing with embedded defaults (SQLite, no PostgreSQL or Redis, even
with the test suite's DATABASE_URL and REDIS_URL exported, and its development secret key with
.env's PERFANALYSIS_ADMIN_SECRET_KEY exported), carry this host's metrics from the
exporter through ingest into InfluxDB and into Prometheus, let the printed admin log in, reuse
everything on a second ``up`` and stop every process by PID.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from perfanalysis.testing.servers import (
    free_port,
    port_is_free,
    source_tree_environment,
    wait_until,
)

pytestmark = pytest.mark.integration

SERVICES = ("influxdb", "admin", "ingest", "exporter", "alertsink", "prometheus", "alertmanager")
ADDRESS_VARIABLES = (
    "PERFANALYSIS_DEV_INFLUXDB_ADDRESS",
    "PERFANALYSIS_DEV_INFLUXDB_RPC_ADDRESS",
    "PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS",
    "PERFANALYSIS_INGEST_WEB_LISTEN_ADDRESS",
    "PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS",
    "PERFANALYSIS_DEV_PROMETHEUS_ADDRESS",
    "PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS",
    "PERFANALYSIS_DEV_ALERTSINK_ADDRESS",
)


PORT_TAKEN = re.compile(r"port \d+ \(\w+\) is in use: cannot bind")
UP_ATTEMPTS = 3


class Stack:
    def __init__(self, var: Path) -> None:
        self.var = var
        self._choose_addresses()

    def _choose_addresses(self) -> None:
        self.addresses = {name: f"127.0.0.1:{free_port()}" for name in ADDRESS_VARIABLES}
        self.env = source_tree_environment(
            {
                "PERFANALYSIS_VAR_DIR": str(self.var),
                **self.addresses,
                # what a developer exports for the tests; make up keeps to its own SQLite file
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/no_such_db",
                "REDIS_URL": "redis://127.0.0.1:1/0",
                # what an operator exports from .env (grafana sync and report read it); the
                # stack's services all keep to var/dev-secret-key, or ingest refuses the
                # exporter's pushes
                "PERFANALYSIS_ADMIN_SECRET_KEY": "exported-for-compose-" + "x" * 32,
                "PERFANALYSIS_ADMIN_PREVIOUS_SECRET_KEYS": "",
            }
        )

    def up(self) -> subprocess.CompletedProcess[str]:
        """``devstack up``. A free port chosen here can be taken by another test process before
        a service binds it (make up then stops what it started and says so): such a run is
        tried again on new ports, at most UP_ATTEMPTS times in all."""
        for _ in range(UP_ATTEMPTS - 1):
            completed = self.run("up")
            if completed.returncode == 0 or not PORT_TAKEN.search(completed.stdout):
                return completed
            self._choose_addresses()
        return self.run("up")

    def run(
        self, command: str, *args: str, timeout: float = 240, addresses: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``devstack COMMAND ARGS``, with the address variables ``up`` had unless not
        ``addresses`` (a shell without them)."""
        env = self.env if addresses else {
            k: v for k, v in self.env.items() if k not in ADDRESS_VARIABLES
        }  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "perfanalysis.devstack", command, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def url(self, variable: str) -> str:
        return f"http://{self.addresses[variable]}"

    def pids(self) -> dict[str, int]:
        run = self.var / "run"
        if not run.exists():
            return {}
        return {p.stem: int(p.read_text().split()[0]) for p in run.glob("*.pid")}

    def admin_login(self, password: str) -> tuple[int, requests.Session]:
        """The status of the admin login form's answer, and the session it logged in."""
        admin = self.url("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS")
        http = requests.Session()
        http.trust_env = False
        page = http.get(f"{admin}/login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        answer = http.post(
            f"{admin}/login",
            data={
                "email": "admin@perfanalysis.local",
                "password": password,
                "csrf_token": token.group(1),
            },
            allow_redirects=False,
            timeout=10,
        )
        return answer.status_code, http


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    made = Stack(tmp_path_factory.mktemp("devstack") / "var")
    try:
        yield made
    finally:
        made.run("down")


@pytest.fixture(scope="module")
def first_up(stack: Stack) -> subprocess.CompletedProcess[str]:
    completed = stack.up()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def test_up_starts_every_service_and_reports_healthy(
    stack: Stack, first_up: subprocess.CompletedProcess[str]
) -> None:
    assert "PerfAnalysis is up" in first_up.stdout
    for service in SERVICES:
        assert f"{service}: started" in first_up.stdout
    assert stack.url("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS") in first_up.stdout
    status = stack.run("status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("healthy") == len(SERVICES)
    secrets = ("admin-password", "influxdb-admin-password", "influxdb-ingest-password")
    for name in (*secrets, "demo-collector.key"):
        assert (stack.var / name).stat().st_mode & 0o777 == 0o600
    assert stack.var.stat().st_mode & 0o777 == 0o700
    for private in ("admin.db", "influxdb/meta/meta.db"):
        assert (stack.var / private).stat().st_mode & 0o077 == 0, private


def test_host_metrics_reach_influxdb_through_ingest(
    stack: Stack, first_up: subprocess.CompletedProcess[str]
) -> None:
    password = (stack.var / "influxdb-admin-password").read_text().strip()
    influxdb = stack.url("PERFANALYSIS_DEV_INFLUXDB_ADDRESS")

    def stored() -> list[object] | None:
        answer = requests.get(
            f"{influxdb}/query",
            params={
                "db": "pa_demo",
                "q": 'SELECT last("value") FROM "node_load1" GROUP BY "tenant"',
            },
            auth=("admin", password),
            timeout=5,
        ).json()
        series = answer["results"][0].get("series")
        return series if series else None

    series = wait_until(stored, timeout=90, interval=1, what="the exporter's push in pa_demo")
    assert [s["tags"]["tenant"] for s in series] == ["demo"]  # type: ignore[index]

    # ...written by the write-only ingest user, not the InfluxDB admin
    cmdline = Path(f"/proc/{stack.pids()['ingest']}/cmdline").read_bytes().split(b"\0")
    assert b"--storage.username=ingest" in cmdline

    def admin_rows(q: str) -> list[list[object]]:
        answer = requests.post(
            f"{influxdb}/query", data={"q": q}, auth=("admin", password), timeout=5
        ).json()
        return [v for s in answer["results"][0].get("series", []) for v in s.get("values", [])]

    assert ["ingest", False] in admin_rows("SHOW USERS")
    assert admin_rows('SHOW GRANTS FOR "ingest"') == [["pa_demo", "WRITE"]]
    ingest_password = (stack.var / "influxdb-ingest-password").read_text().strip()
    refused = requests.post(
        f"{influxdb}/query",
        data={"q": 'SELECT count(*) FROM "node_load1"', "db": "pa_demo"},
        auth=("ingest", ingest_password),
        timeout=5,
    )
    assert refused.status_code == 403, refused.text


def test_prometheus_scrapes_the_exporter_and_loads_the_rules(
    stack: Stack, first_up: subprocess.CompletedProcess[str]
) -> None:
    prometheus = stack.url("PERFANALYSIS_DEV_PROMETHEUS_ADDRESS")

    def node_up() -> list[object] | None:
        answer = requests.get(
            f"{prometheus}/api/v1/query", params={"query": 'up{job="node"} == 1'}, timeout=5
        ).json()
        return answer["data"]["result"] or None

    result = wait_until(node_up, timeout=90, interval=1, what="Prometheus scraping the exporter")
    assert result[0]["metric"]["tenant"] == "demo"  # type: ignore[index]
    rules = requests.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert rules, "no alert rules loaded"
    alertmanagers = requests.get(f"{prometheus}/api/v1/alertmanagers", timeout=5).json()
    assert stack.addresses["PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS"] in str(alertmanagers)


def test_the_printed_admin_can_log_in(
    stack: Stack, first_up: subprocess.CompletedProcess[str]
) -> None:
    status, http = stack.admin_login((stack.var / "admin-password").read_text().strip())
    assert status == 302
    admin = stack.url("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS")
    assert "demo" in http.get(f"{admin}/tenants", timeout=10).text


def test_a_shell_without_the_address_variables_finds_the_running_stack(
    stack: Stack, first_up: subprocess.CompletedProcess[str]
) -> None:
    status = stack.run("status", addresses=False)
    assert status.returncode == 0, status.stdout + status.stderr
    assert stack.url("PERFANALYSIS_INGEST_WEB_LISTEN_ADDRESS") in status.stdout

    created = stack.run("admin", "create-tenant", "initech", "Initech", addresses=False)
    assert created.returncode == 0, created.stdout + created.stderr

    again = stack.run("up", addresses=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Traceback" not in again.stderr
    assert again.stdout.count("already running") == len(SERVICES)
    assert "InfluxDB login: user admin" in again.stdout


def test_up_after_the_admin_password_file_is_lost_writes_a_working_one(
    stack: Stack, first_up: subprocess.CompletedProcess[str]
) -> None:
    password_file = stack.var / "admin-password"
    lost = password_file.read_text().strip()
    password_file.unlink()

    again = stack.run("up")

    assert again.returncode == 0, again.stdout + again.stderr
    renewed = password_file.read_text().strip()
    assert renewed != lost
    assert stack.admin_login(renewed)[0] == 302
    assert stack.admin_login(lost)[0] != 302


def test_second_up_reuses_everything_and_down_stops_every_pid(
    stack: Stack, first_up: subprocess.CompletedProcess[str]
) -> None:
    before = stack.pids()
    assert sorted(before) == sorted(SERVICES)
    key = (stack.var / "demo-collector.key").read_text()
    again = stack.run("up")
    assert again.returncode == 0, again.stdout + again.stderr
    for service in SERVICES:
        assert f"{service}: already running" in again.stdout
    assert stack.pids() == before
    assert (stack.var / "demo-collector.key").read_text() == key  # kept, not replaced
    down = stack.run("down")
    assert down.returncode == 0, down.stdout + down.stderr
    for service, pid in before.items():
        assert f"{service}: stopped (pid {pid})" in down.stdout
        assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)
    assert stack.pids() == {}
    assert stack.run("status").returncode == 1


def test_up_with_a_wrong_influxdb_password_says_so_and_leaves_nothing_running(
    stack: Stack, first_up: subprocess.CompletedProcess[str]
) -> None:
    assert stack.run("down").returncode == 0
    password_file = stack.var / "influxdb-admin-password"
    right = password_file.read_text()
    password_file.write_text("not-the-password\n")
    try:
        failed = stack.run("up")
    finally:
        password_file.write_text(right)

    assert failed.returncode != 0
    assert f"already has users, but 'admin' does not have the password in {password_file}" in (
        failed.stderr
    )
    assert "make up failed; it stopped every service it had started" in failed.stderr
    assert "influxdb: stopped" in failed.stdout
    assert "Traceback" not in failed.stderr
    assert stack.pids() == {}
    assert port_is_free(int(stack.addresses["PERFANALYSIS_DEV_INFLUXDB_ADDRESS"].split(":")[1]))


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
