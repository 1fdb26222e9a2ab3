"""The push path resends only what ingest has not acknowledged.

1. A request that fails (503, a network error) after other parts of the same batch were
   acknowledged is made again after the backoff, alone: before, the retry sent the whole spool
   batch again, the acknowledged parts too (storage absorbed them, the link carried them again).
   The batch's leading records acknowledged whole are committed before the backoff, so a restart
   does not send them again either; the record a request boundary cut through is sent again.
2. With the spool failing, the samples taken during the backoff of a chunk sent from memory are
   kept (within the memory bound) and sent once it is over: before, they were dropped, counted
   as spool_error, however short the backoff.
3. A commit of those leading records that the spool cannot write (EIO on its state) shows as
   one at a batch's end does, spool_error with its error, and backs off: before, the failed
   request's state and error hid it, and when the next sample stopped the requests nothing
   backed off.

Counted exactly: the points the pusher counts as sent, the lines ingest acknowledged (answered
204) and those it stored (each line once).
"""

from __future__ import annotations

import errno
import gzip
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import exporter.push.client as client_module
import exporter.push.pusher as pusher_module
from exporter.push.backoff import Backoff
from exporter.push.client import Verdict, compress
from exporter.push.pusher import Pusher
from exporter.push.spool import SpoolError
from tests.unit.test_push_client import (
    Answer,
    Received,
    Scripted,
    always,
    body,
    client_for,
    lines,
)
from tests.unit.test_push_pusher import make_pusher, serve
from tests.unit.test_push_pusher_deadline import Clock, taking_a_second

__all__ = ["make_pusher", "serve"]  # fixtures used by name


class Ingest:
    """Answers as ``answer`` says and keeps, in order, the lines of each request it took (204)."""

    def __init__(self, answer: Callable[[Received], int]) -> None:
        self.answer = answer
        self.acknowledged: list[str] = []

    def __call__(self, received: Received) -> Answer:
        status = self.answer(received)
        if status == 204:
            self.acknowledged += received.lines
        return Answer(status)


def run_steps_until(pusher: Pusher, done: Callable[[], bool], what: str) -> None:
    """Run the push loop's steps, as its thread does (backoffs waited out), until ``done``; no
    sample is due meanwhile."""
    pusher._next_sample = time.monotonic() + 60.0
    give_up = time.monotonic() + 30.0
    while not done():
        assert time.monotonic() < give_up, f"waited 30 s for {what}"
        wait = pusher._step()
        if wait > 0:
            pusher._stop.wait(wait)


# -- 1. the client: a failed request is made again, alone


