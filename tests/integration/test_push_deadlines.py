"""Our exporter as a real process against an ingest that trickles, hangs, or cannot be looked up.

What the audit saw before the fix, with --push.interval=1s --push.timeout=2s: against a server
trickling its answer a byte a second, one sample in 30 s and /health "starting" (a request stayed
open for 8192 times the timeout); against a hanging ingest with --push.timeout=5s, 5 samples in
21 s and the other 16 lost uncounted; with a nameserver that does not answer, each request took
10 s and SIGTERM had to abandon it. Now every request ends by the next sample, every tick is
sampled, and the lookup is waited for no longer than the request.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import logging
import os
import random
import re
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from exporter.push.client import CUT_MIN_POINTS
from exporter.push.pusher import RECOVER_AFTER, Pusher
from exporter.push.spool import SpoolError
from perfanalysis.testing.servers import ExporterProcess, wait_until
from tests.unit.test_push_pusher import make_pusher, metric_lines

pytestmark = pytest.mark.integration
__all__ = ["make_pusher"]  # a fixture

INTERVAL = 1.0  # the shortest --push.interval
COLLECTORS = ["--collector.disable-defaults", "--collector.loadavg"]


class Ingest(ThreadingHTTPServer):
    """Stands in for ingest: ``mode`` is ok (204, the lines kept), hang (the body read, its points
    counted in ``hung``, no answer until the test ends), trickle (a status line that never ends, a byte every 0.2 s), refuse (503 at
    once) or slow: the body read at ``rate`` bytes a second, as over a slow link, and kept and
    answered (204) only if the client still waits for the answer then; one it gave up on is
    counted in ``abandoned``, its lines not kept, as a link would never have carried them. In
    slow mode, a body over ``max_body`` bytes is refused at once (413), as by a proxy."""

    daemon_threads = True

    def __init__(self) -> None:
        self.mode = "ok"
        self.rate = 1000.0
        self.max_body: int | None = None
        self.lines: list[str] = []
        self.requests: list[int] = []  # the points of each request kept, in order
        self.hung: list[int] = []  # the points of each request left unanswered, in order
        self.abandoned = 0
        self.done = threading.Event()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: Ingest
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        mode = self.server.mode
        max_body = self.server.max_body
        if mode == "slow" and max_body is not None and length > max_body:
            self.close_connection = True  # the body stays unread
            self.send_response(413)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        slowly = self._read_slowly(length) if mode == "slow" else self.rfile.read(length)
        if slowly is None:
            self.close_connection = True
            with self.server.lock:
                self.server.abandoned += 1
            return
        body = slowly
        try:
            if mode == "refuse":
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if mode == "trickle":
                self.close_connection = True
                self.wfile.write(b"HTTP/1.1 503 Busy")
                while not self.server.done.wait(0.2):
                    self.wfile.write(b"x")
                return
            if mode == "hang":
                self.close_connection = True
                with self.server.lock:
                    self.server.hung.append(len(gzip.decompress(body).splitlines()))
                self.server.done.wait(120)
                return
            lines = gzip.decompress(body).decode().splitlines()
            with self.server.lock:
                self.server.lines += lines
                self.server.requests.append(len(lines))
            self.send_response(204)
            self.end_headers()
        except OSError:  # the exporter gave up on the request and closed
            self.close_connection = True

    def _read_slowly(self, length: int) -> bytes | None:
        """The body, read at the server's rate; None if the client closed before its end, or
        had closed (gave up waiting for the answer) once it was read."""
        body = bytearray()
        step = max(1, int(self.server.rate / 20))
        while len(body) < length:
            try:
                piece = self.rfile.read1(min(step, length - len(body)))
            except OSError:
                return None
            if not piece or self.server.done.wait(len(piece) / self.server.rate):
                return None
            body += piece
        return bytes(body) if self._client_waits() else None

    def _client_waits(self) -> bool:
        """Whether the client is still connected: its socket neither closed nor reset."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return True
        try:
            return bool(self.connection.recv(1, socket.MSG_PEEK))
        except OSError:
            return False


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    server = Ingest()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.done.set()  # lets hanging and trickling answers end
        server.shutdown()
        server.server_close()
        thread.join(10)


