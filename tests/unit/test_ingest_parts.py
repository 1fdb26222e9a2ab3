"""The ingest service's small parts: bodies and gzip, credentials, token buckets, settings,
and how storage answers are classified."""

from __future__ import annotations

import base64
import gzip
import io
import os
import socket
import time
from typing import Any

import pytest

from ingest.app import batch_rules
from ingest.auth import header_credential, query_credential
from ingest.batch import BatchPreparer
from ingest.body import BadBody, BodyTooLarge, UnsupportedEncoding, decode, gunzip, read_limited
from ingest.errors import IngestError
from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit, LocalTokenBucket, make_limiter, retry_after_seconds
from ingest.service import WriteService
from ingest.settings import duration, load
from ingest.storage import (
    StorageConflict,
    StorageError,
    StorageLimitExceeded,
    StoragePartialRefusal,
    StorageRefused,
    StorageRejected,
    StorageTooLarge,
    StorageUnavailable,
    StorageUnreachable,
    StorageWholeConflict,
    V1Writer,
    V2Writer,
    _error_text,
    classify,
    make_writer,
)
from perfanalysis.config import ConfigError
from tenants.keys import Identity
from tests.support.scripted_http import ScriptedHTTP

SECRET = "s" * 40
NOW_NS = time.time_ns()
KEY = "pak_abcdefghijklm_" + "A" * 43


# ----------------------------------------------------------------------------------------------
# Bodies


def test_read_limited_refuses_a_declared_or_actual_excess() -> None:
    assert read_limited(io.BytesIO(b"x" * 10), 10, 10) == b"x" * 10
    with pytest.raises(BodyTooLarge):
        read_limited(io.BytesIO(b""), 11, 10)  # refused before reading
    with pytest.raises(BodyTooLarge):
        read_limited(io.BytesIO(b"x" * 11), None, 10)  # chunked: no Content-Length


class _Trickle(io.BytesIO):
    """A stream that hands out at most ``step`` bytes per read, as a socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self.step = step

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self.step if size is None or size < 0 else min(size, self.step))


def test_a_declared_length_is_read_whole_even_in_pieces() -> None:
    assert read_limited(_Trickle(b"abcdefghij", 3), 10, 10) == b"abcdefghij"
    assert read_limited(_Trickle(b"abcdefghij-more", 3), 10, 100) == b"abcdefghij"
    assert read_limited(io.BytesIO(b""), 0, 10) == b""
    with pytest.raises(BadBody, match="ended after 4 of the 10 bytes"):
        read_limited(_Trickle(b"abcd", 3), 10, 10)


def test_gzip_bodies_and_concatenated_members() -> None:
    assert decode(gzip.compress(b"m v=1"), "gzip", 100) == b"m v=1"
    assert gunzip(gzip.compress(b"a\n") + gzip.compress(b"b\n"), 100) == b"a\nb\n"
    assert decode(b"plain", "", 100) == b"plain"
    assert decode(b"plain", "identity", 100) == b"plain"


def test_a_zip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB in about 64 KiB
    assert len(bomb) < 100_000
    with pytest.raises(BodyTooLarge, match="decompressed body larger than 1048576"):
        gunzip(bomb, 1 << 20)


def test_corrupt_and_truncated_gzip_are_bad_bodies() -> None:
    good = gzip.compress(b"m v=1\n" * 1000)
    with pytest.raises(BadBody, match="truncated"):
        gunzip(good[: len(good) // 2], 1 << 20)
    with pytest.raises(BadBody, match="corrupt: the stream of 17 bytes: "):
        gunzip(b"\x1f\x8bnot gzip at all", 1 << 20)
    with pytest.raises(BadBody, match=f"corrupt: the 5 bytes after the end .* at byte {len(good)}"):
        gunzip(good + b"junk\n", 1 << 20)
    with pytest.raises(
        BadBody, match=f"truncated: the 3 bytes after the end .* at byte {len(good)}"
    ):
        gunzip(good + good[:3], 1 << 20)
    with pytest.raises(UnsupportedEncoding):
        decode(b"x", "br", 100)


# ----------------------------------------------------------------------------------------------
# Credentials


def test_header_credentials() -> None:
    basic = base64.b64encode(f"telegraf:{KEY}".encode()).decode()
    user_only = base64.b64encode(f"{KEY}:".encode()).decode()
    assert header_credential(f"Token {KEY}") == KEY
    assert header_credential(f"Bearer {KEY}") == KEY
    assert header_credential(f"Token someuser:{KEY}") == KEY  # InfluxDB 1.8's form
    assert header_credential(f"Basic {basic}") == KEY
    assert header_credential(f"Basic {user_only}") == KEY
    assert header_credential("Basic !!!") is None
    assert header_credential(None) is None
    assert header_credential("Token ") is None
    assert header_credential(f"Digest {KEY}") is None


def test_credentials_in_the_query_string_are_found() -> None:
    assert query_credential([("db", "x"), ("precision", "s")]) is None
    assert query_credential([("db", "x"), ("u", "a"), ("p", "b")]) == "p"  # node-influx's
    assert query_credential([("p", "")]) == "p"  # a secret's name, whatever its value
    assert query_credential([("Token", "x")]) == "Token"
    assert query_credential([("db", KEY)]) == "db"
    assert query_credential([("db", "x"), ("db", KEY)]) == "db"  # a repeated one, every time
    assert query_credential([("db", f"telegraf:{KEY}")]) == "db"  # a key inside a value
    assert query_credential([(KEY, "")]) == KEY  # "?pak_...": a key as a name
    assert query_credential([("db", "pat_abcdefghijklm_" + "B" * 43)]) == "db"  # an API token


def test_what_only_looks_like_a_credential_in_the_query_string_is_taken() -> None:
    """Before: ``u`` alone (a user name, no secret) and any value holding "pak_" were refused
    with "if it was a real key, rotate it"; Telegraf's v2 output retries that 401 forever."""
    assert query_credential([("db", "telegraf"), ("u", "telegraf")]) is None
    assert query_credential([("org", "o"), ("bucket", "spak_prod")]) is None
    assert query_credential([("db", "pak_prod")]) is None
    assert query_credential([("db", KEY[:-1])]) is None  # one character short of a key


