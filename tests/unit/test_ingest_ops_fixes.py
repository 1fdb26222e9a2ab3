"""Operational fixes to ingest: durations and a Redis prefix that would break every write are
refused at start; a missing storage database is logged as one; refused writes are logged,
rate-limited, with their tenant and collector; so are writes storage did not take, by database;
and a v2 storage's answer that is not JSON is a 503 (or the refusal it is), not ingest's 500."""

from __future__ import annotations

import logging
import time

import pytest

from ingest.app import batch_rules
from ingest.batch import BatchPreparer
from ingest.errors import IngestError
from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit
from ingest.service import RefusalLog, WriteService
from ingest.settings import load
from ingest.storage import StorageUnreachable, V2Writer, classify
from perfanalysis.config import ConfigError
from tenants.errors import Forbidden, Unauthenticated
from tenants.keys import Identity
from tests.support.scripted_http import ScriptedHTTP

SECRET = "s" * 40
ENV = {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET}
NOW_NS = time.time_ns()
KEY_ID = "abcdefghijklm"
KEY_SECRET = "Zq" + "A" * 41
KEY = f"pak_{KEY_ID}_{KEY_SECRET}"
LOGGER = "ingest.service"


def errors_of(*argv: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(list(argv), ENV)
    return "\n".join(caught.value.errors)


# ----------------------------------------------------------------------------------------------
# 1. Durations


@pytest.mark.parametrize("value", ["0s", "0ms", "0m"])
def test_a_zero_storage_timeout_is_refused(value: str) -> None:
    text = errors_of(f"--storage.timeout={value}")
    assert "--storage.timeout" in text
    assert "must be greater than zero" in text
    assert "100ms to below 30s" in text


@pytest.mark.parametrize("value", ["30s", "1h", "10m"])
def test_a_storage_timeout_clients_never_wait_for_is_refused(value: str) -> None:
    text = errors_of(f"--storage.timeout={value}")
    assert "--storage.timeout" in text
    assert "Telegraf after 5s" in text


def test_a_storage_timeout_below_a_tenth_of_a_second_is_refused() -> None:
    assert "too short" in errors_of("--storage.timeout=5ms")


@pytest.mark.parametrize(("value", "seconds"), [("100ms", 0.1), ("4s", 4.0), ("29s", 29.0)])
def test_storage_timeouts_in_range_are_taken(value: str, seconds: float) -> None:
    assert load([f"--storage.timeout={value}"], ENV)["storage_timeout"] == seconds


@pytest.mark.parametrize("name", ["limits.max-age", "limits.max-future"])
def test_a_zero_timestamp_window_is_refused(name: str) -> None:
    text = errors_of(f"--{name}=0s")
    assert f"--{name}" in text
    assert "must be greater than zero" in text
    assert "live data" in text


@pytest.mark.parametrize("name", ["limits.max-age", "limits.max-future"])
def test_a_timestamp_window_under_a_minute_is_refused(name: str) -> None:
    text = errors_of(f"--{name}=59s")
    assert f"--{name}" in text
    assert "at least" in text or "1m or more" in text
    values = load([f"--{name}=1m"], ENV)
    assert values[name.replace(".", "_").replace("-", "_")] == 60


# ----------------------------------------------------------------------------------------------
# 4. The Redis prefix


@pytest.mark.parametrize("prefix", ["", "a b:", "rate:\x00", "x\t"])
def test_an_empty_or_unsafe_redis_prefix_is_refused(prefix: str) -> None:
    text = errors_of(f"--limits.redis-prefix={prefix}")
    assert "--limits.redis-prefix" in text


def test_a_redis_prefix_from_the_environment_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"LIMITS_REDIS_PREFIX.*must not be empty"):
        load([], {**ENV, "PERFANALYSIS_INGEST_LIMITS_REDIS_PREFIX": ""})
    assert load([], ENV)["limits_redis_prefix"] == "perfanalysis:ingest:rate:"


# ----------------------------------------------------------------------------------------------
# Write service doubles


def identity(rate: float | None = None, burst: int | None = None) -> Identity:
    return Identity(1, "acme", "pa_acme", 2, "web1", KEY_ID, 3, rate, burst)


class Writer:
    name = "test"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def write(self, database: str, payload: bytes) -> None:
        if self.error is not None:
            raise self.error

    def health(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


class Verifier:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def verify(self, credential: str) -> Identity:
        if self.error is not None:
            raise self.error
        return identity()

    def record_use(self, identity: Identity, points: int) -> None:
        pass


class Limiter:
    def __init__(self, wait: float = 0.0) -> None:
        self.wait = wait

    def acquire(self, tenant: str, points: int, limit: Limit) -> float:
        return self.wait

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service(
    writer: Writer | None = None,
    verifier: Verifier | None = None,
    limiter: Limiter | None = None,
    clock: Clock | None = None,
) -> WriteService:
    return WriteService(
        verifier=verifier or Verifier(),  # type: ignore[arg-type]
        preparer=BatchPreparer(batch_rules(load([], ENV)), 1000),
        limiter=limiter or Limiter(),
        default_limit=Limit(50, 30),
        writer=writer or Writer(),
        metrics=IngestMetrics(),
        retry_after=7,
        refusals=RefusalLog(clock=clock or Clock()),
    )


def body(points: int) -> bytes:
    return b"\n".join(b"cpu value=%d %d" % (i, NOW_NS - i) for i in range(points))


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]


