"""The push transport when the server answers before the body is in, then closes without reading it.

A proxy's body limit (nginx's client_max_body_size), or ingest itself, answers 413, 401 or 429 on
the request head alone and closes the connection with the body unread. With a body larger than
the kernel's socket buffers the client's write then fails (EPIPE or ECONNRESET; SSLEOFError over
TLS) while the answer waits, received, in its socket: the client must read it and act on it
(split on 413, re-read the key on 401) instead of retrying the same batch as a network error
forever. The server here is a raw socket, so that nothing drains the body behind our back.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import gzip
import os
import socket
import ssl
import struct
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exporter.push.client import PushClient, Verdict, compress
from exporter.push.keyfile import KeyFile
from exporter.push.transport import Connection, Endpoint, TLSFiles, TransportError
from tests.support.tls import PKI, make_pki

SERVER_RCVBUF = 64 * 1024
TCP_CLOSE = 7  # tcp_info's tcpi_state of a connection closed (by a reset, say)


def too_large_to_buffer() -> int:
    """A body size no write can hand to the kernel whole while the server reads nothing: the
    client's largest send buffer (tcp_wmem's maximum) plus the server's receive buffer, and 2 MiB."""
    wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    return wmem_max + 4 * SERVER_RCVBUF + (2 << 20)


def answer(status: int, reason: str, *headers: str, close: bool = True) -> bytes:
    body = b'{"code":"refused","message":"refused early"}'
    head = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"Connection: {'close' if close else 'keep-alive'}",
        *headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


TOO_LARGE = answer(413, "Request Entity Too Large")
ACCEPTED = b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"


@dataclass
class EarlyRefusal:
    """Reads each request's head; a Content-Length over ``limit`` gets ``refusal`` at once (no
    answer when empty) and the connection is closed with the body unread, which makes Linux send
    a reset: after ``shutdown(SHUT_WR)`` (a FIN behind the answer) when ``shutdown_first``. Other
    requests are read whole, their gzip'd lines kept, and answered 204 on a kept-alive connection.
    """

    limit: int
    refusal: bytes = TOO_LARGE
    shutdown_first: bool = False
    tls: ssl.SSLContext | None = None
    accepted_lines: list[bytes] = field(default_factory=list)
    bodies_read: list[int] = field(default_factory=list)  # bytes of each body read whole
    refused: int = 0
    connections: int = 0
    errors: list[BaseException] = field(default_factory=list)
    open: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        # accepted sockets inherit it: the window stays small however little the server reads
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SERVER_RCVBUF)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self.threads.append(accept)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # the listener closed: the test is over
                return
            with self.lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with self.lock:
            self.open.append(conn)
        try:
            conn.settimeout(30)
            # answers leave at once, not held by Nagle behind a TLS session ticket not yet acked
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            buffered = b""
            while True:
                while b"\r\n\r\n" not in buffered:
                    piece = conn.recv(65536)
                    if not piece:
                        return  # the client closed between requests
                    buffered += piece
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = content_length(head)
                if length > self.limit:
                    with self.lock:
                        self.refused += 1
                    conn.sendall(self.refusal)
                    if self.shutdown_first:  # no TLS close_notify; the client may be gone
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(conn, socket.SHUT_WR)
                    wait_acknowledged(conn)
                    return  # closed in finally, the body unread: a reset
                while len(buffered) < length:
                    piece = conn.recv(65536)
                    if not piece:
                        raise AssertionError("client closed inside a body")
                    buffered += piece
                body, buffered = buffered[:length], buffered[length:]
                with self.lock:
                    self.bodies_read.append(len(body))
                    self.accepted_lines += gzip.decompress(body).splitlines()
                conn.sendall(ACCEPTED)
        except Exception as exc:  # reported by stop()
            self.errors.append(exc)
        finally:
            conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        self.listener.close()
        with self.lock:
            for conn in self.open:  # a connection the client left open: wake the recv
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)
        deadline = time.monotonic() + 10
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), "a server thread did not end"
        assert not self.errors, self.errors


