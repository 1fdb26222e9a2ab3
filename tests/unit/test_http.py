"""The exporter's own HTTP/1.1 server, spoken to over raw sockets."""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from exporter.http import (
    ACCEPT_PAUSE_FIRST,
    ACCEPT_PAUSE_MAX,
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    HTTPServer,
    Request,
    Response,
    http_date,
)
from exporter.model import GAUGE, MetricFamily, single
from exporter.registry import Registry
from exporter.server import ExporterServer
from perfanalysis.testing.servers import wait_until


def echo(request: Request) -> Response:
    body = f"{request.method} {request.target} {request.headers.get('x-test', '-')}".encode()
    return Response(200, body)


@pytest.fixture
def address() -> Iterator[tuple[str, int]]:
    server = HTTPServer(("127.0.0.1", 0), echo)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()


def exchange(address: tuple[str, int], raw: bytes) -> bytes:
    """Send raw bytes, then read until the server closes the connection."""
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_keep_alive_serves_several_requests_on_one_connection(address: tuple[str, int]) -> None:
    raw = (
        b"GET /a HTTP/1.1\r\nHost: x\r\nX-Test: one\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    reply = exchange(address, raw)
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert b"\r\n\r\nGET /a one" in reply
    assert b"\r\n\r\nGET /b -" in reply
    assert reply.endswith(b"GET /c -")
    assert b"Content-Length: 8\r\n" in reply


def test_http_1_0_closes_unless_keep_alive_is_asked(address: tuple[str, int]) -> None:
    reply = exchange(address, b"GET /x HTTP/1.0\r\n\r\nGET /never HTTP/1.0\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200") == 1
    assert b"Connection: close" in reply


def test_head_has_headers_but_no_body(address: tuple[str, int]) -> None:
    reply = exchange(address, b"HEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 9\r\n" in reply
    assert reply.endswith(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", b"405 Method Not Allowed"),
        (b"GARBAGE\r\n\r\n", b"400 Bad Request"),
        (b"GET /x SPDY/3\r\n\r\n", b"400 Bad Request"),
        (b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n", b"400 Bad Request"),
        (b"GET /x HTTP/1.1\r\nContent-Length: lots\r\n\r\n", b"400 Bad Request"),
        (b"GET /x HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", b"413 Content Too Large"),
        (b"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501 Not Implemented"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", b"431 Request Header Fields Too Large"),
        (
            b"GET /x HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",
            b"431 Request Header Fields Too Large",
        ),
        (b"GET http://[x/metrics HTTP/1.1\r\n\r\n", b"400 Bad Request"),  # as node_exporter
        (b"GET /metrics%zz HTTP/1.1\r\n\r\n", b"400 Bad Request"),
    ],
)
def test_bad_requests_get_a_clear_status_and_a_closed_connection(
    address: tuple[str, int], raw: bytes, status: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="exporter.http"):
        reply = exchange(address, raw)
    assert reply.startswith(b"HTTP/1.1 " + status + b"\r\n")
    assert b"Connection: close\r\n" in reply
    if status.startswith(b"405"):
        assert b"Allow: GET, HEAD\r\n" in reply
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_app_error_is_a_500_and_the_server_lives_on() -> None:
    calls = []

    def flaky(request: Request) -> Response:
        calls.append(request.target)
        if request.target == "/boom":
            raise RuntimeError("boom")
        return Response(200, b"fine")

    server = HTTPServer(("127.0.0.1", 0), flaky)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        address = ("127.0.0.1", server.server_address[1])
        reply = exchange(
            address, b"GET /boom HTTP/1.1\r\n\r\nGET /ok HTTP/1.1\r\nConnection: close\r\n\r\n"
        )
        assert reply.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        assert reply.endswith(b"fine")
        assert calls == ["/boom", "/ok"]
    finally:
        server.shutdown()
        server.server_close()


def test_http_date_is_imf_fixdate() -> None:
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(1795387128) == "Sun, 22 Nov 2026 22:38:48 GMT"


@pytest.fixture
def select_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The timeout of every select() the serve loop makes, in order."""
    timeouts: list[float | None] = []
    real = selectors.DefaultSelector

    class Recording(real):  # type: ignore[valid-type,misc]
        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            timeouts.append(timeout)
            return super().select(timeout)

    monkeypatch.setattr(selectors, "DefaultSelector", Recording)
    return timeouts


def test_the_serve_loop_sleeps_until_a_connection_or_shutdown(
    select_timeouts: list[float | None],
) -> None:
    """No timeout on its select: an idle exporter never wakes (socketserver's loop wakes every
    poll_interval, 120 times a minute at 0.5 s)."""
    timeouts = select_timeouts
    server = HTTPServer(("127.0.0.1", 0), echo)
    for _ in range(2):  # and again after a shutdown: the wake-up was used up
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        address = ("127.0.0.1", server.server_address[1])
        reply = exchange(address, b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
        server.shutdown()
        thread.join(5)
        assert not thread.is_alive()
    server.server_close()
    assert timeouts
    assert set(timeouts) == {None}


def test_shutdown_stops_an_idle_loop_and_a_loop_never_started() -> None:
    server = HTTPServer(("127.0.0.1", 0), echo)
    server.shutdown()  # before serve_forever: returns at once, as socketserver's may not
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.shutdown()
    thread.join(5)
    assert not thread.is_alive()
    server.server_close()


def test_routes_match_the_percent_decoded_path_as_in_go(address: tuple[str, int]) -> None:
    def path_of(target: bytes) -> bytes:
        raw = b"GET " + target + b" HTTP/1.1\r\nConnection: close\r\n\r\n"
        return exchange(address, raw).split(b"\r\n\r\n", 1)[1]

    assert path_of(b"/metric%73") == b"GET /metric%73 -"  # the target is kept as sent
    server = ExporterServer(("127.0.0.1", 0), Registry([OneGauge()]))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        served = ("127.0.0.1", server.server_address[1])
        for target in (b"/metric%73", b"http://host:9100/metrics", b"/%6detrics?x=1"):
            reply = exchange(served, b"GET " + target + b" HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), target
            assert b"\ntest_gauge 1\n" in reply, target
        reply = exchange(served, b"GET /metrics%2Fx HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 404")
    finally:
        server.shutdown()
        server.server_close()


class OneGauge:
    name = "one"

    def collect(self) -> list[MetricFamily]:
        return [single("test_gauge", "help", GAUGE, 1.0)]


def test_out_of_descriptors_the_accept_loop_pauses_instead_of_spinning(
    monkeypatch: pytest.MonkeyPatch, select_timeouts: list[float | None]
) -> None:
    """EMFILE from accept() while a connection waits: the listening socket stays readable, so a
    loop that only retried would spin. Accepts pause 5 ms, doubling to 1 s, as in Go's server,
    and the pause resets after the next accepted connection."""
    timeouts = select_timeouts
    server = HTTPServer(("127.0.0.1", 0), echo)
    attempts: list[bool] = []
    out_of_descriptors = threading.Event()
    out_of_descriptors.set()
    get_request = server.get_request

    def limited(listener: socket.socket | None = None) -> tuple[socket.socket, tuple[str, int]]:
        attempts.append(out_of_descriptors.is_set())
        if out_of_descriptors.is_set():
            raise OSError(errno.EMFILE, "Too many open files")
        return get_request(listener)

    monkeypatch.setattr(server, "get_request", limited)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = ("127.0.0.1", server.server_address[1])
    try:
        with socket.create_connection(address, timeout=5) as waiting:
            wait_until(lambda: len(attempts) >= 7, 10, 0.01, "seven accept attempts")
            out_of_descriptors.clear()
            waiting.sendall(b"GET /late HTTP/1.1\r\nConnection: close\r\n\r\n")
            reply = b"".join(iter(lambda: waiting.recv(65536), b""))
            assert reply.endswith(b"GET /late -")  # served once descriptors are free again
        failed = attempts.count(True)
        pauses = [t for t in timeouts if t is not None]
        assert pauses[:6] == [ACCEPT_PAUSE_FIRST * 2**i for i in range(6)]
        assert len(pauses) == failed  # one pause after each failed accept: no spinning
        assert len(timeouts) <= 2 * failed + 4  # and no wake-ups besides
        assert max(pauses) <= ACCEPT_PAUSE_MAX
        out_of_descriptors.set()
        before = len(pauses)
        with socket.create_connection(address, timeout=5):
            wait_until(
                lambda: len([t for t in timeouts if t is not None]) > before, 10, 0.01, "a pause"
            )
        assert [t for t in timeouts if t is not None][before] == ACCEPT_PAUSE_FIRST  # reset
    finally:
        out_of_descriptors.clear()
        server.shutdown()
        thread.join(5)
        server.server_close()


@contextlib.contextmanager
def serving(
    idle_timeout: float = IDLE_TIMEOUT, max_connections: int = MAX_CONNECTIONS
) -> Iterator[tuple[HTTPServer, tuple[str, int]]]:
    server = HTTPServer(("127.0.0.1", 0), echo, max_connections=max_connections)
    server.idle_timeout = idle_timeout
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server, ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def closed_by_server(conn: socket.socket, wait: float) -> bool:
    """True once the server has closed ``conn`` (recv sees the end), False after ``wait`` s."""
    readable, _, _ = select.select([conn], [], [], wait)
    if not readable:
        return False
    try:
        return conn.recv(65536) == b""
    except ConnectionResetError:
        return True


def test_a_request_trickling_in_is_cut_off_at_its_deadline() -> None:
    """A byte every 0.1 s keeps each recv within any per-read timeout; the request as a whole
    still has one second (the idle timeout here) to arrive, and its thread is then freed."""
    with serving(idle_timeout=1.0) as (server, address):
        with socket.create_connection(address, timeout=5) as conn:
            started = time.monotonic()
            conn.sendall(b"GET /slow HTTP/1.1\r\nX-Test: ")
            closed = False
            while not closed and time.monotonic() - started < 10:
                try:
                    conn.sendall(b"a")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                closed = closed_by_server(conn, 0.1)
            assert closed, "the server kept a trickling request open for 10 s"
            assert time.monotonic() - started >= 1.0
        wait_until(lambda: server._open == 0, 5, 0.01, "the connection's thread to end")


def test_a_keep_alive_connection_gets_a_fresh_deadline_for_each_request() -> None:
    with (
        serving(idle_timeout=1.0) as (_, address),
        socket.create_connection(address, timeout=5) as conn,
    ):
        started = time.monotonic()
        answers = 0
        while time.monotonic() - started < 2.5:  # longer than one deadline in all
            conn.sendall(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = conn.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply
            answers += 1
            assert not closed_by_server(conn, 0.4)
        assert answers >= 4
        assert closed_by_server(conn, 5)  # idle for a whole deadline: closed


def test_a_cap_below_one_connection_is_refused() -> None:
    with pytest.raises(ValueError, match="max_connections must be at least 1, not 0"):
        HTTPServer(("127.0.0.1", 0), echo, max_connections=0)
