"""Group commit answers a write that waited for a lane within storage.timeout of its arrival.

Before, a write queued behind one that storage answered slowly (just within the timeout) was
then written with the whole timeout of its own: up to twice storage.timeout in all, past
Telegraf's 5 s with the default 4 s, so that its client gave up without seeing the 503 and its
Retry-After. Storage here is a real loopback HTTP server that takes its time to answer, written
to by ingest's own v1 and v2 writers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingest.groupcommit import GroupCommitWriter, StorageOutOfTime
from ingest.storage import StorageUnavailable, TimedStorageWriter, V1Writer, V2Writer
from perfanalysis.testing.servers import wait_until

DEADLINE = 10.0
TIMEOUT = 2.0  # storage.timeout of these tests
# What a write may take beyond its deadline: waking up, and the answer on loopback
SLACK = 0.6


class SlowStorage(ThreadingHTTPServer):
    """Answers the n-th write 204 after ``delays[n]`` seconds, or never (None: the connection
    is closed once the test ends); later writes at once. ``received`` holds each write's body,
    ``stored`` those answered 204 (stored, as InfluxDB does, even if the writer gave up)."""

    daemon_threads = True

    def __init__(self, delays: list[float | None]) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.delays = delays
        self.received: list[bytes] = []
        self.stored: list[bytes] = []
        self.finished = threading.Event()  # the test is over: answer nothing more
        self._lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def answer_to(self, body: bytes) -> tuple[float | None, int]:
        """Seconds to take before answering this write (None: never), and the status."""
        with self._lock:
            number = len(self.received)
            self.received.append(body)
        return (self.delays[number] if number < len(self.delays) else 0.0), 204

    def store(self, body: bytes) -> None:
        with self._lock:
            self.stored.append(body)

    def stop(self) -> None:
        self.finished.set()
        self.shutdown()
        self.server_close()


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SlowStorage

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        delay, status = self.server.answer_to(body)
        if delay is not None and status == 204:
            self.server.store(body)
        self.server.finished.wait(DEADLINE if delay is None else delay)
        if delay is None or self.server.finished.is_set():
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Timed:
    """A write in a thread: its outcome (None, or the exception) and how long it took."""

    def __init__(self, writer: GroupCommitWriter, payload: bytes) -> None:
        self.outcome: BaseException | None = None
        self.took = -1.0

        def run() -> None:
            started = time.monotonic()
            try:
                writer.write("db", payload)
            except Exception as exc:
                self.outcome = exc
            self.took = time.monotonic() - started

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "the write never returned"


def _storage_writer(api: str, url: str) -> TimedStorageWriter:
    return V1Writer(url, "", "", TIMEOUT) if api == "v1" else V2Writer(url, "t", "o", TIMEOUT)


def _waiting(writer: GroupCommitWriter) -> int:
    line = writer._lines.get("db")
    return 0 if line is None else len(line.waiting)


@pytest.fixture(params=["v1", "v2"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def slow_storage() -> Iterator[list[SlowStorage]]:
    made: list[SlowStorage] = []
    yield made
    for storage in made:
        storage.stop()


def _behind_a_slow_write(
    api: str, made: list[SlowStorage], delays: list[float | None]
) -> tuple[SlowStorage, GroupCommitWriter, Timed, Timed]:
    """A first write in flight to storage answering after ``delays``, and a second queued
    behind it (one lane)."""
    storage = SlowStorage(delays)
    made.append(storage)
    writer = GroupCommitWriter(_storage_writer(api, storage.url), lanes=1, max_bytes=1 << 20)
    first = Timed(writer, b"m v=1 1")
    wait_until(lambda: len(storage.received) == 1, DEADLINE, what="the first write at storage")
    second = Timed(writer, b"m v=2 2")
    wait_until(lambda: _waiting(writer) == 1, DEADLINE, what="the second write queued")
    return storage, writer, first, second


def test_a_write_queued_behind_a_slow_one_is_answered_within_the_timeout_of_its_arrival(
    api: str, slow_storage: list[SlowStorage]
) -> None:
    """Storage answers the first write after 1.5 s of its 2 s, then not the second at all:
    before, the second failed after 1.5 + 2 s."""
    storage, writer, first, second = _behind_a_slow_write(api, slow_storage, [1.5, None])
    first.join()
    second.join()
    writer.close()
    assert first.outcome is None
    assert isinstance(second.outcome, StorageOutOfTime)
    assert isinstance(second.outcome, StorageUnavailable)  # 503 with Retry-After
    assert second.took < TIMEOUT + SLACK
    assert "left of this write's storage.timeout (2s)" in second.outcome.message
    assert storage.received == [b"m v=1 1", b"m v=2 2"]  # sent, with the time it had left
    # storage answered the write ahead within its timeout: no hold, the next write goes
    assert writer._outages == {}
    assert writer._lines == {}


def test_a_queued_write_storage_answers_within_its_time_left_is_written(
    api: str, slow_storage: list[SlowStorage]
) -> None:
    storage, writer, first, second = _behind_a_slow_write(api, slow_storage, [0.5, 0.5])
    first.join()
    second.join()
    writer.close()
    assert (first.outcome, second.outcome) == (None, None)
    assert storage.received == [b"m v=1 1", b"m v=2 2"]


class IgnoresItsTimeout:
    """A writer that holds each write until ``go`` is set, whatever time it is given."""

    name = "held"
    timeout = 0.3

    def __init__(self) -> None:
        self.go = threading.Event()
        self.writes: list[bytes] = []

    def write(self, database: str, payload: bytes, timeout: float | None = None) -> None:
        self.writes.append(payload)
        assert self.go.wait(DEADLINE), "the test never let the write go"

    def health(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


def test_a_write_still_queued_at_its_deadline_leaves_the_queue_unsent() -> None:
    """Whatever the write ahead takes, a queued write is answered by its deadline."""
    inner = IgnoresItsTimeout()
    writer = GroupCommitWriter(inner, lanes=1, max_bytes=1 << 20)
    first = Timed(writer, b"m v=1 1")
    wait_until(lambda: inner.writes, DEADLINE, what="the first write at storage")
    second = Timed(writer, b"m v=2 2")
    second.join()  # while the first is still held
    assert isinstance(second.outcome, StorageOutOfTime)
    assert second.took >= inner.timeout
    assert "took its whole storage.timeout (0.3s): not sent" in second.outcome.message
    assert _waiting(writer) == 0
    inner.go.set()
    first.join()
    assert first.outcome is None
    assert inner.writes == [b"m v=1 1"]
    assert writer._lines == {}
