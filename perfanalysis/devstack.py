"""The local stack behind ``make up``, ``make down``, ``make status`` and ``make reload``: no
Docker, PID files.

InfluxDB, the admin app, ingest, the exporter (pushing into ingest with the demo collector's key),
the alert sink (perfanalysis.alertsink: Alertmanager's webhooks, appended to var/log/alerts.jsonl),
Prometheus and Alertmanager, each in its own session with its log in ``var/log`` and its PID in
``var/run``. ``up`` reuses what already runs and what the first run created (the InfluxDB admin
and ingest passwords, the demo tenant, collector and key), waits for readiness with a deadline
and prints every URL and the logins; when a step fails it stops what it had started. It records
the addresses it used in ``var/addresses.json``, where later commands find the running services
whatever the environment says, and a stopped stack's where no variable moves them. It migrates
the admin database to the checkout's schema after a backup in ``var/backups``, saying so (never
under a running admin or ingest: it refuses, exit 2, and starts nothing), and
records the code each service started with (``var/run/NAME.code``): a service kept running on
older code than the checkout's is said, by ``up`` and ``status``, with the restart that runs the
new. Ingest writes as the ``ingest`` InfluxDB user, which the admin
app keeps a non-admin with WRITE on the tenant databases only. ``reload`` has Prometheus and
Alertmanager load their configuration again (SIGHUP), Prometheus' (and, with the alert sink
moved, Alertmanager's) written again from provisioning/ with the stack's addresses, and checks
their reload metrics.

A PID file holds the PID and the process's identity (boot and start time), so a PID reused by
another program after a crash or a reboot is never taken for a service; when that process has
died, ``down`` still stops what remains of its process group that is the stack's. ``up``,
``down`` and ``reload`` run one at a time (a lock in ``var/run``): another meanwhile refuses at
once. The state directory is private to its owner, and the stack keeps its data in its own
SQLite file there, whatever DATABASE_URL or REDIS_URL (the test suite's) say; its services all
take the development secret key there, whatever secret keys the environment holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfanalysis.config import ConfigError
from perfanalysis.paths import ROOT, var_dir

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
RELOAD_TIMEOUT = 30.0
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
    # the default of provisioning/thresholds.yaml's webhooks: the generated alertmanager.yml's
    "PERFANALYSIS_DEV_ALERTSINK_ADDRESS": "127.0.0.1:9095",
}
# inherited variables that would point the stack's children at other state than its own
FOREIGN_STATE_VARIABLES = frozenset(
    {"DATABASE_URL", "REDIS_URL", "PERFANALYSIS_ADMIN_REDIS_URL", "PERFANALYSIS_INGEST_REDIS_URL"}
)
# inherited settings that would make the stack's services disagree with each other, so that
# they never reach its children: a secret key exported for Compose, grafana sync or report
# (.env has PERFANALYSIS_ADMIN_SECRET_KEY) would key the admin app's collector keys one way and
# ingest's, on var/dev-secret-key, another (every push refused with 401); ingest's storage must
# suit the stack's InfluxDB 1.x; and the services reach each other over plain HTTP on loopback,
# the exporter's metrics at /metrics, as Prometheus and devstack's own checks expect
DISAGREEING_VARIABLES = frozenset(
    {
        "PERFANALYSIS_ADMIN_SECRET_KEY",
        "PERFANALYSIS_ADMIN_PREVIOUS_SECRET_KEYS",
        "PERFANALYSIS_INGEST_SECRET_KEY",
        "PERFANALYSIS_INGEST_PREVIOUS_SECRET_KEYS",
        "PERFANALYSIS_INGEST_STORAGE_API",
        "PERFANALYSIS_INGEST_STORAGE_TOKEN",
        "PERFANALYSIS_INGEST_STORAGE_ORG",
        "PERFANALYSIS_INGEST_STORAGE_UNSIGNED_INTEGERS",
        "PERFANALYSIS_ADMIN_WEB_TLS_CERT_FILE",
        "PERFANALYSIS_ADMIN_WEB_TLS_KEY_FILE",
        "PERFANALYSIS_INGEST_WEB_TLS_CERT_FILE",
        "PERFANALYSIS_INGEST_WEB_TLS_KEY_FILE",
        "PERFANALYSIS_INGEST_WEB_TLS_CLIENT_CA_FILE",
        "PERFANALYSIS_EXPORTER_WEB_CONFIG_FILE",
        "PERFANALYSIS_EXPORTER_WEB_TELEMETRY_PATH",
        "PERFANALYSIS_EXPORTER_PUSH_TLS_CA_FILE",
        "PERFANALYSIS_EXPORTER_PUSH_TLS_CERT_FILE",
        "PERFANALYSIS_EXPORTER_PUSH_TLS_KEY_FILE",
        # the demo collector is pinned to this machine's hostname, which ingest writes as the
        # host tag whatever the exporter sends: another --push.host would only mislead
        "PERFANALYSIS_EXPORTER_PUSH_HOST",
    }
)
IGNORED_VARIABLES = FOREIGN_STATE_VARIABLES | DISAGREEING_VARIABLES


# the service that listens on each address, whose PID file says whether it runs
ADDRESS_OWNERS = {
    "PERFANALYSIS_DEV_INFLUXDB_ADDRESS": "influxdb",
    "PERFANALYSIS_DEV_INFLUXDB_RPC_ADDRESS": "influxdb",
    "PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS": "admin",
    "PERFANALYSIS_INGEST_WEB_LISTEN_ADDRESS": "ingest",
    "PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS": "exporter",
    "PERFANALYSIS_DEV_PROMETHEUS_ADDRESS": "prometheus",
    "PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS": "alertmanager",
    "PERFANALYSIS_DEV_ALERTSINK_ADDRESS": "alertsink",
}


def address(variable: str) -> str:
    """The HOST:PORT a service listens on: while any service of the stack runs, the address
    ``up`` recorded; else what the environment says, else the recorded one, else the default
    (a bare :PORT means loopback).

    So that status, admin and a second up find a stack started with other addresses from a
    shell without the variables, running or stopped (a stack moved off ports in use stays off
    them), and a service restarted while the others run comes back where they expect it (they
    were started with its address)."""
    recorded = recorded_addresses().get(variable)
    if recorded and (variable not in os.environ or _stack_runs()):
        return recorded
    return requested_address(variable)


def reused_addresses() -> list[str]:
    """``owner HOST:PORT`` for each address taken from var/addresses.json rather than from the
    environment or the defaults: what ``up`` says it reuses."""
    recorded = recorded_addresses()
    return [
        f"{ADDRESS_OWNERS[variable]}{' RPC' if 'RPC' in variable else ''} {recorded[variable]}"
        for variable, default in DEFAULT_ADDRESSES.items()
        if variable not in os.environ and recorded.get(variable) not in (None, default)
    ]


def requested_address(variable: str) -> str:
    """The address the environment, or else the default, asks for."""
    value = os.environ.get(variable, DEFAULT_ADDRESSES[variable])
    return f"127.0.0.1{value}" if value.startswith(":") else value


def addresses_file() -> Path:
    return var_dir() / "addresses.json"


def recorded_addresses() -> dict[str, str]:
    """The addresses the last ``up`` used, by variable; none when it has not run."""
    try:
        recorded = json.loads(addresses_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {k: v for k, v in recorded.items() if k in DEFAULT_ADDRESSES and isinstance(v, str)}


def record_addresses() -> None:
    """Write the stack's addresses for later commands: whole or not at all (a rename)."""
    target = addresses_file()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_text(json.dumps({v: address(v) for v in DEFAULT_ADDRESSES}, indent=2) + "\n")
    partial.replace(target)


