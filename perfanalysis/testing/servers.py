"""Real servers from Debian packages, each on free loopback ports with a private data directory.

Tests and benchmarks start InfluxDB, Prometheus, Alertmanager, VictoriaMetrics, node_exporter and
our own exporter as child processes (architecture decision 6). Every server runs in its own
process group, logs to ``server.log`` in its data directory, is ready only when its HTTP readiness
endpoint answers, and is stopped by PID: SIGTERM, a deadline, then SIGKILL. ``stop()`` and
``start()`` keep the port and the data directory, so a test can take a server away and bring it
back as it was. Missing binaries are installed with scripts/install-debian-packages.sh.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

import requests
import yaml

import perfanalysis

T = TypeVar("T")
Server = TypeVar("Server", bound="ServerProcess")
TomlValue = str | int | float | bool

LOOPBACK = "127.0.0.1"
SOURCE_ROOT = Path(perfanalysis.__file__).resolve().parents[1]
INSTALL_SCRIPT = SOURCE_ROOT / "scripts" / "install-debian-packages.sh"


class ServerUnavailable(RuntimeError):
    """The server's binary is missing and could not be installed."""


class ServerStartError(RuntimeError):
    """The server process exited before it became ready; the message ends with its log tail."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- log tail ---\n{log_tail}")
        self.log_tail = log_tail


class ServerError(RuntimeError):
    """A server's HTTP API refused a request; ``status`` is the HTTP status code."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------------
# Ports, polling and installation


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now.

    SO_REUSEADDR, as Go and Python servers set it, so that connections in TIME_WAIT left
    by a stopped server do not count as the port being taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Raises TimeoutError naming ``what`` once ``timeout`` seconds have passed. Exceptions
    raised by the predicate propagate at once (a way to fail fast).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


_install_lock = threading.Lock()


def ensure_installed(binary: str, package: str) -> str:
    """The path of ``binary``, installing Debian ``package`` first if it is missing.

    Containers are deliberately not a fallback: tests need the server's PID, signals and a
    restart on the same port and data directory, which a container would turn into a different
    API. Without apt-get (or root or password-less sudo) this raises ServerUnavailable.
    """
    found = shutil.which(binary)
    if found:
        return found
    lock_path = Path(tempfile.gettempdir()) / "perfanalysis-install.lock"
    with _install_lock, lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time across processes (xdist)
        found = shutil.which(binary) or _install(binary, package)
    return found


def _install(binary: str, package: str) -> str:
    hint = f"install the Debian package {package!r} (scripts/install-debian-packages.sh)"
    if not INSTALL_SCRIPT.is_file():
        raise ServerUnavailable(f"{binary} not found and {INSTALL_SCRIPT} is missing: {hint}")
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), package],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    found = shutil.which(binary)
    if result.returncode != 0 or not found:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise ServerUnavailable(
            f"{binary} not found and installing {package!r} failed "
            f"(exit {result.returncode}); {hint} as root.\n{output}"
        )
    return found


