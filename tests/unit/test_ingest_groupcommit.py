"""Group commit (ingest/groupcommit.py) over a storage writer whose writes the test holds open.

A held write keeps its lane busy, so the requests that arrive meanwhile queue up; the test waits
(with a deadline) until they are queued before releasing it, so every grouping is deterministic.
The hold after storage gave no answer is timed by a clock the test moves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ingest.groupcommit import GroupCommitWriter
from ingest.storage import (
    StorageConflict,
    StorageRefused,
    StorageRejected,
    StorageUnavailable,
    StorageUnreachable,
)
from perfanalysis.testing.servers import wait_until

DEADLINE = 10.0


class Interrupted(BaseException):
    """Not an Exception: what a thread meets when it is torn down mid-write."""


class HeldStorage:
    """Records every write; while ``hold`` is clear, a write waits for it. A payload holding
    ``b"conflict"`` is refused as a field type conflict, ``b"down"`` as unavailable (storage
    answered 503), ``b"hang"`` as unanswered (as a timeout is), ``b"denied"`` as a refusal of
    ingest itself; a group holding ``b"abort"`` raises Interrupted. ``accepted`` holds the
    payloads of the writes that succeeded."""

    name = "held"

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.hold.set()
        self.writes: list[tuple[str, bytes]] = []
        self.accepted: list[bytes] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def write(self, database: str, payload: bytes) -> None:
        with self._lock:
            self.writes.append((database, payload))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            assert self.hold.wait(DEADLINE), "the test never released the write"
            if b"down" in payload:
                raise StorageUnavailable("storage answered 503: down", 503)
            if b"hang" in payload:
                raise StorageUnreachable("storage did not answer within 4s")
            if b"denied" in payload:
                raise StorageRefused("storage answered 403: not authorized", 403)
            if b"conflict" in payload:
                raise StorageConflict("storage answered 400: field type conflict", 400)
            if b"abort" in payload and b"\n" in payload:
                raise Interrupted
            with self._lock:
                self.accepted.append(payload)
        finally:
            with self._lock:
                self.in_flight -= 1

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


class Requests:
    """Writes in threads, as gunicorn's threads make them; ``outcome[payload]`` is None or the
    exception the write raised."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self.writer = writer
        self.threads: list[threading.Thread] = []
        self.outcome: dict[bytes, BaseException | None] = {}

    def start(self, payload: bytes, database: str = "tenant_a") -> None:
        def run() -> None:
            try:
                self.writer.write(database, payload)
                self.outcome[payload] = None
            except (Exception, Interrupted) as exc:
                self.outcome[payload] = exc

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(DEADLINE)
            assert not thread.is_alive(), "a write never returned"


@pytest.fixture
def storage() -> HeldStorage:
    return HeldStorage()


@pytest.fixture
def groups() -> list[int]:
    return []


@pytest.fixture
def writer(storage: HeldStorage, groups: list[int]) -> Iterator[GroupCommitWriter]:
    writer = GroupCommitWriter(storage, lanes=1, max_bytes=1 << 20, observe_group=groups.append)
    yield writer
    storage.hold.set()


def waiting(writer: GroupCommitWriter, database: str = "tenant_a") -> int:
    line = writer._lines.get(database)
    return 0 if line is None else len(line.waiting)


def queue_behind_a_held_write(
    storage: HeldStorage, writer: GroupCommitWriter, first: bytes, *queued: bytes
) -> Requests:
    storage.hold.clear()
    requests = Requests(writer)
    requests.start(first)
    wait_until(lambda: storage.in_flight == 1, DEADLINE, what="the first write in flight")
    for payload in queued:
        requests.start(payload)
    wait_until(lambda: waiting(writer) == len(queued), DEADLINE, what="the others queued")
    return requests


def test_a_lone_write_goes_at_once_and_alone(
    storage: HeldStorage, writer: GroupCommitWriter, groups: list[int]
) -> None:
    writer.write("tenant_a", b"cpu value=1 1")
    assert storage.writes == [("tenant_a", b"cpu value=1 1")]
    assert groups == [1]
    assert writer._lines == {}  # nothing is kept per database once it is idle