def _owner_runs(variable: str) -> bool:
    return _running_pid_in(pid_file(ADDRESS_OWNERS[variable])) is not None


def _stack_runs() -> bool:
    return any(_owner_runs(variable) for variable in ADDRESS_OWNERS)


def moved_services() -> list[str]:
    """A line for each service of a running stack that an address variable would move
    elsewhere (a stopped one too: the running services were started with its address)."""
    lines = []
    for variable in DEFAULT_ADDRESSES:
        kept_at, requested = address(variable), requested_address(variable)
        if variable in os.environ and requested != kept_at and _stack_runs():
            where = "runs at" if _owner_runs(variable) else "belongs, for the running stack, at"
            lines.append(
                f"{ADDRESS_OWNERS[variable]} {where} {kept_at}, not at "
                f"{variable}={os.environ[variable]}: to move it there, 'make down' first (or "
                f"unset {variable} to use the running stack)"
            )
    return lines


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    ready_url: str
    urls: dict[str, str]
    # variables for its environment; called only when it starts, as it may create secrets
    env: Callable[[], dict[str, str]] = dict
    # the addresses it binds, by the variable that sets each: checked free before it starts
    listens: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    after_ready: Callable[[], None] | None = None
    # what make status shows on its line, when not the ready URL (InfluxDB's base URL, which
    # the report's --influxdb.url takes, rather than its /ping)
    status_url: str = ""

    @property
    def pid_file(self) -> Path:
        return pid_file(self.name)

    @property
    def log_file(self) -> Path:
        return var_dir() / "log" / f"{self.name}.log"


def pid_file(name: str) -> Path:
    return var_dir() / "run" / f"{name}.pid"


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
    except OSError as error:
        raise SystemExit(_unreachable_influxdb(influxdb, error)) from error
    create = urllib.request.Request(
        f"http://{influxdb}/query", data=urllib.parse.urlencode({"q": statement}).encode()
    )
    try:
        with urllib.request.urlopen(create, timeout=10) as response:  # noqa: S310
            refused = b'"error"' in response.read()
    except urllib.error.HTTPError as error:
        if error.code not in (401, 403):  # with users present, an unauthenticated CREATE USER
            raise
        refused = True
    except OSError as error:
        raise SystemExit(_unreachable_influxdb(influxdb, error)) from error
    if refused:
        raise SystemExit(
            f"InfluxDB at {influxdb} already has users, but {INFLUX_ADMIN!r} does not have the "
            f"password in {var_dir() / 'influxdb-admin-password'}; put the right one there, "
            f"or remove {var_dir() / 'influxdb'} to start afresh"
        )


def _unreachable_influxdb(influxdb: str, error: OSError) -> str:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    return (
        f"influxdb: cannot reach InfluxDB at {influxdb} ({reason}); 'make status' shows what "
        "runs where, and 'make down' then 'make up' starts it afresh"
    )


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment for a child, on the stack's own SQLite database and no Redis,
    and without the settings the services must agree on (IGNORED_VARIABLES): each of them, and
    each setup step, takes the development secret key in var/ and the stack's own settings."""
    database_url = f"sqlite:///{var_dir() / 'admin.db'}"
    inherited = {k: v for k, v in os.environ.items() if k not in IGNORED_VARIABLES}
    return {
        **inherited,
        "PERFANALYSIS_ADMIN_DATABASE_URL": database_url,
        "PERFANALYSIS_INGEST_DATABASE_URL": database_url,
        **extra,
    }


def admin_env() -> dict[str, str]:
    return {
        "PERFANALYSIS_ADMIN_INFLUXDB_URL": f"http://{address('PERFANALYSIS_DEV_INFLUXDB_ADDRESS')}",
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_USER": INFLUX_ADMIN,
        "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD": influx_password(),
        "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_USER": INFLUX_INGEST,
        "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_PASSWORD": influx_ingest_password(),
    }


def setup_steps() -> list[tuple[list[str], dict[str, str]]]:
    """Commands run once InfluxDB is up and before the other services start; each idempotent.
    The admin database is at the checkout's schema by then (``migrate_admin_database``)."""
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
        status_url=f"http://{influxdb_address}",
        listens={
            "PERFANALYSIS_DEV_INFLUXDB_ADDRESS": influxdb_address,
            "PERFANALYSIS_DEV_INFLUXDB_RPC_ADDRESS": address(
                "PERFANALYSIS_DEV_INFLUXDB_RPC_ADDRESS"
            ),
        },
        prepare=_write_influx_config,
        after_ready=_ensure_influx_admin,
    )
    admin = Service(
        "admin",
        [*CLI, "admin", "--dev", f"--web.listen-address={admin_address}", "serve"],
        f"http://{admin_address}/health",
        {"pages": f"http://{admin_address}/", "API": f"http://{admin_address}/api/v1/openapi.json"},
        env=admin_env,
        listens={"PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS": admin_address},
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
        env=lambda: {"PERFANALYSIS_INGEST_STORAGE_PASSWORD": influx_ingest_password()},
        listens={"PERFANALYSIS_INGEST_WEB_LISTEN_ADDRESS": ingest_address},
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
        listens={"PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS": exporter_address},
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
        # Debian's Prometheus (2.42) is built without the React UI: its pages are the classic ones
        {
            "UI": f"http://{prometheus_address}/",
            "alerts": f"http://{prometheus_address}/classic/alerts",
        },
        listens={"PERFANALYSIS_DEV_PROMETHEUS_ADDRESS": prometheus_address},
        prepare=_write_prometheus_config,
    )
    alertsink_address = address("PERFANALYSIS_DEV_ALERTSINK_ADDRESS")
    alertsink = Service(
        "alertsink",
        [
            sys.executable,
            "-m",
            "perfanalysis.alertsink",
            f"--listen-address={alertsink_address}",
            f"--file={alerts_file()}",
        ],
        f"http://{alertsink_address}/health",
        {"webhooks": f"http://{alertsink_address}/", "alerts (JSON lines)": str(alerts_file())},
        listens={"PERFANALYSIS_DEV_ALERTSINK_ADDRESS": alertsink_address},
    )
    alertmanager = Service(
        "alertmanager",
        [
            "prometheus-alertmanager",
            f"--config.file={alertmanager_config_file()}",
            f"--storage.path={var / 'alertmanager'}",
            f"--web.listen-address={alertmanager_address}",
            "--cluster.listen-address=",
        ],
        f"http://{alertmanager_address}/-/ready",
        {"UI": f"http://{alertmanager_address}/"},
        listens={"PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS": alertmanager_address},
        prepare=_write_alertmanager_config,
    )
    # the sink before Alertmanager, which posts to it, and Alertmanager, ready, before
    # Prometheus, whose first alerts would otherwise be dropped (prometheus_notifications_
    # dropped_total 1, PrometheusNotificationsDropped); down stops them in the reverse order
    return [influxdb, admin, ingest, exporter, alertsink, alertmanager, prometheus]