def push_args(tmp_path: Path, url: str, **overrides: str) -> list[str]:
    key = tmp_path / "collector.key"
    key.write_text("pak_itest.secret\n")
    key.chmod(0o600)
    settings = {
        "push.url": url,
        "push.key-file": str(key),
        "push.interval": f"{INTERVAL:g}s",
        "push.spool-dir": str(tmp_path / "spool"),
        "push.max-backoff": "300ms",
        "push.host": "itest",
        **overrides,
    }
    return [*COLLECTORS, *(f"--{flag}={value}" for flag, value in settings.items())]


def metric(exporter: ExporterProcess, name: str) -> float:
    """A sample's value; 0 for a labelled counter not served yet."""
    for line in exporter.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    if "{" in name:
        return 0.0
    raise AssertionError(f"{name} not served")


def timeouts(exporter: ExporterProcess) -> float:
    return metric(exporter, 'perfanalysis_exporter_push_requests_total{code="timeout"}')


def sample_times(lines: list[str]) -> list[float]:
    """The distinct sample times (seconds) of the node_load1 points received, in order."""
    return sorted(
        {int(line.rsplit(" ", 1)[1]) / 1e9 for line in lines if line.startswith("node_load1,")}
    )


def assert_no_tick_without_its_sample(
    exporter: ExporterProcess, ingest: Ingest, since: float
) -> None:
    """Once ingest takes everything again: each tick since ``since`` was sampled and delivered.
    Every request timed out by a sample's time was followed by that sample: one more sample than
    timeouts at least."""
    timed_out = int(timeouts(exporter))
    ingest.mode = "ok"
    wait_until(
        lambda: metric(exporter, "perfanalysis_exporter_push_points_queued") == 0,
        timeout=30,
        what="the spool to drain",
    )
    assert metric(exporter, "perfanalysis_exporter_push_samples_skipped_total") == 0
    with ingest.lock:
        stamps = [t for t in sample_times(ingest.lines) if t >= since]
    assert len(stamps) >= max(timed_out + 1, 4), (timed_out, stamps)
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert max(gaps) < 2 * INTERVAL, gaps


@pytest.mark.parametrize("mode", ["trickle", "hang"])
def test_an_answer_that_never_comes_costs_requests_not_samples(
    ingest: Ingest, tmp_path: Path, mode: str
) -> None:
    ingest.mode = mode
    began = time.time()
    exporter = ExporterProcess(
        tmp_path / "exporter",
        push_args(tmp_path, f"http://127.0.0.1:{ingest.port}", **{"push.timeout": "5s"}),
    ).start()
    try:
        wait_until(lambda: timeouts(exporter) >= 3, timeout=20, what="three requests timed out")
        health = exporter.request("GET", "/health").json()["push"]
        assert health["status"] == "retrying"
        assert "all the time left before a sample" in health["last_error"]
        assert_no_tick_without_its_sample(exporter, ingest, began)
        ingest.mode = mode  # SIGTERM while requests go unanswered: each ends by the next sample
        seen = timeouts(exporter)
        wait_until(lambda: timeouts(exporter) > seen, timeout=20, what="another timeout")
        stopping = time.monotonic()
        assert exporter.stop() == 0
        assert time.monotonic() - stopping < INTERVAL + 3
        assert "abandoning it" not in exporter.log_tail()
    finally:
        exporter.stop()


# -- a nameserver that never answers, for the exporter alone (a mount namespace of its own)


def _private_resolv_conf_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount --bind /etc/hostname /etc/resolv.conf"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


needs_mount_namespace = pytest.mark.skipif(
    not _private_resolv_conf_works(),
    reason="needs root and unshare to give the exporter a resolv.conf of its own",
)


class DeafNameserver:
    """UDP and TCP port 53 on a loopback address of its own, never answering."""

    def __init__(self) -> None:
        rng = random.Random()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket()
        for _ in range(20):
            self.address = f"127.53.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"
            try:
                self.udp.bind((self.address, 53))
                self.tcp.bind((self.address, 53))
            except OSError:
                self.close()
                self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.tcp = socket.socket()
                continue
            self.tcp.listen(16)
            return
        raise RuntimeError("no free loopback address for a nameserver")

    def close(self) -> None:
        for sock in (self.udp, self.tcp):
            with contextlib.suppress(OSError):
                sock.close()