# ----------------------------------------------------------------------------------------------
# Rate limits


def test_local_token_bucket() -> None:
    now = [100.0]
    bucket = LocalTokenBucket(clock=lambda: now[0])
    limit = Limit(rate=10, burst=20)
    assert bucket.acquire("a", 15, limit) == 0
    assert bucket.acquire("a", 10, limit) == pytest.approx(0.5)  # 5 left, 5 missing at 10/s
    assert bucket.acquire("b", 20, limit) == 0  # tenants do not share
    now[0] += 0.5
    assert bucket.acquire("a", 10, limit) == 0
    now[0] += 100
    assert bucket.acquire("a", 21, limit) == pytest.approx(0.1)  # refills only up to the burst
    assert retry_after_seconds(0.1) == 1
    assert retry_after_seconds(2.2) == 3


def test_a_changed_limit_applies_to_the_tokens_left() -> None:
    now = [0.0]
    bucket = LocalTokenBucket(clock=lambda: now[0])
    assert bucket.acquire("a", 50, Limit(10, 100)) == 0  # 50 left
    assert bucket.acquire("a", 30, Limit(10, 20)) == pytest.approx(1.0)  # capped at the new 20
    now[0] += 1
    assert bucket.acquire("a", 30, Limit(1000, 1000)) == 0  # 20 + 1 s at 1000/s


def test_tokens_given_back_fill_the_bucket_no_further_than_its_burst() -> None:
    now = [0.0]
    bucket = LocalTokenBucket(clock=lambda: now[0])
    limit = Limit(rate=1, burst=100)
    assert bucket.acquire("a", 80, limit) == 0  # 20 left
    bucket.release("a", 80, limit)
    assert bucket.acquire("a", 100, limit) == 0  # all 100 back
    bucket.release("a", 60, limit)
    bucket.release("a", 60, limit)
    assert bucket.acquire("a", 101, limit) == pytest.approx(1.0)  # capped at 100


def test_limiter_choice() -> None:
    settings = {"limits_rate": 0.0, "limits_burst": 5, "redis_url": "", "limits_redis_prefix": "x"}
    assert isinstance(make_limiter(settings), LocalTokenBucket)


def identity(rate: float | None = None, burst: int | None = None) -> Identity:
    return Identity(1, "acme", "pa_acme", 2, "web1", "k" * 13, 3, rate, burst)