def alerts_file() -> Path:
    """Where the alert sink appends each notification Alertmanager posts, one JSON line each."""
    return var_dir() / "log" / "alerts.jsonl"


GENERATED_ALERTMANAGER_CONFIG = ROOT / "provisioning" / "alertmanager" / "alertmanager.yml"


def _sink_moved() -> bool:
    sink = "PERFANALYSIS_DEV_ALERTSINK_ADDRESS"
    return address(sink) != DEFAULT_ADDRESSES[sink]


def alertmanager_config_file() -> Path:
    """What Alertmanager runs on: the generated file, whose receivers post to the alert sink's
    default address; with the sink moved, var/alertmanager/alertmanager.yml, written from it at
    each start and reload with those webhooks pointed at where the sink is."""
    if _sink_moved():
        return var_dir() / "alertmanager" / "alertmanager.yml"
    return GENERATED_ALERTMANAGER_CONFIG


def _write_alertmanager_config() -> None:
    """With the alert sink moved, the generated alertmanager.yml with its webhooks to the sink's
    default address (the generated receivers', from provisioning/thresholds.yaml) pointed at the
    address the sink has, other webhooks as they are; else nothing (it runs on the generated)."""
    if not _sink_moved():
        return
    import yaml

    config = yaml.safe_load(GENERATED_ALERTMANAGER_CONFIG.read_text())
    default_sink = DEFAULT_ADDRESSES["PERFANALYSIS_DEV_ALERTSINK_ADDRESS"]
    sink = address("PERFANALYSIS_DEV_ALERTSINK_ADDRESS")
    for receiver in config.get("receivers") or []:
        for webhook in receiver.get("webhook_configs") or []:
            url = urllib.parse.urlsplit(str(webhook.get("url", "")))
            if url.scheme == "http" and url.netloc == default_sink:
                webhook["url"] = urllib.parse.urlunsplit(url._replace(netloc=sink))
    target = alertmanager_config_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        "# Written by 'make up' from provisioning/alertmanager/alertmanager.yml, webhooks to "
        f"{default_sink} pointed at the alert sink ({sink}): edit that one.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )


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


def _stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc/PID/stat file after the command name (which may hold spaces and
    parentheses): index 0 is field 3 (state). OSError if the process is gone."""
    return stat.read_text().rpartition(")")[2].split()


def process_identity(pid: int) -> str | None:
    """What no other process shares with ``pid``, before or after it: the boot and its start time
    (field 22 of /proc/PID/stat, in clock ticks since boot)."""
    try:
        start_time = _stat_fields(Path(f"/proc/{pid}/stat"))[19]
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    return f"{boot}/{start_time}"


def _write_pid_file(service: Service, pid: int) -> str:
    """Record ``pid`` as the service's process; what was written."""
    text = f"{pid} {process_identity(pid)}\n"
    service.pid_file.write_text(text)
    return text


def _end_remaining(service: Service, recorded: str) -> list[int]:
    """Stop what remains of the process group that ``recorded`` (a PID file's text) names,
    its leader having gone, when it is the stack's; what there was to stop."""
    group, remaining = _remaining_members(service, recorded)
    if remaining and not _end_group(group, signal.SIGTERM, STOP_TIMEOUT):
        _end_group(group, signal.SIGKILL, STOP_TIMEOUT)
    return remaining


def _remaining_members(service: Service, recorded: str) -> tuple[int, list[int]]:
    """The process group ``recorded`` (a PID file's text) names, and what remains of it once
    its leader has gone; only when every one of them is the stack's: started in the same boot,
    no earlier than the leader, and writing to the service's log (as all the stack's processes
    do: gunicorn's workers inherit the master's output). Else none: another program's group."""
    try:
        pid_text, _, identity = recorded.strip().partition(" ")
        group = int(pid_text)
        boot, _, start_text = identity.partition("/")
        started = int(start_text)
        current_boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        log = os.path.realpath(service.log_file)
    except (OSError, ValueError):
        return 0, []
    if boot != current_boot or group <= 1:
        return group, []  # a PID file from before a reboot: its group is long gone
    remaining = []
    for member in _group_members(group):
        try:
            member_started = int(_stat_fields(Path(f"/proc/{member}/stat"))[19])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        outputs = set()
        for fd in (1, 2):
            with contextlib.suppress(OSError):  # closed, or another user's process
                outputs.add(os.readlink(f"/proc/{member}/fd/{fd}"))
        if member_started < started or log not in outputs:
            return group, []
        remaining.append(member)
    return group, remaining


def running_pid(service: Service) -> int | None:
    """The PID of the process this stack started for ``service``, while that process lives."""
    return _running_pid_in(service.pid_file)


def _running_pid_in(path: Path) -> int | None:
    try:
        pid_text, _, identity = path.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if identity and identity == process_identity(pid) else None


# a JSON health report's status when all is well: "pass" is InfluxDB 2.x's (ingest's /health)
HEALTHY_STATUSES = ("ok", "pass")


def healthy(service: Service) -> bool:
    """Whether the service answers its ready URL (a degraded exporter is up: see ``health``)."""
    return health(service)[0] != "unhealthy"


def health(service: Service) -> tuple[str, str]:
    """ "healthy", "degraded" (it answers, but its JSON status says something is wrong: an
    exporter whose pushes are refused, say) or "unhealthy"; and what is wrong, as the service
    says it (its answer's message) or as the attempt to reach it found."""
    try:
        with urllib.request.urlopen(service.ready_url, timeout=2) as response:  # noqa: S310 (local URL)
            if not 200 <= response.status < 300:
                return "unhealthy", f"HTTP {response.status}"
            body = response.read(1 << 20)
    except urllib.error.HTTPError as error:
        return "unhealthy", f"HTTP {error.code}: {_shorten(_reason(error.read(1 << 20)))}"
    except OSError as error:  # URLError (refused, unresolved) says why in its reason
        return "unhealthy", f"no answer ({getattr(error, 'reason', error)})"
    try:
        report = json.loads(body)
    except ValueError:
        return "healthy", ""  # InfluxDB's /ping, Prometheus' /-/ready: no JSON
    if not isinstance(report, dict) or report.get("status", "ok") in HEALTHY_STATUSES:
        return "healthy", ""
    return "degraded", _what_is_wrong(report)