def _run_tool(
    binary: str, package: str, args: Sequence[str | os.PathLike[str]], stdin: str | None
) -> subprocess.CompletedProcess[str]:
    command = [ensure_installed(binary, package), *map(str, args)]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def promtool(
    *args: str | os.PathLike[str], input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run Debian's promtool, ``input`` on its stdin; check ``returncode`` and output yourself."""
    return _run_tool("promtool", "prometheus", args, input)


def amtool(
    *args: str | os.PathLike[str], input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run Debian's amtool, ``input`` on its stdin; check ``returncode`` and output yourself."""
    return _run_tool("amtool", "prometheus-alertmanager", args, input)


def unique_name(prefix: str = "test") -> str:
    """A name no other test uses, valid as an InfluxDB database or Prometheus label value."""
    return f"{prefix}_{secrets.token_hex(4)}"


# ---------------------------------------------------------------------------------------------
# The process


_running: set[ServerProcess] = set()


@atexit.register
def _stop_leftovers() -> None:
    """Servers run in their own session, so nothing else stops them if a caller forgets to."""
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop()


class ServerProcess:
    """One server binary as a child process. Subclasses say how to configure and run it."""

    binary: ClassVar[str]
    package: ClassVar[str]
    ready_path: ClassVar[str] = "/"
    ready_statuses: ClassVar[frozenset[int]] = frozenset({200})
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 15.0
    port_attempts: ClassVar[int] = 3  # a free port can be taken before the server binds it

    def __init__(self, base_dir: str | os.PathLike[str]) -> None:
        base = Path(base_dir)
        base.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"{type(self).__name__.lower()}-", dir=base))
        self.log_path = self.data_dir / "server.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.http = requests.Session()
        self.http.trust_env = False  # a proxy from the environment must not see loopback calls

    # -- what subclasses provide

    def command(self) -> list[str]:
        """The command line; its first item is replaced by the resolved ``executable()``."""
        raise NotImplementedError

    def write_config(self) -> None:
        """Write configuration files into ``data_dir``; called before every start."""

    def choose_ports(self) -> None:
        """Pick new ports after losing a port race on the first start."""
        self.port = free_port()

    def after_ready(self) -> None:
        """One-time set-up once the server answers (e.g. InfluxDB's first user)."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def executable(self) -> str:
        return ensure_installed(self.binary, self.package)

    # -- addresses and state

    @property
    def name(self) -> str:
        return self.data_dir.name

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} pid={self.pid} data_dir={self.data_dir}>"

    # -- life cycle

    def start(self, timeout: float | None = None) -> Self:
        """Start the server and wait until it is ready; same port and data on a restart."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        attempts = self.port_attempts if self.starts == 0 else 1
        for attempt in range(1, attempts + 1):
            self.spawn()
            try:
                self.wait_ready(timeout)
                break
            except ServerStartError as exc:
                self.stop()
                this_start = exc.log_tail.rsplit("--- start ", 1)[-1]
                if attempt == attempts or "address already in use" not in this_start.lower():
                    raise
                self.choose_ports()
            except BaseException:
                self.stop()
                raise
        try:
            self.after_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def spawn(self) -> None:
        """Start the process without waiting; ``wait_ready`` waits."""
        executable = self.executable()  # before writing: an install failure leaves no process
        self.write_config()
        command = self.command()
        command[0] = executable
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}: {shlex.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=self.environment(),
                start_new_session=True,
            )
        _running.add(self)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll the readiness endpoint; fail at once, with the log tail, if the process exits."""
        process = self.process
        if process is None:
            raise RuntimeError(f"{self!r} was not started")
        url = self.url + self.ready_path

        def still_running() -> None:
            code = process.poll()
            if code is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {code} before it was ready", self.log_tail()
                )

        def ready() -> bool:
            still_running()
            try:
                response = self.http.get(url, timeout=1)
            except requests.RequestException:
                return False
            return response.status_code in self.ready_statuses

        limit = self.start_timeout if timeout is None else timeout
        try:
            wait_until(ready, limit, what=f"{self.name} to answer {url}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- log tail ---\n{self.log_tail()}") from None
        still_running()  # else the answer came from whoever took the port from it

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM the PID, wait up to ``timeout``, then SIGKILL its process group.

        Returns the exit code, or None if the server was not started.
        """
        process = self.process
        if process is None:
            return None
        self.http.close()  # our side closes first, so the server's port has no TIME_WAIT
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(process)
        self.process = None
        _running.discard(self)
        return process.returncode

    def kill(self) -> int | None:
        """SIGKILL at once, as a crash would; the data directory is left as the crash left it."""
        process = self.process
        if process is None:
            return None
        self.http.close()
        self._kill_group(process)
        self.process = None
        _running.discard(self)
        return process.returncode

    def restart(self, timeout: float | None = None) -> Self:
        self.stop()
        return self.start(timeout)

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes]) -> None:
        # start_new_session made the server its process group's leader: the group id is its PID.
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def log_tail(self, n: int = 60) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 256 * 1024))
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-n:])

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- HTTP

    def request(
        self, method: str, path: str, expect: Sequence[int] = (200,), **kwargs: Any
    ) -> requests.Response:
        """An HTTP request to the server; ServerError with the body if the status is unexpected."""
        kwargs.setdefault("timeout", 30)
        response = self.http.request(method, self.url + path, **kwargs)
        if response.status_code not in expect:
            raise ServerError(
                f"{self.name}: {method} {path} answered {response.status_code}: "
                f"{response.text[:2000]}",
                response.status_code,
            )
        return response

    def api(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        """``data`` of a Prometheus-style JSON answer; ServerError unless status is success."""
        response = self.request(method, path, expect=(200, 400, 422, 503), **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = {"errorType": response.status_code, "error": response.text[:2000]}
        if body.get("status") != "success":
            raise ServerError(f"{self.name}: {path}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]


# ---------------------------------------------------------------------------------------------
# InfluxDB 1.x


def _toml_value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes


def render_toml(sections: Mapping[str, Mapping[str, TomlValue]]) -> str:
    """Flat TOML: the section named ``""`` holds the top-level keys."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in sections.get("", {}).items()]
    for name, values in sections.items():
        if name:
            lines += ["", f"[{name}]"]
            lines += [f"  {key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def quote_identifier(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxDB(ServerProcess):
    """InfluxDB 1.6 (Debian's ``influxd``). With ``auth``, an admin user is created on first start.

    ``settings`` overrides configuration keys by section (``""`` for top-level keys).
    """

    binary = "influxd"
    package = "influxdb"
    ready_path = "/ping"
    ready_statuses = frozenset({204})

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        auth: bool = False,
        settings: Mapping[str, Mapping[str, TomlValue]] | None = None,
    ) -> None:
        super().__init__(base_dir)
        self.auth = auth
        self.admin_user = "admin"
        self.admin_password = secrets.token_urlsafe(18)
        self.settings = settings or {}
        self.rpc_port = free_port()
        self.config_path = self.data_dir / "influxdb.conf"
        self._admin_created = False

    def choose_ports(self) -> None:
        super().choose_ports()
        self.rpc_port = free_port()

    def config(self) -> dict[str, dict[str, TomlValue]]:
        sections: dict[str, dict[str, TomlValue]] = {
            "": {
                "reporting-disabled": True,  # upstream's key
                "reporting-enabled": False,  # Debian's build renamed it
                "bind-address": f"{LOOPBACK}:{self.rpc_port}",  # backup/restore RPC
            },
            "meta": {"dir": str(self.data_dir / "meta"), "logging-enabled": False},
            "data": {
                "dir": str(self.data_dir / "data"),
                "wal-dir": str(self.data_dir / "wal"),
                "query-log-enabled": False,
                "max-concurrent-compactions": 1,
            },
            "monitor": {"store-enabled": False},
            "http": {
                "bind-address": self.address,
                "auth-enabled": self.auth,
                "log-enabled": False,
                "pprof-enabled": False,
            },
            "continuous_queries": {"log-enabled": False},
            "logging": {"suppress-logo": True},
        }
        for section, values in self.settings.items():
            sections.setdefault(section, {}).update(values)
        return sections

    def command(self) -> list[str]:
        return [self.binary, "-config", str(self.config_path)]

    def write_config(self) -> None:
        self.config_path.write_text(render_toml(self.config()))

    def after_ready(self) -> None:
        # InfluxDB 1.x lets the first user be created without credentials while auth is on.
        if self.auth and not self._admin_created:
            self.query(
                f"CREATE USER {quote_identifier(self.admin_user)} WITH PASSWORD "
                f"'{self.admin_password}' WITH ALL PRIVILEGES",
                user="",
            )
            self._admin_created = True

    def _credentials(self, user: str | None, password: str | None) -> tuple[str, str] | None:
        """Explicit credentials; else the admin's when auth is on; ``user=""`` sends none."""
        if user is None:
            return (self.admin_user, self.admin_password) if self.auth else None
        return (user, password or "") if user else None

    def query(
        self,
        q: str,
        db: str | None = None,
        user: str | None = None,
        password: str | None = None,
        epoch: str | None = None,
    ) -> dict[str, Any]:
        """POST /query; ServerError with InfluxDB's error text if any statement failed."""
        params = {"q": q, **({"db": db} if db else {}), **({"epoch": epoch} if epoch else {})}
        response = self.http.post(
            self.url + "/query", data=params, auth=self._credentials(user, password), timeout=30
        )
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {"error": response.text[:2000]}
        errors = [body["error"]] if "error" in body else []
        errors += [r["error"] for r in body.get("results", []) if "error" in r]
        if response.status_code != 200 or errors:
            raise ServerError(
                f"{self.name}: query {q!r} failed ({response.status_code}): {'; '.join(errors)}",
                response.status_code,
            )
        return body

    def rows(self, q: str, db: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """The first statement's rows as dicts: columns, plus the tags of GROUP BY series."""
        result = self.query(q, db=db, **kwargs)["results"][0]
        return [
            {**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
            for series in result.get("series", [])
            for values in series.get("values", [])  # SHOW DATABASES on none: no values
        ]

    def write(
        self,
        db: str,
        lines: str | bytes,
        precision: str = "ns",
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        """POST line protocol to /write; ServerError unless InfluxDB answers 204."""
        response = self.http.post(
            self.url + "/write",
            params={"db": db, "precision": precision},
            data=lines.encode() if isinstance(lines, str) else lines,
            auth=self._credentials(user, password),
            timeout=30,
        )
        if response.status_code != 204:
            raise ServerError(
                f"{self.name}: write to {db!r} failed ({response.status_code}): {response.text}",
                response.status_code,
            )

    def create_database(self, name: str) -> str:
        self.query(f"CREATE DATABASE {quote_identifier(name)}")
        return name

    def unique_database(self, prefix: str = "test") -> str:
        """Create a database with a name no other test uses (for a shared server)."""
        return self.create_database(unique_name(prefix))


# ---------------------------------------------------------------------------------------------
# Prometheus and Alertmanager


def prometheus_config(
    jobs: Mapping[str, Sequence[str]],
    interval: str = "1s",
    alertmanagers: Sequence[str] = (),
    rule_files: Sequence[str] = (),
) -> dict[str, Any]:
    """A prometheus.yml with one static scrape job per entry of ``jobs`` (name → addresses)."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(targets)}]}
            for job, targets in jobs.items()
        ],
    }
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]}
    if rule_files:
        config["rule_files"] = list(rule_files)
    return config


def _yaml_text(config: Mapping[str, Any] | str) -> str:
    return config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)


class Prometheus(ServerProcess):
    """Prometheus 2.x with the lifecycle API (``reload``).

    ``rule_files`` maps file names to contents, written next to prometheus.yml; a dict config
    without ``rule_files`` gets them all. The first scrape comes up to 5 s after start:
    Prometheus hands discovered targets to the scrape loop on a 5-second tick.
    """

    binary = "prometheus"
    package = "prometheus"
    ready_path = "/-/ready"

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        config: Mapping[str, Any] | str,
        rule_files: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(base_dir)
        self.config = config
        self.rule_files = dict(rule_files or {})
        self.extra_args = list(extra_args)
        self.config_path = self.data_dir / "prometheus.yml"

    def write_config(self) -> None:
        for name, text in self.rule_files.items():
            path = self.data_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        config = self.config
        if not isinstance(config, str) and self.rule_files and "rule_files" not in config:
            config = {**config, "rule_files": list(self.rule_files)}
        self.config_path.write_text(_yaml_text(config))
        (self.data_dir / "consoles").mkdir(exist_ok=True)

    def command(self) -> list[str]:
        # Debian's defaults point the consoles at /etc/prometheus; an empty private
        # directory keeps the server independent of what /etc holds.
        consoles = self.data_dir / "consoles"
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
            f"--web.console.templates={consoles}",
            f"--web.console.libraries={consoles}",
            "--storage.tsdb.retention.time=1d",
            *self.extra_args,
        ]

    def query(self, promql: str, time: float | None = None) -> list[Any]:
        """An instant query's ``result`` (a list of samples for a vector)."""
        params: dict[str, Any] = {"query": promql, **({"time": time} if time is not None else {})}
        result: list[Any] = self.api("/api/v1/query", params=params)["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("/api/v1/targets", params={"state": "active"})[
            "activeTargets"
        ]
        return active

    def wait_for_target_up(self, job: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until a target of ``job`` was scraped successfully; returns that target."""

        def up_target() -> dict[str, Any] | None:
            return next(
                (
                    t
                    for t in self.targets()
                    if t["labels"].get("job") == job and t["health"] == "up"
                ),
                None,
            )

        try:
            return wait_until(up_target, timeout, interval=0.2, what=f"job {job!r} up")
        except TimeoutError as exc:
            states = [
                f"{t['scrapeUrl']} {t['health']} {t.get('lastError', '')}" for t in self.targets()
            ]
            raise TimeoutError(f"{exc}; targets: {states or 'none'}") from None

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("/api/v1/rules")["groups"]
        return groups

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("/api/v1/alerts")["alerts"]
        return alerts

    def reload(
        self,
        config: Mapping[str, Any] | str | None = None,
        rule_files: Mapping[str, str] | None = None,
    ) -> None:
        """Rewrite the configuration (if given) and POST /-/reload; ServerError if refused."""
        if config is not None:
            self.config = config
        if rule_files is not None:
            self.rule_files = dict(rule_files)
        self.write_config()
        self.request("POST", "/-/reload")


class Alertmanager(ServerProcess):
    """Alertmanager without clustering (an empty cluster address: it never binds 9094)."""

    binary = "prometheus-alertmanager"
    package = "prometheus-alertmanager"
    ready_path = "/-/ready"

    def __init__(self, base_dir: str | os.PathLike[str], config: Mapping[str, Any] | str) -> None:
        super().__init__(base_dir)
        self.config = config
        self.config_path = self.data_dir / "alertmanager.yml"

    def write_config(self) -> None:
        self.config_path.write_text(_yaml_text(self.config))

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.data_dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
        ]

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.request("GET", "/api/v2/status").json()
        return status

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.request("GET", "/api/v2/alerts").json()
        return alerts

    def reload(self, config: Mapping[str, Any] | str | None = None) -> None:
        if config is not None:
            self.config = config
        self.write_config()
        self.request("POST", "/-/reload")


# ---------------------------------------------------------------------------------------------
# VictoriaMetrics


class VictoriaMetrics(ServerProcess):
    """Single-node VictoriaMetrics, which also serves InfluxDB's ``/write`` and ``/api/v2/write``.

    Data becomes searchable about a second after it is written (in-memory rows are flushed on a
    1 s tick): poll with ``wait_until``. ``-search.latencyOffset=0s`` lets queries see samples
    stamped "now" (the default hides the last 30 s); ``-search.disableCache`` keeps results fresh.
    """

    binary = "victoria-metrics"
    package = "victoria-metrics"
    ready_path = "/health"

    def __init__(self, base_dir: str | os.PathLike[str], extra_args: Sequence[str] = ()) -> None:
        super().__init__(base_dir)
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        return [
            self.binary,
            f"-storageDataPath={self.data_dir / 'data'}",
            f"-httpListenAddr={self.address}",
            "-loggerLevel=ERROR",
            "-memory.allowedBytes=256MiB",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            *self.extra_args,
        ]

    def force_flush(self) -> None:
        self.request("GET", "/internal/force_flush")

    def query(self, promql: str, time: float | None = None) -> list[Any]:
        params: dict[str, Any] = {"query": promql, **({"time": time} if time is not None else {})}
        result: list[Any] = self.api("/api/v1/query", params=params)["result"]
        return result

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples of the series matching a selector (``/api/v1/export``, JSON lines)."""
        text = self.request("GET", "/api/v1/export", params={"match[]": match}).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# Exporters


class _ScrapeTarget(ServerProcess):
    ready_path = "/metrics"

    def __init__(self, base_dir: str | os.PathLike[str], args: Sequence[str] = ()) -> None:
        super().__init__(base_dir)
        self.args = list(args)

    def metrics(self, path: str = "/metrics") -> str:
        return self.request("GET", path).text


class NodeExporter(_ScrapeTarget):
    """Debian's node_exporter 1.5 with ``args`` (e.g. ``--collector.disable-defaults``)."""

    binary = "prometheus-node-exporter"
    package = "prometheus-node-exporter"

    def command(self) -> list[str]:
        return [self.binary, f"--web.listen-address={self.address}", *self.args]


def source_tree_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment plus ``extra``, with this source tree first on PYTHONPATH.

    For our own components run as ``python -m …`` by the current interpreter.
    """
    environment = {**os.environ, **extra}
    path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = f"{SOURCE_ROOT}{os.pathsep}{path}" if path else str(SOURCE_ROOT)
    return environment


class OwnComponent:
    """For ServerProcess subclasses that run one of our components as ``python -m …`` from this
    source tree, by the current interpreter, with ``self.env`` added to the environment."""

    binary = "python"
    env: dict[str, str]

    def executable(self) -> str:
        return sys.executable

    def environment(self) -> dict[str, str]:
        return source_tree_environment(self.env)


class ExporterProcess(OwnComponent, _ScrapeTarget):
    """Our exporter."""

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_dir, args)
        self.env = dict(env or {})

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "perfanalysis.cli",
            "exporter",
            f"--web.listen-address={self.address}",
            *self.args,
        ]


# ---------------------------------------------------------------------------------------------
# Many servers at once


class ServerRegistry:
    """Starts servers under one base directory and stops them all (by PID) in reverse order."""

    def __init__(self, base_dir: str | os.PathLike[str]) -> None:
        self.base_dir = Path(base_dir)
        self.servers: list[ServerProcess] = []

    def start(self, server: Server, timeout: float | None = None) -> Server:
        self.servers.append(server)  # first, so that a failed start still shows in log_report
        return server.start(timeout)

    def influxdb(self, auth: bool = False, **kwargs: Any) -> InfluxDB:
        return self.start(InfluxDB(self.base_dir, auth=auth, **kwargs))

    def prometheus(
        self,
        config: Mapping[str, Any] | str,
        rules: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Prometheus:
        return self.start(Prometheus(self.base_dir, config, rules, **kwargs))

    def alertmanager(self, config: Mapping[str, Any] | str) -> Alertmanager:
        return self.start(Alertmanager(self.base_dir, config))

    def victoriametrics(self, extra_args: Sequence[str] = ()) -> VictoriaMetrics:
        return self.start(VictoriaMetrics(self.base_dir, extra_args))

    def node_exporter(self, args: Sequence[str] = ()) -> NodeExporter:
        return self.start(NodeExporter(self.base_dir, args))

    def exporter(
        self, args: Sequence[str] = (), env: Mapping[str, str] | None = None
    ) -> ExporterProcess:
        return self.start(ExporterProcess(self.base_dir, args, env))

    def __iter__(self) -> Iterator[ServerProcess]:
        return iter(self.servers)

    def stop_all(self) -> None:
        errors: list[BaseException] = []
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as exc:  # stop the others regardless
                errors.append(exc)
        if errors:
            raise errors[0]

    def log_report(self, n: int = 60) -> str:
        return "\n\n".join(server_log_section(server, n) for server in self.servers)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()


def server_log_section(server: ServerProcess, n: int = 60) -> str:
    state = f"pid {server.pid}" if server.running else "stopped"
    return f"=== {server.name} ({server.url}, {state}) {server.log_path} ===\n{server.log_tail(n)}"