class NullWriter:
    name = "null"

    def write(self, database: str, payload: bytes) -> None:
        pass

    def health(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


class UsageRecorder:
    """The one part of KeyVerifier that a write uses after authentication."""

    def __init__(self) -> None:
        self.used: list[tuple[str, int]] = []

    def record_use(self, identity: Identity, points: int) -> None:
        self.used.append((identity.tenant_slug, points))


class CountingLimiter:
    def __init__(self) -> None:
        self.asked: list[tuple[str, int, Limit]] = []
        self.given_back: list[tuple[str, int, Limit]] = []

    def acquire(self, tenant: str, points: int, limit: Limit) -> float:
        self.asked.append((tenant, points, limit))
        return 0.0

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        self.given_back.append((tenant, points, limit))


def write_service(default: Limit, limiter: CountingLimiter, writer: Any = None) -> WriteService:
    return WriteService(
        verifier=UsageRecorder(),  # type: ignore[arg-type]
        preparer=BatchPreparer(
            batch_rules(load([], {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET})), 1000
        ),
        limiter=limiter,
        default_limit=default,
        writer=writer or NullWriter(),
        metrics=IngestMetrics(),
        retry_after=1,
    )


@pytest.mark.parametrize(
    ("default", "own", "expected"),
    [
        (Limit(100, 10), (None, None), Limit(100, 10)),
        (Limit(100, 10), (5.0, None), Limit(5, 10)),
        (Limit(100, 10), (None, 50), Limit(100, 50)),
        (Limit(0, 10), (7.0, 70), Limit(7, 70)),  # limited although ingest limits no one
        (Limit(100, 10), (0.0, None), Limit(0, 10)),  # this tenant is not limited
    ],
)
def test_a_tenants_own_limits_replace_ingests(
    default: Limit, own: tuple[float | None, int | None], expected: Limit
) -> None:
    assert write_service(default, CountingLimiter()).limit_for(identity(*own)) == expected


def test_an_unlimited_tenant_is_never_asked_about_and_a_limited_one_is() -> None:
    limiter = CountingLimiter()
    service = write_service(Limit(0, 10), limiter)
    body = b"\n".join(b"cpu value=%d %d" % (i, NOW_NS - i) for i in range(20))
    service.write(identity(), "ns", body, NOW_NS)  # 20 points above the burst: not limited
    assert limiter.asked == []
    service.write(identity(50.0, 30), "ns", body, NOW_NS)
    assert limiter.asked == [("acme", 20, Limit(50, 30))]
    assert service.verifier.used == [("acme", 20), ("acme", 20)]  # type: ignore[attr-defined]


class FailingWriter(NullWriter):
    def __init__(self, error: Exception) -> None:
        self.error = error

    def write(self, database: str, payload: bytes) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "given_back"),
    [
        (StorageUnavailable("connection refused"), 503, True),
        (StorageRefused("database not found"), 503, True),
        (StorageTooLarge("request entity too large"), 413, True),
        (StorageConflict("partial write: field type conflict dropped=20"), 422, False),
        (StorageLimitExceeded("partial write: max-series-per-database limit exceeded"), 422, False),
        (StoragePartialRefusal("partial write: unable to parse 'm': bad dropped=0"), 422, False),
        # refused whole for a conflict not in this batch (written meanwhile): retry
        (StorageWholeConflict("field type conflict"), 503, True),
        (StorageRejected("bad request"), 500, False),
    ],
)
def test_only_a_write_storage_did_not_take_gives_its_tokens_back(
    error: Exception, status: int, given_back: bool
) -> None:
    limiter = CountingLimiter()
    service = write_service(Limit(50, 30), limiter, FailingWriter(error))
    body = b"\n".join(b"cpu value=%d %d" % (i, NOW_NS - i) for i in range(20))
    with pytest.raises(IngestError) as refused:
        service.write(identity(), "ns", body, NOW_NS)
    assert refused.value.status == status
    assert limiter.given_back == ([("acme", 20, Limit(50, 30))] if given_back else [])