# how much of a service's own reason make status shows, on the service's line
REASON_LENGTH = 150


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_LENGTH else text[: REASON_LENGTH - 1] + "…"


def _reason(body: bytes) -> str:
    """What an error answer says is wrong: its JSON ``message`` (ingest's), the findings that
    are not ok (the admin app's ``database``), or the first line of a text answer."""
    try:
        report = json.loads(body)
    except ValueError:
        lines = body.decode(errors="replace").strip().splitlines()
        return lines[0] if lines else "no reason given"
    if not isinstance(report, dict):
        return str(report)
    if isinstance(report.get("message"), str):
        return str(report["message"])
    findings = [
        f"{name} {value}"
        for name, value in report.items()
        if isinstance(value, str) and name not in ("status", "name", "version") and value != "ok"
    ]
    return "; ".join(findings) or _what_is_wrong({"status": "unknown", **report})


def _what_is_wrong(report: dict[str, Any]) -> str:
    """The parts of a JSON health report that are not ok, in one line."""
    wrong = []
    for name, value in report.items():
        if name == "status":
            continue
        if isinstance(value, dict) and value.get("status") not in (None, "ok", "starting"):
            detail = value.get("error") or value.get("last_error") or ""
            wrong.append(f"{name} {value['status']}" + (f" ({detail})" if detail else ""))
        elif isinstance(value, dict) and name.startswith("failed") and value:
            wrong.append(f"{name}: {', '.join(sorted(value))}")
    return "; ".join(wrong) or f"status {report['status']}"


def _refuse_taken_addresses(service: Service) -> None:
    taken = _taken_addresses(service)
    if taken:
        raise SystemExit("\n".join(taken))


def _refuse_taken_addresses_of(stack: list[Service]) -> None:
    """Every address a service that does not run yet would listen on, checked before anything
    starts: all that are taken at once, rather than the first after starting those before it."""
    taken = [line for s in stack if running_pid(s) is None for line in _taken_addresses(s)]
    if taken:
        raise SystemExit("\n".join([*taken, "make up started nothing"]))


def _taken_addresses(service: Service) -> list[str]:
    """A line for each address of ``service`` that something else listens on."""
    taken = []
    for variable, host_port in service.listens.items():
        host, _, port = host_port.rpartition(":")
        problem = _bind_problem(host.strip("[]"), int(port))
        if problem:
            taken.append(
                f"port {port} ({service.name}) is in use: cannot bind {host_port} ({problem}); "
                f"stop what listens there, or give {service.name} another address with {variable}"
            )
    return taken


def _bind_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on host:port now, or None if it could.

    With SO_REUSEADDR, as the services set it, so that connections in TIME_WAIT left by a
    stopped service do not count.
    """
    try:
        family, kind, protocol, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(sockaddr)
    except OSError as error:
        return error.strerror or str(error)
    return None


def _log_tail(service: Service) -> str:
    lines = service.log_file.read_text(errors="replace").splitlines()[-20:]
    return f"its log {service.log_file} ends:\n" + stack_hints("\n".join(lines))


def _serves_ready_url(service: Service, group: int) -> bool:
    """Whether the port of the ready URL is listened on by a socket of the service's processes.

    Not by another server that answers there too: a first stack, or a distribution's daemon.
    """
    port = urllib.parse.urlsplit(service.ready_url).port
    listening = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    for pid in _group_members(group):
        with contextlib.suppress(OSError):  # gone meanwhile
            if any(os.readlink(fd) in listening for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return True
    return False


def _listening_inodes(port: int | None) -> set[str]:
    """The inodes of the TCP sockets listening on ``port`` (state 0A in /proc/net/tcp)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):  # no IPv6
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _wait_ready(service: Service, process: subprocess.Popen[bytes]) -> None:
    """Until the process this run spawned serves the ready URL, and it answers 2xx."""
    deadline = time.monotonic() + READY_TIMEOUT
    while process.poll() is None:
        if healthy(service) and _serves_ready_url(service, process.pid):
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{service.name} did not become ready within {READY_TIMEOUT:g}s at "
                f"{service.ready_url}; {_log_tail(service)}"
            )
        time.sleep(0.2)
    raise SystemExit(
        f"{service.name} exited with status {process.returncode} before it was ready; "
        + _log_tail(service)
    )


def start(service: Service) -> bool:
    """Start ``service`` unless it runs already; whether this call started it.

    A service that fails to start is stopped again before the error propagates.
    """
    pid = running_pid(service)
    if pid is not None:
        if service.after_ready:
            service.after_ready()  # idempotent: repairs what an interrupted first run left undone
        drift = code_drift(service)
        print(f"{service.name}: already running (pid {pid})"
              + (f", on older code than the checkout's: {drift}" if drift else ""))  # fmt: skip
        return False
    _refuse_taken_addresses(service)
    service.pid_file.parent.mkdir(parents=True, exist_ok=True)
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    if service.prepare:
        service.prepare()
    stamp = code_stamp(service)  # before it loads its code
    with service.log_file.open("ab") as log:
        process = subprocess.Popen(
            service.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
            env=child_environment(service.env()),
        )
    written = _write_pid_file(service, process.pid)
    record_code(service, stamp)
    try:
        _wait_ready(service, process)
        if service.after_ready:
            service.after_ready()
        if process.poll() is not None:
            raise SystemExit(
                f"{service.name} exited with status {process.returncode} after it was ready; "
                + _log_tail(service)
            )
    except BaseException:
        _stop_spawned(service, process, written)
        raise
    print(f"{service.name}: started (pid {process.pid}), log {service.log_file}")
    return True


def _stop_spawned(service: Service, process: subprocess.Popen[bytes], written: str) -> None:
    """Stop the process group this run spawned for ``service``, which failed; and remove the
    PID file only while it still holds what this run wrote: a PID file another run wrote since
    names that run's process, which is none of this run's business.

    By ``process`` and what this run wrote, not by the PID file as it is now: while it runs,
    this run's own child, not yet reaped, whose PID (and group) cannot pass to another program;
    once it has exited, only what remains of its group that is the stack's."""
    if process.poll() is None:
        if not _end_group(process.pid, signal.SIGTERM, STOP_TIMEOUT):
            _end_group(process.pid, signal.SIGKILL, STOP_TIMEOUT)
        with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
        print(f"{service.name}: stopped (pid {process.pid})")
    else:
        _end_remaining(service, written)
    with contextlib.suppress(OSError):
        if service.pid_file.read_text() == written:
            service.pid_file.unlink()
            code_file(service.name).unlink(missing_ok=True)


