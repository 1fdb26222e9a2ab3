"""The local stack's process handling (``make up/down/clean``), with small stand-in services.

Each stand-in is a Python HTTP server on a free port answering 200, so starting, readiness,
PID files, process groups and cleanup after a failure show without InfluxDB or the apps.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from perfanalysis import devstack
from perfanalysis.paths import ROOT
from perfanalysis.testing.servers import free_port, port_is_free, wait_until
from tests.support.fixed_answers import fixed_answers
from tests.support.stand_in import STAND_IN

SLEEPER = "import signal; signal.pause()"


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var"
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(path))
    return path


@pytest.fixture
def stand_in(var: Path) -> Iterator[Callable[..., devstack.Service]]:
    """stand_in(name, worker_pid_file=None, **fields) -> a Service on a free port."""
    made: list[devstack.Service] = []

    def make(name: str, worker_pid_file: Path | None = None, **fields: Any) -> devstack.Service:
        port = free_port()
        extra = [str(worker_pid_file)] if worker_pid_file else []
        service = devstack.Service(
            name,
            fields.pop("argv", [sys.executable, "-c", STAND_IN, str(port), *extra]),
            fields.pop("ready_url", f"http://127.0.0.1:{port}/"),
            {"UI": f"http://127.0.0.1:{port}/"},
            listens=fields.pop("listens", {f"{name.upper()}_ADDRESS": f"127.0.0.1:{port}"}),
            **fields,
        )
        made.append(service)
        return service

    yield make
    for service in made:
        devstack.stop(service, quiet=True)


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen[bytes]]:
    """Another Python program, in its own session, that the stack must leave alone."""
    process = subprocess.Popen([sys.executable, "-c", SLEEPER], start_new_session=True)
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def answering_server() -> Iterator[http.server.ThreadingHTTPServer]:
    """Something else that answers 200 to every GET, on a free port."""

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    """A port something else listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


@pytest.fixture
def restore_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def no_setup_steps() -> list[tuple[list[str], dict[str, str]]]:
    return []


# --- up stops what it started when a later step fails (finding 3) -----------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(SystemExit("the third service cannot start"), id="SystemExit"),
        pytest.param(RuntimeError("a bug in a prepare step"), id="exception"),
        pytest.param(KeyboardInterrupt(), id="interrupt"),
    ],
)
def test_up_stops_in_reverse_order_what_it_started_when_a_later_service_fails(
    stand_in: Callable[..., devstack.Service],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failure: BaseException,
) -> None:
    monkeypatch.setattr(devstack, "setup_steps", no_setup_steps)

    def fail() -> None:
        raise failure

    first, second = stand_in("first"), stand_in("second")
    third = stand_in("third", prepare=fail)
    started_pids: dict[str, int | None] = {}
    original_stop = devstack.stop

    def stop_recording(service: devstack.Service, quiet: bool = False) -> None:
        started_pids.setdefault(service.name, devstack.running_pid(service))
        original_stop(service, quiet)

    monkeypatch.setattr(devstack, "stop", stop_recording)

    with pytest.raises(SystemExit) as exited:
        devstack.up([first, second, third])

    message = str(exited.value.code)
    assert message.endswith("make up failed; it stopped every service it had started")
    assert ("RuntimeError: a bug in a prepare step" in message) == isinstance(failure, RuntimeError)
    output = capsys.readouterr().out
    assert output.index("second: stopped") < output.index("first: stopped")
    assert "third" not in output
    for name in ("first", "second"):
        pid = started_pids[name]
        assert pid is not None
        assert not alive(pid)
    for service in (first, second, third):
        assert not service.pid_file.exists()
        assert all(port_is_free(int(a.rpartition(":")[2])) for a in service.listens.values())


