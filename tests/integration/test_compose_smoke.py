"""docker-compose.yml brought up for real, when a Docker engine answers; skipped, saying why, if not.

The stack runs under a throwaway project name with generated secrets, every long-running service
must become healthy, and then a point goes the whole way: a tenant, collector and key made with
the admin CLI, a write through ingest, the point read back from InfluxDB. Prometheus must scrape
every target and Grafana must hold the provisioned data sources. ``docker compose down -v``
removes everything at the end, also after a failure.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PUBLISHED = {
    "admin": 8080,
    "ingest": 8087,
    "grafana": 3000,
    "prometheus": 9090,
    "alertmanager": 9093,
    "exporter": 9100,
}
ONE_SHOTS = {"admin-init"}
HEALTHY_WITHIN = 900.0  # seconds: the first run builds the image and pulls seven others


def engine_problem() -> str | None:
    """Why the stack cannot run here, or None when a Docker engine answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "no Docker engine reachable: the docker client is not installed"
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "no Docker engine reachable: docker info did not answer within 30 s"
    if info.returncode != 0:
        lines = (info.stderr or info.stdout).strip().splitlines()
        return f"no Docker engine reachable: {lines[-1] if lines else 'docker info failed'}"
    return None


def compose_command() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return command
    return None


def port_in_use(port: int) -> bool:
    with contextlib.closing(socket.socket()) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def env_file(directory: Path) -> dict[str, str]:
    """.env.example with generated secrets, written where only this test reads it."""
    values: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    for name in (
        "PERFANALYSIS_ADMIN_SECRET_KEY",
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "INFLUXDB_ADMIN_PASSWORD",
        "INFLUXDB_INGEST_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        values[name] = secrets.token_hex(32)
    values["PERFANALYSIS_ALERT_WEBHOOK_URL"] = "http://127.0.0.1:9/alerts"  # nobody listens
    path = directory / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return values


@dataclass
class Stack:
    base: list[str]
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )

    def states(self) -> dict[str, dict[str, Any]]:
        result = self.run("ps", "--all", "--format", "json")
        text = result.stdout.strip()
        rows: list[dict[str, Any]] = []
        if text.startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def logs(self) -> str:
        return self.run("logs", "--no-color", "--tail", "60").stdout


def wait_healthy(stack: Stack) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN
    pending: list[str] = []
    while time.monotonic() < deadline:
        states = stack.states()
        pending = []
        for name, row in states.items():
            if name in ONE_SHOTS:
                if row.get("State") == "exited" and row.get("ExitCode") not in (0, None):
                    pytest.fail(f"{name} failed:\n{stack.logs()}")
                continue
            if row.get("Health") != "healthy":
                pending.append(f"{name}={row.get('State')}/{row.get('Health')}")
        if states and not pending:
            return
        time.sleep(5)
    pytest.fail(f"not healthy within {HEALTHY_WITHIN:.0f} s: {pending}\n{stack.logs()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    command = compose_command()
    if command is None:
        pytest.skip("a Docker engine answers but neither `docker compose` nor docker-compose runs")
    busy = sorted(name for name, port in PUBLISHED.items() if port_in_use(port))
    if busy:
        pytest.skip(f"ports the stack publishes are taken on this machine: {busy}")
    directory = tmp_path_factory.mktemp("compose")
    env = env_file(directory)
    project = f"pa-smoke-{secrets.token_hex(3)}"
    stack = Stack(
        [
            *command,
            "--project-name",
            project,
            "--env-file",
            str(directory / ".env"),
            "--file",
            str(COMPOSE),
        ],
        env,
    )
    try:
        up = stack.run("up", "--detach", "--build", timeout=HEALTHY_WITHIN)
        if up.returncode != 0:
            pytest.fail(f"docker compose up failed:\n{up.stdout}\n{up.stderr}\n{stack.logs()}")
        wait_healthy(stack)
        yield stack
    finally:
        stack.run("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=600)


def get(port: int, path: str, **kwargs: Any) -> requests.Response:
    http = requests.Session()
    http.trust_env = False
    return http.get(f"http://127.0.0.1:{port}{path}", timeout=10, **kwargs)


def test_every_service_is_healthy_and_answers_on_its_published_port(stack: Stack) -> None:
    states = stack.states()
    assert states["admin-init"]["ExitCode"] == 0
    assert get(PUBLISHED["ingest"], "/health").json()["status"] == "pass"  # InfluxDB 2.x's
    assert get(PUBLISHED["admin"], "/health").json() == {"status": "ok", "database": "ok"}
    assert get(PUBLISHED["grafana"], "/api/health").status_code == 200
    assert get(PUBLISHED["prometheus"], "/-/ready").status_code == 200
    assert get(PUBLISHED["alertmanager"], "/-/ready").status_code == 200
    assert "node_load1 " in get(PUBLISHED["exporter"], "/metrics").text


def test_a_point_written_through_ingest_is_stored_in_the_tenant_database(stack: Stack) -> None:
    def admin(*args: str) -> str:
        result = stack.run("run", "--rm", "--no-deps", "admin-init", "admin", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    created = admin("create-tenant", "smoke", "Smoke test")
    database = created.split("(database ")[1].split(")")[0]
    admin("create-collector", "smoke", "host1", "--hostname", "host1")
    key = admin("issue-key", "smoke", "host1").strip().splitlines()[-1]
    answer = requests.post(
        f"http://127.0.0.1:{PUBLISHED['ingest']}/api/v2/write",
        data=b"smoke_test value=42\n",
        headers={"Authorization": f"Token {key}"},
        timeout=30,
    )
    assert answer.status_code == 204, answer.text
    query = stack.run(
        "exec",
        "-T",
        "influxdb",
        "influx",
        "-username",
        stack.env["INFLUXDB_ADMIN_USER"],
        "-password",
        stack.env["INFLUXDB_ADMIN_PASSWORD"],
        "-database",
        database,
        "-format",
        "json",
        "-execute",
        'SELECT "value", "tenant" FROM "smoke_test"',
    )
    assert query.returncode == 0, query.stderr
    [series] = json.loads(query.stdout)["results"][0]["series"]
    assert series["values"][0][1:] == [42, "smoke"]


def test_prometheus_scrapes_every_target(stack: Stack) -> None:
    deadline = time.monotonic() + 120
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        targets = get(PUBLISHED["prometheus"], "/api/v1/targets").json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        if set(health) >= {"node", "ingest", "alertmanager", "prometheus"} and set(
            health.values()
        ) == {"up"}:
            return
        time.sleep(5)
    pytest.fail(f"targets not all up: {health}")


def test_grafana_has_the_provisioned_data_sources_and_dashboards(stack: Stack) -> None:
    auth = (stack.env["GRAFANA_ADMIN_USER"], stack.env["GRAFANA_ADMIN_PASSWORD"])
    sources = {s["uid"]: s for s in get(PUBLISHED["grafana"], "/api/datasources", auth=auth).json()}
    assert sources["influxdb"]["url"] == "http://influxdb:8086"
    assert sources["prometheus"]["url"] == "http://prometheus:9090"
    found = get(PUBLISHED["grafana"], "/api/search", params={"type": "dash-db"}, auth=auth).json()
    assert len(found) == len(list((ROOT / "grafana" / "dashboards").glob("*.json")))