def _group_members(group: int) -> list[int]:
    """The processes of the process group, apart from zombies."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, process_group = _stat_fields(stat)[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(process_group) == group and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _end_group(group: int, sig: signal.Signals, timeout: float) -> bool:
    """Send ``sig`` to the process group and wait up to ``timeout``; whether it ended."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)
    deadline = time.monotonic() + timeout
    while _group_members(group):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(group, os.WNOHANG)  # our own child when up stops what it started
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(group, os.WNOHANG)
    return True


def stop(service: Service, quiet: bool = False) -> None:
    """Stop the service's whole process group: it runs in its own session, as its leader. When
    the leader has gone (killed, say), what remains of the group that this stack started (a
    gunicorn master's workers, which keep its port) is stopped all the same."""
    pid = running_pid(service)
    if pid is None:
        try:
            recorded = service.pid_file.read_text()
        except OSError:
            recorded = ""
        remaining = _end_remaining(service, recorded)
        if remaining and not quiet:
            print(f"{service.name}: stopped what remained of it (pid "
                  f"{', '.join(map(str, remaining))}; its first process, pid "
                  f"{recorded.split()[0]}, had exited)")  # fmt: skip
        elif not quiet:
            print(f"{service.name}: not running")
        service.pid_file.unlink(missing_ok=True)
        code_file(service.name).unlink(missing_ok=True)
        return
    if not _end_group(pid, signal.SIGTERM, STOP_TIMEOUT):
        _end_group(pid, signal.SIGKILL, STOP_TIMEOUT)
    service.pid_file.unlink(missing_ok=True)
    code_file(service.name).unlink(missing_ok=True)
    if not quiet:
        print(f"{service.name}: stopped (pid {pid})")


# how ensure-demo's line about the admin's login begins: up repeats it in its summary, as the
# setup step words it (with the fix, when the password file's password does not work)
ADMIN_LOGIN = "admin login:"


def run_setup_steps() -> list[str]:
    """Run the setup steps, showing what they print; the lines about the admin's login."""
    logins = []
    for argv, env in setup_steps():
        completed = subprocess.run(
            argv,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env=child_environment(env),
        )
        if completed.returncode != 0:
            raise SystemExit(
                f"{' '.join(argv[2:])} failed:\n"
                + stack_hints(f"{completed.stderr}{completed.stdout}")
            )
        print(stack_hints(completed.stdout), end="")
        logins += [line for line in completed.stdout.splitlines() if line.startswith(ADMIN_LOGIN)]
    return logins


# --- the stack's hints: the commands this stack runs them with ------------------------------------

# where docs/operations.md tells how to back up and restore this stack's InfluxDB
INFLUXDB_RESTORE_DOC = "docs/operations.md, 'InfluxDB: the make up stack'"
_MISSING_DATABASE_FIX = (
    "restoring a backup? restore it now, before anything creates the database (influxd "
    f"restore: {INFLUXDB_RESTORE_DOC}), then make admin ARGS=grant-ingest-writes; else create "
    "it empty: make admin ARGS='provision-storage {slug}'"
)
# What the admin CLI and the services print for every install, and what this stack runs
# instead: `perfanalysis admin ...` fails here without the stack's settings (no secret key
# outside development mode). The grant-ingest-writes lines name the restore, which must come
# before provision-storage: InfluxDB restores no database that already exists.
STACK_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"^(?P<slug>\S+) \((?P<database>[^)]*)\): no InfluxDB database: run admin "
            r"provision-storage for it first$",
            re.MULTILINE,
        ),
        r"\g<slug> (\g<database>): no InfluxDB database: "
        + _MISSING_DATABASE_FIX.replace("{slug}", r"\g<slug>"),
    ),
    (
        re.compile(
            r"; (?P<count>\d+ tenants?) without a database: run admin provision-storage "
            r"for (?:it|them)$",
            re.MULTILINE,
        ),
        r"; \g<count> without a database: restore or create it as said above",
    ),
    (
        re.compile(r"perfanalysis admin provision-storage (?P<slug>[a-z0-9][a-z0-9-]*)"),
        r"make admin ARGS='provision-storage \g<slug>'",
    ),
    (re.compile(r"(?:perfanalysis )?\badmin init-db\b"), "make admin ARGS=init-db"),
)


def stack_hints(text: str) -> str:
    """``text`` with the commands it suggests in the form this stack runs them: ``make admin
    ARGS=...``, and the restore of a backup named where a tenant's InfluxDB database is missing."""
    for pattern, replacement in STACK_HINTS:
        text = pattern.sub(replacement, text)
    return text


# --- the admin database: migrated by up and make admin ARGS=init-db, after a backup --------------


def admin_database() -> Path:
    return var_dir() / "admin.db"


def backups_dir() -> Path:
    """Where up (and make admin ARGS=init-db) keeps the admin database as it was before each
    migration (mode 0700)."""
    return var_dir() / "backups"


def admin_database_revision(database: Path) -> str | None:
    """The schema revision of the SQLite file (alembic's), None when no migration has run;
    read only. SystemExit naming the file when it is no SQLite database."""
    import sqlite3

    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{urllib.parse.quote(str(database))}?mode=ro", uri=True)
        ) as connection:
            tables = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
            if "alembic_version" not in tables:
                return None
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as error:
        raise SystemExit(
            f"{database}: cannot read the admin database's schema revision ({error}); move it "
            f"aside (a backup from {backups_dir()} in its place, or none for a new one) and run "
            "make up again"
        ) from None
    return str(row[0]) if row else None


