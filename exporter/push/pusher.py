"""The push loop: one background thread that samples, spools and sends.

Every ``interval`` it samples the same registry as /metrics (``Registry.scrape`` takes the
registry's lock, so a push sample and a scrape never run collectors at the same time), encodes
the families as line protocol with one timestamp, gzips each batch and appends it to the spool.
Between samples it sends from the spool, oldest first, merging small records into requests of up
to ``batch_size`` points, and waits out backoffs. With a ``phase``, the first sample, and the
first send of what the spool kept from before, wait for that many seconds into a wall-clock
interval (see schedule.py), so that a fleet started together does not push in lockstep.

Sending never costs a sample. Each request is given at most ``--push.timeout`` and never more
than the time left until the next sample is due; with less than MIN_REQUEST left (or a quarter
of the interval, or the timeout, if shorter), none is started: the send waits for the sample and
follows it at once. A batch that takes several requests (a 413's halves, a 400's good lines, see
client.py), or several chunks sent from memory, stops at the next sample and goes on after it
where it stopped. So does a batch, or a chunk sent from memory, whose request was cut (timed out
while sent or awaiting its answer, at the next sample or at the timeout: client.py's CUT), after
a backoff, with what that request carried in halves; and a batch whose request failed (a 5xx,
a network error) after answers had narrowed it to part of it (a 413's or a cut's halves, a
400's good lines), after the backoff, with that request: the parts acknowledged are not sent
again. Before its requests stop, the batch's leading records ingest has acknowledged whole are
committed, so that a restart does not send them again either; a commit the spool cannot write
there (EIO, EROFS) shows as one at a batch's end does: ``spool_error``, with its error, and a
backoff. A sample is skipped only when the thread is busy past the tick after it (a
sample that takes longer than the interval, or a process stopped or a machine suspended in
between): the tick is then skipped rather than sampled in a burst, and counted
(``samples_skipped``).

One thread, not two: the spool needs no locking, and a batch read from the spool is always
committed or abandoned before the next append, so dropping the oldest segments when the spool or
its file system is full can never race with a batch in flight: what a commit acknowledged is
never counted as dropped, and what was dropped is never sent. (A batch whose requests a sample
interrupted is abandoned for that sample and read again after it; its requests go on only if the
spool still holds the same records first, else the send starts afresh from what it holds.) The
thread outlives anything one iteration raises (a spool on a filesystem gone read-only, say): it
logs it, reports ``spool_error`` and backs off; /health calls the push ``stopped`` (degraded)
should the thread ever end anyway.

A sample's records are appended unsynced; the send that follows (unless a backoff is pending)
usually has ingest acknowledge them, and only what is still unacknowledged when a send settles,
or when the thread is about to wait, is fdatasync'd (spool.Spool.sync): one disk flush per
interval saved on every host, at the cost the spool's docstring states for a machine crash.

A spool that cannot take a sample (a read-only or failing file system, or a full one with
nothing left to drop) makes the state ``spool_error`` until an append succeeds again, whatever
sending does meanwhile. The chunks it could not take are sent at once from memory, or, while a
retry is pending (ingest is failing: they would only fail too), kept in memory and sent once the
backoff is over, oldest first, within HELD_MAX_BYTES (the oldest beyond it lost, counted as
spool_error); whatever ingest does not acknowledge when a chunk is sent is lost, counted as
spool_error. A chunk whose request was cut is the exception: it goes on after the backoff, in
halves, the chunks behind it waiting. Those points have no crash safety: only the spool gives
that. (Until 2026-11-25 the chunks held during a backoff were dropped, counted as spool_error,
however short the backoff.)

Batch size: after a 413 proves that a request was too large (see client.py), requests hold at
most half as many points; so they do after a request that was cut (a slow uplink, or a backlog
batch larger than the link carries in the time a request has: sent whole again, it would be cut
every time), though never fewer than CUT_MIN_POINTS for that, so that a slow link converges on a
batch size
that fits. After RECOVER_AFTER settled sends without either the limit doubles again, up to
``batch_size``, so that one early 413 (a proxy restarting with a lower limit, say) or one slow
minute does not shrink every request for good. A point too large on its own is dropped, counted
as too_large, and lowers nothing. Cuts are counted (``requests_cut``) and logged once while they
go on.

Counters: each point is counted once, as sent (acknowledged), rejected (refused for good),
too_large (refused by a 413 on its own), spool_error (neither appended nor acknowledged) or, by
the spool, spool_full (dropped unsent, oldest first, at the spool's bound or because its file
system is full). A batch whose requests go on after a sample, a cut or a failure counts in
none of them until it settles, but for the leading records committed on the way, whose points
count as sent when they are committed (should the spool drop the rest meanwhile, all of that
counts as spool_full, the points acknowledged in a record cut through too); ``retried`` counts
the points of each request that failed or was cut, which are sent again.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.push.backoff import Backoff
from exporter.push.client import (
    CUT_MIN_POINTS,
    Delivering,
    Delivery,
    PushClient,
    Verdict,
    compress,
)
from exporter.push.lineproto import LineEncoder, batches
from exporter.push.schedule import until_phase
from exporter.push.spool import Batch, Position, Record, Spool, SpoolError
from exporter.registry import Registry

log = logging.getLogger(__name__)

RECOVER_AFTER = 10  # settled sends at a lowered batch size before trying twice as many points
# The least time a request is started with, in seconds: a write takes milliseconds to ingest on a
# LAN, and a new TLS connection across a continent three or four round trips (60-80 ms each)
# before it; a request given less would too often time out for want of time, costing a retry, a
# backoff and a "retrying" state, where waiting costs at most this long (the send follows the
# next sample at once, with that sample in the same request).
MIN_REQUEST = 0.25
HELD_MAX_BYTES = 1 << 20  # chunks the spool could not take, kept in memory until sent


@dataclass
class PushStats:
    """Counters since start; the spool keeps its own (dropped when full, corrupt) across restarts."""

    sent: int = 0
    rejected: int = 0
    too_large: int = 0
    non_finite: int = 0
    spool_error: int = 0
    retried: int = 0
    samples: int = 0
    samples_skipped: int = 0  # ticks not sampled: the thread was busy past them
    requests_cut: int = 0  # requests that timed out while sent or awaiting their answer
    last_success: float | None = None
    last_error: str = ""
    last_error_at: float | None = None
    state: str = "starting"  # ok, retrying, unauthorized, rejecting, spool_error
    requests: dict[str, int] = field(default_factory=dict)


@dataclass
class _Chain:
    """The requests of a spool batch, and the records they carry that the spool still holds:
    all of the batch's records but those committed on the way (``committed`` points, counted
    as sent already)."""

    delivering: Delivering
    start: Position
    records: tuple[Record, ...]
    points: int
    committed: int = 0


class Pusher:
    def __init__(
        self,
        registry: Registry,
        encoder: LineEncoder,
        spool: Spool,
        client: PushClient,
        backoff: Backoff,
        interval: float,
        batch_size: int,
        phase: float | None = None,
    ) -> None:
        self.registry = registry
        self.encoder = encoder
        self.spool = spool
        self.client = client
        self.backoff = backoff
        self.interval = interval
        self.phase = phase  # None: the first sample at once
        self.batch_size = batch_size
        self.max_points = batch_size  # lowered after a 413, raised back after RECOVER_AFTER sends
        self.stats = PushStats(requests=client.requests)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sample = self._next_send = 0.0  # time.monotonic() deadlines of the loop
        self._retry_at = 0.0  # time.monotonic() before which ingest is backed off from
        self._unspooled = 0  # points of the sample being appended not yet appended nor counted
        self._fitted = 0  # sends settled since max_points last changed
        self._sending = "starting"  # the state sending is in; the spool failing shows first
        self._spool_error = ""  # why the last append failed; empty once one succeeds
        self._send_error = ""  # the last error of sending, logged once while it repeats
        # a request never starts with less time than this left before the next sample
        self.floor = min(MIN_REQUEST, interval / 4, client.timeout)
        self._chain: _Chain | None = None  # the requests of a batch a sample interrupted
        self._held: list[tuple[bytes, int]] = []  # chunks the spool could not take, to send
        self._held_delivering: Delivering | None = None  # the first held chunk's, interrupted
        self._late = False  # the last sample skipped ticks (logged once while it repeats)
        self._cutting = False  # requests are being cut by the deadline (logged once)
        self._sampled = 0.0  # time.monotonic() when the last sample was spooled
        if spool.unwritable is not None:  # a full disk at start (logged): say so in /health now
            self._spool_error = f"spool: {spool.unwritable}"
            self._record(self._spool_error)

    # -- life cycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pusher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop the thread; abandon a request still in flight after ``timeout``. True if stopped.

        What was not acknowledged stays in the spool for the next start.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("push request still in flight after %gs: abandoning it", timeout)
                self.client.abort()
                thread.join(2.0)
            if thread.is_alive():
                return False
        self.client.close()
        self.spool.close()
        return True

    @property
    def alive(self) -> bool:
        """False once the thread has ended while it should run (never started: True)."""
        thread = self._thread
        return thread is None or thread.is_alive() or self._stop.is_set()

    def _run(self) -> None:
        start = time.monotonic()
        if self.phase is not None:
            start += until_phase(time.time(), self.interval, self.phase)
        self._next_sample = self._next_send = start  # what the spool kept waits for the phase too
        while not self._stop.is_set():
            try:
                wait = self._step()
            except Exception as exc:  # the thread must outlive anything one iteration raises
                wait = self._step_failed(exc)
            if wait > 0:
                self._stop.wait(wait)

    def _step(self) -> float:
        """Sample or send if one is due; the seconds to wait before the next step."""
        now = time.monotonic()
        if now >= self._next_sample:
            self._sample_due(now)
            return 0.0
        # a send starts only with time for a request before the next sample; else after it
        room = self._next_sample - now >= self.floor
        if self._held and room and now >= self._retry_at:  # (a cut chunk waits out its backoff)
            self._send_held(self._next_sample)
            return 0.0
        if self.spool.queued_points and now >= self._next_send and room:
            self._next_send = time.monotonic() + self.send(self._next_sample)
            return 0.0
        self._settle()  # nothing to do now: what is not acknowledged goes to disk before the wait
        wake = self._next_sample  # a send due but without room before it waits for it too
        if (self.spool.queued_points or self._held) and now < self._next_send <= wake - self.floor:
            wake = self._next_send
        return wake - time.monotonic()

    def _sample_due(self, now: float) -> None:
        """Sample for the tick due; keep the phase, skipping (and counting) the ticks the
        thread was busy past rather than sampling them in a burst."""
        skipped = int((now - self._next_sample) // self.interval)  # held up past whole ticks
        self._next_sample += self.interval * (skipped + 1)
        self.sample(self._next_sample)
        # (what the spool could not take is sent within the sample, but only until the next)
        late = self._sampled + self.floor - self._next_sample
        if late > 0:  # the sample took (nearly) past the next tick: a send gets its turn first
            passed = int(late // self.interval) + 1
            skipped += passed
            self._next_sample += self.interval * passed
        if skipped:
            self.stats.samples_skipped += skipped
            if not self._late:
                log.warning(
                    "push: skipped %d sample(s): the push thread was busy (or the process "
                    "stopped) past their time; this sample took %.3gs of a %gs interval. "
                    "Counted in perfanalysis_exporter_push_samples_skipped_total",
                    skipped, self._sampled - now, self.interval,
                )  # fmt: skip
        self._late = bool(skipped)

    def _step_failed(self, exc: Exception) -> float:
        delay = self.backoff.next_delay()
        log.exception("push loop failed; retrying in %.1fs", delay)
        self._failed(f"{type(exc).__name__}: {exc}", "spool_error", delay)
        self._settle()
        now = time.monotonic()
        self._next_send = now + delay
        until_sample = self._next_sample - now
        return delay if until_sample <= 0 else min(delay, until_sample)

    # -- one sample

    def sample(self, deadline: float | None = None) -> None:
        """Scrape, encode, compress and append: the push cycle's CPU cost (bench/push.py).
        Chunks the spool cannot take are sent at once, until ``deadline`` (the next sample)."""
        held: list[tuple[bytes, int]] = []  # chunks the spool could not take
        try:
            timestamp = time.time_ns()
            families = self.registry.scrape().families
            encoded = self.encoder.encode(families, timestamp)
            self.stats.non_finite += encoded.non_finite
            self.stats.samples += 1
            self._unspooled = len(encoded.lines)
            for chunk in batches(encoded.lines, self.max_points):
                self._append(chunk, held)
        except Exception as exc:  # the thread must outlive any one bad sample
            self.stats.spool_error += self._unspooled  # what this sample could not append
            log.exception("push sample failed")
            self._failed(f"sample: {type(exc).__name__}: {exc}")
        self._unspooled = 0
        self._sampled = time.monotonic()
        if held:
            self._hold(held)
            self._send_held(deadline)

    def _append(self, lines: Sequence[str], held: list[tuple[bytes, int]]) -> None:
        """Append one chunk; split by lines, in halves, while it is too large for a segment.
        A chunk the spool cannot take goes to ``held``."""
        payload = compress("".join(lines).encode())
        if len(payload) > self.spool.record_limit and len(lines) > 1:
            half = len(lines) // 2
            self._append(lines[:half], held)
            self._append(lines[half:], held)
            return
        try:  # synced by the send that follows, unless ingest acknowledges it first
            self.spool.append(payload, len(lines), sync=False)  # one that can never fit: dropped
        except SpoolError as exc:
            held.append((payload, len(lines)))
            self._spool_failed(f"spool: {exc}")
        else:
            if self._spool_error:
                self._spool_error = ""
                log.info("push: the spool in %s takes samples again", self.spool.directory)
                self.stats.state = self._shown_state()
        self._unspooled -= len(lines)

    def _hold(self, held: list[tuple[bytes, int]]) -> None:
        """Keep chunks to send from memory; beyond HELD_MAX_BYTES (ingest too slow to take them
        all before the next samples, or a backoff long enough), the oldest not in flight are
        lost, counted as spool_error."""
        self._held += held
        size = sum(len(payload) for payload, _ in self._held)
        first = 1 if self._held_delivering is not None else 0
        while size > HELD_MAX_BYTES and len(self._held) > first + len(held):
            payload, points = self._held.pop(first)
            size -= len(payload)
            self.stats.spool_error += points

    def _send_held(self, deadline: float | None) -> None:
        """Send the chunks the spool could not take from memory, once; count what ingest does not
        acknowledge as spool_error. Not while a retry is pending (ingest is failing already):
        they wait for it in memory, within HELD_MAX_BYTES (see _hold). Those the ``deadline``
        leaves no time for are sent after the next sample, and a chunk whose request was cut
        goes on after the backoff, in halves, keeping what was acknowledged."""
        while self._held:
            if time.monotonic() < self._retry_at:  # kept: sent once the backoff is over
                return
            payload, points = self._held[0]
            delivering, self._held_delivering = self._held_delivering, None
            try:
                if delivering is None:
                    delivering = self.client.start(payload, points)
                result = delivering.run(deadline, self.floor)
            except Exception as exc:
                log.exception("push send failed")
                result = Delivery(Verdict.RETRY, error=f"send: {type(exc).__name__}: {exc}")
            if result is None:  # the next sample first
                self._held_delivering = delivering
                return
            delivery = result
            self._batch_size_after(delivery)
            if delivery.verdict is Verdict.CUT:  # goes on after the backoff, the others after it
                self._held_delivering = delivering
                self.stats.retried += delivery.cut_at or 0
                self._not_settled(delivery)
                self._next_send = max(self._next_send, self._retry_at)
                continue
            self._held.pop(0)
            self._settled(delivery)  # of a failed 413 split too: its settled parts count
            if delivery.verdict is not Verdict.SETTLED:  # not in the spool: nothing to retry
                settled = delivery.sent + delivery.rejected + delivery.too_large
                self.stats.spool_error += points - settled
                self._not_settled(delivery)
                self._next_send = max(self._next_send, self._retry_at)
                continue
            self.backoff.reset()
            self._sent(delivery)

    # -- one request

    def send(self, deadline: float | None = None) -> float:
        """Send the oldest batch, then sync what the spool holds unsynced and unacknowledged;
        return the seconds to wait before the next send. With a ``deadline`` (the next sample),
        requests stop there, and the next send goes on with them (0 is returned)."""
        delay = self._send(deadline)
        self._settle()
        return delay

    def _settle(self) -> None:
        """Make what ingest has not acknowledged durable (see spool.Spool.sync)."""
        try:
            self.spool.sync()
        except SpoolError as exc:
            self._spool_failed(
                f"spool: {exc}", "its records are still sent, but a machine crash may lose them"
            )

    def _send(self, deadline: float | None) -> float:
        try:
            found = self._next_batch()
            if found is None:  # nothing readable after all (only corrupt stretches were left)
                return min(1.0, self.interval)
            batch, chain = found
            delivery = chain.delivering.run(deadline, self.floor)
        except Exception as exc:
            log.exception("push send failed")
            self._failed(f"send: {type(exc).__name__}: {exc}")
            return self.backoff.next_delay()
        if delivery is None:  # the next sample is due first: the requests go on after it
            unsaved = self._keep_chain(batch, chain)
            return self._commit_failed(unsaved) if unsaved else 0.0
        self._batch_size_after(delivery)
        if delivery.verdict is Verdict.CUT:  # the requests go on after it, and a backoff
            unsaved = self._keep_chain(batch, chain)
            self.stats.retried += delivery.cut_at or 0
            delay = self._not_settled(delivery)
            return self._commit_failed(unsaved, delay) if unsaved else delay
        if delivery.verdict is not Verdict.SETTLED:  # the failed request is made again
            self.stats.retried += delivery.failed_at or 0
            # narrowed: after the backoff, from where it failed; else the batch is read afresh
            unsaved = self._keep_chain(batch, chain) if chain.delivering.narrowed else ""
            delay = self._not_settled(delivery)
            return self._commit_failed(unsaved, delay) if unsaved else delay
        self._settled(delivery, chain.committed)
        unsaved = self._commit(batch)
        if unsaved:
            return self._commit_failed(unsaved)
        self.backoff.reset()
        self._sent(delivery)
        return 0.0

    def _next_batch(self) -> tuple[Batch, _Chain] | None:
        """The batch to send and its requests: the batch a sample interrupted or a cut or
        failed request held up, to go on with, if the spool still holds it first, the same
        records (it may have dropped them to make room meanwhile, or lost its directory); else
        the oldest, up to max_points, to start on."""
        chain, self._chain = self._chain, None
        if chain is not None:
            batch = self.spool.read(chain.points)
            if batch is not None and (batch.start, batch.records) == (chain.start, chain.records):
                return batch, chain
        batch = self.spool.read(self.max_points)
        if batch is None:
            return None
        delivering = self.client.start(self._body(batch), batch.points)
        return batch, _Chain(delivering, batch.start, batch.records, batch.points)

    def _keep_chain(self, batch: Batch, chain: _Chain) -> str:
        """Keep the batch's requests to go on with after the sample or the backoff. First commit
        the leading records ingest has acknowledged whole, and count their points as sent:
        neither a restart nor a spool dropping the rest sends or counts them again. (The
        record a request's boundary cut through stays: the spool commits whole records.)
        The error of that commit, if it failed (counted all the same: the cursor moved, unsaved),
        for the caller to show once the request's own outcome is recorded; else empty."""
        acknowledged = chain.delivering.acknowledged_first - chain.committed
        records = batch.records
        whole = points = 0
        while whole < len(records) - 1 and points + records[whole].points <= acknowledged:
            points += records[whole].points
            whole += 1
        unsaved = ""
        if whole:
            unsaved = self._commit(batch.first(whole))
            self.stats.sent += points
            self.stats.last_success = time.time()
            chain.committed += points
        self._chain = _Chain(
            chain.delivering,
            self.spool.cursor,
            records[whole:],
            batch.points - points,
            chain.committed,
        )
        return unsaved

    def _commit(self, batch: Batch) -> str:
        """Commit ``batch``; the error when the spool cannot write it (EROFS, EIO: the segment or
        the cursor; the cursor has moved all the same, unsaved), else empty."""
        try:
            self.spool.commit(batch)
        except Exception as exc:
            if not isinstance(exc, OSError):
                log.exception("push: commit failed")
            return f"spool: cannot commit: {exc}"
        return ""

    def _commit_failed(self, error: str, delay: float | None = None) -> float:
        """Show a commit that failed as spool_error, with its error, until a send settles, and
        back off: by ``delay``, the backoff the request's own failure took, else by the next
        one; the seconds to wait."""
        if delay is None:
            delay = self.backoff.next_delay()
        self._failed(error, "spool_error", delay)
        return delay

    def _not_settled(self, delivery: Delivery) -> float:
        """Back off after a request to retry; the seconds to wait."""
        if delivery.verdict is Verdict.UNAUTHORIZED and delivery.retry_after == 0.0:
            self.backoff.reset()  # a new key: try it soon, whatever the key before cost
        delay = self.backoff.next_delay(delivery.retry_after)
        self._retry_at = time.monotonic() + delay
        state = "unauthorized" if delivery.verdict is Verdict.UNAUTHORIZED else "retrying"
        self._failed(delivery.error, state, delay)
        return delay

    def _settled(self, delivery: Delivery, counted: int = 0) -> None:
        """Count a settled delivery's points, but the ``counted`` sent ones counted already."""
        self.stats.sent += delivery.sent - counted
        self.stats.rejected += delivery.rejected
        self.stats.too_large += delivery.too_large
        if delivery.sent:
            self.stats.last_success = time.time()

    def _sent(self, delivery: Delivery) -> None:
        """The state after a settled request."""
        if not delivery.sent:  # every point refused for good: nothing reaches storage
            self._failed(delivery.error, "rejecting")
            return
        if self._sending != "ok":
            log.info("pushing to %s: ok", self.client.url)
        self._sending = "ok"
        self._send_error = ""
        self.stats.state = self._shown_state()

    def _batch_size_after(self, delivery: Delivery) -> None:
        """Halve the batch size below a request size a 413 refused, or a cut (counted, and not
        below CUT_MIN_POINTS); double it back (up to ``batch_size``) after
        RECOVER_AFTER settled requests without either."""
        if delivery.cut_at is not None:
            self._fitted = 0
            self.stats.requests_cut += 1
            lowered = min(self.max_points, max(CUT_MIN_POINTS, delivery.cut_at // 2))
            if lowered < self.max_points:
                self.max_points = lowered
            if not self._cutting:
                log.warning(
                    "push: a request of %d points to %s needed longer than it had (at most "
                    "--push.timeout, and the time left before the next sample): its points go on "
                    "in halves, requests now hold at most %d points. Counted in "
                    "perfanalysis_exporter_push_requests_cut_total",
                    delivery.cut_at, self.client.url, self.max_points,
                )  # fmt: skip
            self._cutting = True
            return
        if delivery.verdict is Verdict.SETTLED:
            self._cutting = False
        if delivery.too_large_at is not None:
            self._fitted = 0
            lowered = max(1, min(self.max_points, delivery.too_large_at // 2))
            if lowered < self.max_points:
                self.max_points = lowered
                log.warning(
                    "ingest refused a request of %d points as too large (413) and took its "
                    "halves: requests now hold at most %d points",
                    delivery.too_large_at, self.max_points,
                )  # fmt: skip
            return
        if self.max_points >= self.batch_size or delivery.verdict is not Verdict.SETTLED:
            return
        self._fitted += 1
        if self._fitted >= RECOVER_AFTER:
            self._fitted = 0
            self.max_points = min(self.batch_size, self.max_points * 2)
            log.info("requests may hold up to %d points again", self.max_points)

    def _body(self, batch: Batch) -> bytes:
        if len(batch.records) == 1:
            return batch.records[0].payload
        return compress(b"".join(gzip.decompress(r.payload) for r in batch.records))

    def _failed(self, error: str, state: str | None = None, delay: float | None = None) -> None:
        """Record an error; ``state``, if given, is the state sending is now in. Logged when it
        or the state changes (a spool failing meanwhile is logged on its own)."""
        if error != self._send_error or (state is not None and state != self._sending):
            retry = "" if delay is None else f"; retrying in {delay:.1f}s"
            log.warning("push to %s: %s%s", self.client.url, error, retry)
        self._send_error = error
        if state is not None:
            self._sending = state
        self._record(error)

    def _spool_failed(
        self,
        error: str,
        consequence: str = "what it cannot take is sent from memory, or lost (counted)",
    ) -> None:
        """The spool could not take a sample, or sync one: spool_error until an append
        succeeds."""
        if error != self._spool_error:
            log.warning("push: %s; %s", error, consequence)
        self._spool_error = error
        self._record(error)

    def _record(self, error: str) -> None:
        self.stats.last_error = error
        self.stats.last_error_at = time.time()
        self.stats.state = self._shown_state()

    def _shown_state(self) -> str:
        """The state /health shows: a spool that cannot take samples first, then sending's."""
        return "spool_error" if self._spool_error else self._sending

    # -- reporting

    def status(self) -> dict[str, Any]:
        """The push section of /health."""
        return {
            "status": self.stats.state if self.alive else "stopped",
            "url": self.client.url,
            "interval_seconds": self.interval,
            "phase_seconds": self.phase,
            "last_success": self.stats.last_success,
            "last_error": self.stats.last_error or None,
            "last_error_at": self.stats.last_error_at,
            "spool_error": self._spool_error or None,
            "queued_points": self.spool.queued_points,
            "max_batch_points": self.max_points,
            "spool_bytes": self.spool.disk_bytes,
            "spool_dir": str(self.spool.directory),
        }