def test_a_batch_storage_refused_whole_for_a_field_type_conflict_in_it_is_400_naming_the_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """InfluxDB 1.6.7 refuses the whole write when the batch gives a field two types in a shard
    the write creates (no ``partial write``): nothing was stored, so the answer may not say the
    rest was written; it names the lines, as for any bad line, and gives the rate tokens back."""
    limiter = CountingLimiter()
    writer = FailingWriter(classify(400, "field type conflict"))
    service = write_service(Limit(50, 30), limiter, writer)
    body = b"\n".join(
        [b"cpu,host=h%d value=%d %d" % (i, i, NOW_NS) for i in range(20)]
        + [b"disk,host=h1 used=1 %d" % NOW_NS, b'disk,host=h2 used="full" %d' % NOW_NS]
    )
    with pytest.raises(IngestError) as refused:
        service.write(identity(), "ns", body, NOW_NS)
    assert refused.value.status == 400
    reason = ("field 'used' of measurement 'disk' is a string here and a float on line 21: "
              "InfluxDB refuses a batch that gives a field two types")  # fmt: skip
    assert refused.value.message == (
        "1 of 22 lines give a field another type than an earlier line of the batch, and storage "
        "refused the batch for it: nothing was written (but for points in another shard's time "
        f"range) (line 22: {reason})"
    )
    assert "written" not in refused.value.details
    assert refused.value.details == {
        "line": 22, "invalid_lines": [{"line": 22, "reason": reason}], "invalid_count": 1
    }  # fmt: skip
    assert limiter.given_back == [("acme", 22, Limit(50, 30))]
    rejected = service.metrics.points_rejected.labels("acme", "storage_conflict")
    assert rejected._value.get() == 22
    # no such lines: a conflict with points written meanwhile, which a retry gets past
    with pytest.raises(IngestError) as retry:
        service.write(identity(), "ns", body.replace(b'"full"', b"2"), NOW_NS)
    assert retry.value.status == 503
    assert "wrote none of it: retry later" in retry.value.message
    assert "field type conflict that is not in the batch" in caplog.text


def test_a_partial_write_of_lines_ingest_should_have_refused_is_422_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """InfluxDB 1.x wrote the rest of the batch: a 500 would have the client send it again (and
    again), writing its points without a timestamp once more each time."""
    writer = FailingWriter(classify(400, "partial write: unable to parse 'm f…': max key "
                                         "length exceeded: 65536 > 65535 dropped=0"))  # fmt: skip
    service = write_service(Limit(0, 30), CountingLimiter(), writer)
    with pytest.raises(IngestError) as refused:
        service.write(identity(), "ns", b"cpu value=1 %d" % NOW_NS, NOW_NS)
    assert refused.value.status == 422
    assert "so do not send it again" in refused.value.message
    assert "max key length exceeded" in refused.value.message
    assert [record.levelname for record in caplog.records] == ["ERROR"]
    assert "ingest should have refused them itself" in caplog.text


# ----------------------------------------------------------------------------------------------
# Settings


def test_settings_defaults_and_conventional_variables() -> None:
    values = load([], {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET,
                       "DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/0"})  # fmt: skip
    assert values["database_url"] == "postgresql+psycopg://u@h/db"
    assert values["redis_url"] == "redis://h:6379/0"
    assert values["storage_api"] == "v1"
    assert values["storage_unsigned_integers"] is False
    assert values["limits_max_age"] == 7 * 86400
    assert values["limits_max_future"] == 600
    assert values["web_listen_address"] == ("127.0.0.1", 8087)
    v2 = load(["--storage.api=v2"], {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET})
    assert v2["storage_unsigned_integers"] is True


def test_settings_list_every_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load(["--storage.api=v3", "--limits.max-age=soon", "--storage.url=ftp://x"], {})
    text = "\n".join(caught.value.errors)
    assert "--storage.api" in text
    assert "--limits.max-age" in text
    assert "--storage.url" in text
    with pytest.raises(ConfigError, match="secret-key: required"):
        load([], {})
    with pytest.raises(ConfigError, match="at most 5"):
        load(["--key-cache-seconds=9"], {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET})


def test_durations() -> None:
    assert duration("500ms") == 0.5
    assert duration("10m") == 600
    assert duration("1w") == 7 * 86400
    with pytest.raises(ValueError, match="duration"):
        duration("10")