def backup_admin_database(database: Path, revision: str | None) -> Path:
    """A consistent copy of the SQLite file (SQLite's online backup, its WAL included) in
    var/backups, mode 0600, named by the time and the revision it holds; its path."""
    import sqlite3

    directory = backups_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    name = f"admin-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-revision-{revision or 'none'}"
    for attempt in range(100):
        target = directory / (f"{name}.db" if attempt == 0 else f"{name}-{attempt}.db")
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            break
        except FileExistsError:
            continue
    else:
        raise SystemExit(f"{directory}: no free name for a backup of {database}")
    try:
        with (
            contextlib.closing(sqlite3.connect(database)) as source,
            contextlib.closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
    except sqlite3.Error as error:
        target.unlink(missing_ok=True)
        raise SystemExit(
            f"cannot back up {database} to {target} ({error}): the schema was not migrated"
        ) from None
    return target


# the stack's services whose processes open var/admin.db (the admin app, and ingest for the
# collector keys); the others (InfluxDB, the exporter, the sink, Prometheus, Alertmanager) do not
ADMIN_DATABASE_USERS = ("admin", "ingest")


class AdminDatabaseInUse(Exception):
    """A migration is due but services of the stack run on the database: up, and make admin
    ARGS=init-db, refuse (exit 2)."""


# how each command that migrates the admin database says to migrate it when services run on it
UP_REMEDY = (
    "Restart the stack with 'make down && make up', which migrates it, after a backup, before it "
    "starts them again on the checkout's code"
)
INIT_DB_REMEDY = (
    "Stop the stack with 'make down', then run 'make admin ARGS=init-db' again, which migrates "
    "it after a backup, or 'make up', which does so too and starts them again on the "
    "checkout's code"
)


def admin_database_migration_due() -> bool:
    """Whether the stack's admin database exists at another schema revision than the
    checkout's newest (none, older, or newer: migrate_admin_database says which)."""
    from tenants.schema import known_revisions

    database = admin_database()
    return database.is_file() and admin_database_revision(database) != known_revisions()[0]


def migrate_admin_database(stack: list[Service], remedy: str = UP_REMEDY) -> str | None:
    """Bring an existing admin database to the checkout's newest revision, after a backup in
    var/backups; a line saying so, or None when there was nothing to migrate (no file yet:
    ensure-demo creates it at that revision).

    ensure-demo would migrate it too, but silently, with no way back: a checkout that brings
    a migration (after a git pull) is said here, from which revision to which, with where the
    database as it was is. A database newer than the checkout (a checkout of an older commit)
    is refused: this release's migrations cannot read it, and the servers would run on a schema
    they do not know. So is a migration while a service of ``stack`` that opens the database
    runs (AdminDatabaseInUse): a migration that drops or renames a column would break its code
    under it, and it could write meanwhile; up never stops what runs, so it names them and
    ``remedy``, the commands that migrate, having changed nothing."""
    from tenants.schema import known_revisions

    database = admin_database()
    if not database.is_file():
        return None
    head, known = known_revisions()
    revision = admin_database_revision(database)
    if revision == head:
        return None
    if revision is not None and revision not in known:
        raise SystemExit(
            f"{database} is at schema revision {revision}, which this checkout does not know "
            f"(its newest is {head}): a newer checkout migrated it. Run make up from that "
            f"checkout, or put back a backup of the revision this one has ({backups_dir()}, "
            "with make down first) and run make up again"
        )
    users = _running_database_users(stack)
    if users:
        running = " and ".join(f"{service.name} (pid {pid})" for service, pid in users)
        raise AdminDatabaseInUse(
            f"admin database: {database} is at schema revision {revision or 'none (no schema)'} "
            f"and the checkout's is {head}, but {running} "
            f"{'runs' if len(users) == 1 else 'run'} on it: not migrated under them (a "
            f"migration can change what their code reads, and they could write meanwhile). {remedy}"
        )
    backup = backup_admin_database(database, revision)
    argv = [*CLI, "admin", "--dev", "init-db"]
    completed = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, check=False,
        env=child_environment(admin_env()),
    )  # fmt: skip
    if completed.returncode != 0:
        raise SystemExit(
            f"migrating {database} from revision {revision} failed; the database as it was is "
            f"in {backup}:\n" + stack_hints(f"{completed.stderr}{completed.stdout}")
        )
    return (
        f"admin database: migrated from revision {revision or 'none (no schema)'} to {head}; "
        f"as it was before: {backup}"
    )


def _running_database_users(stack: list[Service]) -> list[tuple[Service, int]]:
    """The services of ``stack`` that open the admin database and run, with their PIDs."""
    users = [service for service in stack if service.name in ADMIN_DATABASE_USERS]
    return [(service, pid) for service in users if (pid := running_pid(service)) is not None]


# --- the code each service runs: a service started before a git pull runs the old one ------------

# the project's code that its Python services run; any file under these that changes means a
# service started before it runs other code than the checkout's
CODE_DIRECTORIES = ("perfanalysis", "tenants", "ingest", "exporter")


def code_file(name: str) -> Path:
    return var_dir() / "run" / f"{name}.code"


def source_digest(root: Path = ROOT) -> str:
    """SHA-256 over the paths and contents of the files under CODE_DIRECTORIES (no caches)."""
    digest = hashlib.sha256()
    for directory in CODE_DIRECTORIES:
        for parent, subdirectories, files in os.walk(root / directory):
            subdirectories[:] = sorted(d for d in subdirectories if d != "__pycache__")
            for name in sorted(files):
                path = Path(parent, name)
                with contextlib.suppress(OSError):  # gone meanwhile
                    content = path.read_bytes()
                    relative = str(path.relative_to(root)).encode()
                    digest.update(b"%d:%s%d:" % (len(relative), relative, len(content)))
                    digest.update(content)
    return digest.hexdigest()


def checkout_commit() -> str:
    """The checkout's commit (abbreviated), or "" outside git."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return completed.stdout.strip() if completed.returncode == 0 else ""


def _runs_project_code(service: Service) -> bool:
    return service.argv[:1] == [sys.executable]


def code_stamp(service: Service) -> dict[str, str]:
    """What ``service`` runs: for the project's Python services the digest of its sources (and
    the commit, to say which); for a program of the system (InfluxDB, Prometheus,
    Alertmanager) its executable's path, size and modification time (a package upgrade)."""
    if _runs_project_code(service):
        return {"code": source_digest(), "commit": checkout_commit()}
    program = shutil.which(service.argv[0]) if service.argv else None
    if program is None:
        return {"code": service.argv[0] if service.argv else ""}
    real = os.path.realpath(program)
    try:
        stat = os.stat(real)
    except OSError:
        return {"code": real}
    return {"code": f"{real} {stat.st_size} {stat.st_mtime_ns}", "program": real}


def record_code(service: Service, stamp: dict[str, str]) -> None:
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    code_file(service.name).write_text(json.dumps({**stamp, "started": started}) + "\n")


def code_drift(service: Service, current: dict[str, str] | None = None) -> str | None:
    """Why the running ``service`` runs other code than the checkout's (or the system's
    program) now; None when it runs the same."""
    current = current or code_stamp(service)
    try:
        recorded = json.loads(code_file(service.name).read_text())
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        return "it was started before make up recorded the code each service runs"
    if recorded.get("code") == current["code"]:
        return None
    started = recorded.get("started", "?")
    if not _runs_project_code(service):
        return (
            f"{current.get('program', service.argv[0])} was upgraded since it started ({started})"
        )
    was, now = recorded.get("commit", ""), current.get("commit", "")
    if was and now and was != now:
        return f"started {started} at commit {was}; the checkout is at {now}"
    return f"the checkout's files changed since it started ({started})"


# What up says of a service kept running on older code; it does not restart it: up never stops
# what runs, so that it is safe at any time (a push in flight, alerts being grouped), and
# restarting some services while others keep the old code would mix releases.
RESTART = "restart the stack with 'make down && make up' to run the checkout's"