class ExporterWithResolvConf(ExporterProcess):
    """Our exporter in a mount namespace where /etc/resolv.conf is ``resolv_conf``."""

    def __init__(self, base_dir: Path, args: list[str], resolv_conf: Path) -> None:
        super().__init__(base_dir, args)
        self.resolv_conf = resolv_conf

    def executable(self) -> str:
        unshare = shutil.which("unshare")
        assert unshare is not None
        return unshare

    def command(self) -> list[str]:
        script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
        python = super().executable()
        exporter = super().command()
        return [
            "unshare",
            "--mount",
            "sh",
            "-c",
            script,
            str(self.resolv_conf),
            python,
            *exporter[1:],
        ]


@needs_mount_namespace
def test_a_lookup_that_never_answers_costs_requests_not_samples_and_stops_promptly(
    tmp_path: Path,
) -> None:
    nameserver = DeafNameserver()
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(f"nameserver {nameserver.address}\noptions timeout:5 attempts:2\n")
    exporter = ExporterWithResolvConf(
        tmp_path / "exporter",
        push_args(tmp_path, "http://ingest.deadline.test:8087", **{"push.timeout": "2s"}),
        resolv_conf,
    )
    try:
        exporter.start()
        wait_until(lambda: timeouts(exporter) >= 3, timeout=20, what="three lookups timed out")
        health = exporter.request("GET", "/health").json()["push"]
        assert re.search(r"resolving ingest\.deadline\.test", health["last_error"]), health
        queued = metric(exporter, "perfanalysis_exporter_push_points_queued")
        wait_until(
            lambda: metric(exporter, "perfanalysis_exporter_push_points_queued") > queued,
            timeout=10,
            what="samples to go on",
        )
        assert metric(exporter, "perfanalysis_exporter_push_samples_skipped_total") == 0
        stopping = time.monotonic()
        assert exporter.stop() == 0
        assert time.monotonic() - stopping < 4  # the request ends by the next sample
        assert "abandoning it" not in exporter.log_tail()
    finally:
        exporter.stop()
        nameserver.close()


# -- requests the next sample cuts: a pusher in this process, the stand-in reading slowly


def spooled_lines(pusher: Pusher) -> list[str]:
    """What the spool holds, line by line, in the order it was appended (nothing committed)."""
    batch = pusher.spool.read(1 << 30)
    assert batch is not None
    return [
        line for r in batch.records for line in gzip.decompress(r.payload).decode().splitlines()
    ]


def kept(ingest: Ingest) -> tuple[list[str], list[int]]:
    with ingest.lock:
        return list(ingest.lines), list(ingest.requests)


def limited_by(pusher: Pusher, limit: str, seconds: float) -> Callable[[], float]:
    """Give each request ``seconds`` through ``limit``: the next sample (its deadline that far
    away, --push.timeout 2 s), or --push.timeout (the next sample a minute away, as with
    --push.interval 60s). Returns the deadline to give a send made now."""
    if limit == "timeout":
        pusher.client.connection.timeout = seconds
        return lambda: time.monotonic() + 60.0
    assert limit == "sample", limit
    return lambda: time.monotonic() + seconds


