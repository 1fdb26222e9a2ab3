"""Group commit: requests that queue for the same database leave a worker as one storage write.

Each database has a number of lanes per worker process (``storage.writes-in-flight``). A request
that finds a lane free is written at once, alone, so a quiet ingest adds no latency. When all
lanes are busy it waits, and the next lane to come free takes everything waiting for that
database (up to ``storage.group-max-bytes``), joined, as one write. Storage pays a fixed cost for
every write: an HTTP request, and in InfluxDB a WAL append, its fsync and a cache update
(Debian's InfluxDB 1.6 spends about 45% more CPU per point on 250-point writes, the size of an
exporter's push, than on 5,000-point ones). Under load, many small pushes thus cost it the
price of a few large ones.

Every request is still answered for its own points, and only after storage accepted them:

* the group was written: every member succeeded;
* storage was unavailable (down, too slow, 5xx): every member fails with that, and its client
  retries; ingest writes nothing twice;
* storage gave no answer at all (StorageUnreachable: the connection refused or dropped, or no
  answer within ``storage.timeout``): the requests waiting for a lane of that database fail
  with it too, at once, without a write of their own. Each would otherwise wait for the write
  ahead of it to time out and then for its own, past the clients' own timeouts (Telegraf gives
  up after 5 s), so that none of them would see the 503 and its Retry-After. For ``hold``
  seconds after (``storage.timeout``), writes to that database fail at once without asking
  storage, but for one at a time, the probe: once storage answers it (whatever it says),
  writes go to storage again; if it does not, the hold starts again;
* any other failure (storage refusing one member's points for a field type conflict, a
  refusal, a bug): each member writes its own payload again, alone, and gets its own answer.
  InfluxDB keeps one value per series, field and timestamp, so writing a point again replaces
  it with itself: points of the group that storage had written are not duplicated.

A request that waits for a lane is answered within ``timeout`` (``storage.timeout``) of its
arrival here, not after the writes ahead of it and then its own write, each taking up to that
(twice it in all: past Telegraf's 5 s, whose requests would then end without the answer). Still
waiting at its deadline, it leaves the queue and fails (StorageOutOfTime: 503, nothing sent).
When a lane takes the waiting, those with less than ``MIN_TIME_LEFT`` left fail so, alone and
unsent; the others' write is given the time of the member with the most left, and each member is
answered by its own deadline: one whose deadline comes while storage has not answered fails
then (StorageOutOfTime), and the others still wait for the answer. Before, the group had only
what its oldest member had left, so that one taken just as its deadline passed failed the whole
group unsent, and when storage slowed down about every other group failed. Storage may store
the points of a member answered 503: the client sends them again, and they replace themselves.
Neither starts the hold: storage answered the writes ahead within the timeout, and a write sent
with less time than that proves nothing about it. A request that finds a lane free is sent at
once with the writer's whole timeout, as before.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.storage import (
    StorageError,
    StorageTimedOut,
    StorageUnavailable,
    StorageUnreachable,
    TimedStorageWriter,
)

# Seconds a waiting write must have left to be sent when a lane takes the waiting: with less,
# storage's answer could hardly come back in time, and sending it would only make storage store
# points whose client is told 503 and sends again.
MIN_TIME_LEFT = 0.05


class StorageOutOfTime(StorageUnavailable):
    """This write's time (``timeout`` from its arrival) ran out while it waited for a lane, too
    little of it was left when a lane took it, or storage did not answer within what was left of
    it: retry later. Storage is not known to be down, so no hold starts."""


@dataclass(eq=False)
class _Member:
    payload: bytes
    deadline: float | None  # by the writer's clock; None: no deadline (the inner writer's own)
    queued: bool = False  # waited for a lane: its writes have only the time left to its deadline
    done: threading.Event = field(default_factory=threading.Event)
    group: list[_Member] | None = None  # set when this member is to write a group (it included)
    written: bool = False  # storage accepted this member's points
    unavailable: StorageUnavailable | None = None


@dataclass
class _Line:
    """One database's requests: writes in flight, and those waiting for a lane.
    Nobody waits while a lane is free: a lane that comes free takes the waiting at once."""

    in_flight: int = 0
    waiting: deque[_Member] = field(default_factory=deque)


@dataclass
class _Outage:
    """A database whose last write storage did not answer: until ``until`` (by the writer's
    clock), writes to it fail at once with ``error``, but for one probe at a time."""

    error: StorageUnreachable
    until: float
    probing: bool = False


class GroupCommitWriter:
    """A StorageWriter that groups concurrent writes to the same database (module docstring)."""

    def __init__(
        self,
        inner: TimedStorageWriter,
        lanes: int,
        max_bytes: int,
        observe_group: Callable[[int], None] | None = None,
        hold: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float | None = None,
    ) -> None:
        if lanes < 1:
            raise ValueError("lanes must be at least 1")
        self.inner = inner
        self.name = inner.name
        self.lanes = lanes
        self.max_bytes = max_bytes
        self._observe_group = observe_group
        # seconds writes fail at once after storage did not answer one: its timeout by default
        self.hold = float(getattr(inner, "timeout", 0.0)) if hold is None else hold
        # seconds from a write's arrival to its answer when it waits for a lane: the inner
        # writer's timeout by default; None (an inner writer without one): no deadline
        self.timeout = getattr(inner, "timeout", None) if timeout is None else timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._lines: dict[str, _Line] = {}
        self._outages: dict[str, _Outage] = {}

    def write(self, database: str, payload: bytes) -> None:
        member = _Member(payload, None if self.timeout is None else self.clock() + self.timeout)
        with self._lock:
            probe = self._admit(database)  # or raise at once: storage did not answer lately
            line = self._lines.get(database)
            if line is None:
                line = self._lines[database] = _Line()
            if line.in_flight < self.lanes:
                line.in_flight += 1
                member.group = [member]
            else:
                member.queued = True
                line.waiting.append(member)
        answered = False  # storage answered this write, whatever it said
        try:
            self._write_member(database, line, member)
            answered = True
        except (StorageUnreachable, StorageOutOfTime):
            raise
        except StorageError:
            answered = True
            raise
        finally:
            if probe:
                self._probed(database, answered)

    def _write_member(self, database: str, line: _Line, member: _Member) -> None:
        if member.group is None:
            self._wait_for_turn(line, member)
        if member.group is not None:
            self._write_group(database, line, member)
        if member.written:
            return
        if member.unavailable is not None:
            raise _again(member.unavailable)
        # the group failed otherwise (or its writer never finished): this payload alone
        self._send(database, member.payload, [member])

    def _wait_for_turn(self, line: _Line, member: _Member) -> None:
        """Wait until the member is to write its group, or is answered (its group written or
        failed, or itself failed with the write ahead or for too little time left); raise
        StorageOutOfTime if its deadline comes first: out of the queue, unsent, if it still
        waits; else while its group is in flight, which storage may still store."""
        if member.deadline is None:
            member.done.wait()
            return
        if member.done.wait(max(0.0, member.deadline - self.clock())):
            return
        with self._lock:
            if member.group is not None or member.unavailable is not None:
                return  # taken to write its group, or failed, just now
            if member in line.waiting:
                line.waiting.remove(member)
                raise StorageOutOfTime(
                    f"the writes ahead of this one to this database took its whole "
                    f"storage.timeout ({self.timeout:g}s): not sent; retry later"
                )
        if member.done.is_set() or member.written:  # its group was answered just now
            return
        raise StorageOutOfTime(
            f"storage did not answer the write of this one's group within its storage.timeout "
            f"({self.timeout:g}s) after waiting behind the writes ahead of it; storage may still "
            "store it: retry later"
        )

    def _send(self, database: str, payload: bytes, members: list[_Member]) -> None:
        """One write to storage, given the most time any of ``members`` has left if they waited
        for a lane (a member with less is answered at its own deadline): StorageOutOfTime if it
        is none, or if storage does not answer within it."""
        if not any(member.queued and member.deadline is not None for member in members):
            self.inner.write(database, payload)
            return
        left = max(m.deadline for m in members if m.deadline is not None) - self.clock()
        if left <= 0:
            raise StorageOutOfTime(
                f"no time left of this write's storage.timeout ({self.timeout:g}s) after "
                "waiting behind the writes ahead of it: not sent; retry later"
            )
        try:
            self.inner.write(database, payload, timeout=left)
        except StorageTimedOut as exc:
            raise StorageOutOfTime(
                f"storage did not answer within the {round(left, 3):g}s left of this write's "
                f"storage.timeout ({self.timeout:g}s) after waiting behind the writes ahead "
                "of it; retry later"
            ) from exc

    def _admit(self, database: str) -> bool:
        """Whether this write is the probe of an outage; raise if it must fail at once. The
        lock held."""
        outage = self._outages.get(database)
        if outage is None:
            return False
        if outage.probing:
            raise StorageUnreachable(
                f"storage gave no answer to a write to this database lately "
                f"({outage.error.message}); answered at once while it is asked again"
            )
        if self.clock() >= outage.until:  # nothing asked storage during the hold: go
            del self._outages[database]
            return False
        outage.probing = True
        return True

    def _probed(self, database: str, answered: bool) -> None:
        """The probe is done: if storage answered it, writes go to storage again."""
        with self._lock:
            outage = self._outages.get(database)
            if outage is not None:
                outage.probing = False
                if answered:
                    del self._outages[database]

    def _write_group(self, database: str, line: _Line, leader: _Member) -> None:
        """Write the leader's group as one, answer its members, and give the lane to what waits;
        if storage did not answer, fail what waits at once."""
        group = leader.group
        assert group is not None
        unreachable: StorageUnreachable | None = None
        try:
            if len(group) == 1:  # the writer's own exception reaches this thread unchanged
                try:
                    self._send(database, leader.payload, group)
                except StorageUnreachable as exc:
                    unreachable = exc
                    raise
                leader.written = True
            else:
                unreachable = self._write_together(database, group)
        finally:
            answered: list[_Member] = []  # failed by now, unsent
            with self._lock:
                if unreachable is not None:
                    self._hold(database, unreachable)
                    answered = list(line.waiting)
                    line.waiting.clear()
                    for member in answered:
                        member.unavailable = unreachable
                following, out_of_time = self._take_group(line)
                answered += out_of_time
                if following is None:
                    line.in_flight -= 1
                    if line.in_flight == 0:  # nothing in flight, nothing waiting
                        del self._lines[database]
            for member in answered:
                member.done.set()
            for member in group:
                if member is not leader:
                    member.done.set()
            if following is not None:
                following.done.set()
            if self._observe_group is not None:
                self._observe_group(len(group))

    def _hold(self, database: str, error: StorageUnreachable) -> None:
        """Storage did not answer a write to ``database``: (re)start its hold. The lock held."""
        until = self.clock() + self.hold
        outage = self._outages.get(database)
        if outage is None:
            self._outages[database] = _Outage(error, until)
        else:  # a probe may be under way: it stays the one
            outage.error = error
            outage.until = until

    def _take_group(self, line: _Line) -> tuple[_Member | None, list[_Member]]:
        """The next group's leader, and the waiting members failed for too little time left;
        the lock held.

        The group is the waiting from the head, up to ``max_bytes`` (at least one), but for
        those with less than MIN_TIME_LEFT left: they fail alone, unsent (StorageOutOfTime). Its
        leader, who writes it, is the member with the most time left, which its write is given:
        the others are answered at their own deadlines if storage has not answered by then. A
        member close to its deadline thus shortens no other's time, and the group need not be
        split by deadline: its members arrived while the writes ahead were in flight, and those
        left out would wait for the group's write, or another lane, and so have less time still,
        while storage, slow already, would get more writes of fewer points."""
        now = self.clock()
        out_of_time: list[_Member] = []
        group: list[_Member] = []
        size = -1  # of the members joined by newlines
        while line.waiting:
            member = line.waiting[0]
            if member.deadline is not None and member.deadline - now < MIN_TIME_LEFT:
                member.unavailable = StorageOutOfTime(
                    f"only {max(0.0, round(member.deadline - now, 3)):g}s left of this write's "
                    f"storage.timeout ({self.timeout:g}s) after waiting behind the writes ahead "
                    "of it: not sent; retry later"
                )
                out_of_time.append(line.waiting.popleft())
                continue
            if group and size + 1 + len(member.payload) > self.max_bytes:
                break
            size += 1 + len(member.payload)
            group.append(line.waiting.popleft())
        if not group:
            return None, out_of_time
        leader = max(
            group, key=lambda member: -math.inf if member.deadline is None else member.deadline
        )
        leader.group = group
        return leader, out_of_time

    def _write_together(self, database: str, group: list[_Member]) -> StorageUnreachable | None:
        """Write the group's payloads as one; the error if storage did not answer."""
        try:
            self._send(database, b"\n".join(member.payload for member in group), group)
        except StorageUnavailable as exc:
            for member in group:
                member.unavailable = exc
            return exc if isinstance(exc, StorageUnreachable) else None
        except Exception:  # each member writes its own payload again, alone
            return None
        for member in group:
            member.written = True
        return None

    def health(self) -> str:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()


def _again(error: StorageUnavailable) -> StorageUnavailable:
    """The same error for another thread to raise (one exception object raised in several
    threads at once would have its traceback overwritten)."""
    return type(error)(error.message, error.status)
