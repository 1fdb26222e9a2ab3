"""One write, from a verified key and a decoded body to storage: the order of the checks.

Authentication comes first (nothing is read for a stranger), then the body is validated whole
(a bad batch is 400 whatever the rate, since retrying it cannot help), then size against the
tenant's burst (413: only splitting helps), then the rate (429), then storage. Only when storage
has accepted the batch is the answer 204 and the key's use recorded. A batch that storage did not
take at all (down, refusing ingest, too large for it, refusing it whole for a field type conflict)
gives its rate tokens back, so the retries of an outage do not leave the tenant throttled once
storage is back; one that storage read and partly refused for its content (422) keeps them spent.

A field type conflict is checked by storage, not here: a batch that gives one field two types
passes prepare() (looking for that would cost its fast paths about a fifth of their time). Where
the write creates InfluxDB 1.6.7's shard, it refuses the whole write for it (``field type
conflict`` without ``partial write``); only then are the batch's lines compared, and the answer is
400 naming the conflicting lines, as for any bad line. Where the shard exists, InfluxDB drops the
conflicting points and writes the rest (422).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingest import errors
from ingest.batch import BatchPreparer, ForcedTags, InvalidBatch, TooManyPoints
from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit, RateLimiter, retry_after_seconds
from ingest.storage import (
    StorageConflict,
    StorageLimitExceeded,
    StoragePartialRefusal,
    StorageRefused,
    StorageTooLarge,
    StorageUnavailable,
    StorageWholeConflict,
    StorageWriter,
)
from tenants.crypto import KEY_PREFIX, split_credential
from tenants.errors import Forbidden, Unauthenticated
from tenants.keys import Identity, KeyVerifier

log = logging.getLogger(__name__)
FORCED_TAGS_CACHE = 10_000
# storage refused the batch whole for a field type conflict in it; too large for it; down, slow,
# refusing ingest, or refused it whole for a conflict with points written meanwhile
NOTHING_STORED = (400, 413, 503)
# Refusals of a client's write, logged (rate-limited) so that they can be traced to a tenant and
# collector: 401 and 403 at WARNING, as a security matter (a revoked or leaked key, a disabled
# collector still sending); 400, 413 and 429 at INFO, since under load they are a normal part of
# the traffic and the client is told why (its own log says so too).
REFUSAL_LEVELS = {
    400: logging.INFO,
    401: logging.WARNING,
    403: logging.WARNING,
    413: logging.INFO,
    429: logging.INFO,
}
REFUSAL_LOG_INTERVAL = 60.0  # seconds: at most one line per (tenant, collector, status) in this
REFUSAL_LOG_KEYS = 1000  # distinct (tenant, collector, status) tracked; beyond, they share one
REFUSAL_REASON_CHARS = 300


class RefusalLog:
    """Logs refused writes, at most one line per (tenant, collector, status) every ``interval``
    seconds; the next line for it says how many were left out meanwhile, so a client refused in
    a loop costs a line a minute. A 401 is keyed by the key id it sent (never its secret), so
    ever-new made-up key ids are bounded by ``max_keys``: past it, they share one key. Writes
    storage did not take (down, slow, refusing ingest) are logged so too, by database, so that
    an outage costs a line a minute per database, not one per request."""

    def __init__(
        self,
        logger: logging.Logger = log,
        interval: float = REFUSAL_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = REFUSAL_LOG_KEYS,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._lock = threading.Lock()
        # key -> (when last logged, refusals left out since, their points)
        self._seen: dict[tuple[str, int], tuple[float, int, int]] = {}

    def refused(self, status: int, who: str, reason: str, points: int | None = None) -> None:
        """``who``: "tenant T, collector C", or "key pak_..." before the key is verified;
        ``points``: the points or lines refused, None when the body was not read."""
        level = REFUSAL_LEVELS.get(status, logging.WARNING)
        left_out = self._left_out((who, status), level, points)
        if left_out is None:
            return
        said = ""
        if left_out[0]:
            said = (f"; {left_out[0]} more refused {status} ({left_out[1]} points) in the "
                    f"{left_out[2]:.0f}s before, not logged")  # fmt: skip
        count = "body not read" if points is None else f"{points} points"
        if len(reason) > REFUSAL_REASON_CHARS:
            reason = reason[:REFUSAL_REASON_CHARS] + "..."
        self.logger.log(level, "write refused %d for %s (%s): %s%s", status, who, count, reason,
                        said)  # fmt: skip

    def storage_failed(
        self, level: int, database: str, kind: str, message: str, points: int
    ) -> None:
        """Log ``message`` about a write to ``database`` that storage did not take (``kind``:
        unavailable, refused...), at most once per (database, kind) every ``interval``: an
        outage gives a line a minute per database, saying how many more there were."""
        left_out = self._left_out((f"storage {kind}: {database}", 0), level, points)
        if left_out is None:
            return
        said = ""
        if left_out[0]:
            said = (f"; and {left_out[0]} more writes to {database} ({left_out[1]} points) "
                    f"in the {left_out[2]:.0f}s before, not logged")  # fmt: skip
        self.logger.log(level, "%s%s", message, said)

    def _left_out(
        self, key: tuple[str, int], level: int, points: int | None
    ) -> tuple[int, int, float] | None:
        """None if this event is not to be logged (the level is off, or ``key`` was logged
        within the interval: it is counted); else how many were left out since ``key`` was
        last logged, their points, and the seconds since."""
        if not self.logger.isEnabledFor(level):
            return None
        now = self.clock()
        with self._lock:
            if key not in self._seen and len(self._seen) >= self.max_keys:
                self._prune(now)
                if len(self._seen) >= self.max_keys:
                    key = ("(others)", key[1])
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.interval:
                self._seen[key] = (last[0], last[1] + 1, last[2] + (points or 0))
                return None
            self._seen[key] = (now, 0, 0)
        if last is None:
            return (0, 0, 0.0)
        return (last[1], last[2], now - last[0])

    def _prune(self, now: float) -> None:
        """Forget keys not logged within the interval that have nothing left out to report."""
        for key, (when, left_out, _) in list(self._seen.items()):
            if now - when >= self.interval and not left_out:
                del self._seen[key]


def _key_id(credential: str | None) -> str:
    """How a refused credential is named in the log: its public key id, never its secret."""
    if credential is None:
        return "no key"
    parts = split_credential(credential)
    if parts is None or parts[0] != KEY_PREFIX:
        return "malformed key"
    return f"key {parts[0]}_{parts[1]}"


class LabelledChildren:
    """Labelled metrics' children, each looked up from prometheus_client once: its labels()
    takes a lock and builds a tuple of strings on every call, a few microseconds of each
    write. Keyed by the metric too, so a metric replaced (tests) is not answered for."""

    def __init__(self) -> None:
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def __call__(self, metric: Any, *values: str) -> Any:
        child = self._children.get((metric, values))
        if child is None:
            child = self._children[(metric, values)] = metric.labels(*values)
        return child


@dataclass(frozen=True)
class Written:
    identity: Identity
    points: int


class WriteService:
    def __init__(
        self,
        verifier: KeyVerifier,
        preparer: BatchPreparer,
        limiter: RateLimiter,
        default_limit: Limit,
        writer: StorageWriter,
        metrics: IngestMetrics,
        retry_after: int,
        clock: Callable[[], int] = time.time_ns,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.verifier = verifier
        self.preparer = preparer
        self.limiter = limiter
        self.default_limit = default_limit  # rate 0: tenants without their own are not limited
        self.writer = writer
        self.metrics = metrics
        self.retry_after = retry_after
        self.clock = clock
        self.refusals = refusals or RefusalLog()
        self._forced: dict[tuple[str, str, str | None], ForcedTags] = {}
        self._labelled = LabelledChildren()

    def authenticate(self, credential: str | None) -> Identity:
        if credential is None:
            raise self._refuse("no key", errors.unauthenticated(
                "no collector key: send it as 'Authorization: Token <key>' "
                "(or as the basic-auth password)"
            ))  # fmt: skip
        try:
            return self.verifier.verify(credential)
        except Unauthenticated as exc:
            refusal = errors.unauthenticated(exc.message)
        except Forbidden as exc:
            refusal = errors.forbidden(exc.message)
        raise self._refuse(_key_id(credential), refusal)

    def refused(self, identity: Identity, error: errors.IngestError,
                points: int | None = None) -> None:  # fmt: skip
        """Log a refusal of ``identity``'s write made outside this service (its body, its
        precision), as the service logs its own: rate-limited, by tenant and collector."""
        self._refuse(_who(identity), error, points)

    def _refuse(
        self, who: str, error: errors.IngestError, points: int | None = None
    ) -> errors.IngestError:
        """Log the refusal ``error`` if it is of a kind logged (REFUSAL_LEVELS); return it."""
        if error.status in REFUSAL_LEVELS:
            self.refusals.refused(error.status, who, error.message, points)
        return error

    def write(self, identity: Identity, precision: str, body: bytes, received_ns: int) -> Written:
        tenant = identity.tenant_slug
        who = _who(identity)
        try:
            batch = self.preparer.prepare(body, self._forced_tags(identity), precision, received_ns)
        except InvalidBatch as exc:
            self._rejected(tenant, "invalid", exc.points)
            raise self._refuse(
                who, _invalid(exc, "are invalid; nothing was written"), exc.points
            ) from None
        except TooManyPoints as exc:
            self._rejected(tenant, "too_large", exc.points)
            raise self._refuse(
                who, errors.too_large(f"{exc}; split the batch"), exc.points
            ) from None
        except errors.IngestError as exc:  # a collector name that cannot be a tag (403)
            raise self._refuse(who, exc) from None
        if batch.points == 0:
            return Written(identity, 0)
        limit = self.limit_for(identity)
        taken = None
        if limit.rate > 0:
            if batch.points > limit.burst:
                self._rejected(tenant, "too_large", batch.points)
                raise self._refuse(who, errors.too_large(
                    f"{batch.points} points in one request; this tenant may send at most "
                    f"{limit.burst} at once: split the batch"
                ), batch.points)  # fmt: skip
            wait = self.limiter.acquire(tenant, batch.points, limit)
            if wait > 0:
                self._rejected(tenant, "rate_limited", batch.points)
                raise self._refuse(who, errors.rate_limited(
                    f"tenant {tenant} is over its write rate; retry later",
                    retry_after_seconds(wait),
                ), batch.points)  # fmt: skip
            taken = limit
        try:
            self._store(identity, batch.payload, batch.points, body)
        except errors.IngestError as exc:  # 400 here: storage refused the batch whole
            if taken is not None and exc.status in NOTHING_STORED:
                self.limiter.release(tenant, batch.points, taken)
            if exc.status == 400:  # its lines named; storage's 413 is logged in _store
                self._refuse(who, exc, batch.points)
            raise
        self._labelled(self.metrics.points_accepted, tenant).inc(batch.points)
        self.metrics.batch_points.observe(batch.points)
        self.verifier.record_use(identity, batch.points)
        return Written(identity, batch.points)

    def limit_for(self, identity: Identity) -> Limit:
        """The tenant's own rate and burst where the admin app set them, else ingest's."""
        rate, burst = self.default_limit
        if identity.ingest_rate is not None:
            rate = identity.ingest_rate
        if identity.ingest_burst is not None:
            burst = identity.ingest_burst
        return Limit(rate, burst)

    def _store(self, identity: Identity, payload: bytes, points: int, body: bytes) -> None:
        """Write ``payload`` (``points`` points, prepared from ``body``); raise an IngestError
        saying what storage did with it."""
        tenant = identity.tenant_slug
        where = _where(identity)
        started = time.perf_counter()
        outcome = "ok"
        try:
            self.writer.write(identity.database, payload)
        except StorageRefused as exc:
            outcome = "refused"
            if exc.status == 404:  # the database is missing: credentials cannot be the cause
                why = ("the database is missing: the tenant may have been deleted in the last "
                       "key-cache-seconds (its key, cached here until then, is refused after), "
                       f"else create it with perfanalysis admin provision-storage {tenant}")  # fmt: skip
            else:
                why = ("check ingest's storage credentials and its WRITE grant on that "
                       "database")  # fmt: skip
            self.refusals.storage_failed(
                logging.ERROR, identity.database, "refused", f"storage refused ingest's write "
                f"to {identity.database} ({where}): {exc.message}; {why}", points,
            )  # fmt: skip
            self._rejected(tenant, "storage_refused", points)
            raise errors.unavailable(
                "storage refused ingest's write; an operator must fix it: retry later",
                self.retry_after,
            ) from None
        except StorageUnavailable as exc:
            outcome = "unavailable"
            self.refusals.storage_failed(
                logging.WARNING, identity.database, "unavailable", f"storage unavailable for "
                f"{identity.database} ({where}): {exc.message}", points,
            )  # fmt: skip
            self._rejected(tenant, "storage_unavailable", points)
            raise errors.unavailable(
                "storage is unavailable; retry later", self.retry_after
            ) from None
        except StorageTooLarge as exc:
            outcome = "too_large"
            log.warning("storage refused a write of %d bytes to %s (%s) as too large: %s; keep "
                        "limits.max-decompressed-bytes and storage.group-max-bytes below its "
                        "max-body-size", len(payload), identity.database, where,
                        exc.message)  # fmt: skip
            self._rejected(tenant, "too_large", points)
            raise errors.too_large(
                f"storage refused this batch of {points} points as too large; split the batch"
            ) from None
        except StorageWholeConflict as exc:
            outcome = "conflict"
            self._rejected(tenant, "storage_conflict", points)
            raise self._whole_conflict(identity, exc, body) from None
        except StorageConflict as exc:
            outcome = "conflict"
            said = exc.dropped  # storage's own count, parsed from its message
            dropped = said if said is not None and 0 < said < points else points
            if isinstance(exc, StorageLimitExceeded):
                dropped = points  # the limits' dropped=N leaves out the points dropped before
            self._rejected(tenant, "storage_conflict", dropped)
            self.metrics.points_accepted.labels(tenant).inc(points - dropped)
            if isinstance(exc, StorageLimitExceeded):
                log.warning("storage's series limit refused new series in %s (%s): %s; raise "
                            "the limit or drop series", identity.database, where,
                            exc.message)  # fmt: skip
                raise errors.unprocessable(
                    f"{exc.message} (storage's series limit refused new series until an operator "
                    "raises it or drops series, so a retry cannot help; InfluxDB 1.6 may have "
                    "dropped other points of the batch with them)"
                ) from None
            if isinstance(exc, StoragePartialRefusal):
                # the rest is written: a 5xx would have the client write it again and again
                log.error("storage refused points of a write to %s (%s) that ingest had "
                          "accepted, and wrote the others: %s; ingest should have refused them "
                          "itself", identity.database, where, exc.message)  # fmt: skip
                raise errors.unprocessable(
                    f"{exc.message} (storage refused points that ingest had accepted, which is "
                    "ingest's error and has been logged; it wrote the other points of the batch, "
                    "so do not send it again)"
                ) from None
            written = (
                f"the other {points - dropped} of the batch's {points} points were written"
                if dropped < points
                else "any others in the batch were written"
            )
            known = said is not None and 0 < said <= points
            counts = {"written": points - dropped, "rejected": dropped} if known else {}
            raise errors.unprocessable(
                f"{exc.message} (storage refused these points for their content; {written})",
                **counts,
            ) from None
        except Exception as exc:  # StorageRejected, or a bug: never retried, always logged
            outcome = "error"
            log.exception("storage write for %s (%s) failed", identity.database, where)
            self._rejected(tenant, "storage_error", points)
            raise errors.internal(
                f"internal error while writing ({type(exc).__name__}); it has been logged"
            ) from None
        finally:
            seconds = time.perf_counter() - started
            self._labelled(self.metrics.storage_seconds, outcome).observe(seconds)

    def _whole_conflict(
        self, identity: Identity, exc: StorageWholeConflict, body: bytes
    ) -> errors.IngestError:
        """The answer to a write storage refused whole for a field type conflict: 400 naming
        the lines that give a field another type than an earlier line, as for any bad line; if
        there are none, the conflict is with points written meanwhile (into the same new
        shard), and a retry will store the points that agree with them (the shard then exists,
        and InfluxDB refuses only the others): 503."""
        conflicts = self.preparer.field_type_conflicts(body)
        if conflicts is not None:
            return _invalid(
                conflicts,
                "give a field another type than an earlier line of the batch, and storage "
                "refused the batch for it: nothing was written (but for points in another "
                "shard's time range)",
            )
        log.warning("storage refused a write to %s (%s) whole for a field type conflict that "
                    "is not in the batch (with points written at the same time?): %s",
                    identity.database, _where(identity), exc.message)  # fmt: skip
        return errors.unavailable(
            f"{exc.message} (storage refused the whole batch for a field type conflict with "
            "points written at the same time, and wrote none of it: retry later)",
            self.retry_after,
        )

    def _forced_tags(self, identity: Identity) -> ForcedTags:
        key = (identity.tenant_slug, identity.collector_name, identity.pinned_host)
        forced = self._forced.get(key)
        if forced is None:
            try:
                forced = ForcedTags(*key)
            except ValueError as exc:
                raise errors.forbidden(f"{exc}; rename the collector") from None
            if len(self._forced) >= FORCED_TAGS_CACHE:
                self._forced.clear()
            self._forced[key] = forced
        return forced

    def _rejected(self, tenant: str, reason: str, points: int) -> None:
        if points:
            self.metrics.points_rejected.labels(tenant, reason).inc(points)


def _who(identity: Identity) -> str:
    return f"tenant {identity.tenant_slug}, collector {identity.collector_name}"


def _where(identity: Identity) -> str:
    """Whose write a storage error hit, for its log line."""
    return f"{_who(identity)}, key {KEY_PREFIX}_{identity.key_id}"


def _invalid(batch: InvalidBatch, what: str) -> errors.IngestError:
    """400 for a batch with bad lines: ``what`` they are, and the first 100 of them listed."""
    first = batch.issues[0]
    more = f"; and {batch.count - 1} more" if batch.count > 1 else ""
    return errors.bad_request(
        f"{batch.count} of {batch.points} lines {what} (line {first.line}: {first.reason}{more})",
        line=first.line,
        invalid_lines=[{"line": issue.line, "reason": issue.reason} for issue in batch.issues],
        invalid_count=batch.count,
    )
