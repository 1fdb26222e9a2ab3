"""The local stack behind ``make up``, ``make down`` and ``make status``: no Docker, PID files.

InfluxDB, the admin app, ingest, the exporter (pushing into ingest with the demo collector's key),
Prometheus and Alertmanager, each in its own session with its log in ``var/log`` and its PID in
``var/run``. ``up`` reuses what already runs and what the first run created (the InfluxDB admin
and ingest passwords, the demo tenant, collector and key), waits for readiness with a deadline
and prints every URL and the admin login. Ingest writes as the ``ingest`` InfluxDB user, which
the admin app keeps a non-admin with WRITE on the tenant databases only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perfanalysis.paths import ROOT, var_dir

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
CLI = [sys.executable, "-m", "perfanalysis.cli"]
INFLUX_ADMIN = "admin"
INFLUX_INGEST = "ingest"  # writes only: the admin app grants it WRITE on each tenant database
# where each service listens: HOST:PORT, overridable (a second stack, or a test on free ports)
DEFAULT_ADDRESSES = {
    "PERFANALYSIS_DEV_INFLUXDB_ADDRESS": "127.0.0.1:8086",
    "PERFANALYSIS_DEV_INFLUXDB_RPC_ADDRESS": "127.0.0.1:8088",
    "PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS": "127.0.0.1:8080",
    "PERFANALYSIS_INGEST_WEB_LISTEN_ADDRESS": "127.0.0.1:8087",
    "PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS": "127.0.0.1:9100",
    "PERFANALYSIS_DEV_PROMETHEUS_ADDRESS": "127.0.0.1:9090",
    "PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS": "127.0.0.1:9093",
}


def address(variable: str) -> str:
    """The HOST:PORT a service listens on (a bare :PORT means loopback)."""
    value = os.environ.get(variable, DEFAULT_ADDRESSES[variable])
    return f"127.0.0.1{value}" if value.startswith(":") else value


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    ready_url: str
    urls: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    after_ready: Callable[[], None] | None = None

    @property
    def pid_file(self) -> Path:
        return var_dir() / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return var_dir() / "log" / f"{self.name}.log"


def _secret_file(path: Path) -> str:
    """A secret kept in a 0600 file: read it, or create it on the first run."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    return secret


def influx_password() -> str:
    return _secret_file(var_dir() / "influxdb-admin-password")


def influx_ingest_password() -> str:
    return _secret_file(var_dir() / "influxdb-ingest-password")


def _write_influx_config() -> None:
    from perfanalysis.testing.servers import TomlValue, render_toml

    base = var_dir() / "influxdb"
    base.mkdir(parents=True, exist_ok=True)
    config: dict[str, dict[str, TomlValue]] = {
        "": {
            "reporting-disabled": True,
            "reporting-enabled": False,
            "bind-address": address("PERFANALYSIS_DEV_INFLUXDB_RPC_ADDRESS"),
        },
        "meta": {"dir": str(base / "meta"), "logging-enabled": False},
        "data": {
            "dir": str(base / "data"),
            "wal-dir": str(base / "wal"),
            "query-log-enabled": False,
        },
        "monitor": {"store-enabled": False},
        "http": {
            "bind-address": address("PERFANALYSIS_DEV_INFLUXDB_ADDRESS"),
            "auth-enabled": True,
            "log-enabled": False,
        },
        "logging": {"suppress-logo": True},
    }
    (base / "influxdb.conf").write_text(render_toml(config))


def _ensure_influx_admin() -> None:
    """InfluxDB 1.x lets the first user be created without credentials: do so on the first run."""
    password = influx_password()
    influxdb = address("PERFANALYSIS_DEV_INFLUXDB_ADDRESS")
    statement = f"CREATE USER \"{INFLUX_ADMIN}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES"
    probe = urllib.request.Request(
        f"http://{influxdb}/query",
        data=urllib.parse.urlencode({"q": "SHOW USERS"}).encode(),
        headers={"Authorization": _basic(INFLUX_ADMIN, password)},
    )
    try:
        with urllib.request.urlopen(probe, timeout=10):  # noqa: S310
            return  # the admin exists and the password is right
    except urllib.error.HTTPError as error:
        if error.code not in (401, 403):  # 403: no user exists yet
            raise
    create = urllib.request.Request(
        f"http://{influxdb}/query", data=urllib.parse.urlencode({"q": statement}).encode()
    )
    with urllib.request.urlopen(create, timeout=10) as response:  # noqa: S310
        if b'"error"' in response.read():
            raise SystemExit(
                "InfluxDB in var/influxdb already has users but not the password in "
                "var/influxdb-admin-password; remove var/influxdb to start afresh"
            )


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def admin_env() -> dict[str, str]:
    return {
        "PERFANALYSIS_ADMIN_INFLUXDB_URL": f"http://{address('PERFANALYSIS_DEV_INFLUXDB_ADDRESS')}",
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_USER": INFLUX_ADMIN,
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD": influx_password(),
        "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_USER": INFLUX_INGEST,
        "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_PASSWORD": influx_ingest_password(),
    }


