"""ingest/http1.py against a loopback server that sends scripted bytes: framing, reuse, refusal."""

from __future__ import annotations

import itertools
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest import http1
from ingest.http1 import MAX_BODY, Answer, BadAnswer, Connection
from ingest.storage import (
    StorageConflict,
    StorageTimedOut,
    StorageUnavailable,
    StorageUnreachable,
    V1Writer,
)
from perfanalysis.namelookup import NameLookups
from perfanalysis.testing.servers import wait_until
from tests.support.scripted_http import ScriptedHTTP
from tests.support.tls import self_signed_certificate

HEAD = b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def exchange(server: ScriptedHTTP, body: bytes = b"m v=1 1") -> tuple[Connection, Answer]:
    connection = Connection("127.0.0.1", server.port, timeout=5)
    return connection, connection.exchange(HEAD % len(body), body)


CHUNKED = (
    b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'19;ext=1\r\n{"error":"partial write: \r\n'
    b'15\r\nfield type conflict"}\r\n'
    b"0\r\nX-Trailer: yes\r\n\r\n"
)


@pytest.mark.parametrize("trickle", [False, True])
def test_chunked_answers_are_decoded_and_the_connection_is_reused(trickle: bool) -> None:
    server = ScriptedHTTP([(CHUNKED, False),
                           (b"HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 1.6.7\r\n\r\n", False)],
                          trickle=trickle)  # fmt: skip
    connection, first = exchange(server)
    assert first.status == 400
    assert first.body == b'{"error":"partial write: field type conflict"}'
    assert first.reusable
    second = connection.exchange(HEAD % 3, b"a=1")
    assert (second.status, second.body, second.reusable) == (204, b"", True)
    assert server.connections == 1
    connection.close()
    server.close()


