"""One write, from a verified key and a decoded body to storage: the order of the checks.

Authentication comes first (nothing is read for a stranger), then the body is validated whole
(a bad batch is 400 whatever the rate, since retrying it cannot help), then size against the
tenant's burst (413: only splitting helps), then the rate (429), then storage. Only when storage
has accepted the batch is the answer 204 and the key's use recorded. A batch that storage did not
take at all (down, refusing ingest, too large for it) gives its rate tokens back, so the retries
of an outage do not leave the tenant throttled once storage is back; one that storage read and
partly refused for its content (422) keeps them spent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ingest import errors
from ingest.batch import BatchPreparer, ForcedTags, InvalidBatch, TooManyPoints
from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit, RateLimiter, retry_after_seconds
from ingest.storage import (
    StorageConflict,
    StorageLimitExceeded,
    StorageRefused,
    StorageTooLarge,
    StorageUnavailable,
    StorageWriter,
)
from tenants.errors import Forbidden, Unauthenticated
from tenants.keys import Identity, KeyVerifier

log = logging.getLogger(__name__)
FORCED_TAGS_CACHE = 10_000
NOTHING_STORED = (413, 503)  # storage too large for it; down, slow or refusing ingest


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
    ) -> None:
        self.verifier = verifier
        self.preparer = preparer
        self.limiter = limiter
        self.default_limit = default_limit  # rate 0: tenants without their own are not limited
        self.writer = writer
        self.metrics = metrics
        self.retry_after = retry_after
        self.clock = clock
        self._forced: dict[tuple[str, str], ForcedTags] = {}

    def authenticate(self, credential: str | None) -> Identity:
        if credential is None:
            raise errors.unauthenticated(
                "no collector key: send it as 'Authorization: Token <key>' "
                "(or as the basic-auth password)"
            )
        try:
            return self.verifier.verify(credential)
        except Unauthenticated as exc:
            raise errors.unauthenticated(exc.message) from None
        except Forbidden as exc:
            raise errors.forbidden(exc.message) from None

    def write(self, identity: Identity, precision: str, body: bytes, received_ns: int) -> Written:
        tenant = identity.tenant_slug
        try:
            batch = self.preparer.prepare(body, self._forced_tags(identity), precision, received_ns)
        except InvalidBatch as exc:
            self._rejected(tenant, "invalid", exc.points)
            first = exc.issues[0]
            more = f"; and {exc.count - 1} more" if exc.count > 1 else ""
            raise errors.bad_request(
                f"{exc.count} of {exc.points} lines are invalid; nothing was written "
                f"(line {first.line}: {first.reason}{more})",
                line=first.line,
                invalid_lines=[{"line": i.line, "reason": i.reason} for i in exc.issues],
                invalid_count=exc.count,
            ) from None
        except TooManyPoints as exc:
            self._rejected(tenant, "too_large", exc.points)
            raise errors.too_large(f"{exc}; split the batch") from None
        if batch.points == 0:
            return Written(identity, 0)
        limit = self.limit_for(identity)
        taken = None
        if limit.rate > 0:
            if batch.points > limit.burst:
                self._rejected(tenant, "too_large", batch.points)
                raise errors.too_large(
                    f"{batch.points} points in one request; this tenant may send at most "
                    f"{limit.burst} at once: split the batch"
                )
            wait = self.limiter.acquire(tenant, batch.points, limit)
            if wait > 0:
                self._rejected(tenant, "rate_limited", batch.points)
                raise errors.rate_limited(
                    f"tenant {tenant} is over its write rate; retry later",
                    retry_after_seconds(wait),
                )
            taken = limit
        try:
            self._store(identity, batch.payload, batch.points)
        except errors.IngestError as exc:
            if taken is not None and exc.status in NOTHING_STORED:
                self.limiter.release(tenant, batch.points, taken)
            raise
        self.metrics.points_accepted.labels(tenant).inc(batch.points)
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

    def _store(self, identity: Identity, payload: bytes, points: int) -> None:
        tenant = identity.tenant_slug
        started = time.perf_counter()
        outcome = "ok"
        try:
            self.writer.write(identity.database, payload)
        except StorageRefused as exc:
            outcome = "refused"
            log.error("storage refused ingest's write to %s: %s; check ingest's storage "
                      "credentials and its WRITE grant on that database", identity.database,
                      exc.message)  # fmt: skip
            self._rejected(tenant, "storage_refused", points)
            raise errors.unavailable(
                "storage refused ingest's write; an operator must fix it: retry later",
                self.retry_after,
            ) from None
        except StorageUnavailable as exc:
            outcome = "unavailable"
            log.warning("storage unavailable for %s: %s", identity.database, exc.message)
            self._rejected(tenant, "storage_unavailable", points)
            raise errors.unavailable(
                "storage is unavailable; retry later", self.retry_after
            ) from None
        except StorageTooLarge as exc:
            outcome = "too_large"
            log.warning("storage refused a write of %d bytes to %s as too large: %s; keep "
                        "limits.max-decompressed-bytes and storage.group-max-bytes below its "
                        "max-body-size", len(payload), identity.database, exc.message)  # fmt: skip
            self._rejected(tenant, "too_large", points)
            raise errors.too_large(
                f"storage refused this batch of {points} points as too large; split the batch"
            ) from None
        except StorageConflict as exc:
            outcome = "conflict"
            said = exc.dropped  # storage's own count, parsed from its message
            dropped = said if said is not None and 0 < said < points else points
            if isinstance(exc, StorageLimitExceeded):
                dropped = points  # the limits' dropped=N leaves out the points dropped before
            self._rejected(tenant, "storage_conflict", dropped)
            self.metrics.points_accepted.labels(tenant).inc(points - dropped)
            if isinstance(exc, StorageLimitExceeded):
                log.warning("storage's series limit refused new series in %s: %s; raise the "
                            "limit or drop series", identity.database, exc.message)  # fmt: skip
                raise errors.unprocessable(
                    f"{exc.message} (storage's series limit refused new series until an operator "
                    "raises it or drops series, so a retry cannot help; InfluxDB 1.6 may have "
                    "dropped other points of the batch with them)"
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
            log.exception("storage write for %s failed", identity.database)
            self._rejected(tenant, "storage_error", points)
            raise errors.internal(
                f"internal error while writing ({type(exc).__name__}); it has been logged"
            ) from None
        finally:
            self.metrics.storage_seconds.labels(outcome).observe(time.perf_counter() - started)

    def _forced_tags(self, identity: Identity) -> ForcedTags:
        key = (identity.tenant_slug, identity.collector_name)
        forced = self._forced.get(key)
        if forced is None:
            try:
                forced = ForcedTags(identity.tenant_slug, identity.collector_name)
            except ValueError as exc:
                raise errors.forbidden(f"{exc}; rename the collector") from None
            if len(self._forced) >= FORCED_TAGS_CACHE:
                self._forced.clear()
            self._forced[key] = forced
        return forced

    def _rejected(self, tenant: str, reason: str, points: int) -> None:
        if points:
            self.metrics.points_rejected.labels(tenant, reason).inc(points)