@pytest.mark.parametrize("limit", ["sample", "timeout"])
def test_a_backlog_batch_too_large_for_the_time_goes_on_in_halves_and_lowers_the_batch_size(
    ingest: Ingest,
    make_pusher: Callable[..., Pusher],
    caplog: pytest.LogCaptureFixture,
    limit: str,
) -> None:
    """Four samples queued (about 470 points, 2 KB gzipped) over a link carrying 800 bytes a
    second, with 0.7 s for each request, whether the next sample or --push.timeout limits it:
    the batch needs about 2.5 s, its halves 1.4 s, its quarters 0.8 s, its eighths 0.3 s. Each
    cut request is sent again in halves and lowers the batch size, so the backlog drains, every
    point delivered once and in order. Before, the whole batch was sent again after each sample
    and cut every time, for good; and a request that ran into --push.timeout rather than the
    next sample (a timeout shorter than the interval) was never halved at all."""
    ingest.mode = "slow"
    ingest.rate = 800.0
    pusher = make_pusher(f"http://127.0.0.1:{ingest.port}", series=100)
    deadline = limited_by(pusher, limit, 0.7)
    for _ in range(4):
        pusher.sample()
    expected = spooled_lines(pusher)
    with caplog.at_level(logging.WARNING, logger="exporter.push.pusher"):
        give_up = time.monotonic() + 30
        while pusher.spool.queued_points:
            assert time.monotonic() < give_up, ("the backlog never drained", kept(ingest)[1])
            pusher.send(deadline=deadline())
    cut = pusher.stats.requests_cut
    assert cut >= 2  # the batch, then a half of it
    lines, requests = kept(ingest)
    assert lines == expected  # each point once, in the order sampled
    assert pusher.stats.sent == len(expected)
    assert max(requests) < len(expected) / 2
    assert CUT_MIN_POINTS <= pusher.max_points < len(expected) / 2
    assert pusher.stats.requests == {"timeout": cut, "204": len(requests)}
    assert metric_lines(pusher)["perfanalysis_exporter_push_requests_cut_total"] == cut
    wait_until(lambda: ingest.abandoned == cut, 10, what="the cut requests to end unkept")
    said = [r.getMessage() for r in caplog.records]
    assert sum("needed longer than it had" in m for m in said) == 1, said
    timed_out = {
        "sample": "timed out waiting for the answer, all the time left before a sample",
        "timeout": "timed out after 0.7s waiting for the answer",
    }[limit]
    assert sum(timed_out in m for m in said) == 1, said

    ingest.mode = "ok"  # the link is fast again: the batch size doubles back as after a 413
    lowered = pusher.max_points
    for _ in range(RECOVER_AFTER):
        pusher.sample()
        assert pusher.send() == 0.0
    assert pusher.max_points == 2 * lowered


def test_a_cut_after_part_of_a_413_split_was_taken_sends_none_of_that_part_again(
    ingest: Ingest, make_pusher: Callable[..., Pusher]
) -> None:
    """413 (a proxy's body limit), the first half taken (about 1 s of the 2 s before the next
    sample), the second cut: the chain goes on after it with the second half's quarters; the
    first half is not sent again (its records, committed, are no longer in the spool). Before, the
    cut failed the batch, sent whole again after a backoff: the first half twice, and the second
    cut again, for good."""
    ingest.mode = "slow"
    ingest.rate = 800.0
    pusher = make_pusher(f"http://127.0.0.1:{ingest.port}", series=100)
    for _ in range(4):
        pusher.sample()
    expected = spooled_lines(pusher)
    batch = pusher.spool.read(1 << 30)
    assert batch is not None
    ingest.max_body = len(pusher._body(batch)) * 3 // 4
    pusher.send(deadline=time.monotonic() + 2.0)
    lines, requests = kept(ingest)
    assert (pusher.stats.requests_cut, len(requests)) == (1, 1)
    assert lines == expected[: len(lines)]  # the first half
    # the records the half holds whole are committed, counted as sent; the batch goes on
    assert 0 < pusher.stats.sent <= len(lines)
    assert pusher.spool.queued_points == len(expected) - pusher.stats.sent
    give_up = time.monotonic() + 30
    while pusher.spool.queued_points:
        assert time.monotonic() < give_up, ("the batch never settled", kept(ingest)[1])
        pusher.send(deadline=time.monotonic() + 2.0)
    lines, requests = kept(ingest)
    assert lines == expected  # none twice, none lost, in order
    assert len(requests) >= 3  # the first half, then the second in quarters
    assert pusher.stats.sent == len(expected)
    assert pusher.stats.requests["413"] == 1


