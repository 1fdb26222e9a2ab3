"""The push loop: one background thread that samples, spools and sends.

Every ``interval`` it samples the same registry as /metrics (``Registry.scrape`` takes the
registry's lock, so a push sample and a scrape never run collectors at the same time), encodes
the families as line protocol with one timestamp, gzips each batch and appends it to the spool.
Between samples it sends from the spool, oldest first, merging small records into requests of up
to ``batch_size`` points, and waits out backoffs. Sampling keeps its schedule during an outage:
only a request in flight (bounded by ``--push.timeout``) can delay a sample. With a ``phase``,
the first sample, and the first send of what the spool kept from before, wait for that many
seconds into a wall-clock interval (see schedule.py), so that a fleet started together does not
push in lockstep.

One thread, not two: the spool needs no locking, and a batch read from the spool is always
committed or abandoned before the next append, so dropping the oldest segments when the spool is
full can never race with a batch in flight. The thread outlives anything one iteration raises (a
spool on a filesystem gone read-only, say): it logs it, reports ``spool_error`` and backs off;
/health calls the push ``stopped`` (degraded) should the thread ever end anyway.

Counters: each point is counted once, as sent (acknowledged), rejected (refused for good),
spool_error (never appended) or, by the spool, spool_full. A batch that is retried counts in
none of sent and rejected until the attempt that settles it, even when part of it was
acknowledged before a 413 split failed part-way; ``retried`` counts the points of each failed
attempt that ingest did not acknowledge.
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
from exporter.push.client import PushClient, Verdict, compress
from exporter.push.lineproto import LineEncoder, batches
from exporter.push.schedule import until_phase
from exporter.push.spool import Batch, Spool, SpoolError
from exporter.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class PushStats:
    """Counters since start; the spool keeps its own (dropped when full, corrupt) across restarts."""

    sent: int = 0
    rejected: int = 0
    non_finite: int = 0
    spool_error: int = 0
    retried: int = 0
    samples: int = 0
    last_success: float | None = None
    last_error: str = ""
    last_error_at: float | None = None
    state: str = "starting"  # ok, retrying, unauthorized, rejecting, spool_error
    requests: dict[str, int] = field(default_factory=dict)


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
        self.max_points = batch_size  # lowered after a 413
        self.stats = PushStats(requests=client.requests)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sample = self._next_send = 0.0  # time.monotonic() deadlines of the loop
        self._unspooled = 0  # points of the sample being appended not yet appended nor counted

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
            self.sample()
            # keep the phase; skip the ticks a long request made us miss instead of bursting
            missed = int((time.monotonic() - self._next_sample) // self.interval)
            self._next_sample += self.interval * (missed + 1)
            return 0.0
        if self.spool.queued_points and now >= self._next_send:
            self._next_send = time.monotonic() + self.send()
            return 0.0
        wake = self._next_sample
        if self.spool.queued_points:
            wake = min(wake, self._next_send)
        return wake - time.monotonic()

    def _step_failed(self, exc: Exception) -> float:
        delay = self.backoff.next_delay()
        log.exception("push loop failed; retrying in %.1fs", delay)
        self._failed(f"{type(exc).__name__}: {exc}", "spool_error", delay)
        now = time.monotonic()
        self._next_send = now + delay
        until_sample = self._next_sample - now
        return delay if until_sample <= 0 else min(delay, until_sample)

    # -- one sample

    def sample(self) -> None:
        """Scrape, encode, compress and append: the push cycle's CPU cost (bench/push.py)."""
        try:
            timestamp = time.time_ns()
            families = self.registry.scrape().families
            encoded = self.encoder.encode(families, timestamp)
            self.stats.non_finite += encoded.non_finite
            self.stats.samples += 1
            self._unspooled = len(encoded.lines)
            for chunk in batches(encoded.lines, self.max_points):
                self._append(chunk)
        except Exception as exc:  # the thread must outlive any one bad sample
            self.stats.spool_error += self._unspooled  # what this sample could not append
            log.exception("push sample failed")
            self._failed(f"sample: {type(exc).__name__}: {exc}")
        self._unspooled = 0

    def _append(self, lines: Sequence[str]) -> None:
        """Append one chunk; split by lines, in halves, while it is too large for a segment."""
        payload = compress("".join(lines).encode())
        if len(payload) > self.spool.record_limit and len(lines) > 1:
            half = len(lines) // 2
            self._append(lines[:half])
            self._append(lines[half:])
            return
        try:
            self.spool.append(payload, len(lines))  # one point that can never fit: dropped, counted
        except SpoolError as exc:
            self.stats.spool_error += len(lines)
            self._failed(f"spool: {exc}")
        self._unspooled -= len(lines)

    # -- one request

    def send(self) -> float:
        """Send the oldest batch; return the seconds to wait before the next send."""
        try:
            batch = self.spool.read(self.max_points)
            if batch is None:  # nothing readable after all (only corrupt stretches were left)
                return min(1.0, self.interval)
            delivery = self.client.deliver(self._body(batch), batch.points)
        except Exception as exc:
            log.exception("push send failed")
            self._failed(f"send: {type(exc).__name__}: {exc}")
            return self.backoff.next_delay()
        if delivery.too_large_at is not None:
            self.max_points = max(1, min(self.max_points, delivery.too_large_at // 2))
            log.warning("ingest found %d points too large: batches now hold at most %d",
                        delivery.too_large_at, self.max_points)  # fmt: skip
        if delivery.verdict is not Verdict.SETTLED:  # the whole batch is kept and sent again
            self.stats.retried += batch.points - delivery.sent
            if delivery.verdict is Verdict.UNAUTHORIZED and delivery.retry_after == 0.0:
                self.backoff.reset()  # a new key: try it soon, whatever the key before cost
            delay = self.backoff.next_delay(delivery.retry_after)
            state = "unauthorized" if delivery.verdict is Verdict.UNAUTHORIZED else "retrying"
            self._failed(delivery.error, state, delay)
            return delay
        self.stats.sent += delivery.sent
        self.stats.rejected += delivery.rejected
        if delivery.sent:
            self.stats.last_success = time.time()
        try:
            self.spool.commit(batch)
        except Exception as exc:  # e.g. EROFS, EIO: the segment or the cursor cannot be written
            delay = self.backoff.next_delay()
            if not isinstance(exc, OSError):
                log.exception("push: commit failed")
            self._failed(f"spool: cannot commit: {exc}", "spool_error", delay)
            return delay
        self.backoff.reset()
        if not delivery.sent:  # every point refused for good: nothing reaches storage
            self._failed(delivery.error, "rejecting")
            return 0.0
        if self.stats.state != "ok":
            log.info("pushing to %s: ok", self.client.url)
        self.stats.state = "ok"
        return 0.0

    def _body(self, batch: Batch) -> bytes:
        if len(batch.records) == 1:
            return batch.records[0].payload
        return compress(b"".join(gzip.decompress(r.payload) for r in batch.records))

    def _failed(self, error: str, state: str | None = None, delay: float | None = None) -> None:
        if error != self.stats.last_error or state != self.stats.state:
            retry = "" if delay is None else f"; retrying in {delay:.1f}s"
            log.warning("push to %s: %s%s", self.client.url, error, retry)
        self.stats.last_error = error
        self.stats.last_error_at = time.time()
        if state is not None:
            self.stats.state = state

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
            "queued_points": self.spool.queued_points,
            "spool_bytes": self.spool.disk_bytes,
            "spool_dir": str(self.spool.directory),
        }