def test_an_interim_100_continue_is_skipped() -> None:
    server = ScriptedHTTP(
        [(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", False)]
    )
    connection, answer = exchange(server)
    assert answer.status == 204
    connection.close()
    server.close()


def test_connection_close_and_http_1_0_answers_are_not_reused() -> None:
    server = ScriptedHTTP([(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", True)])
    connection, answer = exchange(server)
    assert answer.reusable is False
    assert connection.sock is None
    server.close()


def test_an_answer_without_length_ends_with_the_connection() -> None:
    server = ScriptedHTTP([(b"HTTP/1.0 500 Internal Server Error\r\n\r\noverloaded", True)])
    _, answer = exchange(server)
    assert (answer.status, answer.body, answer.reusable) == (500, b"overloaded", False)
    server.close()


def test_bytes_after_the_answer_make_the_connection_unusable() -> None:
    server = ScriptedHTTP(
        [(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", False)]
    )
    connection, answer = exchange(server)
    assert answer.status == 204
    assert answer.reusable is False
    assert connection.sock is None
    server.close()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (b"SMTP ready\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), "not a storage answer"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\n bad\r\n\r\n", "bad header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed within a body"),
    ],
)  # fmt: skip
def test_malformed_answers_are_refused_and_close_the_connection(
    answer: bytes, problem: str
) -> None:
    server = ScriptedHTTP([(answer, True)])
    connection = Connection("127.0.0.1", server.port, timeout=5)
    with pytest.raises(BadAnswer, match=problem):
        connection.exchange(HEAD % 1, b"x")
    assert connection.sock is None
    server.close()


def test_a_large_body_arrives_whole() -> None:
    body = bytes(range(256)) * (32 << 10)  # 8 MiB: more than a socket buffer takes at once
    server = ScriptedHTTP([(NO_CONTENT, False)])
    connection, answer = exchange(server, body)
    assert answer.status == 204
    assert server.requests[0] == HEAD % len(body) + body
    connection.close()
    server.close()


def test_the_v1_writer_reads_a_chunked_refusal_and_keeps_its_connection() -> None:
    server = ScriptedHTTP([(CHUNKED, False), (NO_CONTENT, False)])
    writer = V1Writer(f"http://127.0.0.1:{server.port}", "", "", timeout=5)
    with pytest.raises(StorageConflict, match="field type conflict"):
        writer.write("db", b"m v=1i 1")
    writer.write("db", b"m v=1 1")
    assert server.connections == 1
    assert server.requests[1].startswith(b"POST /write?db=db&precision=ns HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in server.requests[1]
    writer.close()
    server.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    return self_signed_certificate(tmp_path)


def test_https_carries_large_bodies_on_one_verified_connection(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server = ScriptedHTTP([(NO_CONTENT, False)] * 2, tls=server_side)
    connection = Connection("127.0.0.1", server.port, 5, ssl.create_default_context(cafile=cert))
    body = b"m v=1 1\n" * (1 << 17)  # 1 MiB
    for _ in range(2):
        answer = connection.exchange(HEAD % len(body), body)
        assert (answer.status, answer.reusable) == (204, True)
    assert server.requests == [HEAD % len(body) + body] * 2
    assert server.connections == 1
    connection.close()
    server.close()


def test_https_refuses_a_certificate_it_does_not_trust(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server = ScriptedHTTP([(NO_CONTENT, False)], tls=server_side)
    writer = V1Writer(f"https://127.0.0.1:{server.port}", "", "", timeout=5)
    with pytest.raises(StorageUnavailable, match="SSLCertVerificationError"):
        writer.write("db", b"m v=1 1")
    assert server.requests == []
    writer.close()
    server.close()


def test_a_plain_connection_waits_in_the_kernel_with_its_timeout() -> None:
    """No poll before each send and receive, nor an ioctl at each reuse: the socket blocks,
    with SO_SNDTIMEO and SO_RCVTIMEO as its timeout; an unchanged timeout is no system call."""
    server = ScriptedHTTP([(NO_CONTENT, False), (NO_CONTENT, False)])
    connection, answer = exchange(server)
    assert answer.status == 204
    sock = connection.sock
    assert sock is not None
    assert sock.gettimeout() is None
    for option in (socket.SO_SNDTIMEO, socket.SO_RCVTIMEO):
        assert struct.unpack("@ll", sock.getsockopt(socket.SOL_SOCKET, option, 16)) == (5, 0)
    connection.set_timeout(0.25)
    seconds, micros = struct.unpack(
        "@ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    )
    assert seconds == 0
    assert 250_000 <= micros < 260_000  # the kernel keeps it in clock ticks
    assert connection.exchange(HEAD % 1, b"x").status == 204
    connection.close()
    server.close()


def test_a_silent_server_times_out_within_the_timeout() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    connection = Connection("127.0.0.1", listener.getsockname()[1], timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connection.exchange(HEAD % 1, b"x")
    assert 0.25 <= time.monotonic() - started < 3
    assert connection.sock is None
    listener.close()


def test_a_send_the_server_does_not_take_times_out_within_the_timeout() -> None:
    """A peer that reads nothing: the send waits its timeout in all, then TimeoutError (not
    the early-answer path, which would wait for an answer that is not coming)."""
    listener = socket.create_server(("127.0.0.1", 0))
    connection = Connection("127.0.0.1", listener.getsockname()[1], timeout=0.3)
    body = b"x" * (64 << 20)  # far more than the socket buffers on both sides hold
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connection.exchange(HEAD % len(body), body)
    assert 0.25 <= time.monotonic() - started < 3
    listener.close()


class PacedServer:
    """Answers each request on one connection with the next of ``answers``, each a sequence
    (possibly endless) of pieces sent ``interval`` apart, over TLS with ``tls``. It stops
    sending, and closes, when closed or ``give_up`` seconds after it started, so a client that
    waits for an endless answer fails instead of hanging the test run."""

    def __init__(
        self,
        answers: list[Iterable[bytes]],
        interval: float,
        tls: ssl.SSLContext | None = None,
        give_up: float = 5.0,
    ) -> None:
        self.answers = answers
        self.interval = interval
        self.tls = tls
        self.stopped = threading.Event()
        self.give_up_at = time.monotonic() + give_up
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
            if self.tls is not None:
                connection = self.tls.wrap_socket(connection, server_side=True)
        except OSError:  # closed by close()
            return
        with connection:
            for answer in self.answers:
                if not _read_request(connection):
                    return
                for piece in answer:
                    if time.monotonic() > self.give_up_at or self.stopped.wait(self.interval):
                        return
                    try:
                        connection.sendall(piece)
                    except OSError:  # the client gave up
                        return

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(timeout=5)


def _read_request(connection: socket.socket) -> bytes:
    """A request's head and its Content-Length's body; b"" if the connection closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(1 << 16)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = connection.recv(1 << 16)
        if not chunk:
            return b""
        body += chunk
    return data


def one_byte_at_a_time(data: bytes) -> Iterator[bytes]:
    return (data[index : index + 1] for index in range(len(data)))


TIMEOUT = 0.5
SLACK = 0.4  # a shared two-core machine may be slow to wake a thread


TRICKLED_ANSWERS = {
    "head": lambda: one_byte_at_a_time(b"HTTP/1.1 204 No Content\r\nX-Pad: " + b"a" * 10_000),
    "interim answers": lambda: itertools.repeat(b"HTTP/1.1 100 Continue\r\n\r\n"),
    "body": lambda: itertools.chain(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"], itertools.repeat(b"x")
    ),
    "chunked body": lambda: itertools.chain(
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
        itertools.repeat(b"1\r\nx\r\n"),
    ),
}


@pytest.mark.parametrize("what", TRICKLED_ANSWERS)
def test_a_trickled_answer_is_cut_at_the_deadline(what: str) -> None:
    """Every piece comes well within the timeout, but the answer as a whole does not: the
    exchange ends at its deadline, not one timeout after the last piece."""
    server = PacedServer([TRICKLED_ANSWERS[what]()], interval=0.02)
    connection = Connection("127.0.0.1", server.port, timeout=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connection.exchange(HEAD % 1, b"x")
    took = time.monotonic() - started
    assert TIMEOUT - 0.01 <= took < TIMEOUT + SLACK, what
    assert connection.sock is None  # half an answer read: never used again
    server.close()


def test_a_trickled_answer_over_tls_is_cut_at_the_deadline(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    answer = one_byte_at_a_time(b"HTTP/1.1 204 No Content\r\n" + b"X-Pad: " + b"a" * 10_000)
    server = PacedServer([answer], interval=0.02, tls=server_side)
    client_side = ssl.create_default_context(cafile=cert)
    connection = Connection("127.0.0.1", server.port, TIMEOUT, client_side)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connection.exchange(HEAD % 1, b"x")
    assert TIMEOUT - 0.01 <= time.monotonic() - started < TIMEOUT + SLACK
    assert connection.sock is None
    server.close()


def test_the_v1_writer_reports_a_trickled_answer_as_storage_timed_out() -> None:
    """The reviewer's case: a storage answering a byte at a time, with a write's own timeout
    (as group commit gives it) shorter than the writer's."""
    server = PacedServer([one_byte_at_a_time(NO_CONTENT + b"trailing" * 100)], interval=0.1)
    writer = V1Writer(f"http://127.0.0.1:{server.port}", "", "", timeout=5)
    started = time.monotonic()
    with pytest.raises(StorageTimedOut, match=r"within 0\.5s"):
        writer.write("db", b"m v=1 1", timeout=TIMEOUT)
    assert time.monotonic() - started < TIMEOUT + SLACK
    writer.close()
    server.close()


def test_a_slow_answer_within_the_deadline_leaves_the_next_exchange_its_whole_timeout() -> None:
    """An answer whose bytes come over half the timeout succeeds and keeps the connection; the
    next exchange on it has the whole timeout again, not what the slow one had left."""
    server = PacedServer([one_byte_at_a_time(NO_CONTENT), [NO_CONTENT]], interval=0.01)
    connection = Connection("127.0.0.1", server.port, timeout=2)
    first = connection.exchange(HEAD % 1, b"x")
    assert (first.status, first.reusable) == (204, True)
    sock = connection.sock
    assert sock is not None
    assert connection.exchange(HEAD % 1, b"y").status == 204
    assert connection.sock is sock
    seconds, micros = struct.unpack(
        "@ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    )
    assert 1.98 <= seconds + micros / 1e6 <= 2.0
    connection.close()
    server.close()


# -- the storage host's name


STORAGE_NAME = "storage.lookup.test"  # answered by BlockingLookup only
NAMESERVER_GIVES_UP = 5.0  # when BlockingLookup answers if never released


class BlockingLookup:
    """``socket.getaddrinfo``'s stand-in: STORAGE_NAME is 127.0.0.1, once ``release`` is set
    (or NAMESERVER_GIVES_UP has passed, as a nameserver's retries end); others go to the real
    resolver. ``calls`` counts STORAGE_NAME's lookups."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.release = threading.Event()
        self.calls = 0
        self.pending = 0

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != STORAGE_NAME:
            return self.real(host, port, *args, **kwargs)
        self.calls += 1
        self.pending += 1
        try:
            self.release.wait(NAMESERVER_GIVES_UP)
            return self.real("127.0.0.1", port, *args, **kwargs)
        finally:
            self.pending -= 1


@pytest.fixture
def blocking_lookup(monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingLookup]:
    """The stand-in, and storage lookups of this test's own (no answer kept from another)."""
    stand_in = BlockingLookup(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", stand_in)
    shared = http1.STORAGE_LOOKUPS
    monkeypatch.setattr(
        http1,
        "STORAGE_LOOKUPS",
        NameLookups(shared.thread_name, late_answer_fresh_for=shared.late_answer_fresh_for),
    )
    yield stand_in
    stand_in.release.set()
    wait_until(lambda: stand_in.pending == 0, NAMESERVER_GIVES_UP, what="the lookup to end")


def test_a_name_lookup_that_does_not_answer_does_not_hold_a_v1_write_past_its_timeout(
    blocking_lookup: BlockingLookup,
) -> None:
    """Before, the lookup was socket.getaddrinfo in the write's thread, with no deadline: a
    nameserver that did not answer held the write for resolv.conf's timeout times its attempts
    (10 s by default), whatever storage.timeout said. It now times out with the exchange, as
    StorageTimedOut (a 503 with Retry-After); the next write takes the lookup's late answer."""
    server = ScriptedHTTP([(NO_CONTENT, False)])
    writer = V1Writer(f"http://{STORAGE_NAME}:{server.port}", "", "", timeout=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(StorageTimedOut) as timed_out:
        writer.write("db", b"m v=1 1")
    assert timed_out.value.message == f"storage: looking {STORAGE_NAME} up took over 0.5s"
    assert TIMEOUT - 0.01 <= time.monotonic() - started < TIMEOUT + SLACK
    assert server.requests == []
    blocking_lookup.release.set()
    writer.write("db", b"m v=1 1")
    assert blocking_lookup.calls == 1
    assert len(server.requests) == 1
    assert f"Host: {STORAGE_NAME}:{server.port}\r\n".encode() in server.requests[0]
    writer.close()
    server.close()


def test_a_connection_given_less_time_than_the_lookup_takes_times_out_at_its_deadline(
    blocking_lookup: BlockingLookup,
) -> None:
    connection = Connection(STORAGE_NAME, 8086, timeout=5)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connection.connect(started + TIMEOUT)
    assert TIMEOUT - 0.01 <= time.monotonic() - started < TIMEOUT + SLACK
    assert connection.sock is None


def test_a_name_that_does_not_resolve_is_named_in_the_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_such_name(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    monkeypatch.setattr(http1, "STORAGE_LOOKUPS", NameLookups("test-lookups"))
    writer = V1Writer("http://no-such-host.invalid:8086", "", "", timeout=TIMEOUT)
    with pytest.raises(StorageUnreachable) as unreachable:
        writer.write("db", b"m v=1 1")
    assert unreachable.value.message.startswith(
        "storage unreachable: looking no-such-host.invalid up: "
    )