def test_a_slow_link_converges_on_a_batch_size_that_fits_the_interval(
    ingest: Ingest, tmp_path: Path
) -> None:
    """Our exporter, a backlog queued while ingest refused (503), then a link that carries 1000
    bytes a second: the backlog's first request needs longer than the interval. It is cut and
    sent on in halves, the batch size lowered, and the backlog drains: each sample delivered
    once, in order, none missing. Before, the backlog's request was cut at every sample and
    nothing was ever sent again."""
    ingest.mode = "refuse"
    exporter = ExporterProcess(
        tmp_path / "exporter", push_args(tmp_path, f"http://127.0.0.1:{ingest.port}")
    ).start()
    queued = "perfanalysis_exporter_push_points_queued"
    try:
        wait_until(lambda: metric(exporter, queued) >= 300, timeout=30, what="a backlog")
        ingest.rate = 1000.0
        ingest.mode = "slow"
        wait_until(
            lambda: metric(exporter, "perfanalysis_exporter_push_requests_cut_total") >= 1,
            timeout=20,
            what="the backlog's request to be cut",
        )
        wait_until(lambda: metric(exporter, queued) == 0, timeout=60, what="the backlog to drain")
        assert metric(exporter, "perfanalysis_exporter_push_batch_max_points") < 5000
        assert metric(exporter, "perfanalysis_exporter_push_samples_skipped_total") == 0
        assert "needed longer than it had" in exporter.log_tail()
    finally:
        exporter.stop()
    lines, _ = kept(ingest)
    assert len(lines) == len(set(lines))  # none twice
    stamps = [int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("node_load1,")]
    assert stamps == sorted(stamps)  # in order
    gaps = [(later - earlier) / 1e9 for earlier, later in itertools.pairwise(stamps)]
    assert len(stamps) >= 10
    assert max(gaps) < 2 * INTERVAL, gaps  # none lost