def setup_steps() -> list[tuple[list[str], dict[str, str]]]:
    """Commands run once InfluxDB is up and before the other services start; each idempotent."""
    demo = [*CLI, "admin", "--dev", "ensure-demo", "--var-dir", str(var_dir())]
    # the ingest user, and its WRITE on tenants an earlier run made before it existed
    grant = [*CLI, "admin", "--dev", "grant-ingest-writes"]
    return [(demo, admin_env()), (grant, admin_env())]


def services() -> list[Service]:
    var = var_dir()
    influxdb_address = address("PERFANALYSIS_DEV_INFLUXDB_ADDRESS")
    admin_address = address("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS")
    ingest_address = address("PERFANALYSIS_INGEST_WEB_LISTEN_ADDRESS")
    exporter_address = address("PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS")
    prometheus_address = address("PERFANALYSIS_DEV_PROMETHEUS_ADDRESS")
    alertmanager_address = address("PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS")
    influxdb = Service(
        "influxdb",
        ["influxd", "-config", str(var / "influxdb" / "influxdb.conf")],
        f"http://{influxdb_address}/ping",
        {"HTTP API": f"http://{influxdb_address}"},
        prepare=_write_influx_config,
        after_ready=_ensure_influx_admin,
    )
    admin = Service(
        "admin",
        [*CLI, "admin", "--dev", f"--web.listen-address={admin_address}", "serve"],
        f"http://{admin_address}/health",
        {"pages": f"http://{admin_address}/", "API": f"http://{admin_address}/api/v1/openapi.json"},
        env=admin_env(),
    )
    ingest = Service(
        "ingest",
        [
            *CLI,
            "ingest",
            "--dev",
            f"--web.listen-address={ingest_address}",
            f"--storage.url=http://{influxdb_address}",
            f"--storage.username={INFLUX_INGEST}",
        ],
        f"http://{ingest_address}/health",
        {
            "write API": f"http://{ingest_address}/api/v2/write",
            "metrics": f"http://{ingest_address}/metrics",
        },
        env={"PERFANALYSIS_INGEST_STORAGE_PASSWORD": influx_ingest_password()},
    )
    exporter = Service(
        "exporter",
        [
            *CLI,
            "exporter",
            f"--web.listen-address={exporter_address}",
            f"--push.url=http://{ingest_address}",
            f"--push.key-file={var / 'demo-collector.key'}",
            f"--push.spool-dir={var / 'spool'}",
        ],
        f"http://{exporter_address}/health",
        {
            "metrics": f"http://{exporter_address}/metrics",
            "health": f"http://{exporter_address}/health",
        },
    )
    prometheus = Service(
        "prometheus",
        [
            "prometheus",
            f"--config.file={var / 'prometheus' / 'prometheus.yml'}",
            f"--storage.tsdb.path={var / 'prometheus'}",
            f"--web.listen-address={prometheus_address}",
            f"--web.console.templates={var / 'prometheus'}",
            f"--web.console.libraries={var / 'prometheus'}",
        ],
        f"http://{prometheus_address}/-/ready",
        {"UI": f"http://{prometheus_address}/", "alerts": f"http://{prometheus_address}/alerts"},
        prepare=_write_prometheus_config,
    )
    alertmanager = Service(
        "alertmanager",
        [
            "prometheus-alertmanager",
            f"--config.file={ROOT / 'provisioning/alertmanager/alertmanager.yml'}",
            f"--storage.path={var / 'alertmanager'}",
            f"--web.listen-address={alertmanager_address}",
            "--cluster.listen-address=",
        ],
        f"http://{alertmanager_address}/-/ready",
        {"UI": f"http://{alertmanager_address}/"},
    )
    return [influxdb, admin, ingest, exporter, prometheus, alertmanager]