def test_up_stops_the_first_service_when_a_setup_step_fails(
    stand_in: Callable[..., devstack.Service],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = stand_in("first"), stand_in("second")
    seen: dict[str, int | None] = {}

    def failing_steps() -> list[tuple[list[str], dict[str, str]]]:
        seen["first"] = devstack.running_pid(first)
        return [([sys.executable, "-c", "import sys; sys.exit('no database here')"], {})]

    monkeypatch.setattr(devstack, "setup_steps", failing_steps)

    with pytest.raises(SystemExit) as exited:
        devstack.up([first, second])

    assert "no database here" in str(exited.value.code)
    pid = seen["first"]
    assert f"first: stopped (pid {pid})" in capsys.readouterr().out
    assert pid is not None
    assert not alive(pid)
    assert devstack.running_pid(second) is None
    assert not second.log_file.exists()


def test_up_leaves_running_what_an_earlier_run_started(
    stand_in: Callable[..., devstack.Service],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(devstack, "setup_steps", no_setup_steps)
    earlier = stand_in("earlier")
    assert devstack.start(earlier)
    pid = devstack.running_pid(earlier)

    with pytest.raises(SystemExit, match="failing exited with status 1 before it was ready"):
        devstack.up([earlier, stand_in("failing", argv=[sys.executable, "-c", "exit(1)"])])

    assert devstack.running_pid(earlier) == pid
    assert "earlier: stopped" not in capsys.readouterr().out


# --- a taken port, and readiness from the process this run spawned (finding 4) ----------------


def test_start_refuses_a_port_in_use_and_spawns_nothing(
    stand_in: Callable[..., devstack.Service], listening_socket: socket.socket
) -> None:
    port = listening_socket.getsockname()[1]
    service = stand_in("taken", listens={"TAKEN_ADDRESS": f"127.0.0.1:{port}"})

    with pytest.raises(SystemExit) as refused:
        devstack.start(service)

    assert f"port {port} (taken) is in use" in str(refused.value.code)
    assert "TAKEN_ADDRESS" in str(refused.value.code)
    assert not service.pid_file.exists()
    assert not service.log_file.exists()


def test_a_service_that_exits_is_not_started_though_another_server_answers_its_url(
    stand_in: Callable[..., devstack.Service],
    answering_server: http.server.ThreadingHTTPServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = answering_server.server_address[1]
    service = stand_in(
        "dies",
        argv=[sys.executable, "-c", "import sys; sys.exit('listen: address already in use')"],
        ready_url=f"http://127.0.0.1:{port}/",
        listens={},
    )

    with pytest.raises(SystemExit) as failed:
        devstack.start(service)

    assert "dies exited with status 1 before it was ready" in str(failed.value.code)
    assert "address already in use" in str(failed.value.code)
    assert "started" not in capsys.readouterr().out
    assert not service.pid_file.exists()


def test_a_live_service_is_not_ready_while_another_server_answers_its_url(
    stand_in: Callable[..., devstack.Service],
    answering_server: http.server.ThreadingHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(devstack, "READY_TIMEOUT", 0.5)
    port = answering_server.server_address[1]
    service = stand_in(
        "silent",
        argv=[sys.executable, "-c", SLEEPER],
        ready_url=f"http://127.0.0.1:{port}/",
        listens={},
    )

    with pytest.raises(SystemExit, match=r"silent did not become ready within 0\.5s"):
        devstack.start(service)

    assert not service.pid_file.exists()


# --- PID files name one process exactly; stop ends the process group (finding 5) --------------


@pytest.mark.parametrize(
    "pid_file_text",
    [
        pytest.param("{pid}\n", id="bare-pid"),
        pytest.param("{pid} {boot}/1\n", id="same-pid-other-start-time"),
    ],
)
def test_a_stale_pid_file_neither_skips_the_service_nor_stops_another_program(
    stand_in: Callable[..., devstack.Service],
    unrelated: subprocess.Popen[bytes],
    capsys: pytest.CaptureFixture[str],
    pid_file_text: str,
) -> None:
    service = stand_in("exporter")
    service.pid_file.parent.mkdir(parents=True)
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    service.pid_file.write_text(pid_file_text.format(pid=unrelated.pid, boot=boot))

    assert devstack.running_pid(service) is None
    devstack.stop(service)
    assert "exporter: not running" in capsys.readouterr().out
    assert alive(unrelated.pid)

    service.pid_file.write_text(pid_file_text.format(pid=unrelated.pid, boot=boot))
    assert devstack.start(service)
    started = devstack.running_pid(service)
    assert started not in (None, unrelated.pid)
    assert alive(unrelated.pid)


def test_stop_ends_the_services_whole_process_group(
    stand_in: Callable[..., devstack.Service], tmp_path: Path
) -> None:
    worker_pid_file = tmp_path / "worker.pid"
    service = stand_in("grouped", worker_pid_file=worker_pid_file)
    devstack.start(service)
    worker = int(wait_until(worker_pid_file.read_text, timeout=10, what="the worker's PID"))
    assert alive(worker)

    devstack.stop(service)

    wait_until(lambda: not alive(worker), timeout=5, what="the worker to end")
    assert devstack.running_pid(service) is None


# --- var/ is private, and so is what the stack creates in it (finding 13) ---------------------


def test_up_makes_the_state_directory_and_what_is_created_in_it_private(
    stand_in: Callable[..., devstack.Service],
    var: Path,
    monkeypatch: pytest.MonkeyPatch,
    restore_umask: None,
) -> None:
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    service = stand_in("private")
    monkeypatch.setattr(devstack, "services", lambda: [service])
    monkeypatch.setattr(devstack, "setup_steps", no_setup_steps)

    assert devstack.main(["up"]) == 0

    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE(service.log_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(service.pid_file.parent.stat().st_mode) == 0o700
    status = Path(f"/proc/{devstack.running_pid(service)}/status").read_text()
    assert "Umask:\t0077" in status  # the service's own files too


def test_status_and_down_create_nothing(var: Path) -> None:
    assert devstack.main(["status"]) == 1
    assert devstack.main(["down"]) == 0
    assert not var.exists()


# --- the stack's own SQLite database and no Redis, whatever the environment says (finding 14) -


def test_services_and_setup_steps_get_the_stacks_database_and_no_redis(
    stand_in: Callable[..., devstack.Service],
    var: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PERFANALYSIS_ADMIN_DATABASE_URL", "postgresql://elsewhere/admin")
    monkeypatch.setenv("PERFANALYSIS_INGEST_REDIS_URL", "redis://127.0.0.1:6379/1")
    variables = (
        "DATABASE_URL",
        "REDIS_URL",
        "PERFANALYSIS_ADMIN_DATABASE_URL",
        "PERFANALYSIS_INGEST_DATABASE_URL",
        "PERFANALYSIS_ADMIN_REDIS_URL",
        "PERFANALYSIS_INGEST_REDIS_URL",
    )
    show = f"import os; print({{v: os.environ.get(v) for v in {variables!r}}})"
    monkeypatch.setattr(devstack, "setup_steps", lambda: [([sys.executable, "-c", show], {})])
    service = stand_in("app")
    stack_database = f"sqlite:///{var / 'admin.db'}"
    expected = dict.fromkeys(variables)
    expected["PERFANALYSIS_ADMIN_DATABASE_URL"] = stack_database
    expected["PERFANALYSIS_INGEST_DATABASE_URL"] = stack_database

    devstack.up([service])

    assert str(expected) in capsys.readouterr().out
    environ = Path(f"/proc/{devstack.running_pid(service)}/environ").read_bytes().split(b"\0")
    given = dict(entry.decode().partition("=")[::2] for entry in environ if entry)
    assert {v: given.get(v) for v in variables} == expected


# --- a wrong InfluxDB admin password says so (finding 11) --------------------------------------


def test_a_wrong_influxdb_admin_password_says_which_file_and_what_to_do(
    var: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class RefusingInfluxDB(http.server.BaseHTTPRequestHandler):
        """InfluxDB with auth on and users present: 401 for a wrong or missing password."""

        def do_POST(self) -> None:
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error":"authorization failed"}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingInfluxDB)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        monkeypatch.setenv("PERFANALYSIS_DEV_INFLUXDB_ADDRESS", f"127.0.0.1:{port}")
        influxdb = devstack.services()[0]
        assert influxdb.after_ready is not None
        with pytest.raises(SystemExit) as refused:
            influxdb.after_ready()
    finally:
        server.shutdown()
        server.server_close()

    message = str(refused.value.code)
    assert f"InfluxDB at 127.0.0.1:{port} already has users" in message
    assert str(var / "influxdb-admin-password") in message
    assert str(var / "influxdb") in message


# --- a lost admin password file gets a working password (finding 10) --------------------------


@pytest.mark.usefixtures("fast_password_hashing")
def test_ensure_demo_gives_the_admin_the_password_of_a_new_password_file(
    app: Flask, runner: Callable[..., Any], tmp_path: Path
) -> None:
    from tenants import db as database
    from tenants.accounts import get_user_by_email
    from tenants.crypto import verify_password
    from tenants.demo import ADMIN_EMAIL

    def admin_password_works(password: str) -> bool:
        with app.app_context():
            admin = get_user_by_email(database.session(), ADMIN_EMAIL)
            assert admin is not None
            return verify_password(admin.password_hash, password)

    password_file = tmp_path / "admin-password"
    first = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert first.exit_code == 0, first.output
    kept = password_file.read_text().strip()
    again = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert again.exit_code == 0, again.output
    assert password_file.read_text().strip() == kept
    assert admin_password_works(kept)

    password_file.unlink()
    renewed = runner("ensure-demo", "--var-dir", str(tmp_path))

    assert renewed.exit_code == 0, renewed.output
    new = password_file.read_text().strip()
    assert new != kept
    assert admin_password_works(new)
    assert not admin_password_works(kept)
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600


# --- the Makefile: build packages before the venv (finding 8), clean stops first (finding 9) ---


def make_environment() -> dict[str, str]:
    inherited = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PERFANALYSIS_VAR_DIR")
    return {k: v for k, v in os.environ.items() if k not in inherited}


def test_install_installs_the_debian_build_packages_before_making_the_venv(
    tmp_path: Path,
) -> None:
    planned = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "install", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        env=make_environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()

    packages = "scripts/install-debian-packages.sh python3-venv python3-dev gcc libc6-dev"
    assert packages in planned
    making_venv = next(i for i, line in enumerate(planned) if " -m venv " in line)
    assert planned.index(packages) < making_venv


def test_the_package_script_installs_nothing_when_the_packages_are_present(
    tmp_path: Path,
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "dpkg-query").write_text("#!/bin/sh\nprintf 'install ok installed'\n")
    (tools / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "apt-get.log"}\n')
    for tool in tools.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}

    completed = subprocess.run(
        [ROOT / "scripts/install-debian-packages.sh", "python3-venv", "python3-dev", "gcc"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert "nothing to install" in completed.stdout
    assert not (tmp_path / "apt-get.log").exists()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The Makefile in a scratch checkout whose venv Python only logs how it was called."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(
        f'#!/bin/sh\necho "$* PERFANALYSIS_VAR_DIR=$PERFANALYSIS_VAR_DIR" >> {tmp_path / "calls"}\n'
        'exit "${FAKE_DOWN_STATUS:-0}"\n'
    )
    python.chmod(0o755)
    (tmp_path / "var" / "run").mkdir(parents=True)
    return tmp_path


def test_clean_stops_the_stack_in_var_before_removing_it(checkout: Path) -> None:
    env = {**make_environment(), "PERFANALYSIS_VAR_DIR": "/somewhere/else"}

    subprocess.run(["make", "clean"], cwd=checkout, env=env, capture_output=True, check=True)

    assert (checkout / "calls").read_text() == (
        f"-m perfanalysis.devstack down PERFANALYSIS_VAR_DIR={checkout / 'var'}\n"
    )
    assert not (checkout / "var").exists()
    assert not (checkout / ".venv").exists()


def test_clean_removes_nothing_when_the_stack_cannot_be_stopped(checkout: Path) -> None:
    env = {**make_environment(), "FAKE_DOWN_STATUS": "1"}

    completed = subprocess.run(["make", "clean"], cwd=checkout, env=env, capture_output=True)

    assert completed.returncode != 0
    assert (checkout / "calls").read_text().startswith("-m perfanalysis.devstack down")
    assert (checkout / "var" / "run").is_dir()
    assert (checkout / ".venv").is_dir()


def test_down_without_the_venv_stops_the_stack_with_the_systems_python(checkout: Path) -> None:
    shutil.move(checkout / ".venv" / "bin" / "python", checkout / "system-python")
    shutil.rmtree(checkout / ".venv")

    subprocess.run(
        ["make", "down", f"PYTHON={checkout / 'system-python'}"],
        cwd=checkout,
        env=make_environment(),
        capture_output=True,
        check=True,
    )

    assert (checkout / "calls").read_text().startswith("-m perfanalysis.devstack down")


def test_an_empty_var_dir_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", "")
    assert devstack.main(["status"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("devstack: ")
    assert "PERFANALYSIS_VAR_DIR" in error
    assert "Traceback" not in error


# --- make status reads a JSON health report, not just its HTTP status -----------------------------


@pytest.fixture
def health_server() -> Iterator[str]:
    """Answers /<name> with the health report of that name; its base URL."""
    reports = {
        "/ok": (200, b'{"status": "ok", "push": {"status": "ok"}}'),
        "/refused": (200, b'{"status": "degraded", "failed_collectors": {}, "push": '
                          b'{"status": "unauthorized", "last_error": "401: invalid collector key"}}'),
        "/plain": (200, b"Prometheus Server is Ready."),
        "/down": (503, b'{"status": "down"}'),
    }  # fmt: skip
    with fixed_answers(reports) as url:
        yield url


def test_status_tells_a_degraded_service_and_why(health_server: str) -> None:
    def health(path: str) -> tuple[str, str]:
        return devstack.health(devstack.Service("exporter", [], f"{health_server}{path}", {}))

    assert health("/ok") == ("healthy", "")
    assert health("/plain") == ("healthy", "")
    assert health("/refused") == ("degraded", "push unauthorized (401: invalid collector key)")
    assert health("/down") == ("unhealthy", "HTTP 503: status down")
    assert devstack.healthy(devstack.Service("exporter", [], f"{health_server}/refused", {}))


def test_make_admin_runs_the_admin_cli_with_the_stacks_settings(
    var: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert devstack.main(["admin", "create-tenant", "acme", "Acme Corp"]) == 2
    assert "run 'make up' first" in capsys.readouterr().err
    assert not var.exists()  # nothing made up: no secret files written

    var.mkdir(mode=0o700)
    for name in ("influxdb-admin-password", "influxdb-ingest-password"):
        (var / name).write_text(f"{name}-secret\n")
    ran: list[tuple[list[str], dict[str, str]]] = []

    def run(
        command: list[str], env: dict[str, str], check: bool
    ) -> subprocess.CompletedProcess[str]:
        ran.append((command, env))
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(devstack.subprocess, "run", run)
    monkeypatch.setattr(devstack, "_owner_runs", lambda variable: True)  # the stack's InfluxDB
    assert devstack.main(["admin", "create-tenant", "acme", "Acme Corp"]) == 3  # its exit status
    [(command, env)] = ran
    assert command[-5:] == ["admin", "--dev", "create-tenant", "acme", "Acme Corp"]
    assert env["PERFANALYSIS_ADMIN_DATABASE_URL"] == f"sqlite:///{var / 'admin.db'}"
    assert env["PERFANALYSIS_ADMIN_INFLUXDB_URL"].startswith("http://127.0.0.1:")
    assert env["PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD"] == "influxdb-admin-password-secret"