def wait_acknowledged(conn: socket.socket, timeout: float = 10.0) -> None:
    """Wait until the client's kernel has acknowledged everything sent (SIOCOUTQ: bytes sent but
    not acknowledged, or not sent yet). A close with unread data sends a reset, and a reset
    discards what is still queued to send: the answer would then never leave this server, and no
    client could read it."""
    deadline = time.monotonic() + timeout
    while struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, bytes(4)))[0]:
        if conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_CLOSE:
            return  # the client reset the connection: nothing more will be acknowledged
        assert time.monotonic() < deadline, "the client never acknowledged the answer"
        time.sleep(0.001)


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(params=["http", "https"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start(scheme: str, pki: PKI) -> Iterator[Callable[..., EarlyRefusal]]:
    """``start(limit, ...)``: an EarlyRefusal server over ``scheme``, stopped (and checked for
    errors) at the end of the test."""
    servers: list[EarlyRefusal] = []
    context = None
    if scheme == "https":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.cert, pki.key)

    def make(limit: int, refusal: bytes = TOO_LARGE, shutdown_first: bool = False) -> EarlyRefusal:
        server = EarlyRefusal(limit, refusal, shutdown_first, context)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def tls_for(server: EarlyRefusal, pki: PKI) -> TLSFiles | None:
    return TLSFiles(ca_file=str(pki.ca)) if server.tls else None


def connect(server: EarlyRefusal, pki: PKI) -> Connection:
    endpoint = Endpoint.parse(server.url)
    return Connection(endpoint, 10.0, "test", tls_for(server, pki))


def post(connection: Connection, body: bytes) -> int:
    return connection.request("POST", "/api/v2/write", body, {"Content-Encoding": "gzip"}).status


def gzip_lines(count: int, start: int = 0, pad: int = 600, epoch_ns: int = 1_000) -> bytes:
    """``count`` line-protocol points at ``epoch_ns + i`` nanoseconds, each with ``pad`` random
    bytes in a string field so that gzip cannot shrink them much: about ``count * pad`` bytes."""
    lines = (
        f'm,host=h pad="{base64.b64encode(os.urandom(pad)).decode()}",value={i}.0 {epoch_ns + i}\n'
        for i in range(start, start + count)
    )
    return compress("".join(lines).encode())


def large_batch(epoch_ns: int = 1_000) -> tuple[bytes, int]:
    """A gzip'd batch larger than too_large_to_buffer(), and its point count."""
    points = too_large_to_buffer() // 560 + 1
    body = gzip_lines(points, epoch_ns=epoch_ns)
    assert len(body) > too_large_to_buffer()
    return body, points


@pytest.mark.parametrize("shutdown_first", [False, True], ids=["reset", "shutdown-then-reset"])
@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (TOO_LARGE, 413),
        (answer(401, "Unauthorized", 'WWW-Authenticate: Token realm="ingest"'), 401),
        (answer(429, "Too Many Requests", "Retry-After: 7"), 429),
        # as gunicorn answers ingest's 413 and 401: keep-alive, then a reset once the body comes
        (answer(413, "Request Entity Too Large", close=False), 413),
    ],
    ids=["413", "401", "429", "413-keep-alive"],
)
def test_an_answer_sent_before_the_body_is_read_and_the_connection_dropped(
    start: Callable[..., EarlyRefusal], pki: PKI, refusal: bytes, status: int, shutdown_first: bool
) -> None:
    server = start(limit=0, refusal=refusal, shutdown_first=shutdown_first)
    connection = connect(server, pki)
    body = os.urandom(too_large_to_buffer())  # the transport does not look inside
    response = connection.request("POST", "/api/v2/write", body, {})
    assert response.status == status
    assert response.body == b'{"code":"refused","message":"refused early"}'
    assert server.bodies_read == []  # refused on the head alone
    # the connection is spent (the request was not sent whole): the next request opens another
    # rather than writing into a dead one
    assert post(connection, b"x" * 10) == status
    assert server.connections == 2
    assert server.refused == 2


