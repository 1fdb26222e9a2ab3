"""Slow clients against admin and ingest under gunicorn (perfanalysis.gthread_worker).

Clients that send part of a request and then trickle the rest, or stall in the TLS handshake,
must not hold the worker's threads: with more of them than threads, a real client is still
answered at once. A request whose body a thread is reading must arrive whole within
``web.request-timeout``, or it is answered 408 (ingest: 503 with Retry-After, which InfluxDB
clients retry); admin reads no such body from a client not signed in.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from ingest.testing import IngestProcess, ingest_environment, issue_collector_key
from perfanalysis.testing.servers import ServerRegistry
from tenants import db as database
from tests.conftest import TEST_SECRET
from tests.integration.test_admin_serve import AdminProcess
from tests.integration.test_web_tls import HTTPSAdmin
from tests.support.tls import make_pki

pytestmark = pytest.mark.integration
THREADS = 2
ANSWER_WITHIN = 4.0  # seconds a real client may wait; the slow ones hold on for far longer


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminProcess]:
    process = AdminProcess(tmp_path_factory.mktemp("slow-clients"), threads=THREADS)
    process.start()
    try:
        yield process
    finally:
        process.stop()


class Trickle:
    """Connections that each sent ``first`` and then send one byte of ``rest`` every
    ``interval`` seconds."""

    def __init__(
        self,
        address: tuple[str, int],
        count: int,
        first: bytes,
        rest: bytes,
        interval: float = 0.2,
    ) -> None:
        self.interval = interval
        self.sockets = [socket.create_connection(address, timeout=10) for _ in range(count)]
        for sock in self.sockets:
            sock.sendall(first)
        self.rest = rest
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self) -> None:
        for byte in self.rest:
            if self.stop.wait(self.interval):
                return
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # closed by the server: that one is done
                    sock.sendall(bytes([byte]))

    def __enter__(self) -> Trickle:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()


def host_port(process: Any) -> tuple[str, int]:
    host, port = process.address.rsplit(":", 1)
    return host, int(port)


def health(process: AdminProcess) -> int:
    host, port = host_port(process)
    connection = http.client.HTTPConnection(host, port, timeout=ANSWER_WITHIN)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_heads_trickling_in_hold_no_thread(admin: AdminProcess) -> None:
    """gunicorn's own worker gives each of these a thread until its head is whole, 20 s here."""
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: "
    with Trickle(host_port(admin), THREADS + 3, head, b"a" * 100):
        for _ in range(3):
            assert health(admin) == 200


@pytest.mark.parametrize(
    "second",
    [
        b"GET /health HTTP/1.1\r\nX-Pad: ",
        b"POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 200\r\n\r\nemail=",
    ],
    ids=["half a head", "a head and half a body"],
)
def test_a_request_pipelined_half_behind_an_answered_one_holds_no_thread(
    admin: AdminProcess, second: bytes
) -> None:
    first = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with Trickle(host_port(admin), THREADS + 3, first + second, b"a" * 100) as slow:
        for sock in slow.sockets:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        for _ in range(3):
            assert health(admin) == 200


def test_a_slow_small_body_holds_no_thread_and_a_whole_one_is_answered(
    admin: AdminProcess,
) -> None:
    body = b"email=a%40example.com&password=wrong"
    head = (
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with Trickle(host_port(admin), THREADS + 3, head, body, interval=0.05) as slow:
        for _ in range(3):
            assert health(admin) == 200
        slow.thread.join(30)  # the whole body has arrived now: each request is answered
        for sock in slow.sockets:
            assert sock.recv(65536).startswith(b"HTTP/1.1 ")  # the login page's answer


def test_a_large_body_without_a_session_is_refused_once_its_first_64_kib_are_in(
    admin: AdminProcess,
) -> None:
    """Past the first 64 KiB a thread would read the body, for up to web.request-timeout: from
    a client not signed in it is refused instead, without waiting for the rest."""
    with socket.create_connection(host_port(admin), timeout=15) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nContent-Length: 200000\r\n\r\n" + b"a" * 100_000
        )
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"needs a signed-in session or an API token" in answer


def test_stalled_tls_handshakes_hold_no_thread(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    admin = HTTPSAdmin(tmp_path / "admin", pki)  # two threads
    admin.start()
    stalled: list[socket.socket] = []
    try:
        for _ in range(admin.threads + 3):
            sock = socket.create_connection(host_port(admin), timeout=10)
            sock.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello's first bytes, then nothing
            stalled.append(sock)
        session = requests.Session()
        session.trust_env = False
        session.verify = str(pki.ca)
        for _ in range(3):
            assert session.get(f"{admin.url}/health", timeout=ANSWER_WITHIN).status_code == 200
    finally:
        for sock in stalled:
            sock.close()
        admin.stop()


def test_ingest_answers_a_body_cut_off_midway_503_in_json(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> None:
    influxdb = servers.influxdb()
    with app.app_context():
        key = issue_collector_key(database.session(), app.extensions["pa_hasher"], "slow", "web")
    influxdb.create_database(key.database)
    environment = ingest_environment(
        TEST_SECRET, database_url, influxdb, tmp_path / "metrics", LIMITS_RATE="0",
        WEB_REQUEST_TIMEOUT="2", WEB_THREADS="1", WEB_WORKERS="1",
    )  # fmt: skip
    ingest = servers.start(IngestProcess(servers.base_dir, environment))
    now = time.time_ns()
    lines = b"".join(b"cpu,core=%d value=1 %d\n" % (i, now) for i in range(5000))
    with socket.create_connection(host_port(ingest), timeout=15) as sock:
        sock.sendall(
            b"POST /api/v2/write?bucket=b&org=o HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Token %s\r\nContent-Length: %d\r\n\r\n"
            % (key.key.encode(), len(lines))
            + lines[: len(lines) // 2]
        )
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 "), head  # 408: InfluxDB clients drop the batch
    assert b"\r\nRetry-After: 1\r\n" in head
    assert json.loads(body)["message"] == (
        "the request body arrived too slowly (the request did not arrive whole within 2 s) "
        "and nothing was stored: send it again (in smaller batches if this recurs)"
    )
    written = requests.post(f"{ingest.url}/api/v2/write?bucket=b&org=o", data=lines,
                            headers={"Authorization": f"Token {key.key}"}, timeout=30)  # fmt: skip
    assert written.status_code == 204, written.text
    rows = influxdb.rows("SELECT count(value) FROM cpu", db=key.database)
    assert int(rows[0]["count"]) == 5000  # the cut-off batch stored nothing; the whole one all


def test_silent_connections_do_not_count_against_the_threads(admin: AdminProcess) -> None:
    silent = [socket.create_connection(host_port(admin), timeout=10) for _ in range(THREADS + 3)]
    try:
        assert health(admin) == 200
    finally:
        for sock in silent:
            sock.close()


def test_a_refused_request_with_an_unread_body_is_closed_and_the_next_served(
    admin: AdminProcess,
) -> None:
    """An unread body left behind is drained only briefly; the connection then closes, after
    its answer was sent whole."""
    with socket.create_connection(host_port(admin), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n" + b"{" * 70_000
        )
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), head
    length = next(
        line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    assert len(body) == int(length.split(b":")[1])  # not cut short by a reset
    assert health(admin) == 200


def test_a_client_expecting_100_continue_is_told_to_go_on(admin: AdminProcess) -> None:
    """Its body comes only after the interim answer, so the worker cannot wait for it first."""
    body = b"email=a%40example.com&password=wrong"
    with socket.create_connection(host_port(admin), timeout=ANSWER_WITHIN) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
            % len(body)
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")  # no CSRF token: refused, answered