def test_writes_that_queue_behind_one_in_flight_go_as_one(
    storage: HeldStorage, writer: GroupCommitWriter, groups: list[int]
) -> None:
    requests = queue_behind_a_held_write(storage, writer, b"a value=1 1", b"b value=2 2",
                                         b"c value=3 3", b"d value=4 4")  # fmt: skip
    storage.hold.set()
    requests.join()
    assert all(outcome is None for outcome in requests.outcome.values())
    assert len(requests.outcome) == 4
    assert storage.writes[0] == ("tenant_a", b"a value=1 1")
    assert len(storage.writes) == 2
    database, joined = storage.writes[1]
    assert database == "tenant_a"
    assert sorted(joined.split(b"\n")) == [b"b value=2 2", b"c value=3 3", b"d value=4 4"]
    assert groups == [1, 3]
    assert writer._lines == {}


def test_a_group_never_exceeds_max_bytes_unless_one_payload_does(
    storage: HeldStorage, groups: list[int]
) -> None:
    writer = GroupCommitWriter(storage, lanes=1, max_bytes=25, observe_group=groups.append)
    payloads = [b"x" * 10, b"y" * 10, b"z" * 10, b"w" * 40]
    requests = queue_behind_a_held_write(storage, writer, b"first", *payloads)
    storage.hold.set()
    requests.join()
    assert all(outcome is None for outcome in requests.outcome.values())
    sizes = [len(payload) for _, payload in storage.writes[1:]]
    assert all(size <= 25 or b"\n" not in payload for size, (_, payload)
               in zip(sizes, storage.writes[1:], strict=True))  # fmt: skip
    written = sorted(line for _, payload in storage.writes[1:] for line in payload.split(b"\n"))
    assert written == sorted(payloads)  # each once
    assert sum(groups) == 5


def test_when_storage_is_down_every_member_fails_and_nothing_is_written_twice(
    storage: HeldStorage, writer: GroupCommitWriter
) -> None:
    requests = queue_behind_a_held_write(storage, writer, b"first value=1 1", b"down value=1 1",
                                         b"b value=2 2")  # fmt: skip
    storage.hold.set()
    requests.join()
    assert requests.outcome[b"first value=1 1"] is None
    for payload in (b"down value=1 1", b"b value=2 2"):
        failure = requests.outcome[payload]
        assert isinstance(failure, StorageUnavailable)
        assert failure.status == 503
    assert len(storage.writes) == 2  # the first, then the group once: no retries


def test_a_refused_group_is_written_again_member_by_member_each_with_its_own_answer(
    storage: HeldStorage, writer: GroupCommitWriter
) -> None:
    requests = queue_behind_a_held_write(storage, writer, b"first value=1 1",
                                         b"conflict value=1i 1", b"b value=2 2",
                                         b"c value=3 3")  # fmt: skip
    storage.hold.set()
    requests.join()
    assert isinstance(requests.outcome[b"conflict value=1i 1"], StorageConflict)
    assert requests.outcome[b"b value=2 2"] is None
    assert requests.outcome[b"c value=3 3"] is None
    alone = sorted(payload for _, payload in storage.writes[2:])
    assert alone == [b"b value=2 2", b"c value=3 3", b"conflict value=1i 1"]


def test_a_group_whose_writer_is_torn_down_never_answers_the_others_as_written(
    storage: HeldStorage, writer: GroupCommitWriter
) -> None:
    queued = [b"abort value=1 1", b"b value=2 2", b"c value=3 3"]
    requests = queue_behind_a_held_write(storage, writer, b"first value=1 1", *queued)
    storage.hold.set()
    requests.join()
    torn = [payload for payload in queued if isinstance(requests.outcome[payload], Interrupted)]
    assert len(torn) == 1  # the member that wrote the group: the others wrote their own
    alone = [payload for _, payload in storage.writes[2:]]
    assert sorted(alone) == sorted(set(queued) - set(torn))
    assert all(requests.outcome[payload] is None for payload in alone)
    assert writer._lines == {}


def test_a_lone_writes_own_exception_reaches_its_caller_unchanged(
    writer: GroupCommitWriter, storage: HeldStorage
) -> None:
    refused = StorageRejected("storage answered 404: database not found", 404)

    def refuse(database: str, payload: bytes) -> None:
        raise refused

    storage.write = refuse  # type: ignore[method-assign]
    with pytest.raises(StorageRejected) as caught:
        writer.write("tenant_a", b"cpu value=1 1")
    assert caught.value is refused
    assert writer._lines == {}  # the lane was given back