def up(stack: list[Service]) -> None:
    """Start the stack; on any failure, stop what this run started (last first) and exit."""
    _refuse_taken_addresses_of(stack)
    reused = reused_addresses()
    if reused:
        print(f"addresses kept from {addresses_file()} (the last make up's; a variable moves "
              f"a service, and without that file the defaults return): {', '.join(reused)}")  # fmt: skip
    record_addresses()
    try:
        migrated = migrate_admin_database(stack)
    except AdminDatabaseInUse as refusal:
        print(f"{refusal}\nmake up started nothing", file=sys.stderr)
        raise SystemExit(2) from None
    except SystemExit as error:
        raise SystemExit(f"{error.code}\nmake up started nothing") from None
    if migrated:
        print(migrated)
    started: list[Service] = []
    logins: list[str] = []
    try:
        for position, service in enumerate(stack):
            if start(service):
                started.append(service)
            if position == 0:  # once InfluxDB, the first, runs: they create the demo's database
                logins = run_setup_steps()
    except BaseException as error:
        for service in reversed(started):
            stop(service)
        if isinstance(error, SystemExit):
            cause = str(error.code)
        elif isinstance(error, KeyboardInterrupt):
            cause = "interrupted"
        else:
            cause = traceback.format_exc().rstrip()
        raise SystemExit(
            f"{cause}\nmake up failed; it stopped every service it had started"
        ) from error
    print("\nPerfAnalysis is up:")
    for service in stack:
        for label, url in service.urls.items():
            print(f"  {service.name} {label}: {url}")
    # as ensure-demo found it: never a password file whose password the admin does not take
    for line in logins:
        print(f"  {line}")
    print(
        f"  InfluxDB login: user {INFLUX_ADMIN}, password in "
        f"{var_dir() / 'influxdb-admin-password'}"
    )
    if migrated:
        print(f"  {migrated}")
    kept = [service for service in stack if service.name not in {s.name for s in started}]
    outdated = [service.name for service in kept if code_drift(service)]
    if outdated:
        print(f"  OLDER CODE: {', '.join(outdated)} kept running on code older than the "
              f"checkout's (see above): {RESTART}")  # fmt: skip
    print("Stop it with 'make down'; 'make status' shows what runs.")


# what ``reload`` signals, and the prefix of the metrics that tell how its last reload went
# (..._successful 1 or 0, and ..._success_timestamp_seconds): Prometheus runs without
# --web.enable-lifecycle, so SIGHUP is the way; both re-read their files on it
RELOADED = {
    "prometheus": "prometheus_config_last_reload",
    "alertmanager": "alertmanager_config_last_reload",
}
# what both log once a reload has taken the new configuration
RELOAD_COMPLETED = "Completed loading of configuration file"


@dataclass(frozen=True)
class ReloadState:
    successful: bool
    success_time: float


def _reload_state(service: Service) -> ReloadState | None:
    """How the service's last configuration reload went, from its /metrics; None if unknown."""
    prefix = RELOADED[service.name]
    metrics_url = urllib.parse.urljoin(service.ready_url, "/metrics")
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:  # noqa: S310 (local URL)
            text = response.read().decode(errors="replace")
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in (f"{prefix}_successful", f"{prefix}_success_timestamp_seconds"):
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    try:
        return ReloadState(
            values[f"{prefix}_successful"] == 1, values[f"{prefix}_success_timestamp_seconds"]
        )
    except KeyError:
        return None


def _log_size(service: Service) -> int:
    try:
        return service.log_file.stat().st_size
    except OSError:
        return 0


def _logged_since(service: Service, offset: int) -> list[str]:
    """The lines the service logged after ``offset`` bytes of its log."""
    try:
        with service.log_file.open("rb") as log:
            log.seek(offset)
            return log.read(1 << 20).decode(errors="replace").splitlines()
    except OSError:
        return []


def _reload_errors(lines: list[str]) -> list[str]:
    """The lines of a reload that say it failed: Prometheus' "Error reloading config",
    Alertmanager's "Loading configuration file failed" (both logfmt, level=error)."""
    return [line for line in lines if "level=error" in line]


def _wait_reloaded(service: Service, before: ReloadState | None, offset: int) -> str | None:
    """Until the service's metrics show the reload that SIGHUP asked for; None when it took
    the new configuration, else why not (what its log says)."""
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while True:
        after = _reload_state(service)
        logged = _logged_since(service, offset)
        errors = _reload_errors(logged)
        if after is not None and after.successful:
            if before is not None and after.success_time != before.success_time:
                return None
            if before is None and any(RELOAD_COMPLETED in line for line in logged):
                return None  # its metrics were not read before: its log tells
        if (
            after is not None
            and not after.successful
            and (errors or (before is not None and before.successful))
        ):
            shown = "\n  ".join(errors[-5:]) or "(nothing in its log)"
            return (
                f"{service.name}: reload FAILED: it keeps running its previous configuration; "
                f"its log {service.log_file} says:\n  {shown}"
            )
        if time.monotonic() > deadline:
            return (
                f"{service.name}: no reload seen within {RELOAD_TIMEOUT:g}s (its metrics "
                f"{RELOADED[service.name]}_* did not change); {_log_tail(service)}"
            )
        time.sleep(0.1)


def reload(stack: list[Service]) -> int:
    """SIGHUP to the stack's Prometheus and Alertmanager, by their PID files, after writing
    Prometheus' configuration (and Alertmanager's, with the alert sink moved) again from
    provisioning/; then wait until each has reloaded. 0
    when both took their configuration, else 1 with what went wrong (a service that does not
    run, a file it refused: it keeps the previous configuration)."""
    targets = [service for name in RELOADED for service in stack if service.name == name]
    stopped = [service.name for service in targets if running_pid(service) is None]
    if stopped:
        print(f"{' and '.join(stopped)}: not running; 'make up' starts the stack with the "
              "current configuration", file=sys.stderr)  # fmt: skip
        return 1
    # provisioning/ may have changed since make up wrote their files from it
    for name, write, source in (
        ("prometheus", _write_prometheus_config, "provisioning/prometheus/prometheus.yml"),
        ("alertmanager", _write_alertmanager_config, "provisioning/alertmanager/alertmanager.yml"),
    ):
        try:
            write()
        except Exception as exc:  # an edit yaml cannot read, or of another shape
            print(
                f"{name}: cannot write its configuration from {ROOT / source} "
                f"({type(exc).__name__}: {exc}); nothing was reloaded",
                file=sys.stderr,
            )
            return 1
    waiting = []
    for service in targets:
        before, offset = _reload_state(service), _log_size(service)
        pid = running_pid(service)  # again, just before the signal: still the stack's process
        if pid is None:
            print(f"{service.name}: stopped meanwhile; 'make up' starts it", file=sys.stderr)
            return 1
        os.kill(pid, signal.SIGHUP)
        waiting.append((service, pid, before, offset))
    failures = 0
    for service, pid, before, offset in waiting:
        problem = _wait_reloaded(service, before, offset)
        failures += problem is not None
        if problem:
            print(problem, file=sys.stderr)
        else:
            print(f"{service.name}: reloaded its configuration (pid {pid})")
    return 1 if failures else 0


