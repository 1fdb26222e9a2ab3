"""Answers given before the request's body was read, under gunicorn (perfanalysis.gthread_worker).

Admin and ingest refuse some requests on their head alone: ingest an unknown key (401) or a
Content-Length over its limit (413); admin an API call without credentials (401) or a body over
64 KiB from a client not signed in (413). The answer's ``Connection`` header must then say what
happens next: ``close`` when the connection closes after it (the rest of the body did not come
within the drain time, was too large to drain, or the client waits for ``100 Continue`` before
sending it, and is not asked for a body already refused), ``keep-alive`` only when the body was
drained and the connection stays open. A client pooling connections (requests, as the exporter
pushes) otherwise sends its next request into a connection the server is closing: "Remote end
closed connection without response", and a POST is not retried.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
import requests
from flask import Flask

from ingest.testing import IngestProcess, ingest_environment, issue_collector_key
from perfanalysis.testing.servers import ServerRegistry
from tenants import db as database
from tests.conftest import TEST_SECRET
from tests.integration.test_admin_serve import AdminProcess
from tests.integration.test_slow_clients import Trickle, host_port
from tests.integration.test_web_tls import HTTPSAdmin
from tests.support.tls import make_pki

pytestmark = pytest.mark.integration
ANSWER_WITHIN = 4.0  # seconds: the drain takes 0.1 s at most; the held-back bodies never come

API = b"POST /api/v1/tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
LOGIN = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"
EXPECT = b"Expect: 100-continue\r\n"
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


def read_answer(stream: BinaryIO) -> Answer:
    """The next answer, interim (1xx) ones included; its body as long as its Content-Length
    says, without waiting for more."""
    status_line = stream.readline()
    assert status_line, "the connection closed without an answer"
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    for line in iter(stream.readline, b"\r\n"):
        assert line, f"the connection closed in the answer's head: {status_line!r}"
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if status < 200 or status in (204, 304):
        return Answer(status, headers, b"")
    body = stream.read(int(headers["content-length"]))
    assert len(body) == int(headers["content-length"]), "the answer was cut short"
    return Answer(status, headers, body)


def final_answer(stream: BinaryIO) -> Answer:
    """The next answer past any interim one (100 Continue, which a client need not wait for)."""
    answer = read_answer(stream)
    while answer.status < 200:
        answer = read_answer(stream)
    return answer


def closed_after(stream: BinaryIO) -> bool:
    """Whether the server closes the connection after its answer (within the socket's timeout),
    sending nothing more."""
    try:
        return stream.read(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminProcess]:
    process = AdminProcess(tmp_path_factory.mktemp("early-answers"), threads=2)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def refused(sock: socket.socket, interim: bool = False) -> tuple[Answer, BinaryIO]:
    """The answer to the request sent on ``sock`` (with ``interim``, the first, be it 1xx)."""
    stream = sock.makefile("rb")
    return (read_answer(stream) if interim else final_answer(stream)), stream


# (a) the rest of the body does not come in time, or is too large to drain: Connection: close


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (API + b"Content-Length: 100000\r\n\r\n" + b"{" * 70_000, 401),
        (LOGIN + b"Content-Length: 200000\r\n\r\n" + b"a" * 100_000, 413),
        (API + CHUNKED + b"\r\n" + b"3e8\r\n{", 401),
    ],
    ids=["401, 30 kB held back", "413, 100 kB held back", "401, chunked, held back"],
)
def test_a_refusal_before_a_body_that_does_not_come_says_close(
    admin: AdminProcess, request_bytes: bytes, status: int
) -> None:
    with socket.create_connection(host_port(admin), timeout=ANSWER_WITHIN) as sock:
        sock.sendall(request_bytes)
        answer, stream = refused(sock)
        assert answer.status == status, answer
        assert answer.closes, answer.headers
        assert closed_after(stream)


def test_a_refusal_before_a_body_trickling_in_says_close_within_the_drain_time(
    admin: AdminProcess,
) -> None:
    """A byte every 50 ms: each of the drain's reads gets one before the drain's timeout, yet
    the drain as a whole ends in time (the answer within 4 s; the body would take 100 s)."""
    first = API + CHUNKED + b"\r\n" + b"7d0\r\n{"
    with Trickle(host_port(admin), 1, first, b"{" * 2000, interval=0.05) as slow:
        sock = slow.sockets[0]
        sock.settimeout(ANSWER_WITHIN)
        answer, stream = refused(sock)
        assert answer.status == 401, answer
        assert answer.closes, answer.headers
        assert closed_after(stream)


def test_a_large_upload_refused_413_says_close_and_the_session_goes_on(
    admin: AdminProcess,
) -> None:
    """The auditor's case: requests reuses its pooled connection unless told to close it."""
    session = requests.Session()
    session.trust_env = False
    with session:
        for _ in range(3):
            answer = session.post(
                f"{admin.url}/login",
                data=b"a" * (2 << 20),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=ANSWER_WITHIN * 4,
            )
            assert answer.status_code == 413
            assert answer.headers["Connection"].lower() == "close"
            assert session.get(f"{admin.url}/health", timeout=ANSWER_WITHIN).status_code == 200


# (b) the body is all there: drained, the connection stays open and serves the next request


@pytest.mark.parametrize(
    "request_bytes",
    [
        API + b"Content-Length: 1000\r\n\r\n" + b"{" * 1000,
        API + CHUNKED + b"\r\n" + b"3e8\r\n" + b"{" * 1000 + b"\r\n0\r\n\r\n",
        API + EXPECT + b"Content-Length: 1000\r\n\r\n" + b"{" * 1000,
    ],
    ids=["Content-Length", "chunked", "sent without waiting for 100 Continue"],
)
def test_a_refusal_of_a_body_all_there_keeps_the_connection(
    admin: AdminProcess, request_bytes: bytes
) -> None:
    """Sent in one piece: the worker's event loop reads it all before a thread takes the
    request (a chunked one, or one whose client expects 100 Continue, as soon as its head is
    in: its body is then already on the socket)."""
    with socket.create_connection(host_port(admin), timeout=ANSWER_WITHIN) as sock:
        sock.sendall(request_bytes)
        answer, stream = refused(sock)
        assert answer.status == 401, answer
        assert not answer.closes, answer.headers
        sock.sendall(HEALTH)
        assert read_answer(stream).status == 200


def test_a_pooled_client_refused_401_reuses_its_connection(admin: AdminProcess) -> None:
    session = requests.Session()
    session.trust_env = False
    with session:
        first = session.post(
            f"{admin.url}/api/v1/tenants", json={"slug": "x"}, timeout=ANSWER_WITHIN
        )
        assert first.status_code == 401
        assert first.headers["Connection"].lower() == "keep-alive"
        for _ in range(3):
            again = session.post(
                f"{admin.url}/api/v1/tenants", json={"slug": "x"}, timeout=ANSWER_WITHIN
            )
            assert again.status_code == 401
            assert session.get(f"{admin.url}/health", timeout=ANSWER_WITHIN).status_code == 200


# (c) the client waits for 100 Continue: refused at once, without it, and the connection closes


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (API + EXPECT + b"Content-Length: 1000\r\n\r\n", 401),
        (API + EXPECT + CHUNKED + b"\r\n", 401),
        (LOGIN + EXPECT + b"Content-Length: 2000000\r\n\r\n", 413),
    ],
    ids=["401", "401, chunked", "413"],
)
def test_a_client_waiting_for_100_continue_is_refused_without_it(
    admin: AdminProcess, request_bytes: bytes, status: int
) -> None:
    with socket.create_connection(host_port(admin), timeout=ANSWER_WITHIN) as sock:
        sock.sendall(request_bytes)
        answer, stream = refused(sock, interim=True)  # the first answer, not 100 Continue
        assert answer.status == status, answer
        assert answer.closes, answer.headers
        assert closed_after(stream)