def test_each_database_has_its_own_lanes(storage: HeldStorage, writer: GroupCommitWriter) -> None:
    storage.hold.clear()
    requests = Requests(writer)
    requests.start(b"a value=1 1", "tenant_a")
    requests.start(b"b value=1 1", "tenant_b")
    wait_until(lambda: storage.in_flight == 2, DEADLINE, what="both tenants' writes in flight")
    storage.hold.set()
    requests.join()
    assert sorted(database for database, _ in storage.writes) == ["tenant_a", "tenant_b"]


def test_up_to_lanes_writes_go_at_once_for_one_database(
    storage: HeldStorage, groups: list[int]
) -> None:
    writer = GroupCommitWriter(storage, lanes=3, max_bytes=1 << 20, observe_group=groups.append)
    storage.hold.clear()
    requests = Requests(writer)
    for number in range(3):
        requests.start(b"cpu value=%d 1" % number)
    wait_until(lambda: storage.in_flight == 3, DEADLINE, what="three writes in flight")
    requests.start(b"cpu value=9 1")
    wait_until(lambda: waiting(writer) == 1, DEADLINE, what="the fourth queued")
    assert storage.in_flight == 3
    storage.hold.set()
    requests.join()
    assert storage.most_in_flight == 3
    assert groups.count(1) == 4


def test_many_concurrent_writers_each_get_their_points_written_exactly_once(
    storage: HeldStorage,
) -> None:
    writer = GroupCommitWriter(storage, lanes=2, max_bytes=200)
    requests = Requests(writer)
    payloads = [b"cpu,n=%d value=1 1" % number for number in range(200)]
    for payload in payloads:
        requests.start(payload)
    requests.join()
    assert all(outcome is None for outcome in requests.outcome.values())
    written = [line for _, payload in storage.writes for line in payload.split(b"\n")]
    assert sorted(written) == sorted(payloads)
    assert storage.most_in_flight <= 2
    assert writer._lines == {}


def test_lanes_must_be_positive(storage: HeldStorage) -> None:
    with pytest.raises(ValueError, match="lanes"):
        GroupCommitWriter(storage, lanes=0, max_bytes=1)


# ----------------------------------------------------------------------------------------------
# Storage that does not answer (audit of 2026-11-25: with influxd stopped, 8 concurrent writes
# were answered 503 after 4, 4, 4.1, 8, 8.1, 8.1, 12 and 12.1 s, past Telegraf's 5 s timeout)

HOLD = 4.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def held(storage: HeldStorage, clock: Clock) -> Iterator[GroupCommitWriter]:
    """One lane, and a hold of HOLD seconds by ``clock`` after storage gave no answer."""
    writer = GroupCommitWriter(storage, lanes=1, max_bytes=1 << 20, hold=HOLD, clock=clock)
    yield writer
    storage.hold.set()


def test_writes_queued_behind_one_storage_does_not_answer_fail_with_it_without_a_write(
    storage: HeldStorage, held: GroupCommitWriter
) -> None:
    """Before, the queued group made its own write once the one ahead had timed out, and waited
    for that to time out too; now it fails with the write ahead, and storage is asked once."""
    queued = (b"b value=2 2", b"c value=3 3")
    requests = queue_behind_a_held_write(storage, held, b"hang value=1 1", *queued)
    storage.hold.set()
    requests.join()
    for payload in (b"hang value=1 1", *queued):
        failure = requests.outcome[payload]
        assert isinstance(failure, StorageUnreachable), payload
        assert failure.message == "storage did not answer within 4s"
    assert storage.writes == [("tenant_a", b"hang value=1 1")]
    assert held._lines == {}


def test_after_no_answer_writes_fail_at_once_but_for_one_probe_whose_answer_ends_it(
    storage: HeldStorage, held: GroupCommitWriter
) -> None:
    with pytest.raises(StorageUnreachable):
        held.write("tenant_a", b"hang value=1 1")
    held.write("tenant_b", b"other value=1 1")  # another database is asked as ever
    storage.hold.clear()
    requests = Requests(held)
    requests.start(b"probe value=1 1")
    wait_until(lambda: storage.in_flight == 1, DEADLINE, what="the probe at storage")
    with pytest.raises(StorageUnreachable, match="no answer to a write to this database lately"):
        held.write("tenant_a", b"meanwhile value=2 2")  # storage is not asked: no wait
    assert [payload for _, payload in storage.writes] == [
        b"hang value=1 1", b"other value=1 1", b"probe value=1 1"
    ]  # fmt: skip
    storage.hold.set()
    requests.join()
    assert requests.outcome[b"probe value=1 1"] is None  # answered: writes go to storage again
    held.write("tenant_a", b"after value=3 3")
    assert storage.writes[-1] == ("tenant_a", b"after value=3 3")
    assert held._outages == {}