def _write_prometheus_config() -> None:
    """provisioning/prometheus/prometheus.yml with this stack's addresses and absolute paths."""
    import yaml

    source = ROOT / "provisioning" / "prometheus"
    config = yaml.safe_load((source / "prometheus.yml").read_text())
    config["rule_files"] = [str(source / pattern) for pattern in config["rule_files"]]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        address("PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS")
    ]
    own = {
        "node": address("PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS"),
        "ingest": address("PERFANALYSIS_INGEST_WEB_LISTEN_ADDRESS"),
        "alertmanager": address("PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS"),
        "prometheus": address("PERFANALYSIS_DEV_PROMETHEUS_ADDRESS"),
    }
    for job in config["scrape_configs"]:
        if job["job_name"] in own:
            job["static_configs"][0]["targets"] = [own[job["job_name"]]]
        for discovery in job.get("file_sd_configs", []):
            discovery["files"] = [str(source / pattern) for pattern in discovery["files"]]
    target = var_dir() / "prometheus" / "prometheus.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        "# Written by 'make up' from provisioning/prometheus/prometheus.yml: edit that one.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )


def running_pid(service: Service) -> int | None:
    try:
        pid = int(service.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return (
        pid
        if Path(service.argv[0]).name.encode() in cmdline or b"perfanalysis" in cmdline
        else None
    )


def healthy(service: Service) -> bool:
    try:
        with urllib.request.urlopen(service.ready_url, timeout=2) as response:  # noqa: S310 (local URL)
            return bool(200 <= response.status < 300)
    except OSError:
        return False


def start(service: Service) -> None:
    pid = running_pid(service)
    if pid is not None:
        if service.after_ready:
            service.after_ready()  # idempotent: repairs what an interrupted first run left undone
        print(f"{service.name}: already running (pid {pid})")
        return
    service.pid_file.parent.mkdir(parents=True, exist_ok=True)
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    if service.prepare:
        service.prepare()
    with service.log_file.open("ab") as log:
        process = subprocess.Popen(
            service.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
            env={**os.environ, **service.env},
        )
    service.pid_file.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + READY_TIMEOUT
    while not healthy(service):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = service.log_file.read_text(errors="replace").splitlines()[-20:]
            stop(service, quiet=True)
            raise SystemExit(
                f"{service.name} did not become ready; its log ends:\n" + "\n".join(tail)
            )
        time.sleep(0.2)
    if service.after_ready:
        service.after_ready()
    print(f"{service.name}: started (pid {process.pid}), log {service.log_file}")


def stop(service: Service, quiet: bool = False) -> None:
    pid = running_pid(service)
    if pid is None:
        if not quiet:
            print(f"{service.name}: not running")
        service.pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    service.pid_file.unlink(missing_ok=True)
    if not quiet:
        print(f"{service.name}: stopped (pid {pid})")


def up(stack: list[Service]) -> None:
    start(stack[0])  # InfluxDB: the demo tenant's database is created in it
    for argv, env in setup_steps():
        completed = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, check=False, env={**os.environ, **env}
        )
        if completed.returncode != 0:
            raise SystemExit(f"{' '.join(argv[2:])} failed:\n{completed.stderr}{completed.stdout}")
        print(completed.stdout, end="")
    for service in stack[1:]:
        start(service)
    print("\nPerfAnalysis is up:")
    for service in stack:
        for label, url in service.urls.items():
            print(f"  {service.name} {label}: {url}")
    print(f"  admin login: admin@perfanalysis.local, password in {var_dir() / 'admin-password'}")
    print("Stop it with 'make down'; 'make status' shows what runs.")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    stack = services()
    if command == "up":
        up(stack)
        return 0
    if command == "down":
        for service in reversed(stack):
            stop(service)
        return 0
    if command == "status":
        failing = 0
        for service in stack:
            pid = running_pid(service)
            state = "healthy" if pid and healthy(service) else ("unhealthy" if pid else "stopped")
            failing += state != "healthy"
            print(f"{service.name:<13} {state:<10} pid {pid or '-':<8} {service.ready_url}")
        return 1 if failing else 0
    print(
        f"usage: python -m perfanalysis.devstack up|down|status (got {command!r})", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
