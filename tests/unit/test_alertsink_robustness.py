"""The alert sink under a full disk, bad input and stalled clients (an audit's findings).

Each used to lose or corrupt alerts, or leave the request unanswered with a traceback: a line cut
short by a full disk was answered 200 (Alertmanager does not send a 200 again) and the next
record glued onto it; deeply nested JSON and a ``Content-Length`` of non-ASCII digits raised;
``NaN`` was stored as a line jq and Go refuse; and a client that stalled held a thread, and up to
4 MB, for ever.
"""

from __future__ import annotations

import json
import resource
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfanalysis import alertsink
from perfanalysis.paths import ROOT
from perfanalysis.testing.servers import wait_until
from tests.unit.test_devstack_alertsink import NOTIFICATION, lines, request


def start(
    path: Path,
    timeout: float = alertsink.REQUEST_TIMEOUT,
    max_connections: int = alertsink.MAX_CONNECTIONS,
) -> tuple[alertsink.SinkServer, int]:
    server = alertsink.make_server(
        "127.0.0.1", 0, path, 10 << 20, timeout=timeout, max_connections=max_connections
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    path = tmp_path / "alerts.jsonl"
    server, port = start(path)
    yield port, path
    server.shutdown()
    server.server_close()


def exchange(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send a raw request and read the whole answer, until the sink closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head + body)
        return read_answer(connection)


def read_answer(connection: socket.socket) -> bytes:
    """What the sink sends until it closes; a reset after the answer (the sink closed with bytes
    of ours unread) ends it too."""
    answer = b""
    while True:
        try:
            piece = connection.recv(65536)
        except ConnectionResetError:
            if answer:
                return answer
            raise
        if not piece:
            return answer
        answer += piece


def post_head(length: bytes | int, kind: bytes = b"application/json") -> bytes:
    length_text = b"%d" % length if isinstance(length, int) else length
    return (
        b"POST /alerts HTTP/1.1\r\nHost: sink\r\nContent-Type: " + kind + b"\r\n"
        b"Content-Length: " + length_text + b"\r\n\r\n"
    )


def status_and_text(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


# --- a line the disk cannot take whole is cut back off and answered 500 ----------------------

SINK_PROCESS = textwrap.dedent("""
    import signal, sys
    from pathlib import Path
    from perfanalysis import alertsink
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails, as on ENOSPC
    server = alertsink.make_server("127.0.0.1", 0, Path(sys.argv[1]), 10 << 20)
    print(server.server_address[1], flush=True)
    server.serve_forever()
""")


def test_a_line_the_disk_cannot_take_whole_is_cut_back_and_answered_500(tmp_path: Path) -> None:
    """RLIMIT_FSIZE (set on the running sink with prlimit) stands in for a disk that fills up:
    the kernel writes what fits, then refuses the rest, as it does on a full disk."""
    path = tmp_path / "alerts.jsonl"
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK_PROCESS, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        url = f"http://127.0.0.1:{int(sink.stdout.readline())}/alerts"

        def post(number: int) -> tuple[int, str]:
            alert = {"labels": {"alertname": f"Alert{number}", "padding": "x" * 500}}
            return request(url, json.dumps({"alerts": [alert]}).encode())

        assert post(1)[0] == 200
        line_bytes = path.stat().st_size
        room = int(2.5 * line_bytes)  # the second line fits, the third only half
        resource.prlimit(sink.pid, resource.RLIMIT_FSIZE, (room, resource.RLIM_INFINITY))
        assert post(2)[0] == 200
        status, text = post(3)
        assert (status, text) == (500, f"not recorded, cannot write {path}: File too large\n")
        assert path.stat().st_size == 2 * line_bytes  # the half line is cut back off
        resource.prlimit(sink.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        assert post(3)[0] == 200  # what Alertmanager does after a 500: send it again
        recorded = [r["notification"]["alerts"][0]["labels"]["alertname"] for r in lines(path)]
        assert recorded == ["Alert1", "Alert2", "Alert3"]
    finally:
        sink.terminate()
        sink.wait(10)


# --- bad input is answered with a status saying what is wrong ---------------------------------


@pytest.mark.parametrize("length", [b"\xb2", b"\xb9", b"1e3", b"-1", b"0x10", b"+5"])
def test_a_content_length_that_is_not_ascii_digits_is_answered_400(
    sink: tuple[int, Path], length: bytes
) -> None:
    """'²'.isdigit() is true, and int() then raised: the request went unanswered."""
    port, path = sink
    status, text = status_and_text(exchange(port, post_head(length), b"{}"))
    shown = length.decode("latin-1")
    assert (status, text) == (400, f"Content-Length {shown!r} is not a number of bytes\n")
    assert not path.exists()


def test_a_missing_content_length_is_answered_411(sink: tuple[int, Path]) -> None:
    head = b"POST /alerts HTTP/1.1\r\nHost: sink\r\nContent-Type: application/json\r\n\r\n"
    assert status_and_text(exchange(sink[0], head))[0] == 411


def test_a_content_length_of_thousands_of_digits_is_answered_413(sink: tuple[int, Path]) -> None:
    """int() refuses more than 4300 digits: it raised, where a body too large is a 413."""
    status, text = status_and_text(exchange(sink[0], post_head(b"9" * 5000)))
    assert (status, text) == (
        413, f"body of a 5000-digit number of bytes: at most {alertsink.MAX_BODY} are taken\n"
    )  # fmt: skip
    status, _ = status_and_text(exchange(sink[0], post_head(b"0" * 5000 + b"2"), b"{}"))
    assert status == 400  # leading zeros are a number like any other: 2 bytes, not a webhook


def test_json_nested_too_deeply_to_read_is_answered_400(sink: tuple[int, Path]) -> None:
    port, path = sink
    body = b'{"alerts": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    status, text = status_and_text(exchange(port, post_head(len(body)), body))
    assert (status, text) == (400, alertsink.TOO_DEEP + "\n")
    assert not path.exists()


def test_every_depth_around_the_limit_is_answered_and_what_is_stored_is_whole(
    sink: tuple[int, Path],
) -> None:
    """Near Python's recursion limit a body can be read, and then be too deep to write (the
    record wraps it in one more object): each depth there is answered, 200 or 400, and each
    recorded notification is stored whole (compared as text: this test's own stack is too deep
    for json to read them back)."""
    port, path = sink
    limit = sys.getrecursionlimit()
    recorded, refused = [], []
    for depth in range(limit - 120, limit + 5):
        nested = b"[" * depth + b"]" * depth
        body = b'{"alerts": [' + nested + b"]}"
        status, text = status_and_text(exchange(port, post_head(len(body)), body))
        if status == 200:
            recorded.append(b'"notification":{"alerts":[' + nested + b"]}}")
        else:
            assert (status, text) == (400, alertsink.TOO_DEEP + "\n")
            refused.append(depth)
    assert recorded, "no depth was recorded: the range is below the limit"
    assert refused, "no depth was refused: the range is above the limit"
    stored = path.read_bytes().splitlines()
    assert [line[line.index(b'"notification":') :] for line in stored] == recorded


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_not_stored_as_a_line_jq_cannot_read(
    sink: tuple[int, Path], constant: str
) -> None:
    """Alertmanager never sends them: a body with them is not its notification."""
    port, path = sink
    body = b'{"alerts": [], "x": [1, %s]}' % constant.encode()
    status, text = status_and_text(exchange(port, post_head(len(body)), body))
    assert (status, text) == (
        400, f"body is not JSON: {constant} is not a JSON number (jq and Go refuse it; "
        "Alertmanager never sends it)\n"
    )  # fmt: skip
    assert not path.exists()


# --- a client that stalls is cut off; a bounded number are served at once --------------------


def test_a_connection_that_sends_nothing_is_closed_after_the_timeout(tmp_path: Path) -> None:
    server, port = start(tmp_path / "alerts.jsonl", timeout=0.5)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            began = time.monotonic()
            assert connection.recv(1024) == b""  # closed by the sink, not by recv's timeout
            assert time.monotonic() - began < 5
    finally:
        server.shutdown()
        server.server_close()


def test_a_body_that_does_not_all_come_is_answered_408(tmp_path: Path) -> None:
    server, port = start(tmp_path / "alerts.jsonl", timeout=0.5)
    try:
        status, text = status_and_text(exchange(port, post_head(10), b'{"al'))
        assert (status, text) == (408, "the body did not come within 0.5 s: 4 of 10 bytes came\n")
    finally:
        server.shutdown()
        server.server_close()


def test_a_body_trickled_a_byte_at_a_time_is_cut_off_at_the_deadline(tmp_path: Path) -> None:
    """Each byte comes well within the timeout, but the body as a whole does not."""
    server, port = start(tmp_path / "alerts.jsonl", timeout=0.5)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(post_head(1000))
            began = time.monotonic()
            while time.monotonic() - began < 10:
                connection.sendall(b" ")
                if select.select([connection], [], [], 0.05)[0]:  # the answer, or wait a little
                    break
            answer = read_answer(connection)
        status, text = status_and_text(answer)
        assert status == 408, text
        assert time.monotonic() - began < 5
    finally:
        server.shutdown()
        server.server_close()


def test_past_max_connections_a_request_is_answered_503_until_one_ends(tmp_path: Path) -> None:
    server, port = start(tmp_path / "alerts.jsonl", max_connections=2)
    url = f"http://127.0.0.1:{port}"
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as third:
            answer = read_answer(third)  # answered at once, before it sends anything
        assert status_and_text(answer) == (503, "busy: 2 requests are being handled; retry\n")
        assert b"\r\nRetry-After: 1\r\n" in answer
        stalled.pop().close()

        def accepted() -> bool:
            """The notification taken once a slot is free (a 503 stores nothing; the slot of
            the request before may still be held for a moment after its answer)."""
            try:
                return request(f"{url}/alerts", json.dumps(NOTIFICATION).encode())[0] == 200
            except OSError:  # turned away while the slot is not yet free: reset, not a 503
                return False

        assert wait_until(accepted, timeout=10, what="a free slot")
        assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 1
    finally:
        for connection in stalled:
            connection.close()
        server.shutdown()
        server.server_close()
