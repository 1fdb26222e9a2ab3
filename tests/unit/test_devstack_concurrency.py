"""The local stack's commands one at a time, a failed start that leaves another run's PID file
alone, the settings its services must agree on kept from them, and ``make down`` after a
service's first process was killed; with stand-in services (small HTTP servers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from exporter.config import ENV_PREFIX as EXPORTER_PREFIX
from exporter.config import build_spec as exporter_spec
from ingest.settings import ENV_PREFIX as INGEST_PREFIX
from ingest.settings import build_spec as ingest_spec
from perfanalysis import devstack
from perfanalysis.paths import ROOT
from perfanalysis.testing.servers import free_port, port_is_free, wait_until
from tenants.settings import ENV_PREFIX as ADMIN_PREFIX
from tenants.settings import build_spec as admin_spec
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
    for variable in devstack.DEFAULT_ADDRESSES:
        monkeypatch.delenv(variable, raising=False)
    return path


real_services = devstack.services


def stand_in_services() -> list[devstack.Service]:
    """The stack's services at the addresses devstack resolves, each a small HTTP server."""
    return [
        dataclasses.replace(
            service,
            argv=[sys.executable, "-c", STAND_IN, str(urlsplit(service.ready_url).port)],
            ready_url=f"http://{urlsplit(service.ready_url).netloc}/",
            env=dict,
            prepare=None,
            after_ready=None,
        )
        for service in real_services()
    ]