def test_a_server_that_closes_without_answering_is_a_transport_error(
    start: Callable[..., EarlyRefusal], pki: PKI
) -> None:
    server = start(limit=0, refusal=b"")
    connection = connect(server, pki)
    with pytest.raises(TransportError, match="connection closed without a response") as raised:
        connection.request("POST", "/api/v2/write", os.urandom(too_large_to_buffer()), {})
    assert raised.value.kind == "error"
    assert server.refused == 1


def test_a_large_body_read_whole_is_answered_on_one_kept_alive_connection(
    start: Callable[..., EarlyRefusal], pki: PKI
) -> None:
    server = start(limit=1 << 40)
    connection = connect(server, pki)
    first, second = gzip_lines(3000, pad=3000), gzip_lines(5, start=3000)
    assert len(first) > too_large_to_buffer()
    assert post(connection, first) == 204
    assert post(connection, second) == 204
    assert server.connections == 1
    assert server.bodies_read == [len(first), len(second)]
    assert len(server.accepted_lines) == 3005


def client_for(server: EarlyRefusal, pki: PKI, key_file: Path) -> PushClient:
    return PushClient(server.url, KeyFile(str(key_file)), 10.0, tls_for(server, pki))


@pytest.mark.parametrize("shutdown_first", [False, True], ids=["reset", "shutdown-then-reset"])
def test_deliver_splits_a_batch_refused_early_until_every_point_is_accepted_once(
    start: Callable[..., EarlyRefusal], pki: PKI, key_file: Path, shutdown_first: bool
) -> None:
    server = start(limit=1 << 20, shutdown_first=shutdown_first)
    client = client_for(server, pki, key_file)
    body, points = large_batch()
    delivery = client.deliver(body, points)
    assert delivery.verdict is Verdict.SETTLED, delivery.error
    assert (delivery.sent, delivery.rejected) == (points, 0)
    assert delivery.too_large_at is not None  # the smallest batch refused with 413
    assert 1 < delivery.too_large_at < points
    assert server.refused > 0
    assert client.requests["413"] == server.refused
    assert "error" not in client.requests
    assert client.requests["204"] == len(server.bodies_read)
    assert all(length <= 1 << 20 for length in server.bodies_read)
    received = Counter(int(line.rsplit(b" ", 1)[1]) for line in server.accepted_lines)
    assert set(received.values()) == {1}  # each point once: none sent twice
    assert set(received) == {1_000 + i for i in range(points)}  # and none lost


def test_deliver_keeps_the_batch_and_rereads_the_key_on_an_early_401(
    start: Callable[..., EarlyRefusal], pki: PKI, key_file: Path
) -> None:
    refusal = answer(401, "Unauthorized", 'WWW-Authenticate: Token realm="ingest"')
    server = start(limit=0, refusal=refusal)
    client = client_for(server, pki, key_file)
    key_file.write_text("pak_id2.secret2\n")  # rotated: the client must notice
    body, points = large_batch()
    delivery = client.deliver(body, points)
    assert delivery.verdict is Verdict.UNAUTHORIZED, delivery.error
    assert delivery.error.startswith("401: the collector key was refused")
    assert delivery.retry_after == 0.0  # the key changed: retry at once
    assert (delivery.sent, delivery.rejected) == (0, 0)
    assert client.requests == {"401": 1}
    assert client.key.authorization == "Token pak_id2.secret2"


def test_deliver_retries_when_the_server_drops_a_large_request_without_an_answer(
    start: Callable[..., EarlyRefusal], pki: PKI, key_file: Path
) -> None:
    server = start(limit=0, refusal=b"")
    client = client_for(server, pki, key_file)
    body, points = large_batch()
    delivery = client.deliver(body, points)
    assert delivery.verdict is Verdict.RETRY
    assert delivery.error == "error: connection closed without a response"
    assert client.requests == {"error": 1}