LOCK_FILE = "devstack.lock"
# what a command that found the lock held says: none of them waits for another
REFUSED = {"up": "started nothing", "down": "stopped nothing", "reload": "reloaded nothing"}
# make admin ARGS=init-db holds the lock too while it migrates the admin database (run_admin)
INIT_DB = "init-db"


def lock_file() -> Path:
    return var_dir() / "run" / LOCK_FILE


def _make_command(command: str) -> str:
    """The make command that runs ``command`` (up, down, reload or INIT_DB)."""
    return "make admin ARGS=init-db" if command == INIT_DB else f"make {command}"


@contextlib.contextmanager
def exclusive(command: str) -> Iterator[None]:
    """Hold the stack's lock (an exclusive flock on var/run/devstack.lock) while ``command``
    (up, down, reload, or INIT_DB: make admin ARGS=init-db migrating) runs; when another holds
    it, exit 1 at once, having done nothing.

    So that two runs never start, stop or record the same service at once (a second up would
    spawn a second InfluxDB, which fails, and its cleanup would drop the first one's PID file),
    and no up starts admin or ingest on the admin database while init-db migrates it. status
    and admin's other commands read what runs and take no lock. The lock goes with this process
    (the kernel drops it on exit, a crash included); the services never hold it (its descriptor
    is closed on exec). Without a var/run there is nothing to stop or reload: down and reload
    then run without it, creating nothing."""
    path = lock_file()
    if command in ("down", "reload") and not path.parent.is_dir():
        yield
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 200, 0).decode(errors="replace").split()
            running, who = "another 'make up', 'make down' or 'make reload'", "just starting"
            if len(holder) == 2:
                who = f"pid {holder[0]}: {_make_command(holder[1])}"
                if holder[1] == INIT_DB:
                    running = "a 'make admin ARGS=init-db' migrating the admin database"
            done = REFUSED.get(command, "migrated nothing")
            raise SystemExit(
                f"devstack: {running} is running on {var_dir()} ({who}); this "
                f"'{_make_command(command)}' {done}: run it again once that one has finished"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {command}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)  # no longer held by this process
    finally:
        os.close(descriptor)


def make_state_private() -> None:
    """Files the stack and its children create are their owner's alone, and so is var/ itself.

    var/ holds the admin database (password hashes) and InfluxDB's metadata (its users').
    """
    os.umask(0o077)
    var = var_dir()
    var.mkdir(mode=0o700, parents=True, exist_ok=True)
    var.chmod(0o700)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    try:
        stack = services()
    except ConfigError as exc:  # an empty or unusable PERFANALYSIS_VAR_DIR
        print(f"devstack: {exc}", file=sys.stderr)
        return 2
    if command in REFUSED:  # up, down and reload: one at a time
        if command == "up":
            make_state_private()
        with exclusive(command):
            # again under the lock: where the stack runs, as a run that just ended left it
            return _change(command, services())
    for line in moved_services():  # status and admin: about the stack that runs, wherever
        print(f"devstack: {line}", file=sys.stderr)
    if command == "status":
        failing = 0
        for service in stack:
            pid = running_pid(service)
            state, wrong = health(service) if pid else ("stopped", "")
            wrong = stack_hints(wrong)
            drift = code_drift(service) if pid else None
            if drift:
                wrong = "; ".join(filter(None, [wrong, f"older code: {drift}: {RESTART}"]))
            failing += state != "healthy"
            print(f"{service.name:<13} {state:<10} pid {pid or '-':<8} "
                  f"{service.status_url or service.ready_url}"
                  + (f"  {wrong}" if wrong else ""))  # fmt: skip
        return 1 if failing else 0
    if command == "admin":
        return run_admin(argv[1:])
    print(
        "usage: python -m perfanalysis.devstack up|down|status|reload|admin COMMAND... "
        f"(got {command!r})",
        file=sys.stderr,
    )
    return 2


def _change(command: str, stack: list[Service]) -> int:
    """up, down or reload, with the stack's lock held."""
    moved = moved_services()
    if command == "up":
        if moved:
            raise SystemExit("\n".join(moved))
        up(stack)
        return 0
    if command == "down":
        for service in reversed(stack):
            stop(service)
        return 0
    for line in moved:  # reload: of the stack that runs, wherever that is
        print(f"devstack: {line}", file=sys.stderr)
    return reload(stack)


def run_admin(args: list[str]) -> int:
    """``perfanalysis admin --dev ARGS`` with the local stack's settings, as the admin app it
    started has them (its database, InfluxDB and their users): ``make admin ARGS='...'``.
    Without them a command such as create-tenant could not provision InfluxDB.

    ``init-db`` on an existing database that a migration is due on migrates as up does
    (_migrate_for_init_db): after a backup, never under a running admin or ingest."""
    missing = [name for name in ("influxdb-admin-password", "influxdb-ingest-password")
               if not (var_dir() / name).is_file()]  # fmt: skip
    if missing:
        print(f"devstack: {var_dir() / missing[0]} is missing: run 'make up' first, which sets "
              "the local stack up", file=sys.stderr)  # fmt: skip
        return 2
    if args == [INIT_DB] and admin_database_migration_due():
        status = _migrate_for_init_db()
        if status is not None:
            return status
        # migrated meanwhile, by a make up that held the lock: init-db says at which revision
    settings = admin_env()
    if not _owner_runs("PERFANALYSIS_DEV_INFLUXDB_ADDRESS"):
        # whatever listens at its address now is not the stack's: it gets no password of it
        for setting in ("ADMIN_USER", "ADMIN_PASSWORD", "INGEST_USER", "INGEST_PASSWORD"):
            del settings[f"PERFANALYSIS_ADMIN_INFLUXDB_{setting}"]  # a user needs its password
        print(f"devstack: the local stack's InfluxDB is not running ('make up' starts it): "
              f"a command that provisions InfluxDB (create-tenant, provision-storage, ...) will "
              f"fail, and InfluxDB's passwords are not given to whatever listens at "
              f"{settings['PERFANALYSIS_ADMIN_INFLUXDB_URL']}", file=sys.stderr)  # fmt: skip
    command = [*CLI, "admin", "--dev", *args]
    return subprocess.run(command, env=child_environment(settings), check=False).returncode


def _migrate_for_init_db() -> int | None:
    """make admin ARGS=init-db on a database a migration is due on: migrate_admin_database,
    holding the stack's lock, so that no make up starts admin or ingest meanwhile. The exit
    status: 0 migrated (said), 2 refused (admin or ingest runs on it); None when there was
    nothing to migrate after all."""
    with exclusive(INIT_DB):
        try:
            migrated = migrate_admin_database(services(), INIT_DB_REMEDY)
        except AdminDatabaseInUse as refusal:
            print(f"{refusal}\nmake admin ARGS=init-db changed nothing", file=sys.stderr)
            return 2
    if migrated is None:
        return None
    print(migrated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
