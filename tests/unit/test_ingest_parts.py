"""The ingest service's small parts: bodies and gzip, credentials, token buckets, settings,
and how storage answers are classified."""

from __future__ import annotations

import base64
import gzip
import io
import os

import pytest

from ingest.auth import header_credential, query_credential
from ingest.body import BadBody, BodyTooLarge, UnsupportedEncoding, decode, gunzip, read_limited
from ingest.ratelimit import LocalTokenBucket, Unlimited, make_limiter, retry_after_seconds
from ingest.settings import duration, load
from ingest.storage import (
    StorageConflict,
    StorageRejected,
    StorageUnavailable,
    V1Writer,
    V2Writer,
    classify,
    make_writer,
)
from perfanalysis.config import ConfigError

SECRET = "s" * 40
KEY = "pak_abcdefghijklm_" + "A" * 43


# ----------------------------------------------------------------------------------------------
# Bodies


def test_read_limited_refuses_a_declared_or_actual_excess() -> None:
    assert read_limited(io.BytesIO(b"x" * 10), 10, 10) == b"x" * 10
    with pytest.raises(BodyTooLarge):
        read_limited(io.BytesIO(b""), 11, 10)  # refused before reading
    with pytest.raises(BodyTooLarge):
        read_limited(io.BytesIO(b"x" * 11), None, 10)  # chunked: no Content-Length


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
    with pytest.raises(BadBody, match="corrupt"):
        gunzip(b"\x1f\x8bnot gzip at all", 1 << 20)
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
    assert query_credential({"db": "x", "precision": "s"}) is None
    assert query_credential({"db": "x", "u": "a", "p": "b"}) == "u"
    assert query_credential({"token": "x"}) == "token"
    assert query_credential({"db": KEY}) == "db"


# ----------------------------------------------------------------------------------------------
# Rate limits


def test_local_token_bucket() -> None:
    now = [100.0]
    bucket = LocalTokenBucket(rate=10, burst=20, clock=lambda: now[0])
    assert bucket.acquire("a", 15) == 0
    assert bucket.acquire("a", 10) == pytest.approx(0.5)  # 5 left, 5 missing at 10/s
    assert bucket.acquire("b", 20) == 0  # tenants do not share
    now[0] += 0.5
    assert bucket.acquire("a", 10) == 0
    now[0] += 100
    assert bucket.acquire("a", 21) == pytest.approx(0.1)  # refills only up to the burst
    assert retry_after_seconds(0.1) == 1
    assert retry_after_seconds(2.2) == 3


def test_limiter_choice() -> None:
    settings = {"limits_rate": 0.0, "limits_burst": 5, "redis_url": "", "limits_redis_prefix": "x"}
    assert isinstance(make_limiter(settings), Unlimited)
    assert isinstance(make_limiter({**settings, "limits_rate": 5.0}), LocalTokenBucket)


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
        (422, "schema", StorageConflict),
        (400, "unable to parse 'x': invalid number", StorageRejected),
        (401, "authorization failed", StorageRejected),
        (404, 'database not found: "pa_x"', StorageRejected),
    ],
)
def test_storage_answers_are_classified(status: int, message: str, kind: type) -> None:
    error = classify(status, message)
    assert type(error) is kind
    assert error.status == status


def test_writer_choice() -> None:
    settings = load([], {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET})
    writer = make_writer(settings)
    assert isinstance(writer, V1Writer)
    writer.close()
    v2 = make_writer({**settings, "storage_api": "v2", "storage_username": "u",
                      "storage_password": "p"})  # fmt: skip
    assert isinstance(v2, V2Writer)
    v2.close()