def test_over_https_100_continue_is_sent_when_the_body_is_read_and_only_then(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    admin = HTTPSAdmin(tmp_path / "admin", pki)
    admin.start()
    context = ssl.create_default_context(cafile=str(pki.ca))
    form = b"email=a%40example.com&password=wrong"

    def connect() -> ssl.SSLSocket:
        raw = socket.create_connection(host_port(admin), timeout=ANSWER_WITHIN)
        return context.wrap_socket(raw, server_hostname="localhost")

    try:
        # admin reads the login form: told to go on, it sends it and is answered
        with connect() as sock:
            sock.sendall(LOGIN + EXPECT + b"Content-Length: %d\r\n\r\n" % len(form))
            stream = sock.makefile("rb")
            assert read_answer(stream).status == 100
            sock.sendall(form)
            assert read_answer(stream).status == 400  # no CSRF token
        # refused on its head: not told to go on, and the connection closes
        with connect() as sock:
            sock.sendall(API + EXPECT + b"Content-Length: 1000\r\n\r\n")
            answer, stream = refused(sock, interim=True)
            assert answer.status == 401, answer
            assert answer.closes, answer.headers
            assert closed_after(stream)
        # refused with its body all there: the connection serves the next request
        with connect() as sock:
            sock.sendall(API + b"Content-Length: 1000\r\n\r\n" + b"{" * 1000)
            answer, stream = refused(sock)
            assert answer.status == 401, answer
            assert not answer.closes, answer.headers
            sock.sendall(HEALTH)
            assert read_answer(stream).status == 200
    finally:
        admin.stop()


# ingest, as the exporter pushes to it


def test_ingest_refusing_a_key_says_what_becomes_of_the_connection(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> None:
    influxdb = servers.influxdb()
    with app.app_context():
        key = issue_collector_key(database.session(), app.extensions["pa_hasher"], "early", "web")
    influxdb.create_database(key.database)
    environment = ingest_environment(
        TEST_SECRET, database_url, influxdb, tmp_path / "metrics", LIMITS_RATE="0",
        LIMITS_MAX_BODY_BYTES="4096", WEB_THREADS="2",
    )  # fmt: skip
    ingest = servers.start(IngestProcess(servers.base_dir, environment))
    write = b"POST /api/v2/write?bucket=b&org=o HTTP/1.1\r\nHost: x\r\n"
    bad_key = b"Authorization: Token not-a-key\r\n"
    line = b"cpu value=1\n"

    # a bad key, the body all there: refused, the connection kept, the next write stored
    session = requests.Session()
    session.trust_env = False
    with session:
        url = f"{ingest.url}/api/v2/write?bucket=b&org=o"
        for _ in range(3):
            refusal = session.post(url, data=line * 100, timeout=ANSWER_WITHIN,
                                   headers={"Authorization": "Token not-a-key"})  # fmt: skip
            assert refusal.status_code == 401, refusal.text
            assert refusal.headers["Connection"].lower() == "keep-alive"
            written = session.post(url, data=line, timeout=ANSWER_WITHIN,
                                   headers={"Authorization": f"Token {key.key}"})  # fmt: skip
            assert written.status_code == 204, written.text

    # over the limit on its Content-Length, the body all there: the same
    with socket.create_connection(host_port(ingest), timeout=ANSWER_WITHIN) as sock:
        sock.sendall(write + b"Authorization: Token %s\r\nContent-Length: 6000\r\n\r\n"
                     % key.key.encode() + line * 500)  # fmt: skip
        answer, stream = refused(sock)
        assert answer.status == 413, answer
        assert not answer.closes, answer.headers
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answer(stream).status == 204

    # a bad key, most of a large body held back; and waiting for 100 Continue: close
    for held_back in (
        b"Content-Length: 200000\r\n\r\n" + line * 6000,
        EXPECT + b"Content-Length: 200000\r\n\r\n",
    ):
        with socket.create_connection(host_port(ingest), timeout=ANSWER_WITHIN) as sock:
            sock.sendall(write + bad_key + held_back)
            answer, stream = refused(sock, interim=True)
            assert answer.status == 401, answer
            assert answer.closes, answer.headers
            assert closed_after(stream)