def test_ingest_main_lists_errors_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.main import run

    for name in [n for n in os.environ if n.startswith("PERFANALYSIS_INGEST_")]:
        monkeypatch.delenv(name)
    assert run(["--storage.api=v9", "--nope"]) == 2
    err = capsys.readouterr().err
    assert "--storage.api" in err
    assert "--nope" in err
    assert run(["--help"]) == 0
    assert "PERFANALYSIS_INGEST_STORAGE_API" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# Storage answers


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (500, "timeout", StorageUnavailable),
        (503, "", StorageUnavailable),
        (429, "slow down", StorageUnavailable),
        (400, 'partial write: field type conflict: input field "v" … dropped=1', StorageConflict),
        (400, "partial write: points beyond retention policy dropped=3", StorageConflict),
        (
            400,
            'partial write: max-values-per-tag limit exceeded (12/3): measurement="disk" '
            'tag="dev" value="d12" dropped=12',
            StorageLimitExceeded,
        ),
        (
            400,
            "partial write: max-series-per-database limit exceeded: (20) dropped=1",
            StorageLimitExceeded,
        ),
        (422, "schema", StorageConflict),
        # InfluxDB 1.6.7 refused a write whole: a batch giving a field two types in a new shard
        (400, "field type conflict", StorageWholeConflict),
        # lines InfluxDB 1.x could not parse, the rest written: ingest should have refused them
        (
            400,
            "partial write: unable to parse 'm ff…': max key length exceeded: 65536 > 65535 "
            "dropped=0",
            StoragePartialRefusal,
        ),
        (
            400,
            "partial write: unable to parse 'a\r': missing fields dropped=0",
            StoragePartialRefusal,
        ),
        (413, "Request Entity Too Large", StorageTooLarge),  # InfluxDB's http.max-body-size
        (400, "unable to parse 'x': invalid number", StorageRejected),
        (404, "page not found", StorageRejected),
        (401, "authorization failed", StorageRefused),
        (403, '"ingest" not authorized to execute statement', StorageRefused),
        (404, 'database not found: "pa_x"', StorageRefused),
    ],
)
def test_storage_answers_are_classified(status: int, message: str, kind: type) -> None:
    error = classify(status, message)
    assert type(error) is kind
    assert error.status == status


@pytest.mark.parametrize(
    ("message", "dropped"),
    [
        ('partial write: field type conflict: input field "v" … dropped=1', 1),
        ("partial write: points beyond retention policy dropped=3", 3),
        ("schema", None),
        ("dropped=9999999999999999999999", None),  # no count that long: not a count
    ],
)
def test_a_conflict_says_how_many_points_storage_dropped(message: str, dropped: int | None) -> None:
    error = classify(400 if "partial" in message else 422, message)
    assert isinstance(error, StorageConflict)
    assert error.dropped == dropped


def test_writer_choice() -> None:
    settings = load([], {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET})
    writer = make_writer(settings)
    assert isinstance(writer, V1Writer)
    writer.close()
    v2 = make_writer({**settings, "storage_api": "v2", "storage_username": "u",
                      "storage_password": "p"})  # fmt: skip
    assert isinstance(v2, V2Writer)
    v2.close()


# ----------------------------------------------------------------------------------------------
# The v1 writer against a scripted server


NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


def _answer(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def test_v1_writer_posts_with_keep_alive_and_basic_auth() -> None:
    storage = ScriptedHTTP([(NO_CONTENT, False), (NO_CONTENT, False)])
    writer = V1Writer(storage.url + "/influx/", "ingest", "s3cret", timeout=5)
    writer.write("pa_acme", b"m v=1 1")
    writer.write("pa_acme", b"m v=2 2")
    writer.close()
    storage.close()
    assert storage.connections == 1
    first = storage.requests[0]
    assert first.startswith(b"POST /influx/write?db=pa_acme&precision=ns HTTP/1.1\r\n")
    assert b"Authorization: Basic " + base64.b64encode(b"ingest:s3cret") in first
    assert first.endswith(b"\r\n\r\nm v=1 1")
    assert storage.requests[1].endswith(b"\r\n\r\nm v=2 2")


def test_v1_writer_replaces_a_connection_the_server_closed_without_resending() -> None:
    storage = ScriptedHTTP([(NO_CONTENT, True), (NO_CONTENT, False)])
    writer = V1Writer(storage.url, "", "", timeout=5)
    writer.write("db", b"m v=1 1")
    assert storage.closed.wait(5)
    writer.write("db", b"m v=2 2")  # the closed connection is noticed before sending
    writer.close()
    storage.close()
    assert storage.connections == 2
    assert [r.rpartition(b"\n")[2] for r in storage.requests] == [b"m v=1 1", b"m v=2 2"]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (_answer("400 Bad Request", b'{"error":"partial write: field type conflict"}'),
         StorageConflict),
        (_answer("404 Not Found", b'{"error":"database not found: \\"db\\""}'), StorageRefused),
        (_answer("500 Internal Server Error", b"overloaded"), StorageUnavailable),
        (_answer("400 Bad Request", b'{"error":"field type conflict"}'), StorageWholeConflict),
        (_answer("400 Bad Request", b'{"error":"partial write: unable to parse \'m ' + b"f" * 70_000
                 + b'=1\': max key length exceeded: 70006 > 65535 dropped=0"}'),
         StoragePartialRefusal),
    ],
)  # fmt: skip
def test_v1_writer_classifies_refusals(answer: bytes, kind: type) -> None:
    storage = ScriptedHTTP([(answer, False)])
    writer = V1Writer(storage.url, "", "", timeout=5)
    with pytest.raises(kind) as refused:
        writer.write("db", b"m v=1 1")
    writer.close()
    storage.close()
    # a long message keeps its end, where InfluxDB says why after the line it quotes
    assert len(refused.value.message) < 550
    if kind is StoragePartialRefusal:
        assert refused.value.message.endswith("max key length exceeded: 70006 > 65535 dropped=0")


