"""Group commit: a member with little time left fails alone, not the group it would be taken in.

From a review of 2026-11-25: a group was given only the time its oldest member had left, so a
member taken just as its deadline passed failed the whole group unsent (StorageOutOfTime, 503),
members with most of storage.timeout left included; when storage slowed down, about every other
group failed. Now a member with less than MIN_TIME_LEFT left is failed alone and unsent, the
group's write is given the time of the member with the most left, and each member is answered
by its own deadline.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from ingest.groupcommit import MIN_TIME_LEFT, GroupCommitWriter, StorageOutOfTime
from ingest.storage import StorageUnavailable, V1Writer, V2Writer
from perfanalysis.testing.servers import wait_until
from tests.unit.test_ingest_groupcommit_deadline import (
    DEADLINE,
    SLACK,
    TIMEOUT,
    SlowStorage,
    Timed,
    _storage_writer,
    _waiting,
    api,
    slow_storage,
)

__all__ = ["api", "slow_storage"]  # fixtures


class GatedInner:
    """Storage whose n-th write waits while ``gates[n]`` is clear (later ones go at once);
    ``writes`` holds each write's payload and the timeout group commit gave it."""

    name = "gated"

    def __init__(self, timeout: float, gates: int) -> None:
        self.timeout = timeout
        self.gates = [threading.Event() for _ in range(gates)]
        self.writes: list[tuple[bytes, float | None]] = []
        self._lock = threading.Lock()

    def write(self, database: str, payload: bytes, timeout: float | None = None) -> None:
        with self._lock:
            number = len(self.writes)
            self.writes.append((payload, timeout))
        if number < len(self.gates):
            assert self.gates[number].wait(DEADLINE), "the test never let the write go"

    @property
    def payloads(self) -> list[bytes]:
        return [payload for payload, _ in self.writes]

    def health(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _queue(writer: GroupCommitWriter, payload: bytes, queued_before: int) -> Timed:
    write = Timed(writer, payload)
    wait_until(lambda: _waiting(writer) == queued_before + 1, DEADLINE, what=f"{payload!r} queued")
    return write


def test_a_member_taken_as_its_deadline_passes_fails_alone_and_the_rest_is_written() -> None:
    """The reviewer's case: b's deadline has just passed when the lane takes b and c."""
    clock = Clock()
    inner = GatedInner(timeout=10.0, gates=1)  # by the clock; the real waits never end first
    writer = GroupCommitWriter(inner, lanes=1, max_bytes=1 << 20, clock=clock)
    a = Timed(writer, b"a v=1 1")
    wait_until(lambda: inner.writes, DEADLINE, what="a at storage")
    b = _queue(writer, b"b v=1 1", 0)  # deadline 10
    clock.now = 9.0
    c = _queue(writer, b"c v=1 1", 1)  # deadline 19
    clock.now = 10.0001
    inner.gates[0].set()  # a answered: the lane takes b and c
    for write in (a, b, c):
        write.join()
    assert a.outcome is None
    assert isinstance(b.outcome, StorageOutOfTime)  # 503 with Retry-After: its time was up
    assert "left of this write's storage.timeout (10s)" in b.outcome.message
    assert "not sent" in b.outcome.message
    assert c.outcome is None, "c had 9 of its 10 s left"
    assert inner.writes[1:] == [(b"c v=1 1", pytest.approx(8.9999))]  # b never sent
    assert writer._lines == {}


def test_a_member_with_less_than_the_minimum_left_is_not_sent() -> None:
    clock = Clock()
    inner = GatedInner(timeout=10.0, gates=1)
    writer = GroupCommitWriter(inner, lanes=1, max_bytes=1 << 20, clock=clock)
    a = Timed(writer, b"a v=1 1")
    wait_until(lambda: inner.writes, DEADLINE, what="a at storage")
    b = _queue(writer, b"b v=1 1", 0)
    c = _queue(writer, b"c v=1 1", 1)
    clock.now = 5.0
    d = _queue(writer, b"d v=1 1", 2)
    clock.now = 10.0 - MIN_TIME_LEFT / 2
    inner.gates[0].set()
    for write in (a, b, c, d):
        write.join()
    for early in (b, c):
        assert isinstance(early.outcome, StorageOutOfTime)
        assert f"only {MIN_TIME_LEFT / 2:g}s left" in early.outcome.message
    assert d.outcome is None
    assert inner.payloads == [b"a v=1 1", b"d v=1 1"]
    assert writer._lines == {}


def test_a_groups_write_has_its_newest_members_time_and_each_is_answered_by_its_own() -> None:
    """b (queued first) is answered 503 at its deadline while the group's write is in flight;
    c, whose time the write was given, gets storage's answer. Before, the write had only b's
    time, and failed both."""
    inner = GatedInner(timeout=1.0, gates=2)
    writer = GroupCommitWriter(inner, lanes=1, max_bytes=1 << 20)
    a = Timed(writer, b"a v=1 1")
    wait_until(lambda: inner.writes, DEADLINE, what="a at storage")
    b = _queue(writer, b"b v=1 1", 0)
    b_queued = time.monotonic()
    wait_until(lambda: time.monotonic() >= b_queued + 0.5, DEADLINE, what="half of b's time")
    c = _queue(writer, b"c v=1 1", 1)
    inner.gates[0].set()
    wait_until(lambda: len(inner.writes) == 2, DEADLINE, what="the group at storage")
    payload, given = inner.writes[1]
    assert payload == b"b v=1 1\nc v=1 1"  # in the order they came
    assert given is not None
    assert given > 0.75, "the group had only what b had left"
    b.join()  # the group's write still held
    assert isinstance(b.outcome, StorageOutOfTime)
    assert "storage may still store it" in b.outcome.message
    assert inner.timeout - 0.05 <= b.took < inner.timeout + SLACK
    assert c.thread.is_alive()
    inner.gates[1].set()
    for write in (a, c):
        write.join()
    assert (a.outcome, c.outcome) == (None, None)
    assert c.took < inner.timeout + SLACK
    assert writer._lines == {}
    assert writer._outages == {}


def test_through_a_slow_storage_the_group_is_not_failed_by_its_oldest_member(
    api: str, slow_storage: list[SlowStorage]
) -> None:
    """Storage answers the first write after 1.5 s of its 2 s, and the group queued behind it
    after 1 s: b, queued at once, has 0.5 s left when the group goes, c (1 s later) 1.5 s.
    Before, the group's write was given 0.5 s, and both failed."""
    storage = SlowStorage([1.5, 1.0])
    slow_storage.append(storage)
    writer = GroupCommitWriter(_storage_writer(api, storage.url), lanes=1, max_bytes=1 << 20)
    a = Timed(writer, b"m v=1 1")
    wait_until(lambda: len(storage.received) == 1, DEADLINE, what="the first write at storage")
    b = _queue(writer, b"m v=2 2", 0)
    b_queued = time.monotonic()
    wait_until(lambda: time.monotonic() >= b_queued + 1.0, DEADLINE, what="half of b's time")
    c = _queue(writer, b"m v=3 3", 1)
    for write in (a, b, c):
        write.join()
    writer.close()
    assert a.outcome is None
    assert isinstance(b.outcome, StorageOutOfTime)  # storage answered the group after its time
    assert b.took < TIMEOUT + SLACK
    assert c.outcome is None
    assert c.took < TIMEOUT + SLACK
    assert storage.received == [b"m v=1 1", b"m v=2 2\nm v=3 3"]
    assert writer._outages == {}
    assert writer._lines == {}


STRESS_TIMEOUT = 1.0  # storage.timeout of the stress test


class RandomStorage(SlowStorage):
    """Answers each write after a random time, within the writers' timeout or beyond it, 204
    (then stored) or 503."""

    def __init__(self, seed: int) -> None:
        super().__init__([])
        self.random = random.Random(seed)

    def answer_to(self, body: bytes) -> tuple[float | None, int]:
        super().answer_to(body)
        with self._lock:
            roll = self.random.random()
            if roll < 0.7:
                return self.random.uniform(0.0, 0.4 * STRESS_TIMEOUT), 204
            if roll < 0.85:
                return self.random.uniform(0.4 * STRESS_TIMEOUT, 1.3 * STRESS_TIMEOUT), 204
            return self.random.uniform(0.0, 0.1 * STRESS_TIMEOUT), 503


@pytest.mark.parametrize("lanes", [1, 2])
def test_under_random_slowness_every_write_is_answered_in_time_and_every_success_stored(
    api: str, lanes: int, slow_storage: list[SlowStorage]
) -> None:
    """Writes go to storage in groups (of at most two payloads), alone, or not at all (in the
    hold after a write storage did not answer in time); whatever happens, each is answered
    within storage.timeout of its arrival, and 204 only if storage stored its points."""
    storage = RandomStorage(seed=lanes)
    slow_storage.append(storage)
    inner = (
        V1Writer(storage.url, "", "", STRESS_TIMEOUT)
        if api == "v1"
        else V2Writer(storage.url, "t", "o", STRESS_TIMEOUT)
    )
    groups: list[int] = []
    writer = GroupCommitWriter(inner, lanes=lanes, max_bytes=70, observe_group=groups.append)
    results: list[tuple[bytes, BaseException | None, float]] = []
    results_lock = threading.Lock()

    def client(number: int) -> None:
        for sequence in range(5):
            payload = b"cpu,client=%d,n=%d value=1 1" % (number, sequence)
            started = time.monotonic()
            outcome: BaseException | None = None
            try:
                writer.write("db", payload)
            except Exception as exc:
                outcome = exc
            with results_lock:
                results.append((payload, outcome, time.monotonic() - started))

    clients = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(DEADLINE * 3)
        assert not thread.is_alive(), "a write never returned"
    writer.close()
    stored = {line for body in storage.stored for line in body.split(b"\n")}
    assert len(results) == 40
    for payload, outcome, took in results:
        assert took < STRESS_TIMEOUT + SLACK, (payload, outcome, took)
        if outcome is None:
            assert payload in stored, f"{payload!r} answered as written, never stored"
        else:
            assert isinstance(outcome, StorageUnavailable), (payload, outcome)  # 503
    assert any(outcome is None for _, outcome, _ in results)
    assert max(groups) == 2, "no write was grouped"
    assert writer._lines == {}
