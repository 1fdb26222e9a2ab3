"""Sending never costs a sample: requests end by the next sample, and what they left goes on after.

Before, one thread sampled and sent, and a request could take all of --push.timeout whatever the
interval: against a hanging ingest (interval 1s, timeout 5s) the exporter took 5 samples in 21 s
and skipped the other 16 without counting them. A 413's halves, a 400's resend and the chunks the
spool could not take each chained requests of their own timeout.

Where a test needs to know how much time a request chain had, the client's clock is a stand-in
that the scripted ingest moves on by a second per request, so that which requests fit before the
deadline does not depend on the machine's speed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import exporter.push.client as client_module
import exporter.push.pusher as pusher_module
from exporter.model import MetricFamily
from exporter.push.client import CUT_MIN_POINTS, Delivering, Verdict, compress
from exporter.push.pusher import Pusher
from exporter.push.spool import SpoolError
from perfanalysis.testing.servers import wait_until
from tests.unit.test_push_client import Answer, Received, Scripted, always
from tests.unit.test_push_pusher import (
    Counting,
    make_pusher,
    metric_lines,
    serve,
    timestamps_of,
    values_of,
)

__all__ = ["make_pusher", "serve"]  # fixtures


class Clock:
    """Stands in for the time module in client.py: the scripted ingest moves ``now`` on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(client_module, "time", fake)
    return fake


def taking_a_second(clock: Clock, answer: Callable[[Received], Answer]) -> Callable[..., Answer]:
    def answered(received: Received) -> Answer:
        clock.now += 1.0
        return answer(received)

    return answered


def too_large_over(lines: int) -> Callable[[Received], Answer]:
    return lambda received: Answer(413) if len(received.lines) > lines else Answer(204)


def sent_lines(server: Scripted, answered: list[int], status: int = 204) -> list[str]:
    """The lines of the requests ingest answered with ``status``."""
    return [
        line
        for received, code in zip(server.received, answered, strict=True)
        if code == status
        for line in received.lines
    ]


def test_a_batch_whose_requests_a_sample_interrupts_goes_on_after_it(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher], clock: Clock
) -> None:
    """413, then a half: the deadline leaves too little time for the next request, so the send
    stops there, the sample goes first, and the chain goes on where it stopped: the 413'd
    request is not sent again, and each point is acknowledged once."""
    answered: list[int] = []

    def answer(received: Received) -> Answer:
        result = too_large_over(4)(received)
        answered.append(result.status)
        return result

    server = serve(taking_a_second(clock, answer))
    pusher = make_pusher(server.url, series=8)
    pusher.sample()
    first = pusher.spool.queued_points
    assert first > 16
    assert pusher.send(deadline=clock.now + 2.5) == 0.0  # 1 s a request, 0.25 s the floor
    assert answered == [413, 413, 413]  # the batch, a half, a quarter; then 0.5 s left: stop
    assert pusher.spool.queued_points == first
    assert pusher.stats.sent == pusher.stats.retried == 0  # nothing settled, nothing failed
    assert pusher.stats.state == "starting"

    pusher.sample()
    second = pusher.spool.queued_points - first
    assert pusher.send() == 0.0  # goes on with the first batch's chain
    assert pusher.spool.queued_points == second
    assert pusher.stats.sent == first
    requests = [tuple(r.lines) for r in server.received]
    assert len(set(requests)) == len(requests)  # none made twice: the chain went on
    acknowledged = sent_lines(server, answered)
    assert len(acknowledged) == len(set(acknowledged)) == first  # every point once
    assert pusher.send() == 0.0
    assert pusher.spool.queued_points == 0
    assert pusher.stats.sent == first + second == len(sent_lines(server, answered))
    events = [
        line for line in sent_lines(server, answered) if line.startswith("test_events_total,")
    ]
    assert [line.split(" ")[1] for line in events if "n=0" in line] == ["value=1.0", "value=2.0"]