@pytest.fixture
def stand_ins(var: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The stack made of stand-ins, every address variable set to a free port; those."""
    monkeypatch.setattr(devstack, "services", stand_in_services)
    monkeypatch.setattr(devstack, "setup_steps", list)
    chosen = {variable: f"127.0.0.1:{free_port()}" for variable in devstack.DEFAULT_ADDRESSES}
    for variable, value in chosen.items():
        monkeypatch.setenv(variable, value)
    yield chosen
    for service in stand_in_services():
        devstack.stop(service, quiet=True)


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
    """Another program, in its own session, that the stack must leave alone."""
    process = subprocess.Popen([sys.executable, "-c", SLEEPER], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def lock_held(path: Path) -> bool:
    """Whether some process holds the stack's lock now."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # releases it, if this test took it
    return False


def ports_free(addresses: dict[str, str]) -> bool:
    return all(port_is_free(int(a.rpartition(":")[2])) for a in addresses.values())


# --- 1. up, down and reload one at a time ---------------------------------------------------


@pytest.fixture
def other_run(var: Path) -> Iterator[subprocess.Popen[str]]:
    """Another 'make up' in its own process, holding the stack's lock until told to finish
    (closing its stdin), as one waiting for InfluxDB to be ready does."""
    holding = (
        "import sys\nfrom perfanalysis import devstack\n"
        "with devstack.exclusive('up'):\n    sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holding], stdin=subprocess.PIPE, cwd=ROOT, text=True
    )
    try:
        wait_until(
            lambda: lock_held(devstack.lock_file()) or process.poll() is not None,
            timeout=30,
            what="the other run to take the stack's lock",
        )
        assert process.poll() is None, "the other run ended at once"
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def test_up_down_and_reload_refuse_at_once_while_another_run_holds_the_stack(
    stand_ins: dict[str, str],
    var: Path,
    other_run: subprocess.Popen[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command, done in (
        ("up", "started nothing"),
        ("down", "stopped nothing"),
        ("reload", "reloaded nothing"),
    ):
        with pytest.raises(SystemExit) as refused:
            devstack.main([command])
        message = str(refused.value.code)
        assert "another 'make up', 'make down' or 'make reload' is running" in message
        assert f"(pid {other_run.pid}: make up)" in message
        assert f"this 'make {command}' {done}" in message

    assert "started" not in capsys.readouterr().out
    assert not list((var / "run").glob("*.pid"))
    assert ports_free(stand_ins)
    assert devstack.main(["status"]) == 1  # takes no lock: it says nothing runs
    assert capsys.readouterr().out.count("stopped") == len(stand_in_services())

    assert other_run.stdin is not None
    other_run.stdin.close()  # the other run finishes
    other_run.wait(timeout=30)
    assert devstack.main(["up"]) == 0
    assert all(devstack.running_pid(s) for s in stand_in_services())
    assert not lock_held(devstack.lock_file())  # the services it started do not hold it


def test_a_down_during_an_up_is_refused_and_the_up_keeps_what_it_started(
    stand_ins: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As make down (then make up again) in another shell while make up sets InfluxDB up."""
    again = (
        "import subprocess, sys\n"
        "for command in ('down', 'up'):\n"
        "    ran = subprocess.run([sys.executable, '-m', 'perfanalysis.devstack', command],\n"
        "                         capture_output=True, text=True)\n"
        "    print(f'{command} exited {ran.returncode}:', ran.stderr.strip())\n"
    )
    # the setup steps run while InfluxDB, the first service, runs and the others do not yet
    monkeypatch.setattr(devstack, "setup_steps", lambda: [([sys.executable, "-c", again], {})])

    assert devstack.main(["up"]) == 0

    output = capsys.readouterr().out
    assert "down exited 1: devstack: another 'make up'" in output
    assert "this 'make down' stopped nothing" in output
    assert "up exited 1: devstack: another 'make up'" in output
    assert "this 'make up' started nothing" in output
    for service in stand_in_services():
        assert f"{service.name}: started" in output
        assert devstack.running_pid(service) is not None, service.name


# --- 1. a failed start leaves a PID file another run wrote since alone ----------------------

OVERWRITES_PID_FILE = """
import os, sys, time
path, line, then = sys.argv[1:]
deadline = time.monotonic() + 30
while time.monotonic() < deadline:  # until the run that spawned this has recorded it
    try:
        if open(path).read().split()[0] == str(os.getpid()):
            break
    except (OSError, IndexError):
        pass
    time.sleep(0.01)
else:
    sys.exit("the PID file never named this process")
open(path, "w").write(line)  # as a second run that spawned its own process since
if then == "exit":
    sys.exit(1)
import signal
signal.pause()
"""


@pytest.mark.parametrize("then", ["exit", "hang"])
def test_a_failed_start_leaves_the_pid_file_another_run_wrote_and_its_process(
    stand_in: Callable[..., devstack.Service],
    unrelated: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    then: str,
) -> None:
    monkeypatch.setattr(devstack, "READY_TIMEOUT", 1.0)
    other = f"{unrelated.pid} {devstack.process_identity(unrelated.pid)}\n"
    port = free_port()  # where nothing answers: this run's process never becomes ready
    service = stand_in("influxdb", ready_url=f"http://127.0.0.1:{port}/", listens={})
    service = dataclasses.replace(
        service,
        argv=[sys.executable, "-c", OVERWRITES_PID_FILE, str(service.pid_file), other, then],
    )

    with pytest.raises(SystemExit) as failed:
        devstack.start(service)

    expected = "exited with status 1" if then == "exit" else "did not become ready"
    assert expected in str(failed.value.code)
    assert service.pid_file.read_text() == other
    assert devstack.running_pid(service) == unrelated.pid
    assert alive(unrelated.pid)
    output = capsys.readouterr().out
    assert f"stopped (pid {unrelated.pid})" not in output
    if then == "hang":  # this run's own process was stopped, by its own PID
        [spawned] = [line for line in output.splitlines() if line.startswith("influxdb: stopped")]
        assert not alive(int(spawned.rpartition("pid ")[2].rstrip(")")))


# --- 2. the secret keys and the settings the services must agree on are the stack's own --------


def test_no_service_or_setup_step_gets_an_inherited_secret_key_or_disagreeing_setting(
    stand_in: Callable[..., devstack.Service],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """.env has PERFANALYSIS_ADMIN_SECRET_KEY, which grafana sync and report read: with it
    exported, the admin app and its setup steps keyed the demo collector's key with it while
    ingest, given none, took var/dev-secret-key, and refused every push."""
    ignored = sorted(devstack.DISAGREEING_VARIABLES)
    for variable in ignored:
        monkeypatch.setenv(variable, "from-the-shell-" + "x" * 40)
    monkeypatch.setenv("PERFANALYSIS_ADMIN_INFLUXDB_RETENTION", "7d")  # tuning: it stays
    show = f"import os; print('step sees', sorted(v for v in {ignored!r} if v in os.environ))"
    monkeypatch.setattr(devstack, "setup_steps", lambda: [([sys.executable, "-c", show], {})])
    service = stand_in("ingest")

    devstack.up([service])

    assert "step sees []" in capsys.readouterr().out
    environ = Path(f"/proc/{devstack.running_pid(service)}/environ").read_bytes().split(b"\0")
    given = dict(entry.decode().partition("=")[::2] for entry in environ if entry)
    assert [v for v in ignored if v in given] == []
    assert given["PERFANALYSIS_ADMIN_INFLUXDB_RETENTION"] == "7d"


def test_every_secret_key_and_tls_setting_of_the_stacks_services_is_ignored() -> None:
    """Settings added later are kept from the stack's services too (a unit test fails until
    DISAGREEING_VARIABLES has them)."""
    specs = (
        (admin_spec(), ADMIN_PREFIX),
        (ingest_spec(), INGEST_PREFIX),
        (exporter_spec(), EXPORTER_PREFIX),
    )
    # ingest's storage settings the stack gives itself, or tuning that changes no agreement
    storage_kept = {"url", "username", "password", "timeout", "retry-after", "writes-in-flight",
                    "group-max-bytes"}  # fmt: skip

    def must_agree_on(flag: str) -> bool:
        if flag.startswith("storage."):
            return flag.removeprefix("storage.") not in storage_kept
        return "secret-key" in flag or "tls" in flag or flag in ("web.config-file",
                                                                 "web.telemetry-path",
                                                                 "push.host")  # fmt: skip

    must_agree = {
        setting.env_name(prefix)
        for spec, prefix in specs
        for setting in spec.settings
        if must_agree_on(setting.flag)
    }
    assert "PERFANALYSIS_ADMIN_SECRET_KEY" in must_agree
    assert "PERFANALYSIS_INGEST_PREVIOUS_SECRET_KEYS" in must_agree
    assert "PERFANALYSIS_EXPORTER_PUSH_HOST" in must_agree  # the demo collector's pinned host
    assert must_agree <= devstack.IGNORED_VARIABLES, sorted(must_agree - devstack.IGNORED_VARIABLES)


def test_the_readme_says_the_local_stack_ignores_the_secret_keys() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    for variable in (
        "PERFANALYSIS_ADMIN_SECRET_KEY",
        "PERFANALYSIS_INGEST_SECRET_KEY",
        "PREVIOUS_SECRET_KEYS",
    ):
        assert variable in readme
    assert "the local stack ignores" in readme


# --- 3. make down after a service's first process was killed ----------------------------------


def test_down_stops_what_remains_of_a_service_whose_first_process_was_killed(
    stand_in: Callable[..., devstack.Service], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As gunicorn's workers after a kill -9 of their master: they keep its port."""
    worker_pid_file = tmp_path / "worker.pid"
    service = stand_in("admin", worker_pid_file=worker_pid_file)
    assert devstack.start(service)
    worker = int(wait_until(worker_pid_file.read_text, timeout=10, what="the worker's PID"))
    leader = devstack.running_pid(service)
    assert leader is not None
    os.kill(leader, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):  # this process spawned it: reap it, as init
        os.waitpid(leader, 0)  # would once make up had exited
    assert devstack.running_pid(service) is None
    assert alive(worker)
    capsys.readouterr()

    devstack.stop(service)

    assert not alive(worker)
    assert f"admin: stopped what remained of it (pid {worker}; its first process, pid {leader}" in (
        capsys.readouterr().out
    )
    assert not service.pid_file.exists()


def test_down_leaves_alone_a_process_group_that_is_not_the_stacks(
    stand_in: Callable[..., devstack.Service], capsys: pytest.CaptureFixture[str]
) -> None:
    """A PID file whose process has gone, naming a group whose members do not write to the
    service's log: another program's, however its PID came to be recorded."""
    spawns_a_worker = (
        "import subprocess, sys\n"
        "worker = subprocess.Popen([sys.executable, '-c', 'import signal; signal.pause()'],\n"
        "                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(worker.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    leader = subprocess.Popen(
        [sys.executable, "-c", spawns_a_worker],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    assert leader.stdout is not None
    assert leader.stdin is not None
    worker = int(leader.stdout.readline())
    try:
        service = stand_in("admin")
        service.pid_file.parent.mkdir(parents=True)
        service.log_file.parent.mkdir(parents=True)
        service.log_file.touch()
        service.pid_file.write_text(f"{leader.pid} {devstack.process_identity(leader.pid)}\n")
        leader.stdin.close()
        leader.wait(timeout=30)

        devstack.stop(service)

        assert "admin: not running" in capsys.readouterr().out
        assert alive(worker)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
