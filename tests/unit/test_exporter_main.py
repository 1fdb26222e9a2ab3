"""exporter.main.run: what the operator sees when the exporter cannot start."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.http import HTTPServer, Request, Response
from exporter.main import run
from exporter.push.pusher import Pusher


def ok(request: Request) -> Response:
    return Response(200)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another socket listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_port_in_use_raises_oserror_and_leaks_nothing(taken_port: int) -> None:
    before = open_fds()
    with pytest.raises(OSError, match="Address already in use") as caught:
        HTTPServer(("127.0.0.1", taken_port), ok)
    assert caught.value.errno == errno.EADDRINUSE
    assert open_fds() <= before  # the wake pipe and the socket are closed


def test_server_close_twice_is_harmless() -> None:
    server = HTTPServer(("127.0.0.1", 0), ok)
    server.server_close()
    server.server_close()


def test_a_port_in_use_is_reported_and_exits_1(
    taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        [
            f"--web.listen-address=127.0.0.1:{taken_port}",
            "--collector.disable-defaults",
            "--collector.loadavg",
        ],
        {},
    )
    assert code == 1
    assert capsys.readouterr().err == (
        f"perfanalysis exporter: cannot listen on 127.0.0.1:{taken_port}: "
        "[Errno 98] Address already in use\n"
    )


def test_a_port_in_use_stops_the_pusher(
    taken_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[float] = []
    real_stop = Pusher.stop

    def stop(self: Pusher, timeout: float) -> bool:
        stopped.append(timeout)
        return real_stop(self, timeout)

    monkeypatch.setattr(Pusher, "stop", stop)
    key = tmp_path / "key"
    key.write_text("pak_a.b\n")
    argv = [
        f"--web.listen-address=127.0.0.1:{taken_port}",
        "--collector.disable-defaults",
        "--collector.loadavg",
        "--push.url=http://127.0.0.1:1",
        f"--push.key-file={key}",
        f"--push.spool-dir={tmp_path / 'spool'}",
    ]
    assert run(argv, {}) == 1
    assert stopped == [0]


def test_python_dash_m_exporter_main_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter.main", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0
    assert "--web.listen-address" in result.stdout
