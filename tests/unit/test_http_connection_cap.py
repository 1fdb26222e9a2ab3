"""The connection cap of exporter.http: idle connections give way, busy ones make others wait.

Connections that send nothing must not lock scrapes and /health out (node_exporter, which has no
cap, answers at once); the cap must still bound the threads when every connection is busy.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from exporter.http import MAX_CONNECTIONS, HTTPServer, Request, Response
from exporter.model import GAUGE, MetricFamily, single
from exporter.registry import Registry
from exporter.server import ExporterServer
from exporter.webconfig import load as load_web_config
from perfanalysis.testing.servers import wait_until
from tests.support.tls import make_pki

GENEROUS = 10.0  # seconds: a deadline for what takes milliseconds, never a measurement


class OneGauge:
    name = "one"

    def collect(self) -> list[MetricFamily]:
        return [single("test_gauge", "help", GAUGE, 1.0)]


@contextlib.contextmanager
def running(server: HTTPServer) -> Iterator[tuple[str, int]]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def closed_by_server(conn: socket.socket, wait: float) -> bool:
    """True once the server has closed ``conn`` (recv sees the end), False after ``wait`` s."""
    if not select.select([conn], [], [], wait)[0]:
        return False
    try:
        return conn.recv(65536) == b""
    except ConnectionResetError:
        return True


def idle_connections(address: tuple[str, int], count: int) -> list[socket.socket]:
    return [socket.create_connection(address, timeout=GENEROUS) for _ in range(count)]


def test_idle_connections_at_the_cap_do_not_lock_scrapes_and_health_out() -> None:
    server = ExporterServer(("127.0.0.1", 0), Registry([OneGauge()]))
    with running(server) as (host, port):
        idle = idle_connections((host, port), MAX_CONNECTIONS)
        try:
            wait_until(lambda: server._open == MAX_CONNECTIONS, GENEROUS, 0.01, "every slot taken")
            scrape = requests.get(f"http://{host}:{port}/metrics", timeout=GENEROUS)
            assert scrape.status_code == 200
            assert "test_gauge 1" in scrape.text
            assert requests.get(f"http://{host}:{port}/health", timeout=GENEROUS).ok
            assert closed_by_server(idle[0], GENEROUS), "the longest idle was not closed"
            assert not closed_by_server(idle[-1], 0), "the newest idle was closed"
            assert server._open <= MAX_CONNECTIONS
        finally:
            for conn in idle:
                conn.close()


def test_idle_connections_in_the_tls_handshake_give_way_too(tmp_path: Path) -> None:
    """With TLS on, a connection that sends nothing waits in the handshake: it is idle too."""
    pki = make_pki(tmp_path)
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config: {{cert_file: {pki.cert}, key_file: {pki.key}}}\n")
    server = ExporterServer(
        ("127.0.0.1", 0), Registry([OneGauge()]), web_config=load_web_config(str(config)),
        max_connections=4,
    )  # fmt: skip
    with running(server) as (host, port):
        idle = idle_connections((host, port), 4)
        try:
            wait_until(lambda: server._open == 4, GENEROUS, 0.01, "every slot taken")
            url = f"https://{host}:{port}/metrics"
            # within the handshake timeout (10 s), after which a plain cap would free a slot
            assert requests.get(url, timeout=5, verify=str(pki.ca)).status_code == 200
            assert closed_by_server(idle[0], GENEROUS)
        finally:
            for conn in idle:
                conn.close()


def test_the_connection_idle_longest_gives_way_not_the_oldest() -> None:
    """``first`` connects first but has just been answered; ``second`` has sent nothing since
    it connected: ``second`` has been idle longer and is the one closed for a newcomer."""
    request = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"
    server = HTTPServer(("127.0.0.1", 0), echo, max_connections=2)
    with running(server) as address:
        first = socket.create_connection(address, timeout=GENEROUS)
        second = socket.create_connection(address, timeout=GENEROUS)
        with first, second:
            wait_until(lambda: server._open == 2, GENEROUS, 0.01, "both accepted")
            first.sendall(request % b"first")
            assert first.recv(65536).endswith(b"GET /first -")
            with socket.create_connection(address, timeout=GENEROUS) as third:
                third.sendall(request % b"third")
                assert third.recv(65536).endswith(b"GET /third -")
            assert closed_by_server(second, GENEROUS)
            first.sendall(request % b"again")
            assert first.recv(65536).endswith(b"GET /again -")


def echo(request: Request) -> Response:
    return Response(200, f"{request.method} {request.target} -".encode())


def test_connections_busy_with_requests_make_new_ones_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The cap still bounds the threads: at it, with every connection busy answering, a new
    connection waits in the listen backlog until one is answered."""
    entered = threading.Semaphore(0)
    release = threading.Event()

    def slow(request: Request) -> Response:
        if request.path == "/slow":
            entered.release()
            assert release.wait(GENEROUS), "the test never released the slow requests"
        return echo(request)

    server = HTTPServer(("127.0.0.1", 0), slow, max_connections=2)
    with (
        caplog.at_level(logging.WARNING, logger="exporter.http"),
        running(server) as address,
    ):
        busy = [socket.create_connection(address, timeout=GENEROUS) for _ in range(2)]
        for conn in busy:
            conn.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in busy:
            assert entered.acquire(timeout=GENEROUS)
        with socket.create_connection(address, timeout=GENEROUS) as third:
            third.sendall(b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
            assert not select.select([third], [], [], 0.5)[0], "served beyond the cap"
            assert server._open == 2
            release.set()
            for conn in busy:
                assert conn.recv(65536).endswith(b"GET /slow -")  # busy ones were not cut
            assert third.recv(65536).endswith(b"GET /third -")
        for conn in busy:
            conn.close()
    assert "2 connections open (--web.max-connections), all busy with requests" in caplog.text


def test_a_new_connection_has_a_shorter_deadline_for_its_first_request() -> None:
    """A connection that never sends a request is closed after the first-request timeout, while
    one kept alive after an answer waits the whole idle timeout for its next request."""
    server = HTTPServer(("127.0.0.1", 0), echo)
    server.first_request_timeout = 0.5
    with running(server) as address:
        with socket.create_connection(address, timeout=GENEROUS) as silent:
            started = time.monotonic()
            assert closed_by_server(silent, GENEROUS), "a silent connection was kept open"
            assert time.monotonic() - started >= 0.5
        with socket.create_connection(address, timeout=GENEROUS) as kept:
            kept.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            assert kept.recv(65536).endswith(b"GET /one -")
            assert not closed_by_server(kept, 1.0), "the idle timeout was the first request's"
        wait_until(lambda: server._open == 0, GENEROUS, 0.01, "every connection's thread to end")