VM_TOO_LONG = (
    b'remoteAddr: "127.0.0.1:56436"; requestURI: /api/v2/write?org=-&bucket=b&precision'
    b"=ns; cannot read influx line protocol data: too long line: more than 100 bytes\n"
)
PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>"
    b"502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"error":"partial write: x dropped=1"}', "partial write: x dropped=1"),
        ('{"code":"invalid","message":"bad line"}', "bad line"),  # influxdb-client: a str
        (VM_TOO_LONG.decode(), VM_TOO_LONG.decode().strip()),
        (VM_TOO_LONG, VM_TOO_LONG.decode().strip()),
        (b"\xff not UTF-8", "\ufffd not UTF-8"),
        ("", ""),
        (b"", ""),
        (None, ""),
    ],
)
def test_storage_error_text_from_bytes_str_or_nothing(body: bytes | str | None, text: str) -> None:
    """influxdb-client hands the v2 writer the body as a str: before, a body that was not JSON
    raised AttributeError (str has no decode), and the write was answered 500."""
    assert _error_text(body) == text


@pytest.mark.parametrize(
    ("answer", "kind", "said"),
    [
        # VictoriaMetrics refusing a line over -influx.maxLineSize (text/plain; measured)
        (_answer("400 Bad Request", VM_TOO_LONG), StorageRejected,
         "storage answered 400: " + VM_TOO_LONG.decode().strip()),
        # a proxy in front of storage without its upstream
        (_answer("502 Bad Gateway", PROXY_PAGE), StorageUnavailable,
         "storage answered 502: " + PROXY_PAGE.decode().strip()),
        (_answer("503 Service Unavailable", b"Service Unavailable"), StorageUnavailable,
         "storage answered 503: Service Unavailable"),
        (_answer("503 Service Unavailable", b""), StorageUnavailable, "storage answered 503: "),
    ],
)  # fmt: skip
def test_v2_writer_classifies_answers_that_are_not_json_as_the_v1_writer_does(
    answer: bytes, kind: type, said: str
) -> None:
    for writer_class in (V1Writer, V2Writer):
        storage = ScriptedHTTP([(answer, False)])
        writer = (V1Writer(storage.url, "", "", timeout=5) if writer_class is V1Writer
                  else V2Writer(storage.url, "a-token", "org", timeout=5))  # fmt: skip
        with pytest.raises(StorageError) as refused:
            writer.write("db", b"m v=1 1")
        writer.close()
        storage.close()
        assert type(refused.value) is kind, writer_class
        assert refused.value.message == said
        assert refused.value.status == int(answer.split()[1])


def test_v2_writer_without_storage_is_unreachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    writer = V2Writer(f"http://127.0.0.1:{port}", "a-token", "org", timeout=2)
    with pytest.raises(StorageUnreachable, match="unreachable"):
        writer.write("db", b"m v=1 1")
    assert writer.health().startswith("down: ")
    writer.close()


def test_v1_writer_without_storage_is_unavailable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    writer = V1Writer(f"http://127.0.0.1:{port}", "", "", timeout=2)
    with pytest.raises(StorageUnreachable, match="unreachable"):
        writer.write("db", b"m v=1 1")
    assert writer.health().startswith("down: storage unreachable")


