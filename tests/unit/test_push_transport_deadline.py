"""--push.timeout bounds a whole request: resolving, connecting, sending and the whole answer.

Before, the transport set the socket's timeout once per buffered read: a BufferedReader calls recv
as many times as one line or read needs, and each recv waited the full timeout again, so a peer
trickling a byte at a time held a 2 s request open for hours (8192 x the timeout for a status
line, 65536 x for a body). getaddrinfo ran in the request's thread, ignoring the timeout (a
nameserver that does not answer: 10 s), and abort() could not end it, nor a connect.

Each server here trickles for GIVE_UP seconds at most, then closes: without the fix a request ran
that long (or until a lookup stand-in gave up), failing the bound instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from exporter.push.transport import Connection, Endpoint, TLSFiles, TransportError
from perfanalysis.testing.servers import wait_until
from tests.support.tls import PKI, make_pki
from tests.unit.test_push_client import Answer, Scripted, always, scripted_servers

BUDGET = 0.5  # the request's timeout
MARGIN = 1.0  # what a loaded machine may add to it
GIVE_UP = 8.0  # seconds a server trickles before it closes
PERIOD = 0.02  # between trickled bytes: well within any one recv's timeout

HEADS = {
    # a status line that never ends
    "status line": b"HTTP/1.1 503 Busy",
    # a header line that never ends
    "header": b"HTTP/1.1 503 Busy\r\nX-Slow: ",
    "body": b"HTTP/1.1 503 Busy\r\nContent-Length: 100000\r\n\r\n",
    "chunked body": b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n",
    "body until close": b"HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\n",
}


class Trickler:
    """Reads a request's head, sends ``head``, then one byte every PERIOD until GIVE_UP."""

    def __init__(self, head: bytes, tls: ssl.SSLContext | None = None) -> None:
        self.head = head
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.scheme = "https" if tls else "http"
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with contextlib.suppress(OSError), conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            received = b""
            while b"\r\n\r\n" not in received:
                piece = conn.recv(65536)
                if not piece:
                    return
                received += piece
            conn.sendall(self.head)
            ends = time.monotonic() + GIVE_UP
            while time.monotonic() < ends and not self.done.wait(PERIOD):
                conn.sendall(b"x")  # each byte a TLS record of its own over https

    def stop(self) -> None:
        self.done.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(GIVE_UP + 5)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_context(pki: PKI) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    return context


def timed_request(connection: Connection, body: bytes = b"x") -> tuple[TransportError, float]:
    started = time.monotonic()
    with pytest.raises(TransportError) as raised:
        connection.request("POST", "/api/v2/write", body, {})
    return raised.value, time.monotonic() - started


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("what", list(HEADS))
def test_an_answer_trickled_a_byte_at_a_time_times_out_with_the_request(
    what: str, scheme: str, pki: PKI
) -> None:
    server = Trickler(HEADS[what], server_context(pki) if scheme == "https" else None)
    try:
        tls = TLSFiles(ca_file=str(pki.ca)) if scheme == "https" else None
        connection = Connection(
            Endpoint.parse(f"{scheme}://127.0.0.1:{server.port}"), BUDGET, "test", tls
        )
        error, took = timed_request(connection)
    finally:
        server.stop()
    assert error.kind == "timeout", error
    assert str(error).startswith(f"timed out after {BUDGET:g}s")
    assert took < BUDGET + MARGIN


def test_a_peer_reading_the_request_slowly_times_out_with_the_request() -> None:
    """Sending is bounded too. (Python's socket.sendall has counted its timeout for the whole
    call since 3.5, and an SSL write too; the transport's own loop gives each send what is left
    rather than rely on it: this guards that.)"""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    done = threading.Event()

    def read_slowly() -> None:
        conn, _ = listener.accept()
        with conn:
            while not done.wait(PERIOD) and conn.recv(1024):
                pass

    reader = threading.Thread(target=read_slowly, daemon=True)
    reader.start()
    try:
        connection = Connection(
            Endpoint.parse(f"http://127.0.0.1:{listener.getsockname()[1]}"), BUDGET, "test"
        )
        error, took = timed_request(connection, b"x" * (32 << 20))
    finally:
        done.set()
        listener.close()
        reader.join(5)
    assert error.kind == "timeout", error
    assert "sending the request" in str(error)
    assert took < BUDGET + MARGIN


# -- the name's lookup


