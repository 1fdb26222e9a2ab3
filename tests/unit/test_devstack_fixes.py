"""The local stack remembers its addresses, tells why a service is unhealthy, checks every port
before it starts anything, and installs only what it needs; with stand-ins for the services."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from perfanalysis import devstack
from perfanalysis.paths import ROOT
from perfanalysis.testing.servers import free_port
from tests.support.fixed_answers import fixed_answers
from tests.support.stand_in import STAND_IN


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var"
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(path))
    for variable in devstack.DEFAULT_ADDRESSES:
        monkeypatch.delenv(variable, raising=False)
    return path


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


real_services = devstack.services


@pytest.fixture
def stand_ins(var: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The stack made of stand-ins, with every address variable set to a free port; those."""
    monkeypatch.setattr(devstack, "services", stand_in_services)
    monkeypatch.setattr(devstack, "setup_steps", list)
    chosen = {variable: f"127.0.0.1:{free_port()}" for variable in devstack.DEFAULT_ADDRESSES}
    for variable, value in chosen.items():
        monkeypatch.setenv(variable, value)
    yield chosen
    for service in stand_in_services():
        devstack.stop(service, quiet=True)


def unset_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in devstack.DEFAULT_ADDRESSES:
        monkeypatch.delenv(variable)


# --- 1. the addresses make up chose are remembered ------------------------------------------------