def test_v1_health_checks_the_credentials_after_ping() -> None:
    refused = _answer("401 Unauthorized", b'{"error":"authorization failed"}')
    storage = ScriptedHTTP([(NO_CONTENT, False), (refused, False)])
    writer = V1Writer(storage.url, "ingest", "wrong", timeout=5)
    assert writer.health() == "refused: storage answered 401: authorization failed"
    ping, query = storage.requests
    assert ping.startswith(b"GET /ping HTTP/1.1\r\n")
    assert query.startswith(b"GET /query?q=SHOW+DATABASES HTTP/1.1\r\n")
    assert b"Authorization: Basic " in query
    writer.close()
    storage.close()


@pytest.mark.parametrize(
    ("ping", "query", "health"),
    [
        (NO_CONTENT, _answer("200 OK", b'{"results":[{}]}'), "ok"),
        (NO_CONTENT, _answer("404 Not Found", b"no InfluxQL here"), "ok"),  # VictoriaMetrics
        (NO_CONTENT, _answer("403 Forbidden", b'{"error":"no rights"}'), "refused: storage answered 403: no rights"),
        (_answer("503 Service Unavailable", b""), b"", "down: /ping answered 503"),
    ],
)  # fmt: skip
def test_v1_health_tells_down_from_refused(ping: bytes, query: bytes, health: str) -> None:
    storage = ScriptedHTTP([(ping, False), (query, False)] if query else [(ping, False)])
    writer = V1Writer(storage.url, "", "", timeout=5)
    assert writer.health() == health
    writer.close()
    storage.close()


@pytest.mark.parametrize(
    ("answer", "health"),
    [
        (NO_CONTENT, "ok"),  # VictoriaMetrics (measured), InfluxDB 2 with the bucket
        (_answer("404 Not Found", b'{"code":"not found","message":"bucket \\"x\\" not found"}'),
         "ok"),  # InfluxDB 2 without the bucket: the write API is there
        (_answer("400 Bad Request", b'{"code":"invalid","message":"no points"}'), "ok"),
        (_answer("401 Unauthorized", b'{"code":"unauthorized","message":"unauthorized access"}'),
         "refused: storage answered 401 to an empty write: unauthorized access"),
        (_answer("404 Not Found", b'{"code":"not found","message":"organization name \\"org\\" '
                 b'not found"}'),
         'refused: storage answered 404 to an empty write: organization name "org" not found; '
         "check storage.org"),
        (_answer("503 Service Unavailable", b"overloaded"),
         "down: storage answered 503 to an empty write: overloaded"),
    ],
)  # fmt: skip
def test_v2_health_writes_nothing_with_the_token_after_ping(answer: bytes, health: str) -> None:
    storage = ScriptedHTTP([(NO_CONTENT, False), (answer, False)])
    writer = V2Writer(storage.url, "a-token", "org", timeout=5)
    assert writer.health() == health
    probe = storage.requests[1]
    assert probe.startswith(
        b"POST /api/v2/write?org=org&bucket=perfanalysis-ingest-health&precision=ns HTTP/1.1\r\n"
    )
    assert b"\r\nContent-Length: 0\r\n" in probe
    assert probe.endswith(b"\r\n\r\n")  # nothing to store
    assert b"Authorization: Token a-token" in probe
    writer.close()
    storage.close()


@pytest.mark.parametrize(
    "answer",
    [
        # InfluxDB 1.6.7 (measured): its /ping answers, but every v2 write would fail
        _answer("404 Not Found", b"404 page not found\n"),
        # VictoriaMetrics without the path
        _answer("400 Bad Request", b'remoteAddr: "127.0.0.1:1"; unsupported path requested: "/x"'),
    ],
)
def test_v2_health_fails_where_storage_has_no_v2_write_api(answer: bytes) -> None:
    """Before, /health passed against InfluxDB 1.6.7 (its 404 for the buckets API was taken for
    VictoriaMetrics') while every write failed."""
    storage = ScriptedHTTP([(NO_CONTENT, False), (answer, False)])
    writer = V2Writer(storage.url, "a-token", "org", timeout=5)
    health = writer.health()
    writer.close()
    storage.close()
    assert health.startswith("unsupported: storage answered ")
    assert health.endswith("this storage has no /api/v2/write (InfluxDB 1.x before 1.8 serves "
                           "only /write): set storage.api to v1")  # fmt: skip