# ----------------------------------------------------------------------------------------------
# 2. A missing storage database


def test_a_missing_database_points_to_provision_storage(caplog: pytest.LogCaptureFixture) -> None:
    error = classify(404, '{"error":"database not found: \\"pa_acme\\""}')
    writes = service(Writer(error))
    with pytest.raises(IngestError) as refused:
        writes.write(identity(), "ns", body(3), NOW_NS)
    assert refused.value.status == 503
    assert refused.value.retry_after == 7
    [(level, message)] = messages(caplog)
    assert level == "ERROR"
    assert "perfanalysis admin provision-storage acme" in message
    assert "WRITE grant" not in message
    assert "collector web1" in message


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_still_point_to_the_grant(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    writes = service(Writer(classify(status, "authorization failed")))
    with pytest.raises(IngestError) as refused:
        writes.write(identity(), "ns", body(3), NOW_NS)
    assert refused.value.status == 503
    [(_, message)] = messages(caplog)
    assert "WRITE grant" in message
    assert "provision-storage" not in message
    assert "tenant acme, collector web1" in message


# ----------------------------------------------------------------------------------------------
# 3. Refused writes are logged, with tenant and collector, rate-limited


def test_an_invalid_batch_is_logged_with_tenant_collector_and_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    with pytest.raises(IngestError) as refused:
        service().write(identity(), "ns", body(2) + b"\nnot a line", NOW_NS)
    assert refused.value.status == 400
    [(level, message)] = messages(caplog)
    assert level == "INFO"
    assert "refused 400" in message
    assert "tenant acme, collector web1" in message
    assert "3 points" in message
    assert "line 3" in message


def test_an_over_burst_and_a_rate_limited_batch_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    with pytest.raises(IngestError) as too_large:
        service().write(identity(), "ns", body(31), NOW_NS)  # burst 30
    with pytest.raises(IngestError) as limited:
        service(limiter=Limiter(wait=2.0)).write(identity(), "ns", body(5), NOW_NS)
    assert (too_large.value.status, limited.value.status) == (413, 429)
    logged = messages(caplog)
    assert [level for level, _ in logged] == ["INFO", "INFO"]
    assert "refused 413" in logged[0][1]
    assert "31 points" in logged[0][1]
    assert "refused 429" in logged[1][1]
    assert "5 points" in logged[1][1]
    assert all("tenant acme, collector web1" in message for _, message in logged)


def test_a_refused_key_is_logged_by_its_id_never_its_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writes = service(verifier=Verifier(Unauthenticated("this key has been revoked")))
    with pytest.raises(IngestError) as refused:
        writes.authenticate(KEY)
    assert refused.value.status == 401
    [(level, message)] = messages(caplog)
    assert level == "WARNING"
    assert f"pak_{KEY_ID}" in message
    assert "revoked" in message
    assert KEY_SECRET not in message


def test_a_missing_malformed_or_forbidden_key_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(IngestError):
        service().authenticate(None)
    with pytest.raises(IngestError):
        service(verifier=Verifier(Unauthenticated("malformed"))).authenticate("hunter2-secret")
    with pytest.raises(IngestError) as forbidden:
        service(verifier=Verifier(Forbidden("this key's collector is disabled"))).authenticate(KEY)
    assert forbidden.value.status == 403
    logged = messages(caplog)
    assert [level for level, _ in logged] == ["WARNING"] * 3
    assert "no key" in logged[0][1]
    assert "malformed key" in logged[1][1]
    assert "hunter2" not in logged[1][1]
    assert "refused 403" in logged[2][1]
    assert f"pak_{KEY_ID}" in logged[2][1]


def test_refusals_are_logged_once_a_minute_per_tenant_collector_and_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    clock = Clock()
    writes = service(limiter=Limiter(wait=1.0), clock=clock)
    for _ in range(5):
        with pytest.raises(IngestError):
            writes.write(identity(), "ns", body(4), NOW_NS)
    assert len(messages(caplog)) == 1
    other = Identity(1, "acme", "pa_acme", 9, "web2", "b" * 13, 4)
    with pytest.raises(IngestError):
        writes.write(other, "ns", body(4), NOW_NS)  # another collector: its own line
    assert len(messages(caplog)) == 2
    clock.now += 59.0
    with pytest.raises(IngestError):
        writes.write(identity(), "ns", body(4), NOW_NS)
    assert len(messages(caplog)) == 2
    clock.now += 1.0
    with pytest.raises(IngestError):
        writes.write(identity(), "ns", body(4), NOW_NS)
    logged = messages(caplog)
    assert len(logged) == 3
    assert "collector web1" in logged[2][1]
    assert "5 more refused 429 (20 points)" in logged[2][1]


def test_made_up_key_ids_cannot_grow_the_refusal_log_without_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusals = RefusalLog(logging.getLogger(LOGGER), clock=Clock(), max_keys=3)
    for number in range(10):
        refusals.refused(401, f"key pak_{number:013d}", "invalid collector key")
    assert len(refusals._seen) == 4  # three keys, then one shared by the rest
    logged = messages(caplog)
    assert len(logged) == 4


def test_storage_errors_name_the_collector(caplog: pytest.LogCaptureFixture) -> None:
    for error in (classify(503, "overloaded"), classify(413, "request entity too large")):
        with pytest.raises(IngestError):
            service(Writer(error)).write(identity(), "ns", body(2), NOW_NS)
    logged = messages(caplog)
    assert len(logged) == 2
    assert all("collector web1" in message for _, message in logged)


# ----------------------------------------------------------------------------------------------
# 5. Writes storage did not take are logged a line a minute per database (audit of 2026-11-25:
# one line per request, so an outage wrote a line per request of every collector)


class Writers(Writer):
    """Fails every write with ``error``; counts the writes."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.writes = 0

    def write(self, database: str, payload: bytes) -> None:
        self.writes += 1
        super().write(database, payload)


@pytest.mark.parametrize(
    ("error", "level", "opening"),
    [
        (StorageUnreachable("storage did not answer within 4s"), "WARNING",
         "storage unavailable for pa_acme (tenant acme, collector web1, key pak_abcdefghijklm): "
         "storage did not answer within 4s"),
        (classify(503, "overloaded"), "WARNING",
         "storage unavailable for pa_acme (tenant acme, collector web1, key pak_abcdefghijklm): "
         "storage answered 503: overloaded"),
        (classify(403, "not authorized"), "ERROR",
         "storage refused ingest's write to pa_acme (tenant acme, collector web1, key "
         "pak_abcdefghijklm): storage answered 403: not authorized; check ingest's storage "
         "credentials and its WRITE grant on that database"),
    ],
)  # fmt: skip
def test_a_storage_outage_is_logged_a_line_a_minute_per_database_with_what_was_left_out(
    error: Exception, level: str, opening: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    writer = Writers(error)
    writes = service(writer, clock=clock)
    for _ in range(50):
        with pytest.raises(IngestError) as refused:
            writes.write(identity(), "ns", body(3), NOW_NS)
        assert (refused.value.status, refused.value.retry_after) == (503, 7)
    assert writer.writes == 50
    assert messages(caplog) == [(level, opening)]
    other = Identity(5, "beta", "pa_beta", 6, "db1", "c" * 13, 7)
    with pytest.raises(IngestError):
        writes.write(other, "ns", body(2), NOW_NS)  # another database: its own line
    assert len(messages(caplog)) == 2
    clock.now += 59.0
    with pytest.raises(IngestError):
        writes.write(identity(), "ns", body(3), NOW_NS)
    assert len(messages(caplog)) == 2
    clock.now += 1.0
    with pytest.raises(IngestError):
        writes.write(identity(), "ns", body(3), NOW_NS)
    logged = messages(caplog)
    assert len(logged) == 3
    assert logged[2] == (level, opening + "; and 50 more writes to pa_acme (150 points) in the "
                         "60s before, not logged")  # fmt: skip


class RecordingLimiter(Limiter):
    def __init__(self) -> None:
        super().__init__()
        self.released: list[tuple[str, int]] = []

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        self.released.append((tenant, points))


def test_a_v2_storage_answering_502_with_a_page_is_503_and_gives_the_tokens_back() -> None:
    """Before, the v2 writer raised AttributeError on the proxy's page: 500, logged as ingest's
    bug, counted as storage_error, and the rate tokens stayed spent, so that after the outage
    the tenant was throttled for writes that stored nothing."""
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    storage = ScriptedHTTP([(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(page), page), False)])  # fmt: skip
    writer = V2Writer(storage.url, "a-token", "org", timeout=5)
    limiter = RecordingLimiter()
    writes = service(writer, limiter=limiter)  # type: ignore[arg-type]
    try:
        with pytest.raises(IngestError) as refused:
            writes.write(identity(), "ns", body(4), NOW_NS)
    finally:
        writer.close()
        storage.close()
    assert (refused.value.status, refused.value.retry_after) == (503, 7)
    assert limiter.released == [("acme", 4)]
    samples = writes.metrics.registry.get_sample_value
    assert (
        samples("perfanalysis_ingest_storage_write_seconds_count", {"outcome": "unavailable"}) == 1
    )
    assert samples("perfanalysis_ingest_storage_write_seconds_count", {"outcome": "error"}) is None
    assert samples("perfanalysis_ingest_points_rejected_total",
                   {"tenant": "acme", "reason": "storage_unavailable"}) == 4  # fmt: skip