def test_later_commands_use_the_addresses_up_recorded(
    stand_ins: dict[str, str],
    var: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert devstack.main(["up"]) == 0
    assert json.loads((var / "addresses.json").read_text()) == stand_ins
    unset_addresses(monkeypatch)
    capsys.readouterr()

    assert devstack.main(["status"]) == 0
    status = capsys.readouterr().out
    for variable in ("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS", "PERFANALYSIS_DEV_INFLUXDB_ADDRESS"):
        assert stand_ins[variable] in status
        assert devstack.address(variable) == stand_ins[variable]
    assert devstack.admin_env()["PERFANALYSIS_ADMIN_INFLUXDB_URL"] == (
        f"http://{stand_ins['PERFANALYSIS_DEV_INFLUXDB_ADDRESS']}"
    )

    assert devstack.main(["up"]) == 0
    assert capsys.readouterr().out.count("already running") == len(devstack.services())


def test_up_refuses_an_address_variable_that_would_move_a_running_service(
    stand_ins: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert devstack.main(["up"]) == 0
    pids = {s.name: devstack.running_pid(s) for s in stand_in_services()}
    elsewhere = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS", elsewhere)
    capsys.readouterr()

    with pytest.raises(SystemExit) as refused:
        devstack.main(["up"])

    message = str(refused.value.code)
    assert len(message.splitlines()) == 1
    assert f"admin runs at {stand_ins['PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS']}" in message
    assert f"PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS={elsewhere}" in message
    assert "make down" in message
    assert {s.name: devstack.running_pid(s) for s in stand_in_services()} == pids

    assert devstack.main(["status"]) == 0
    shown = capsys.readouterr()
    assert f"admin runs at {stand_ins['PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS']}" in shown.err


def test_a_stopped_stack_keeps_its_recorded_addresses_unless_a_variable_moves_one(
    stand_ins: dict[str, str], var: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moved off ports in use, a stopped stack stays off them: make admin finds its InfluxDB and
    the next make up starts where make status shows it; a variable moves a service, and
    without var/addresses.json the defaults return."""
    assert devstack.main(["up"]) == 0
    assert devstack.main(["down"]) == 0
    unset_addresses(monkeypatch)

    for variable, recorded in stand_ins.items():
        assert devstack.address(variable) == recorded
    moved = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS", moved)
    assert devstack.address("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS") == moved
    monkeypatch.delenv("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS")

    (var / "addresses.json").unlink()
    for variable, default in devstack.DEFAULT_ADDRESSES.items():
        assert devstack.address(variable) == default


def test_a_service_restarted_while_the_others_run_comes_back_where_they_expect_it(
    stand_ins: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The others were started with its address (ingest writes to InfluxDB's)."""
    assert devstack.main(["up"]) == 0
    influxdb = next(s for s in stand_in_services() if s.name == "influxdb")
    devstack.stop(influxdb, quiet=True)
    unset_addresses(monkeypatch)
    capsys.readouterr()

    assert (
        devstack.address("PERFANALYSIS_DEV_INFLUXDB_ADDRESS")
        == (stand_ins["PERFANALYSIS_DEV_INFLUXDB_ADDRESS"])
    )
    assert devstack.main(["up"]) == 0
    assert devstack.running_pid(influxdb) is not None
    assert devstack.main(["status"]) == 0
    assert stand_ins["PERFANALYSIS_DEV_INFLUXDB_ADDRESS"] in capsys.readouterr().out

    devstack.stop(influxdb, quiet=True)
    monkeypatch.setenv("PERFANALYSIS_DEV_INFLUXDB_ADDRESS", f"127.0.0.1:{free_port()}")
    with pytest.raises(SystemExit) as refused:
        devstack.main(["up"])
    assert "influxdb belongs, for the running stack, at" in str(refused.value.code)


def test_an_unreachable_influxdb_is_one_line_naming_it_and_what_to_do(
    var: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("PERFANALYSIS_DEV_INFLUXDB_ADDRESS", closed)

    with pytest.raises(SystemExit) as failed:
        devstack._ensure_influx_admin()

    message = str(failed.value.code)
    assert len(message.splitlines()) == 1
    assert f"InfluxDB at {closed}" in message
    assert "make status" in message


# --- 2. make status says why a service is unhealthy -----------------------------------------------


@pytest.fixture
def failing_health() -> Iterator[str]:
    """Answers /<name> with 503 and the body of that name; its base URL."""
    bodies = {
        "/ingest": json.dumps({"name": "ingest", "message": "storage: down: refused " + "x" * 400,
                               "status": "fail", "storage": "down: refused"}).encode(),
        "/admin": b'{"status": "down", "database": "no schema: run perfanalysis admin init-db"}',
        "/text": b"Service Unavailable\nmore",
    }  # fmt: skip
    with fixed_answers({path: (503, body) for path, body in bodies.items()}) as url:
        yield url


def test_status_shows_the_reason_a_service_gives_for_being_unhealthy(failing_health: str) -> None:
    def health(path: str) -> tuple[str, str]:
        return devstack.health(devstack.Service("x", [], f"{failing_health}{path}", {}))

    state, why = health("/ingest")
    assert state == "unhealthy"
    assert why.startswith("HTTP 503: storage: down: refused xxx")
    assert len(why) <= 160
    assert health("/admin") == (
        "unhealthy",
        "HTTP 503: database no schema: run perfanalysis admin init-db",
    )
    assert health("/text") == ("unhealthy", "HTTP 503: Service Unavailable")
    closed = devstack.Service("x", [], f"http://127.0.0.1:{free_port()}/", {})
    assert devstack.health(closed)[1].startswith("no answer")


# --- 3. every port is checked before anything starts ----------------------------------------------


def test_up_reports_every_taken_port_before_starting_anything(
    stand_ins: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    taken = ("PERFANALYSIS_DEV_PROMETHEUS_ADDRESS", "PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS")
    with contextlib.ExitStack() as listening:
        for variable in taken:
            host, _, port = stand_ins[variable].rpartition(":")
            listening.enter_context(socket.create_server((host, int(port))))
        with pytest.raises(SystemExit) as refused:
            devstack.main(["up"])

    message = str(refused.value.code)
    for variable in taken:
        assert variable in message
        assert stand_ins[variable] in message
    assert "started" not in capsys.readouterr().out
    assert all(devstack.running_pid(s) is None for s in stand_in_services())


# --- 6. the InfluxDB admin user is named ----------------------------------------------------------


def test_up_names_the_influxdb_admin_user(
    stand_ins: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert devstack.main(["up"]) == 0
    assert "InfluxDB login: user admin, password in" in capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    assert "user `admin`" in readme


# --- 4. and 5. the Makefile ------------------------------------------------------------------------


def make_plan(target: str, venv: Path) -> list[str]:
    inherited = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    return subprocess.run(
        ["make", "--dry-run", "--no-print-directory", target, f"VENV={venv}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()


@pytest.mark.parametrize("target", ["up", "status", "admin"])
def test_the_stack_targets_install_only_what_the_stack_needs(target: str, tmp_path: Path) -> None:
    installs = [line for line in make_plan(target, tmp_path) if "pip install" in line]
    assert any("-e '.[server]'" in line for line in installs), installs
    assert not any("[dev]" in line for line in installs)
    assert not any("--quiet" in line for line in installs)


@pytest.mark.parametrize("target", ["test", "lint", "format", "bench"])
def test_the_development_targets_install_the_dev_tools(target: str, tmp_path: Path) -> None:
    installs = [line for line in make_plan(target, tmp_path) if "pip install" in line]
    assert any("-e '.[dev]'" in line for line in installs), installs


def test_clean_removes_what_the_editable_install_built(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\nexit 0\n")
    python.chmod(0o755)
    built = [
        tmp_path / "perfanalysis.egg-info" / "PKG-INFO",
        tmp_path / "ingest" / "_batchfast.cpython-311-x86_64-linux-gnu.so",
        tmp_path / "build" / "lib" / "x.o",
    ]
    for path in built:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    kept = tmp_path / "ingest" / "_batchfast.c"
    kept.write_text("")

    subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, check=True)

    assert not any(path.exists() for path in built)
    assert not (tmp_path / "perfanalysis.egg-info").exists()
    assert not (tmp_path / "build").exists()
    assert kept.exists()
