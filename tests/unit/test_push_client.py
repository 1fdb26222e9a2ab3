"""The client's decision per status code, against a real HTTP server in a thread.

The server stands in for ingest only for status-code mechanics; end-to-end tests against the real
ingest service belong with it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from exporter.push.client import PushClient, Verdict, compress
from exporter.push.keyfile import KeyFile
from exporter.push.transport import Endpoint
from tests.support.tls import self_signed_certificate


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunked: bool = False
    close_after: bool = False  # close the connection without saying so (an idle timeout)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    lines: list[str]
    client_port: int


class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Callable[[Received], Answer], http10: bool = False) -> None:
        self.answer = answer
        self.received: list[Received] = []
        handler = type(
            "Handler", (_Handler,), {"protocol_version": "HTTP/1.0" if http10 else "HTTP/1.1"}
        )
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Scripted

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        text = (
            gzip.decompress(body).decode()
            if self.headers.get("Content-Encoding") == "gzip"
            else body.decode()
        )
        received = Received(
            self.path, dict(self.headers), text.splitlines(), self.client_address[1]
        )
        self.server.received.append(received)
        answer = self.server.answer(received)
        time.sleep(answer.delay)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (answer.body[:5], answer.body[5:]):
                if piece:
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            if answer.status != 204:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.status != 204:
                self.wfile.write(answer.body)
        if answer.close_after:
            self.close_connection = True


@contextlib.contextmanager
def scripted_servers() -> Iterator[Callable[..., Scripted]]:
    """``start(answer, http10=False)`` starts a scripted server; all are stopped on exit."""
    started: list[Scripted] = []

    def start(answer: Callable[[Received], Answer], http10: bool = False) -> Scripted:
        server = Scripted(answer, http10)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.shutdown()
            server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Scripted]]:
    with scripted_servers() as start:
        yield start


def lines(n: int, start: int = 0) -> list[str]:
    return [f"m,host=h value={i}.0 {1_000 + i}" for i in range(start, start + n)]


def body(batch: list[str]) -> bytes:
    return compress("".join(line + "\n" for line in batch).encode())


def client_for(server_url: str, key_file: Path, timeout: float = 5.0) -> PushClient:
    return PushClient(server_url, KeyFile(str(key_file)), timeout)


def always(answer: Answer) -> Callable[[Received], Answer]:
    return lambda _received: answer


def test_accepted_batch_with_the_write_api_headers(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    server = serve(always(Answer(204)))
    client = client_for(server.url + "/ingest/", key_file)
    delivery = client.deliver(body(lines(3)), 3)
    assert delivery.verdict is Verdict.SETTLED
    assert (delivery.sent, delivery.rejected) == (3, 0)
    [got] = server.received
    assert got.path == "/ingest/api/v2/write?precision=ns"
    assert got.headers["Authorization"] == "Token pak_id1.secret1"
    assert got.headers["Content-Encoding"] == "gzip"
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert got.headers["User-Agent"].startswith("perfanalysis-exporter/")
    assert got.lines == lines(3)
    assert client.requests == {"204": 1}


def test_keep_alive_reuses_one_connection(serve: Callable[..., Scripted], key_file: Path) -> None:
    server = serve(always(Answer(204)))
    client = client_for(server.url, key_file)
    for _ in range(3):
        assert client.deliver(body(lines(1)), 1).verdict is Verdict.SETTLED
    assert len({r.client_port for r in server.received}) == 1


def test_http10_server_that_closes_each_connection(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    server = serve(always(Answer(200, b"ok")), http10=True)
    client = client_for(server.url, key_file)
    for _ in range(2):
        assert client.deliver(body(lines(1)), 1).verdict is Verdict.SETTLED
    assert len({r.client_port for r in server.received}) == 2


def test_a_connection_closed_while_idle_is_reopened_without_an_error(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    server = serve(always(Answer(204, close_after=True)))
    client = client_for(server.url, key_file)
    for _ in range(3):
        assert client.deliver(body(lines(1)), 1).verdict is Verdict.SETTLED
    assert client.requests == {"204": 3}


def test_400_drops_the_batch_and_keeps_the_reasons(
    serve: Callable[..., Scripted], key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reasons = b'{"error":"bad lines","lines":[{"line":2,"reason":"invalid field"}]}'
    server = serve(always(Answer(400, reasons, {"Content-Type": "application/json"}, chunked=True)))
    delivery = client_for(server.url, key_file).deliver(body(lines(4)), 4)
    assert delivery.verdict is Verdict.SETTLED  # settled: never retried
    assert (delivery.sent, delivery.rejected) == (0, 4)
    assert "invalid field" in delivery.error
    assert "invalid field" in caplog.text


def ingest_400(*numbers: int, count: int | None = None) -> Answer:
    """What ingest answers a batch with bad lines: the first of them in the message, up to 100
    listed in ``invalid_lines``, all of them counted in ``invalid_count``."""
    listed = [{"line": n, "reason": "tag key 'time' is reserved"} for n in numbers]
    said = {"code": "invalid", "message": "bad lines", "invalid_lines": listed,
            "invalid_count": count or len(numbers), "line": numbers[0]}  # fmt: skip
    return Answer(400, json.dumps(said).encode(), {"Content-Type": "application/json"})


def test_a_400_naming_its_bad_lines_drops_only_those_and_sends_the_rest(
    serve: Callable[..., Scripted], key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = lines(5)
    server = serve(lambda got: ingest_400(2, 4) if len(got.lines) == 5 else Answer(204))
    delivery = client_for(server.url, key_file).deliver(body(batch), 5)
    assert delivery.verdict is Verdict.SETTLED
    assert (delivery.sent, delivery.rejected) == (3, 2)
    assert [r.lines for r in server.received] == [batch, [batch[0], batch[2], batch[4]]]
    assert "refused 2 of 5 points as bad data (400), dropped; sending the other 3" in caplog.text


def test_more_bad_lines_than_listed_take_one_more_round_each_hundred(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    """Ingest lists the first 100 bad lines; the rest sent again names the next ones."""
    batch = lines(4)
    answers = iter([ingest_400(1, count=2), ingest_400(2), Answer(204)])  # 2, then 3 (was 4)
    server = serve(lambda _got: next(answers))
    delivery = client_for(server.url, key_file).deliver(body(batch), 4)
    assert (delivery.verdict, delivery.sent, delivery.rejected) == (Verdict.SETTLED, 2, 2)
    assert [r.lines for r in server.received] == [batch, batch[1:], [batch[1], batch[3]]]


def test_when_the_rest_cannot_be_sent_now_the_whole_batch_is_kept(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    answers = iter([ingest_400(3), Answer(503)])
    server = serve(lambda _got: next(answers))
    delivery = client_for(server.url, key_file).deliver(body(lines(3)), 3)
    assert delivery.verdict is Verdict.RETRY  # the spool keeps the batch; the bad line goes later


@pytest.mark.parametrize(
    "said",
    [
        b'{"invalid_lines":[{"line":9,"reason":"x"}]}',  # outside the batch of 4
        b'{"invalid_lines":[{"line":0,"reason":"x"}]}',
        b'{"invalid_lines":[{"line":"2","reason":"x"}]}',
        b'{"invalid_lines":[{"line":true,"reason":"x"}]}',
        b'{"invalid_lines":[{"line":[2],"reason":"x"}]}',  # not hashable: raised, retried forever
        b'{"invalid_lines":[]}',
        b'{"invalid_lines":{"line":2}}',
        b"<html>400 Bad Request</html>",  # a proxy's
    ],
)
def test_a_400_naming_no_line_it_can_be_trusted_for_drops_the_batch(
    serve: Callable[..., Scripted], key_file: Path, said: bytes
) -> None:
    server = serve(always(Answer(400, said)))
    delivery = client_for(server.url, key_file).deliver(body(lines(4)), 4)
    assert (delivery.verdict, delivery.sent, delivery.rejected) == (Verdict.SETTLED, 0, 4)
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("said", "sent"),
    [
        (b'{"message":"field type conflict","written":3,"rejected":1}', 3),
        (b'{"message":"field type conflict","written":0,"rejected":4}', 0),
        (b'{"message":"series limit"}', 0),  # storage could not say: every point is lost
        (b'{"written":3,"rejected":3}', 0),  # does not add up to the batch
        (b'{"written":-1,"rejected":5}', 0),
        (b'{"written":true,"rejected":3}', 0),
        (b'{"written":"3","rejected":"1"}', 0),
        (b"[3, 1]", 0),
        (b"not json", 0),
    ],
)
def test_422_counts_the_points_ingest_says_storage_wrote(
    serve: Callable[..., Scripted], key_file: Path, said: bytes, sent: int
) -> None:
    server = serve(always(Answer(422, said, {"Content-Type": "application/json"})))
    delivery = client_for(server.url, key_file).deliver(body(lines(4)), 4)
    assert delivery.verdict is Verdict.SETTLED  # never retried: the rest was written
    assert (delivery.sent, delivery.rejected) == (sent, 4 - sent)
    assert len(server.received) == 1


def test_401_keeps_the_batch_and_rereads_a_rotated_key(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    def answer(received: Received) -> Answer:
        if received.headers["Authorization"] == "Token pak_id2.secret2":
            return Answer(204)
        key_file.write_text("pak_id2.secret2\n")  # rotated while the old key is refused
        return Answer(401, b'{"error":"unknown key"}')

    server = serve(answer)
    client = client_for(server.url, key_file)
    first = client.deliver(body(lines(2)), 2)
    assert first.verdict is Verdict.UNAUTHORIZED
    assert first.retry_after == 0.0  # a new key: try again at once
    assert "unknown key" in first.error
    second = client.deliver(body(lines(2)), 2)
    assert second.verdict is Verdict.SETTLED
    assert [r.headers["Authorization"] for r in server.received] == [
        "Token pak_id1.secret1",
        "Token pak_id2.secret2",
    ]


def test_403_with_the_same_key_backs_off(serve: Callable[..., Scripted], key_file: Path) -> None:
    server = serve(always(Answer(403, b"collector disabled")))
    delivery = client_for(server.url, key_file).deliver(body(lines(2)), 2)
    assert delivery.verdict is Verdict.UNAUTHORIZED
    assert delivery.retry_after is None
    assert (delivery.sent, delivery.rejected) == (0, 0)


def test_413_splits_into_halves_until_ingest_accepts(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    server = serve(lambda r: Answer(413) if len(r.lines) > 3 else Answer(204))
    client = client_for(server.url, key_file)
    delivery = client.deliver(body(lines(10)), 10)
    assert delivery.verdict is Verdict.SETTLED
    assert delivery.sent == 10
    assert delivery.too_large_at == 5
    accepted = [line for r in server.received if len(r.lines) <= 3 for line in r.lines]
    assert accepted == lines(10)  # each point once, in order
    assert [len(r.lines) for r in server.received] == [10, 5, 2, 3, 5, 2, 3]
    assert client.requests == {"413": 3, "204": 4}


def test_413_on_a_single_point_drops_it(serve: Callable[..., Scripted], key_file: Path) -> None:
    server = serve(lambda r: Answer(413) if any("value=1.0" in x for x in r.lines) else Answer(204))
    delivery = client_for(server.url, key_file).deliver(body(lines(2)), 2)
    assert delivery.verdict is Verdict.SETTLED
    assert (delivery.sent, delivery.rejected, delivery.too_large) == (1, 0, 1)
    assert delivery.too_large_at is None  # the point is too large, not the batch


def test_413_then_unavailable_says_what_was_acknowledged_before(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    answers = iter([Answer(413), Answer(204), Answer(503, headers={"Retry-After": "3"})])
    server = serve(lambda _r: next(answers))
    delivery = client_for(server.url, key_file).deliver(body(lines(4)), 4)
    assert delivery.verdict is Verdict.RETRY
    assert delivery.retry_after == 3.0
    assert (delivery.sent, delivery.failed_at) == (2, 2)  # a retry makes only the failed half
    assert len(server.received) == 3


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [
        (Answer(429, b"slow down", {"Retry-After": "7"}), 7.0),
        (Answer(503, b"storage down", {"Retry-After": "1"}), 1.0),
        (Answer(500, b"oops"), None),
        (Answer(502), None),
        (Answer(404, b"404 page not found"), None),  # a wrong URL must cost retries, not data
        (Answer(408, b'{"code":"request timeout"}'), None),  # the body came too slowly
        (Answer(307, headers={"Location": "/elsewhere"}), None),
    ],
)
def test_retryable_answers_keep_the_batch(
    serve: Callable[..., Scripted], key_file: Path, answer: Answer, retry_after: float | None
) -> None:
    server = serve(always(answer))
    delivery = client_for(server.url, key_file).deliver(body(lines(2)), 2)
    assert delivery.verdict is Verdict.RETRY
    assert delivery.retry_after == retry_after
    assert (delivery.sent, delivery.rejected) == (0, 0)
    assert delivery.error.startswith(str(answer.status))


def test_retry_after_as_an_http_date(serve: Callable[..., Scripted], key_file: Path) -> None:
    from exporter.http import http_date

    server = serve(lambda _r: Answer(503, headers={"Retry-After": http_date(time.time() + 30)}))
    delivery = client_for(server.url, key_file).deliver(body(lines(1)), 1)
    assert delivery.retry_after is not None
    assert 28.0 <= delivery.retry_after <= 30.0


def test_connection_refused_is_retried(key_file: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once closed
    client = client_for(f"http://127.0.0.1:{port}", key_file)
    delivery = client.deliver(body(lines(1)), 1)
    assert delivery.verdict is Verdict.RETRY
    assert delivery.error.startswith("error: ")
    assert client.requests == {"error": 1}


def test_a_timeout_awaiting_the_answer_is_a_cut_kept_for_a_retry(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    """Timed out at --push.timeout, not at a deadline: cut all the same (see the module)."""
    server = serve(always(Answer(204, delay=1.0)))
    client = client_for(server.url, key_file, timeout=0.2)
    started = time.monotonic()
    delivery = client.deliver(body(lines(1)), 1)
    assert time.monotonic() - started < 0.9
    assert (delivery.verdict, delivery.cut_at, delivery.sent) == (Verdict.CUT, 1, 0)
    assert delivery.error == "timeout: timed out after 0.2s waiting for the answer"
    assert client.requests == {"timeout": 1}


def test_abort_from_another_thread_ends_a_hanging_request(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    server = serve(always(Answer(204, delay=3.0)))
    client = client_for(server.url, key_file, timeout=30.0)
    threading.Timer(0.3, client.abort).start()
    started = time.monotonic()
    delivery = client.deliver(body(lines(1)), 1)
    assert time.monotonic() - started < 2.0
    assert delivery.verdict is Verdict.RETRY


def test_abort_on_a_reused_connection_is_not_retried_on_a_new_one(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    """The woken request sees its kept-alive connection closed, which otherwise means "the
    server dropped an idle connection: send again on a fresh one"."""
    server = serve(lambda r: Answer(204) if len(server.received) == 1 else Answer(204, delay=3.0))
    client = client_for(server.url, key_file, timeout=30.0)
    assert client.deliver(body(lines(1)), 1).verdict is Verdict.SETTLED
    threading.Timer(0.3, client.abort).start()
    delivery = client.deliver(body(lines(1)), 1)
    assert delivery.verdict is Verdict.RETRY
    assert "aborted" in delivery.error
    assert len(server.received) == 2  # the aborted batch was sent once, not again


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://ingest", "http or https"),
        ("ingest:8081", "http or https"),
        ("http://", "no host"),
        ("http://user:pw@ingest", "credentials"),
        ("http://ingest/?db=x", "query"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Endpoint.parse(url)


def test_endpoint_defaults_and_host_header() -> None:
    assert Endpoint.parse("https://ingest.example/") == Endpoint("https", "ingest.example", 443, "")
    assert Endpoint.parse("http://[::1]:8081/x").host_header == "[::1]:8081"
    assert Endpoint.parse("http://ingest").host_header == "ingest"


def test_key_file_must_hold_one_printable_key(tmp_path: Path) -> None:
    from exporter.push.keyfile import KeyFileError

    path = tmp_path / "key"
    for content, problem in [("", "empty"), ("two words", "one key"), ("k\x00ey", "one key")]:
        path.write_text(content)
        with pytest.raises(KeyFileError, match=problem):
            KeyFile(str(path))
    with pytest.raises(KeyFileError, match="cannot read"):
        KeyFile(str(tmp_path / "missing"))


def test_world_readable_key_file_is_accepted_with_a_warning(
    key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file.chmod(0o644)
    assert KeyFile(str(key_file)).key == "pak_id1.secret1"
    assert "readable by every user" in caplog.text


def test_a_key_file_gone_bad_keeps_the_old_key(key_file: Path) -> None:
    key = KeyFile(str(key_file))
    key_file.write_text("")
    assert key.reload() is False
    assert key.key == "pak_id1.secret1"


@pytest.fixture
def tls_server(serve: Callable[..., Scripted], tmp_path: Path) -> tuple[Scripted, Path]:
    """A scripted server behind TLS with a self-signed certificate for 127.0.0.1."""
    cert, key = self_signed_certificate(tmp_path)
    server = serve(always(Answer(204)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server, cert


def test_https_verifies_the_certificate(tls_server: tuple[Scripted, Path], key_file: Path) -> None:
    server, _ = tls_server
    url = server.url.replace("http://", "https://")
    delivery = client_for(url, key_file).deliver(body(lines(1)), 1)
    assert delivery.verdict is Verdict.RETRY
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.error
    assert server.received == []


def test_https_with_a_trusted_certificate(
    tls_server: tuple[Scripted, Path], key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # how an operator trusts a private CA
    client = client_for(server.url.replace("http://", "https://"), key_file)
    for _ in range(2):
        assert client.deliver(body(lines(2)), 2).verdict is Verdict.SETTLED
    assert [r.lines for r in server.received] == [lines(2), lines(2)]
    assert len({r.client_port for r in server.received}) == 1
