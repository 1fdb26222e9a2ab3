"""ingest/http1.py against a loopback server that sends scripted bytes: framing, reuse, refusal."""

from __future__ import annotations

import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingest.http1 import MAX_BODY, Answer, BadAnswer, Connection
from ingest.storage import StorageConflict, StorageUnavailable, V1Writer
from tests.support.tls import self_signed_certificate

HEAD = b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"


@dataclass
class Scripted:
    """Answers each request on one connection with the next answer; ``trickle`` sends answers
    a byte at a time; ``close_after`` closes the connection after that many answers."""

    answers: list[bytes]
    trickle: bool = False
    close_after: int | None = None
    tls: ssl.SSLContext | None = None
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        answered = 0
        while self.answers:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.tls is not None:
                try:
                    connection = self.tls.wrap_socket(connection, server_side=True)
                except OSError:  # the client refused the certificate
                    connection.close()
                    continue
            with connection:
                while self.answers:
                    request = _read_request(connection)
                    if request is None:
                        break
                    self.requests.append(request)
                    answer = self.answers.pop(0)
                    if self.trickle:
                        for byte in answer:
                            connection.sendall(bytes([byte]))
                    else:
                        connection.sendall(answer)
                    answered += 1
                    if self.close_after is not None and answered >= self.close_after:
                        break

    def close(self) -> None:
        self.listener.close()


def _read_request(connection: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(1 << 20)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    found = re.search(rb"Content-Length: ([0-9]+)", head, re.IGNORECASE)
    length = int(found[1]) if found else 0
    while len(body) < length:
        body += connection.recv(1 << 20)
    return head + b"\r\n\r\n" + body


def exchange(server: Scripted, body: bytes = b"m v=1 1") -> tuple[Connection, Answer]:
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
    server = Scripted([CHUNKED, b"HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 1.6.7\r\n\r\n"],
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
    server = Scripted([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"])
    connection, answer = exchange(server)
    assert answer.status == 204
    connection.close()
    server.close()


def test_connection_close_and_http_1_0_answers_are_not_reused() -> None:
    server = Scripted([b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"], close_after=1)
    connection, answer = exchange(server)
    assert answer.reusable is False
    assert connection.sock is None
    server.close()


def test_an_answer_without_length_ends_with_the_connection() -> None:
    server = Scripted([b"HTTP/1.0 500 Internal Server Error\r\n\r\noverloaded"], close_after=1)
    _, answer = exchange(server)
    assert (answer.status, answer.body, answer.reusable) == (500, b"overloaded", False)
    server.close()


def test_bytes_after_the_answer_make_the_connection_unusable() -> None:
    server = Scripted([b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"])
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
    server = Scripted([answer], close_after=1)
    connection = Connection("127.0.0.1", server.port, timeout=5)
    with pytest.raises(BadAnswer, match=problem):
        connection.exchange(HEAD % 1, b"x")
    assert connection.sock is None
    server.close()


def test_a_large_body_arrives_whole() -> None:
    body = bytes(range(256)) * (32 << 10)  # 8 MiB: more than a socket buffer takes at once
    server = Scripted([b"HTTP/1.1 204 No Content\r\n\r\n"])
    connection, answer = exchange(server, body)
    assert answer.status == 204
    assert server.requests[0] == HEAD % len(body) + body
    connection.close()
    server.close()


def test_the_v1_writer_reads_a_chunked_refusal_and_keeps_its_connection() -> None:
    server = Scripted([CHUNKED, b"HTTP/1.1 204 No Content\r\n\r\n"])
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
    server = Scripted([b"HTTP/1.1 204 No Content\r\n\r\n"] * 2, tls=server_side)
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
    server = Scripted([b"HTTP/1.1 204 No Content\r\n\r\n"], tls=server_side)
    writer = V1Writer(f"https://127.0.0.1:{server.port}", "", "", timeout=5)
    with pytest.raises(StorageUnavailable, match="SSLCertVerificationError"):
        writer.write("db", b"m v=1 1")
    assert server.requests == []
    writer.close()
    server.close()
