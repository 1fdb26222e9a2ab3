"""The ingest service's settings: a flag and a PERFANALYSIS_INGEST_ variable for each.

``DATABASE_URL`` and ``REDIS_URL`` are honoured when the prefixed variables are unset, as the
admin app does: ingest reads the admin database (keys, tenants, collectors) and must verify key
HMACs with the admin app's secret key, so the secret key is required outside ``--dev``. In
development mode the admin app's generated key under var/ is shared.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ingest import http1
from perfanalysis import web_tls
from perfanalysis.config import (
    Setting,
    Spec,
    http_url,
    listen_address,
    number,
    parse,
    positive_float,
    positive_int,
    whole_number,
)
from perfanalysis.paths import var_dir
from tenants.settings import (
    credential_problems,
    database_url,
    development_secret,
    previous_secret_keys_setting,
    redis_url,
    request_timeout_setting,
)
from tenants.tenancy import MAX_INGEST_BURST, MAX_INGEST_RATE

ENV_PREFIX = "PERFANALYSIS_INGEST_"
STORAGE_APIS = ("v1", "v2")
LOG_LEVELS = ("debug", "info", "warning", "error")
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> float:
    """Seconds in ``90s``, ``10m``, ``168h``, ``7d``, ``1w`` or ``500ms``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError("expected a duration such as 30s, 10m, 24h or 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


# storage.timeout: above zero (a socket timeout of 0 makes every write fail at once with
# BlockingIOError: 503 for all) and below the longest wait a client is likely set to: Telegraf
# gives up after 5s, influxdb-client and the exporter after 10s (docs/operations.md), so a wait
# of 30s or more is never seen by any client; it only holds a thread, and raises gunicorn's
# worker timeout (storage.timeout + 10 s) past its 30 s default.
MIN_STORAGE_TIMEOUT = 0.1
MAX_STORAGE_TIMEOUT = 30.0
# limits.max-age and limits.max-future: a client's clock may be seconds off, and Telegraf
# (flush_interval 10s, with jitter) and the exporter's spool send points that are a while old,
# so a window under a minute would refuse live data with 400, which clients drop for good.
MIN_TIMESTAMP_WINDOW = 60.0
# At most 106751d (2**63 ns, about 292 years; InfluxDB stores only 1677 to 2262): without a
# bound, a duration of a few hundred digits is an infinite float, and ingest stopped at start
# with OverflowError.
MAX_TIMESTAMP_WINDOW = 106_751 * 86_400.0


def _storage_timeout(text: str) -> float:
    value = duration(text)
    accepted = "accepted: 100ms to below 30s"
    if value <= 0:
        raise ValueError(f"must be greater than zero ({accepted}): 0 fails every write")
    if value < MIN_STORAGE_TIMEOUT:
        raise ValueError(f"too short ({accepted}): a storage write takes longer than that")
    if value >= MAX_STORAGE_TIMEOUT:
        raise ValueError(
            f"too long ({accepted}): clients give up long before (Telegraf after 5s, "
            "influxdb-client and the exporter after 10s), so keep it below their timeouts"
        )
    return value


def _timestamp_window(text: str) -> float:
    value = duration(text)
    reason = (
        "clocks are seconds off and collectors send points after a batching delay, so a "
        "shorter window refuses live data with 400, which clients drop for good"
    )
    if value <= 0:
        raise ValueError(f"must be greater than zero (accepted: 1m or more): {reason}")
    if value < MIN_TIMESTAMP_WINDOW:
        raise ValueError(f"too short (accepted: 1m or more): {reason}")
    if value > MAX_TIMESTAMP_WINDOW:
        raise ValueError(
            "too long (accepted: 1m to 106751d, about 292 years): InfluxDB stores "
            "timestamps from 1677 to 2262 only"
        )
    return value


_UNSAFE_PREFIX = re.compile(r"[\s\x00-\x1f\x7f]")


def _redis_prefix(text: str) -> str:
    """Not empty (the keys would be bare tenant slugs, in a Redis the admin app also uses) and
    free of whitespace and control characters."""
    if not text:
        raise ValueError(
            "must not be empty: the rate-limit keys would be bare tenant slugs, which may clash "
            "with other keys in Redis (the admin app uses it too)"
        )
    if _UNSAFE_PREFIX.search(text):
        raise ValueError("must not hold whitespace or control characters")
    return text


def _storage_api(text: str) -> str:
    if text not in STORAGE_APIS:
        raise ValueError("expected v1 (InfluxDB /write) or v2 (/api/v2/write, influxdb-client)")
    return text


def _rate(text: str) -> float:
    """Points per second: the range the admin app allows a tenant's own rate (0: no limit)."""
    value = number(text)
    if not 0 <= value <= MAX_INGEST_RATE:  # also refuses nan; inf is over the maximum
        raise ValueError(f"must be from 0 (no limit) to {MAX_INGEST_RATE:,.0f} points per second")
    return value


def _burst(text: str) -> int:
    """Points: the range the admin app allows a tenant's own burst."""
    value = whole_number(text)
    if not 1 <= value <= MAX_INGEST_BURST:
        raise ValueError(f"must be from 1 to {MAX_INGEST_BURST:,} points")
    return value


def _log_level(text: str) -> str:
    level = {"warn": "warning"}.get(text.lower(), text.lower())
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return level


def _request_timeout_setting() -> Setting:
    """The admin app's setting, saying what ingest answers: 503, which InfluxDB clients retry,
    where admin answers 408 (ingest/writeapi.py, ``_body_timed_out``)."""
    return replace(
        request_timeout_setting(),
        help="Seconds a request may take to arrive whole once a thread has taken it up (its head "
        "and first 64 KiB of body are read without one); slower, it is cut off, answered 503 "
        "with Retry-After where the answer can still be sent (a client retries that; InfluxDB "
        "clients drop a batch answered 408).",
    )


def build_spec() -> Spec:
    spec = Spec(
        program="perfanalysis ingest",
        env_prefix=ENV_PREFIX,
        description="The write API: InfluxDB-compatible /write and /api/v2/write, "
        "authenticated by collector keys, validated and written to each tenant's database.",
    )
    add = spec.add
    add(
        Setting(
            "web.listen-address",
            "Address gunicorn binds to.",
            "127.0.0.1:8087",
            listen_address,
            metavar="HOST:PORT",
        )
    )
    add(Setting("web.workers", "gunicorn worker processes.", 2, positive_int, metavar="N"))
    add(
        Setting(
            "web.threads",
            "Threads per worker (gunicorn's gthread worker, with keep-alive): "
            "one thread parses while another waits for storage.",
            4,
            positive_int,
            metavar="N",
        )
    )
    add(_request_timeout_setting())
    for setting in web_tls.settings(client_ca=True):
        add(setting)
    add(
        Setting(
            "database-url",
            "SQLAlchemy URL of the admin database, where keys are looked up "
            "(also read from DATABASE_URL); default: SQLite in var/admin.db. A SQLite file "
            "must exist: perfanalysis admin init-db creates it.",
            None,
            database_url,
            metavar="URL",
            conventional_env="DATABASE_URL",
        )
    )
    add(
        Setting(
            "redis-url",
            "Redis URL for per-tenant rate limits shared by all workers and "
            "replicas (also REDIS_URL); in-process (per worker) when empty.",
            "",
            redis_url,
            metavar="URL",
            conventional_env="REDIS_URL",
        )
    )
    add(
        Setting(
            "secret-key",
            "The admin app's secret key, which keys collector-key HMACs. Required outside --dev.",
            None,
            str,
            secret=True,
            metavar="SECRET",
        )
    )
    add(previous_secret_keys_setting())
    add(
        Setting(
            "dev",
            "Development mode: use the admin app's generated secret key under var/.",
            False,
            boolean=True,
        )
    )
    add(
        Setting(
            "key-cache-seconds",
            "How old, at most, a collector key's state (revoked or expired, its collector's and "
            "tenant's status, host tag, rate limits) may be when a request is let in: a "
            "revocation or a change is felt within this time (max 5). Keys in use stay cached "
            "and are read again in bulk every half of it.",
            2.0,
            positive_float,
            metavar="SECONDS",
        )
    )
    add(
        Setting(
            "storage.api",
            "Storage write API: v1 (POST /write with keep-alive, InfluxDB 1.x "
            "and compatibles) or v2 (POST /api/v2/write with a token: InfluxDB 1.8+/2.x, "
            "VictoriaMetrics).",
            "v1",
            _storage_api,
            metavar="v1|v2",
        )
    )
    add(
        Setting(
            "storage.url",
            "Base URL of the storage.",
            "http://127.0.0.1:8086",
            http_url,
            metavar="URL",
        )
    )
    add(
        Setting(
            "storage.username",
            "v1: user with WRITE on the tenant databases (basic auth); empty when auth is off.",
            "",
            str,
            metavar="USER",
        )
    )
    add(
        Setting(
            "storage.password",
            "v1: that user's password.",
            "",
            str,
            secret=True,
            metavar="PASSWORD",
        )
    )
    add(
        Setting(
            "storage.token",
            "v2: API token (InfluxDB 1.8: user:password); default: username:password.",
            "",
            str,
            secret=True,
            metavar="TOKEN",
        )
    )
    add(
        Setting(
            "storage.org",
            "v2: organisation (InfluxDB 2.x needs it; 1.8 and VictoriaMetrics ignore it).",
            "-",
            str,
            metavar="ORG",
        )
    )
    add(
        Setting(
            "storage.timeout",
            "How long a storage write may take before the request is answered 503 with "
            "Retry-After: from 100ms to below 30s. Keep it below the clients' own timeouts "
            "(Telegraf's 5s, influxdb-client's and the exporter's 10s), or they give up first "
            "and never see it.",
            "4s",
            _storage_timeout,
            metavar="DURATION",
        )
    )
    add(
        Setting(
            "storage.retry-after",
            "Retry-After (seconds) sent with 503 when storage is down or slow.",
            5,
            positive_int,
            metavar="SECONDS",
        )
    )
    add(
        Setting(
            "storage.writes-in-flight",
            "Storage writes each worker has in flight per tenant database; requests beyond "
            "them wait and go to storage together, as one write (group commit). Raise it "
            "when one tenant's writes should use more of storage's CPUs.",
            2,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "storage.group-max-bytes",
            "Largest write that group commit makes of waiting requests (one larger request "
            "still goes alone); keep it below storage's own limit (InfluxDB's max-body-size).",
            8 << 20,
            positive_int,
            metavar="BYTES",
        )
    )
    add(
        Setting(
            "storage.unsigned-integers",
            "Accept unsigned integer fields (5u). Default: "
            "only with --storage.api=v2, since InfluxDB 1.x has no unsigned type.",
            None,
            boolean=True,
        )
    )
    add(
        Setting(
            "limits.max-body-bytes",
            "Largest request body as sent (compressed or not); larger is answered 413.",
            8 << 20,
            positive_int,
            metavar="BYTES",
        )
    )
    add(
        Setting(
            "limits.max-decompressed-bytes",
            "Largest body after gzip decompression; larger is answered 413. Each request in "
            "flight holds about 7 times this in memory.",
            16 << 20,
            positive_int,
            metavar="BYTES",
        )
    )
    add(
        Setting(
            "limits.max-points",
            "Most points in one request; more is answered 413.",
            100_000,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "limits.max-line-bytes", "Longest line accepted.", 65_536, positive_int, metavar="BYTES"
        )
    )
    add(
        Setting(
            "limits.max-tags",
            "Most tags on one point (besides tenant and collector).",
            64,
            positive_int,
            metavar="N",
        )
    )
    add(Setting("limits.max-fields", "Most fields on one point.", 256, positive_int, metavar="N"))
    add(
        Setting(
            "limits.max-age",
            "Oldest timestamp accepted, before now (at least 1m: clock skew and batching delay "
            "live points); keep it within the tenants' retention (the admin app's "
            "influxdb.retention), or InfluxDB refuses the points.",
            "7d",
            _timestamp_window,
            metavar="DURATION",
        )
    )
    add(
        Setting(
            "limits.max-future",
            "Latest timestamp accepted, after now (at least 1m: collectors' clocks run ahead "
            "by seconds).",
            "10m",
            _timestamp_window,
            metavar="DURATION",
        )
    )
    add(
        Setting(
            "limits.rate",
            "Points per second each tenant may write, over all workers "
            "and replicas when Redis is set; 0 disables the limit (at most 1e9, as for a "
            "tenant's own). A tenant's own rate, set in the admin app, replaces it.",
            50_000.0,
            _rate,
            metavar="POINTS",
        )
    )
    add(
        Setting(
            "limits.burst",
            "Points a tenant may write at once above the rate (the bucket "
            "size); a bigger request is answered 413 (at most 1e8, as for a tenant's own). "
            "A tenant's own burst, set in the admin app, replaces it.",
            500_000,
            _burst,
            metavar="POINTS",
        )
    )
    add(
        Setting(
            "series-cache-size",
            "Series (measurement and tags) each worker keeps rewritten, with the order of the "
            "batches they came in, up to about 450 bytes each; size it above the series one "
            "worker sees, or batches take the slow path.",
            200_000,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "limits.redis-prefix",
            "Prefix of the rate-limit keys in Redis; not empty, no whitespace.",
            "perfanalysis:ingest:rate:",
            _redis_prefix,
            metavar="PREFIX",
        )
    )
    add(
        Setting(
            "log.level",
            "Only log messages with this severity or above: debug, info, warning, error.",
            "info",
            _log_level,
            metavar="LEVEL",
        )
    )
    spec.checks.append(_checks)
    return spec  # fmt: skip


def _checks(values: dict[str, Any]) -> list[str]:
    errors = credential_problems(values, f"{ENV_PREFIX}SECRET_KEY, the admin app's secret key")
    if values["limits_max_decompressed_bytes"] < values["limits_max_body_bytes"]:
        errors.append(
            "setting limits.max-decompressed-bytes: must be at least limits.max-body-bytes"
        )
    if values["storage_password"] and not values["storage_username"]:
        errors.append("setting storage.password: given without storage.username")
    for name in ("username", "password", "token"):
        if http1.splits_a_header(values[f"storage_{name}"]):
            errors.append(
                f"setting storage.{name}: contains a control character (a line break at its "
                "end, from a file or a Kubernetes Secret made from one?); it goes into the "
                "Authorization header of every storage request"
            )
    return errors + web_tls.problems(values)


def load(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse the ingest settings; raises ConfigError listing every problem."""
    values = parse(build_spec(), argv, os.environ if environ is None else environ)
    if values["secret_key"] is None:
        values["secret_key"] = development_secret()
    if values["database_url"] is None:
        values["database_url"] = f"sqlite:///{var_dir() / 'admin.db'}"
    if values["storage_unsigned_integers"] is None:
        values["storage_unsigned_integers"] = values["storage_api"] == "v2"
    return values