def test_a_hanging_ingest_halves_the_batch_down_to_the_least_then_sends_that_whole_backing_off(
    ingest: Ingest, make_pusher: Callable[..., Pusher]
) -> None:
    """An ingest that reads each request and never answers, --push.timeout (0.3 s) far shorter
    than the time to the next sample: each request is cut at its timeout, and each send goes on
    with the first half of what the one before carried, down to CUT_MIN_POINTS, then sends that
    whole again; the backoff grows as after any failure, the batch size comes down to
    CUT_MIN_POINTS. Once ingest answers, the batch goes on from there: each point delivered
    once, in order. Before, each request was the whole batch again (a plain timeout), and the
    batch size never came down."""
    ingest.mode = "hang"
    pusher = make_pusher(f"http://127.0.0.1:{ingest.port}", series=100)
    deadline = limited_by(pusher, "timeout", 0.3)
    for _ in range(4):
        pusher.sample()
    expected = spooled_lines(pusher)
    sends = 6
    delays = [pusher.send(deadline=deadline()) for _ in range(sends)]
    halved = [len(expected)]
    while len(halved) < sends:
        halved.append(halved[-1] // 2 if halved[-1] > CUT_MIN_POINTS else halved[-1])
    assert halved[-1] == halved[-2] <= CUT_MIN_POINTS  # the least is reached, and sent again
    hung = wait_until(lambda: len(ingest.hung) == sends and list(ingest.hung), 10, what="hung")
    assert hung == halved
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # Backoff(0.5, 4.0), no jitter: as ever
    assert pusher.stats.state == "retrying"
    assert pusher.stats.last_error == "timeout: timed out after 0.3s waiting for the answer"
    assert (pusher.stats.requests_cut, pusher.stats.requests) == (sends, {"timeout": sends})
    assert pusher.stats.retried == sum(halved)
    assert pusher.max_points == CUT_MIN_POINTS
    assert (pusher.stats.sent, pusher.spool.queued_points) == (0, len(expected))

    ingest.mode = "ok"
    assert pusher.send(deadline=deadline()) == 0.0  # the rest of the batch, settled
    lines, requests = kept(ingest)
    assert lines == expected  # none twice, none lost, in order
    assert requests[0] == halved[-1]  # went on with the request left unanswered
    assert (pusher.stats.sent, pusher.spool.queued_points) == (len(expected), 0)
    assert pusher.stats.state == "ok"


def refusing_appends(pusher: Pusher, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the spool refuse every append (EIO); the lines offered to it, in order."""
    offered: list[str] = []

    def refuse(payload: bytes, points: int, sync: bool = True) -> None:
        offered.extend(gzip.decompress(payload).decode().splitlines())
        raise SpoolError("EIO")

    monkeypatch.setattr(pusher.spool, "append", refuse)
    return offered


def send_held_until_done(pusher: Pusher, ingest: Ingest) -> None:
    """Run the push loop's steps, as its thread does, until no chunk is held; no other sample."""
    pusher._next_sample = time.monotonic() + 60.0
    give_up = time.monotonic() + 30
    while pusher._held:
        assert time.monotonic() < give_up, ("the held chunk never settled", kept(ingest)[1])
        wait = pusher._step()
        if wait > 0:
            pusher._stop.wait(wait)  # the backoff, as the thread waits it out


@pytest.mark.parametrize("limit", ["sample", "timeout"])
def test_a_cut_chunk_the_spool_could_not_take_goes_on_in_halves_from_memory(
    ingest: Ingest,
    make_pusher: Callable[..., Pusher],
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
) -> None:
    """The spool failing, a sample's chunk (about 420 points, 1.5 KB) is sent from memory over a
    link carrying 800 bytes a second, with 0.7 s for its request: cut, it is kept, and goes on
    after the backoff in halves until all of it is acknowledged: none lost, none counted as
    spool_error, each point once. Before, the cut dropped the chunk, counted as spool_error."""
    ingest.mode = "slow"
    ingest.rate = 800.0
    pusher = make_pusher(f"http://127.0.0.1:{ingest.port}", series=400)
    deadline = limited_by(pusher, limit, 0.7)
    offered = refusing_appends(pusher, monkeypatch)
    pusher.sample(deadline())
    assert pusher.stats.requests_cut == 1
    assert len(pusher._held) == 1  # kept, under way
    assert pusher._held_delivering is not None
    assert pusher.stats.spool_error == pusher.stats.sent == 0
    send_held_until_done(pusher, ingest)
    lines, requests = kept(ingest)
    assert lines == offered  # none twice, none lost, in order
    assert (pusher.stats.sent, pusher.stats.spool_error) == (len(offered), 0)
    cut = pusher.stats.requests_cut
    assert pusher.stats.requests == {"timeout": cut, "204": len(requests)}
    assert CUT_MIN_POINTS <= pusher.max_points < len(offered)
    wait_until(lambda: ingest.abandoned == cut, 10, what="the cut requests to end unkept")


def test_points_a_cut_chunk_from_memory_had_delivered_are_not_counted_lost(
    ingest: Ingest, make_pusher: Callable[..., Pusher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool failing, a sample's chunk sent from memory: 413 (a proxy's body limit), its
    first half taken (about 1.5 s of the 2 s before the next sample), its second cut. The chunk
    goes on after the backoff with the second half; the first is neither sent again nor counted
    as lost. Before, the cut dropped the second half, and counted the whole chunk as
    spool_error, the half ingest had taken too."""
    ingest.mode = "slow"
    ingest.rate = 400.0
    pusher = make_pusher(f"http://127.0.0.1:{ingest.port}", series=400)
    pusher.sample()  # a sample the spool takes, to measure one: the chunk's size but for a digit
    batch = pusher.spool.read(1 << 30)
    assert batch is not None
    ingest.max_body = len(pusher._body(batch)) * 3 // 4
    pusher.spool.commit(batch)
    offered = refusing_appends(pusher, monkeypatch)
    pusher.sample(time.monotonic() + 2.0)
    lines, requests = kept(ingest)
    assert (pusher.stats.requests_cut, len(requests)) == (1, 1)
    assert lines == offered[: len(lines)]  # the first half
    assert pusher.stats.spool_error == pusher.stats.sent == 0  # counted when the chunk settles
    send_held_until_done(pusher, ingest)
    lines, requests = kept(ingest)
    assert lines == offered  # none twice, none lost, in order
    assert (pusher.stats.sent, pusher.stats.spool_error) == (len(offered), 0)
    assert pusher.stats.requests["413"] == 1