def test_the_next_run_after_a_failure_makes_only_the_failed_request_again(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    answers = iter([413, 204, 503, 204])
    server = serve(lambda _r: Answer(next(answers), headers={"Retry-After": "3"}))
    delivering = client_for(server.url, key_file).start(body(lines(4)), 4)
    failed = delivering.run()
    assert failed is not None
    assert (failed.verdict, failed.retry_after, failed.failed_at) == (Verdict.RETRY, 3.0, 2)
    assert (failed.sent, delivering.acknowledged_first, delivering.narrowed) == (2, 2, True)
    settled = delivering.run()
    assert settled is not None
    assert (settled.verdict, settled.sent, settled.too_large_at) == (Verdict.SETTLED, 4, 4)
    assert [r.lines for r in server.received] == [lines(4), lines(2), lines(2, 2), lines(2, 2)]


def test_a_failed_first_request_has_narrowed_nothing(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    """The pusher then reads the batch afresh (with what the spool took since) rather than going
    on: starting over sends nothing twice."""
    server = serve(always(Answer(503)))
    delivering = client_for(server.url, key_file).start(body(lines(4)), 4)
    failed = delivering.run()
    assert failed is not None
    assert (failed.verdict, failed.failed_at, failed.sent) == (Verdict.RETRY, 4, 0)
    assert not delivering.narrowed


def test_acknowledged_first_is_zero_once_a_point_was_refused(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    """A 400 naming a bad line: the points acknowledged are no longer the batch's first ones."""
    refused = b'{"invalid_lines":[{"line":1,"reason":"bad"}]}'
    answers = iter([Answer(413), Answer(400, refused), Answer(503)])
    server = serve(lambda _r: next(answers))
    delivering = client_for(server.url, key_file).start(body(lines(4)), 4)
    failed = delivering.run()
    assert failed is not None
    assert (failed.verdict, failed.rejected, failed.failed_at) == (Verdict.RETRY, 1, 1)
    assert delivering.acknowledged_first == 0
    assert len(server.received) == 3


# -- 1. the pusher: going on after the backoff, and after a restart


def record_lines(record: int, points: int = 4) -> list[str]:
    return [f"m,n={record * points + i} value=1 {1_000 + record}" for i in range(points)]


@pytest.mark.parametrize("then", ["go on", "restart"])
def test_a_503_after_half_a_batch_was_acknowledged_sends_only_the_rest(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher], then: str
) -> None:
    """Three records of 4 points, one batch of 12: 413, its first half (6 points) taken, its
    second 503. The first record, acknowledged whole, is committed before the backoff and
    counted as sent. Going on sends the failed half alone; a restart sends the two records left:
    the 2 acknowledged points of the second record (the half's boundary cut through it) again,
    and none of the first's."""
    phase = {"failing": True}

    def answer(received: Received) -> int:
        if not phase["failing"]:
            return 204
        if len(received.lines) > 6:
            return 413
        return 503 if any(line.startswith("m,n=6 ") for line in received.lines) else 204

    ingest = Ingest(answer)
    server = serve(ingest)
    pusher = make_pusher(server.url)
    offered = [line for record in range(3) for line in record_lines(record)]
    for record in range(3):
        text = "".join(line + "\n" for line in record_lines(record))
        pusher.spool.append(compress(text.encode()), 4)
    assert pusher.send() > 0  # the backoff
    assert [len(r.lines) for r in server.received] == [12, 6, 6]
    assert ingest.acknowledged == offered[:6]
    assert (pusher.stats.sent, pusher.spool.queued_points) == (4, 8)  # the first record
    assert pusher.stats.retried == 6
    phase["failing"] = False
    if then == "restart":
        assert pusher.stop(1.0)
        pusher = make_pusher(server.url)
        assert pusher.spool.queued_points == 8
        assert pusher.send() == 0.0
        assert [len(r.lines) for r in server.received[3:]] == [8]
        assert ingest.acknowledged == offered[:6] + offered[4:]
        assert pusher.stats.sent == 8
    else:
        assert pusher.send() == 0.0
        assert [r.lines for r in server.received[3:]] == [offered[6:]]  # the failed half
        assert ingest.acknowledged == offered  # each point once
        assert pusher.stats.sent == 12
    assert pusher.spool.queued_points == 0
    assert sorted(set(ingest.acknowledged)) == sorted(offered)  # stored: every point


def test_a_committed_prefix_then_dropped_rest_counts_each_point_once(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    """After the first record was committed on the way, the spool, filled meanwhile, drops the
    segment with the other two: the first counts as sent, the other two as spool_full (the two
    points of the second that ingest had acknowledged too), and the chain is not gone on with."""
    phase = {"failing": True}

    def answer(received: Received) -> int:
        if not phase["failing"]:
            return 204
        if len(received.lines) > 6:
            return 413
        return 503 if any(line.startswith("m,n=6 ") for line in received.lines) else 204

    ingest = Ingest(answer)
    server = serve(ingest)
    pusher = make_pusher(server.url, max_bytes=64 << 10, segment_bytes=4096)
    for record in range(3):
        text = "".join(line + "\n" for line in record_lines(record))
        pusher.spool.append(compress(text.encode()), 4)
    assert pusher.send() > 0
    assert (pusher.stats.sent, pusher.spool.queued_points) == (4, 8)
    padding = 0
    while pusher.spool.dropped_points < 8:  # fill the spool until the rest of the batch goes
        line = f'pad,n={padding} v="{random.Random(padding).randbytes(1500).hex()}" {padding}\n'
        pusher.spool.append(compress(line.encode()), 1, sync=False)
        padding += 1
    phase["failing"] = False
    while pusher.spool.queued_points:
        assert pusher.send() == 0.0
    later = [line for r in server.received[3:] for line in r.lines]
    assert not any(line.startswith("m,") for line in later)
    assert pusher.stats.sent == 4 + len(later) == len(ingest.acknowledged) - 2
    assert pusher.stats.sent + pusher.spool.dropped_points == 12 + padding


# -- 2. a failing spool: the samples taken during a cut chunk's backoff


def refusing_appends(pusher: Pusher, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the spool refuse every append (EIO); the lines offered to it, in order."""
    offered: list[str] = []

    def refuse(payload: bytes, points: int, sync: bool = True) -> None:
        offered.extend(gzip.decompress(payload).decode().splitlines())
        raise SpoolError("EIO")

    monkeypatch.setattr(pusher.spool, "append", refuse)
    return offered


def test_samples_taken_during_a_cut_chunks_backoff_are_kept_and_sent(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A link too slow for a whole sample's chunk (152 points) in --push.timeout (0.2 s), fast
    enough for half of one: the first sample's chunk is cut and goes on in halves after the
    backoff; the second sample, taken during the backoff, waits for it and follows. Before, the
    second was dropped at once, counted as spool_error: never sent."""
    ingest = Ingest(lambda _r: 204)
    server = serve(
        lambda received: Answer(204, delay=1.0) if len(received.lines) > 100 else ingest(received)
    )
    pusher = make_pusher(server.url, series=150)
    pusher.registry.extra.clear()  # 152 points a sample: the series and the collector's two
    pusher.client.connection.timeout = 0.2
    offered = refusing_appends(pusher, monkeypatch)
    pusher.sample()
    assert (pusher.stats.requests_cut, len(pusher._held)) == (1, 1)
    assert len(offered) == 152
    pusher.sample()
    assert time.monotonic() < pusher._retry_at, "the second sample came after the backoff"
    assert len(server.received) == 1  # not sent during the backoff
    assert pusher.max_points == 76  # lowered by the cut: the second sample in two chunks
    assert (len(pusher._held), pusher.stats.spool_error) == (3, 0)  # kept
    run_steps_until(pusher, lambda: not pusher._held, "the held chunks to be sent")
    assert ingest.acknowledged == offered  # every point once, in order
    assert (pusher.stats.sent, pusher.stats.spool_error) == (2 * 152, 0)
    assert (pusher.stats.requests_cut, pusher.stats.retried) == (1, 152)
    assert [len(r.lines) for r in server.received] == [152, 76, 76, 76, 76]


def test_chunks_held_during_a_backoff_keep_the_memory_bound(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ingest refuses the first chunk (503) and backs the pusher off; three samples come during
    the backoff, room for two: the oldest is dropped, counted as spool_error; the other two are
    sent after it. Every point offered is counted once: sent or spool_error."""
    statuses = iter([503])
    ingest = Ingest(lambda _r: next(statuses, 204))
    server = serve(ingest)
    pusher = make_pusher(server.url)
    pusher.registry.extra.clear()
    offered = refusing_appends(pusher, monkeypatch)
    pusher.sample()  # sent at once: 503, lost, counted
    one = len(offered)
    assert pusher.stats.spool_error == one
    for _ in range(3):
        pusher.sample()
        if len(pusher._held) == 1:  # the bound: two of these chunks
            size = len(pusher._held[0][0])
            monkeypatch.setattr(pusher_module, "HELD_MAX_BYTES", 2 * size + size // 2)
    assert time.monotonic() < pusher._retry_at, "the samples came after the backoff"
    assert len(pusher._held) == 2
    assert pusher.stats.spool_error == 2 * one
    run_steps_until(pusher, lambda: not pusher._held, "the held chunks to be sent")
    assert ingest.acknowledged == offered[2 * one :]  # the two newest samples
    assert pusher.stats.sent == 2 * one
    assert pusher.stats.sent + pusher.stats.spool_error == len(offered)


# -- 3. a commit on the way that the spool cannot write is shown, and backed off from


def failing_state_writes(pusher: Pusher, monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Make the spool's state writes fail with EIO while ``failing["on"]``."""
    failing = {"on": True}
    write_state = pusher.spool._write_state

    def refuse() -> None:
        if failing["on"]:
            raise OSError(errno.EIO, "Input/output error")
        write_state()

    monkeypatch.setattr(pusher.spool, "_write_state", refuse)
    return failing


@pytest.mark.parametrize("stop", ["deadline", "failure", "cut"])
def test_a_commit_on_the_way_the_spool_cannot_write_shows_and_backs_off(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    monkeypatch: pytest.MonkeyPatch,
    stop: str,
) -> None:
    """Three records of 4 points, one batch: 413, its first half (6 points) taken; then the
    requests stop (the next sample due, a 503, a cut) and the first record, acknowledged whole,
    is committed, but the spool's state cannot be written (EIO). As a commit failing at a
    batch's end: spool_error with the commit's error, and a backoff. Before, the 503's or the
    cut's state and error hid it, and at a sample nothing backed off. Each point counts once."""
    acknowledged: list[str] = []
    cut_once = {"done": False}

    def answer(received: Received) -> Answer:
        if len(received.lines) > 6:
            return Answer(413)
        if any(line.startswith("m,n=6 ") for line in received.lines) and failing["on"]:
            if stop == "failure":
                return Answer(503)
            if stop == "cut" and not cut_once["done"]:
                cut_once["done"] = True
                return Answer(204, delay=1.0)  # the client gives up after 0.2 s
        acknowledged.extend(received.lines)
        return Answer(204)

    deadline = None
    if stop == "deadline":  # a second a request: the next sample is due after two
        clock = Clock()
        monkeypatch.setattr(client_module, "time", clock)
        deadline = clock.now + 1.5
        server = serve(taking_a_second(clock, answer))
    else:
        server = serve(answer)
    pusher = make_pusher(server.url)
    pusher.client.connection.timeout = 0.2
    offered = [line for record in range(3) for line in record_lines(record)]
    for record in range(3):
        text = "".join(line + "\n" for line in record_lines(record))
        pusher.spool.append(compress(text.encode()), 4)
    failing = failing_state_writes(pusher, monkeypatch)
    one_backoff = Backoff(0.5, 4.0, rand=lambda: 1.0).next_delay()  # make_pusher's

    assert pusher.send(deadline) == one_backoff  # one backoff, not one for each failure

    assert [len(r.lines) for r in server.received] == [12, 6] + ([] if stop == "deadline" else [6])
    assert pusher.stats.state == pusher.status()["status"] == "spool_error"
    assert pusher.stats.last_error == "spool: cannot commit: [Errno 5] Input/output error"
    assert (pusher.stats.sent, pusher.spool.queued_points) == (4, 8)  # the first record

    failing["on"] = False
    while pusher.spool.queued_points:
        assert pusher.send() == 0.0
    assert pusher.stats.state == pusher.status()["status"] == "ok"
    assert pusher.stats.sent == 12
    assert acknowledged == offered  # each point once, in order