class SlowLookups:
    """socket.getaddrinfo for NAME blocks until ``release`` (or GIVE_UP), then says 127.0.0.1."""

    NAME = "ingest.test"

    def __init__(self, real: Callable[..., list[Any]]) -> None:
        self.real = real
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def __call__(self, host: str, port: object, *args: Any, **kwargs: Any) -> list[Any]:
        if host != self.NAME:
            return self.real(host, port, *args, **kwargs)
        self.calls += 1
        self.entered.set()
        self.release.wait(GIVE_UP)
        return self.real("127.0.0.1", port, *args, **kwargs)


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowLookups]:
    slow = SlowLookups(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", slow)
    yield slow
    slow.release.set()


@pytest.fixture
def ingest() -> Iterator[Scripted]:
    with scripted_servers() as start:
        yield start(always(Answer(204, close_after=True)))  # a new connection for each request


def by_name(server: Scripted, timeout: float) -> Connection:
    port = server.server_address[1]
    return Connection(Endpoint.parse(f"http://{SlowLookups.NAME}:{port}"), timeout, "test")


def resolver_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "push-resolver")


def test_a_lookup_that_does_not_answer_times_out_with_the_request(
    lookups: SlowLookups, ingest: Scripted
) -> None:
    error, took = timed_request(by_name(ingest, BUDGET))
    assert error.kind == "timeout", error
    assert str(error) == f"timed out after {BUDGET:g}s resolving {SlowLookups.NAME}"
    assert took < BUDGET + MARGIN


def test_abort_ends_a_request_waiting_for_its_lookup(
    lookups: SlowLookups, ingest: Scripted
) -> None:
    connection = by_name(ingest, 60.0)
    errors: list[TransportError] = []

    def request() -> None:
        try:
            connection.request("POST", "/api/v2/write", b"x", {})
        except TransportError as exc:
            errors.append(exc)

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    assert lookups.entered.wait(10)
    aborted = time.monotonic()
    connection.abort()
    thread.join(GIVE_UP + 5)
    assert not thread.is_alive()
    assert time.monotonic() - aborted < MARGIN
    assert [str(e) for e in errors] == ["aborted"]


def test_the_next_request_waits_for_the_lookup_in_flight_on_the_same_thread(
    lookups: SlowLookups, ingest: Scripted
) -> None:
    """A lookup outliving its request is not started again: the next request waits for its
    answer. One resolver thread serves every lookup of a connection, not one per request."""
    threads_before = resolver_threads()
    connection = by_name(ingest, BUDGET)
    error, _ = timed_request(connection)
    assert error.kind == "timeout"
    lookups.release.set()
    for _ in range(3):  # the server closes after each answer: each request looks up again
        assert connection.request("POST", "/api/v2/write", b"x", {}, timeout=5.0).status == 204
    assert len(ingest.received) == 3
    assert lookups.calls == 3  # the first lookup (answered late) served the second request
    assert resolver_threads() == threads_before + 1


def test_an_ip_address_is_not_looked_up_on_a_thread(lookups: SlowLookups, ingest: Scripted) -> None:
    threads_before = resolver_threads()
    connection = Connection(Endpoint.parse(ingest.url), BUDGET, "test")
    assert connection.request("POST", "/api/v2/write", b"x", {}).status == 204
    assert resolver_threads() == threads_before
    assert lookups.calls == 0


# -- connecting


def test_abort_ends_a_request_waiting_to_connect() -> None:
    """A listener whose accept queue is full drops new SYNs: connect waits in SYN_SENT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    queued = socket.create_connection(address, timeout=5)  # fills the accept queue
    connection = Connection(Endpoint.parse(f"http://127.0.0.1:{address[1]}"), 60.0, "test")
    errors: list[TransportError] = []

    def request() -> None:
        try:
            connection.request("POST", "/api/v2/write", b"x", {})
        except TransportError as exc:
            errors.append(exc)

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    try:
        wait_until(lambda: connection._connecting is not None, 10, 0.005, "the connect")
        aborted = time.monotonic()
        connection.abort()
        thread.join(10)
        assert not thread.is_alive()
        assert time.monotonic() - aborted < MARGIN
    finally:
        queued.close()
        listener.close()
    assert [str(e) for e in errors] == ["aborted"]


def test_a_request_given_no_time_fails_at_once_as_a_timeout() -> None:
    with scripted_servers() as start:
        server = start(always(Answer(204)))
        connection = Connection(Endpoint.parse(server.url), 10.0, "test")
        with pytest.raises(TransportError) as raised:
            connection.request("POST", "/api/v2/write", b"x", {}, timeout=0.0)
        assert raised.value.kind == "timeout"
        assert server.received == []
        assert connection.request("POST", "/api/v2/write", b"x", {}, timeout=1.0).status == 204