def test_an_interrupted_batch_the_spool_dropped_meanwhile_is_not_sent_on(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Appends after the interruption fill the spool, which drops the batch (spool_full): what
    is sent next starts afresh from the oldest records left, and nothing is committed twice."""
    answered: list[int] = []

    def answer(received: Received) -> Answer:
        result = too_large_over(4)(received)
        answered.append(result.status)
        return result

    server = serve(taking_a_second(clock, answer))
    pusher = make_pusher(server.url, series=8, max_bytes=64 << 10, segment_bytes=4096)
    pusher.sample()
    first = pusher.spool.queued_points
    pusher.send(deadline=clock.now + 1.5)
    interrupted = len(server.received)
    assert interrupted == 2
    padding = 0
    while pusher.spool.dropped_points < first:  # fill the spool until the batch is dropped
        line = f'pad,n={padding} v="{random.Random(padding).randbytes(1500).hex()}" {padding}\n'
        pusher.spool.append(compress(line.encode()), 1, sync=False)
        padding += 1
    queued = pusher.spool.queued_points
    with caplog.at_level(logging.WARNING, logger="exporter.push.spool"):
        while pusher.spool.queued_points:
            assert pusher.send() == 0.0
    assert "stale" not in caplog.text
    later = [line for r in server.received[interrupted:] for line in r.lines]
    assert not any(line.startswith("test_events_total,") for line in later)
    assert pusher.stats.sent == queued == len(sent_lines(server, answered))


def test_no_request_starts_with_less_than_the_floor_left_before_a_sample(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url)
    assert pusher.floor == 0.25  # a quarter of a second: the interval is a minute
    pusher.sample()
    pusher._next_sample = time.monotonic() + pusher.floor / 2
    wait = pusher._step()
    assert server.received == []  # waits for the sample instead
    assert 0 < wait <= pusher.floor / 2
    pusher._next_sample = time.monotonic()
    assert pusher._step() == 0.0  # the sample
    assert pusher._step() == 0.0  # then the send, with both samples in one request
    assert len(server.received) == 1
    assert values_of(server.received) == [1.0, 2.0]
    assert pusher.stats.samples_skipped == 0


def test_a_hanging_ingest_costs_no_sample(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    """--push.timeout 5 s at a 0.5 s interval: each request ends by the next sample."""
    hanging = {"on": True}
    server = serve(lambda _r: Answer(204, delay=3.0 if hanging["on"] else 0.0))
    interval = 0.5
    pusher = make_pusher(server.url, interval=interval)
    pusher.client.connection.timeout = 5.0
    pusher.start()
    wait_until(lambda: pusher.stats.samples >= 6, 10, 0.01, "six samples while ingest hangs")
    assert pusher.stats.requests.get("timeout", 0) >= 1
    assert pusher.stats.last_error.endswith("all the time left before a sample")
    hanging["on"] = False
    wait_until(
        lambda: pusher.stats.samples >= 8 and not pusher.spool.queued_points,
        30,
        0.01,
        "ingest to take everything",
    )
    assert pusher.stop(5.0)
    assert pusher.stats.samples_skipped == 0
    stamps = sorted(set(timestamps_of(server.received)))
    assert len(stamps) >= 8
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert max(gaps) < 2 * interval, gaps  # no tick went without its sample


class Slow(Counting):
    """A collector that takes ``seconds`` per sample: longer than the interval."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def collect(self) -> list[MetricFamily]:
        time.sleep(self.seconds)
        return super().collect()


def test_ticks_a_slow_sample_runs_past_are_skipped_counted_and_sending_goes_on(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url, interval=0.2)
    pusher.registry.collectors[:] = [Slow(0.5)]
    with caplog.at_level(logging.WARNING, logger="exporter.push.pusher"):
        pusher.start()
        wait_until(lambda: len(values_of(server.received)) >= 3, 10, 0.01, "three samples sent")
        assert pusher.stop(5.0)
    skipped = pusher.stats.samples_skipped
    assert skipped >= 2 * (pusher.stats.samples - 1)  # 0.5 s a sample: two more ticks of 0.2 s
    metrics = metric_lines(pusher)
    assert metrics["perfanalysis_exporter_push_samples_skipped_total"] == skipped
    values = sorted(set(values_of(server.received)))  # (a request cut short may come twice)
    assert values == [float(v) for v in range(1, len(values) + 1)]
    assert caplog.text.count("sample(s): the push thread was busy") == 1  # once while it lasts


def failing_appends(pusher: Pusher, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(payload: bytes, points: int, sync: bool = True) -> None:
        raise SpoolError("EIO")

    monkeypatch.setattr(pusher.spool, "append", refuse)


def test_chunks_the_spool_could_not_take_go_on_after_the_sample_not_lost(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve(taking_a_second(clock, always(Answer(204))))
    pusher = make_pusher(server.url, batch_size=4, series=10)
    failing_appends(pusher, monkeypatch)
    pusher.sample(deadline=clock.now + 2.5)
    assert len(server.received) == 3  # three chunks of four points fit, with 1 s each
    assert pusher.stats.spool_error == 0  # the others wait, not lost
    pusher.sample()  # the next sample: the first one's chunks go on, then its own
    lines = [line for r in server.received for line in r.lines]
    assert len(lines) == len(set(lines)) == pusher.stats.sent
    assert values_of(server.received) == [1.0, 2.0]
    assert pusher.stats.spool_error == 0
    assert pusher.stats.samples == 2


def test_chunks_held_beyond_their_bound_are_counted_lost_oldest_first(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url, batch_size=4, series=10)
    offered: list[int] = []

    def refuse(payload: bytes, points: int, sync: bool = True) -> None:
        offered.append(points)
        raise SpoolError("EIO")

    monkeypatch.setattr(pusher.spool, "append", refuse)
    pusher.sample(deadline=clock.now)  # no time at all: every chunk is held
    assert server.received == []
    assert pusher.stats.spool_error == 0
    one_sample = sum(len(payload) for payload, _ in pusher._held)
    monkeypatch.setattr(pusher_module, "HELD_MAX_BYTES", one_sample + one_sample // 2)
    pusher.sample(deadline=clock.now)  # the first sample's chunks give way to the second's
    lost = pusher.stats.spool_error
    assert lost > 0
    pusher.sample()  # the third is sent whole, with what is left of the others
    assert pusher.stats.spool_error > lost  # the bound held again, before the sends
    assert pusher.stats.sent == sum(len(r.lines) for r in server.received)
    assert pusher.stats.sent + pusher.stats.spool_error == sum(offered)
    newest = [line for r in server.received for line in r.lines if " value=3.0 " in line]
    assert len([line for line in newest if line.startswith("test_events_total,")]) == 10


def test_a_send_with_no_time_left_makes_no_request_and_loses_nothing(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher], clock: Clock
) -> None:
    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url)
    pusher.sample()
    queued = pusher.spool.queued_points
    assert pusher.send(deadline=clock.now + pusher.floor / 2) == 0.0
    assert server.received == []
    assert pusher.spool.queued_points == queued
    assert pusher.stats.requests == {}
    assert pusher.send() == 0.0
    assert len(server.received) == 1
    assert pusher.stats.sent == queued


def test_the_floor_is_at_most_a_quarter_of_the_interval(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(204)))
    assert make_pusher(server.url, interval=0.4).floor == pytest.approx(0.1)


def test_a_settled_delivery_run_again_makes_no_request(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url)
    delivering = pusher.client.start(compress(b"m value=1 1\n"), 1)
    first = delivering.run()
    assert first is not None
    assert first.sent == 1
    assert delivering.run() is first
    assert len(server.received) == 1


def chain_depth(delivering: Delivering) -> int:
    """How many generators the chain of requests is nested in (one per split or cut level)."""
    depth = 0
    steps: Any = delivering._steps  # a generator: gi_yieldfrom is the one it delegates to
    while steps is not None:
        depth += 1
        steps = steps.gi_yieldfrom
    return depth


def test_a_small_request_cut_again_and_again_is_sent_whole_in_place(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    """At most CUT_MIN_POINTS: not halved, sent again whole at each run, and the chain does not
    grow with the cuts (an ingest hanging for a day cuts a request every interval)."""
    slow = {"on": True}
    server = serve(lambda _r: Answer(204, delay=1.0 if slow["on"] else 0.0))
    pusher = make_pusher(server.url)
    lines = [f"m,n={n} value=1 1\n" for n in range(CUT_MIN_POINTS)]
    delivering = pusher.client.start(compress("".join(lines).encode()), len(lines))
    depths = set()
    for _ in range(4):
        cut = delivering.run(deadline=time.monotonic() + 0.1)
        assert cut is not None
        assert (cut.verdict, cut.cut_at) == (Verdict.CUT, CUT_MIN_POINTS)
        assert (
            cut.error
            == "timeout: timed out waiting for the answer, all the time left before a sample"
        )
        depths.add(chain_depth(delivering))
    assert depths == {1}
    slow["on"] = False
    settled = delivering.run(deadline=time.monotonic() + 5.0)
    assert settled is not None
    assert (settled.verdict, settled.sent) == (Verdict.SETTLED, CUT_MIN_POINTS)
    assert [len(r.lines) for r in server.received] == [CUT_MIN_POINTS] * 5
    assert pusher.client.requests == {"timeout": 4, "204": 1}


class Trickling:
    """A raw server that answers each request with a status line that never ends."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while not self.done.is_set():
                conn, _ = self.listener.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 503 Bu")
                    self.done.wait(5)

    def close(self) -> None:
        self.done.set()
        self.listener.close()


def within(pusher: Pusher, limit: str, seconds: float) -> float:
    """The deadline of a send whose requests get ``seconds`` through ``limit``: the next sample
    (--push.timeout 2 s), or --push.timeout (the next sample a minute away)."""
    if limit == "timeout":
        pusher.client.connection.timeout = seconds
        return time.monotonic() + 60.0
    return time.monotonic() + seconds


TIMED_OUT = {
    "sample": "timeout: timed out {stage}, all the time left before a sample",
    "timeout": "timeout: timed out after 0.3s {stage}",
}


@pytest.mark.parametrize("limit", ["sample", "timeout"])
def test_a_request_cut_with_its_answer_begun_fails_as_a_timeout_and_lowers_nothing(
    make_pusher: Callable[..., Pusher], limit: str
) -> None:
    """Ingest has taken the request and trickles its answer: its size is not why it is slow."""
    server = Trickling()
    try:
        pusher = make_pusher(server.url)
        pusher.sample()
        assert pusher.send(deadline=within(pusher, limit, 0.3)) > 0  # a backoff
    finally:
        server.close()
    assert pusher.stats.requests_cut == 0
    assert pusher.max_points == pusher.batch_size
    assert pusher._chain is None  # the batch is read again after the backoff
    assert pusher.stats.last_error == TIMED_OUT[limit].format(stage="reading the answer")


@pytest.mark.parametrize("limit", ["sample", "timeout"])
def test_a_request_that_timed_out_connecting_fails_as_a_timeout_and_lowers_nothing(
    make_pusher: Callable[..., Pusher], limit: str
) -> None:
    """A listener whose accept queue is full drops new SYNs: the connect times out, which says
    nothing about the request's size."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    queued = socket.create_connection(address, timeout=5)  # fills the accept queue
    try:
        pusher = make_pusher(f"http://127.0.0.1:{address[1]}")
        pusher.sample()
        assert pusher.send(deadline=within(pusher, limit, 0.3)) > 0  # a backoff
    finally:
        queued.close()
        listener.close()
    assert (pusher.stats.requests_cut, pusher.stats.requests) == (0, {"timeout": 1})
    assert pusher.max_points == pusher.batch_size
    assert pusher._chain is None
    assert pusher.stats.last_error == TIMED_OUT[limit].format(stage="connecting to 127.0.0.1")


def test_a_request_cut_at_its_own_timeout_goes_on_in_halves(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    """--push.timeout (0.2 s) well before the next sample (a minute away): a request ingest
    answers too slowly for its size (over 100 points: after 1 s) is cut as one the next sample
    cut would be, and what it carried goes on in halves at the next run, which fit. Before, it
    failed as a plain timeout (RETRY) and was sent whole again each time, for good."""
    server = serve(lambda received: Answer(204, delay=1.0 if len(received.lines) > 100 else 0.0))
    pusher = make_pusher(server.url)
    pusher.client.connection.timeout = 0.2
    lines = [f"m,n={n} value=1 1\n" for n in range(400)]
    delivering = pusher.client.start(compress("".join(lines).encode()), len(lines))
    results = []
    for _ in range(4):
        result = delivering.run(deadline=time.monotonic() + 60.0)
        assert result is not None
        results.append((result.verdict, result.cut_at, result.sent))
    assert results == [
        (Verdict.CUT, 400, 0),
        (Verdict.CUT, 200, 0),  # the first half; then its quarters are taken
        (Verdict.CUT, 200, 200),  # the second half, the first half's 200 points taken
        (Verdict.SETTLED, None, 400),  # its quarters taken: each point acknowledged once
    ]
    assert [len(r.lines) for r in server.received] == [400, 200, 100, 100, 200, 100, 100]
    taken = [line for r in server.received if len(r.lines) <= 100 for line in r.lines]
    assert sorted(taken) == sorted(line.rstrip("\n") for line in lines)
    assert pusher.client.requests == {"timeout": 3, "204": 4}