def test_a_probe_storage_does_not_answer_starts_the_hold_again(
    storage: HeldStorage, clock: Clock
) -> None:
    writer = GroupCommitWriter(storage, lanes=2, max_bytes=1 << 20, hold=HOLD, clock=clock)
    with pytest.raises(StorageUnreachable):
        writer.write("tenant_a", b"hang value=1 1")  # held until 1004
    clock.now += 3.0
    with pytest.raises(StorageUnreachable):
        writer.write("tenant_a", b"hang value=2 2")  # the probe, unanswered: held until 1007
    clock.now += 2.0  # past the first hold, within the second: still one write at a time
    storage.hold.clear()
    requests = Requests(writer)
    requests.start(b"a value=1 1")
    wait_until(lambda: storage.in_flight == 1, DEADLINE, what="the next probe at storage")
    with pytest.raises(StorageUnreachable):
        writer.write("tenant_a", b"b value=2 2")
    storage.hold.set()
    requests.join()
    assert requests.outcome[b"a value=1 1"] is None
    assert [payload for _, payload in storage.writes] == [
        b"hang value=1 1", b"hang value=2 2", b"a value=1 1"
    ]  # fmt: skip


def test_the_hold_ends_after_its_time_when_nothing_asked_storage(
    storage: HeldStorage, clock: Clock
) -> None:
    writer = GroupCommitWriter(storage, lanes=2, max_bytes=1 << 20, hold=HOLD, clock=clock)
    with pytest.raises(StorageUnreachable):
        writer.write("tenant_a", b"hang value=1 1")
    clock.now += HOLD
    storage.hold.clear()
    requests = Requests(writer)
    requests.start(b"a value=1 1")
    requests.start(b"b value=2 2")
    wait_until(lambda: storage.in_flight == 2, DEADLINE, what="both writes at storage")
    storage.hold.set()
    requests.join()
    assert requests.outcome == {b"a value=1 1": None, b"b value=2 2": None}
    assert writer._outages == {}


def test_an_answer_from_storage_fails_no_other_write_and_starts_no_hold(
    storage: HeldStorage, held: GroupCommitWriter
) -> None:
    """A refusal, a 503 or a conflict came at once: what waits behind it writes as before."""
    requests = queue_behind_a_held_write(storage, held, b"denied value=1 1", b"b value=2 2")
    storage.hold.set()
    requests.join()
    assert isinstance(requests.outcome[b"denied value=1 1"], StorageRefused)
    assert requests.outcome[b"b value=2 2"] is None
    for payload in (b"down value=1 1", b"denied value=2 2", b"conflict value=1i 1"):
        with pytest.raises((StorageUnavailable, StorageConflict)):
            held.write("tenant_a", payload)
    held.write("tenant_a", b"c value=3 3")
    assert len(storage.writes) == 6  # every write went to storage
    assert held._outages == {}


def test_during_an_outage_no_write_is_answered_as_written_that_storage_did_not_accept(
    storage: HeldStorage, clock: Clock
) -> None:
    writer = GroupCommitWriter(storage, lanes=2, max_bytes=300, hold=HOLD, clock=clock)
    requests = Requests(writer)
    payloads = [b"%s,n=%d value=1 1" % (b"hang" if n % 7 == 0 else b"cpu", n) for n in range(200)]
    for payload in payloads:
        requests.start(payload)
    requests.join()
    accepted = {line for payload in storage.accepted for line in payload.split(b"\n")}
    assert len(requests.outcome) == len(payloads)
    for payload, outcome in requests.outcome.items():
        if outcome is None:
            assert payload in accepted
        else:  # 503: the client keeps the points and sends them again
            assert isinstance(outcome, StorageUnavailable)
    assert writer._lines == {}
