"""The admin app's settings: a flag and a PERFANALYSIS_ADMIN_ variable for each.

``DATABASE_URL`` and ``REDIS_URL``, the conventional variables, are honoured when the prefixed
ones are unset. In development mode (``--dev``) a secret key is generated once and kept in
``var/``; outside it, the secret key must be given: it signs sessions, derives the HMAC key for
API keys and the encryption key for stored InfluxDB passwords.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from perfanalysis import web_tls
from perfanalysis.config import (
    ConfigError,
    Setting,
    Spec,
    listen_address,
    optional_http_url,
    parse,
    positive_float,
    positive_int,
    timeout_seconds,
)
from perfanalysis.paths import VARIABLE, var_dir

ENV_PREFIX = "PERFANALYSIS_ADMIN_"

MIN_SECRET_LENGTH = 32
SECRET_FILE = "dev-secret-key"  # noqa: S105 (a file name)
# a file system without hard links: the key is renamed into place instead
NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
MAX_PROXY_HOPS = 5
MAX_INVITATION_DAYS = 90


def database_url(text: str) -> str:
    if not text.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://", "postgres://")):
        raise ValueError("expected a sqlite:// or postgresql:// URL")
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    if text.startswith("postgresql://"):
        text = "postgresql+psycopg://" + text[len("postgresql://") :]
    return text


REDIS_SCHEMES = ("redis", "rediss", "unix")
_DIGITS = re.compile(r"[0-9]+")
_UNSAFE_URL_CHARACTERS = re.compile(r"[\s\x00-\x1f\x7f]")


def redis_url(text: str) -> str:
    """Empty (no Redis), or a URL that redis-py connects with as it is written: checked whole
    here, since redis-py reads it only in a worker (a bad port killed every one) and passes over
    some mistakes in silence (port 0 and a db path that is not a number: 6379 and db 0)."""
    if not text:
        return text
    if _UNSAFE_URL_CHARACTERS.search(text):
        raise ValueError("must not hold whitespace or control characters")
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError as exc:  # a broken IPv6 host
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in REDIS_SCHEMES or not text.startswith(f"{parts.scheme}://"):
        raise ValueError(
            "expected a redis://HOST[:PORT][/DB], rediss:// (TLS) or unix:///SOCKET-PATH URL"
        )
    if parts.fragment or text.endswith("#"):
        raise ValueError("a Redis URL has no #fragment: write a # in a password as %23")
    port_text = _port_text(parts.netloc)
    if parts.scheme == "unix":
        if host or port_text is not None:
            raise ValueError(
                "a unix:// URL names a socket by its absolute path, as in "
                "unix:///run/redis/redis.sock (three slashes), and has no host or port"
            )
        if parts.path in ("", "/"):
            raise ValueError("no socket path, as in unix:///run/redis/redis.sock")
    else:
        if port_text is not None and not _valid_port(port_text):
            problem = f"port {port_text!r} is not a number from 1 to 65535 (leave it out for 6379)"
            if "@" in text[len(f"{parts.scheme}://{parts.netloc}") :]:  # cut short by a / in it
                problem += ": write a / in a password as %2F"
            raise ValueError(problem)
        if not host:
            raise ValueError("no host in the URL, as in redis://HOST:6379/0")
        db = parts.path[1:]
        if db and not _DIGITS.fullmatch(db):
            raise ValueError(
                f"the path {parts.path!r} is not a database number, as in redis://HOST:6379/0"
            )
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "db" and not _DIGITS.fullmatch(value):
            raise ValueError(f"db={value!r} in the query is not a database number (0 or more)")
    refused = _redis_py_problem(text)
    if refused:
        raise ValueError(refused)
    return text


def _port_text(netloc: str) -> str | None:
    """The port as written after HOST: or [V6]: (None when there is no colon)."""
    address = netloc.rpartition("@")[2]
    if address.startswith("["):
        address = address.partition("]")[2]
    colon, port = address.partition(":")[1:]
    return port if colon else None


def _valid_port(text: str) -> bool:
    return bool(_DIGITS.fullmatch(text)) and len(text) <= 5 and 1 <= int(text) <= 65535


def _redis_py_problem(url: str) -> str | None:
    """What redis-py says of the URL when it makes a connection of it (without connecting):
    a query parameter it does not know or whose value it cannot read."""
    import redis

    try:
        pool = redis.ConnectionPool.from_url(url)
        pool.make_connection()
    except TypeError as exc:
        unknown = re.search(r"unexpected keyword argument '([^']*)'", str(exc))
        return f"unknown query parameter {unknown.group(1)!r}" if unknown else str(exc)
    except (ValueError, redis.RedisError) as exc:
        return f"redis-py cannot use it: {exc}"
    pool.disconnect()
    return None


def _influx_retention(text: str) -> str:
    from tenants.influx import parse_retention

    return parse_retention(text).duration


def build_spec() -> Spec:
    spec = Spec(
        program="perfanalysis admin serve",
        env_prefix=ENV_PREFIX,
        description="The admin app: tenants, users, collectors, API keys and load tests.",
    )
    add = spec.add
    add(
        Setting(
            "web.listen-address",
            "Address gunicorn binds to.",
            "127.0.0.1:8080",
            listen_address,
            metavar="HOST:PORT",
        )
    )
    add(
        Setting(
            "web.workers",
            "gunicorn worker processes; about two per CPU core. Each has its own Python lock: "
            "with fewer, a thread back from a database query waits behind threads rendering "
            "pages, and a page makes several queries.",
            4,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "web.threads",
            "Threads per worker (gunicorn's gthread worker, with keep-alive): an idle or slow "
            "client holds a connection, not a thread until its request arrives, nor a worker. "
            "Each worker pools at most 8 database connections.",
            8,
            positive_int,
            metavar="N",
        )
    )
    add(request_timeout_setting())
    for setting in web_tls.settings():
        add(setting)
    add(
        Setting(
            "database-url",
            "SQLAlchemy URL of the admin database (also read from DATABASE_URL); default: SQLite in var/admin.db.",
            None,
            database_url,
            metavar="URL",
            conventional_env="DATABASE_URL",
        )
    )
    add(
        Setting(
            "redis-url",
            "Redis URL for the login throttle (also REDIS_URL); when empty, failed logins are counted in the admin database, which every worker and replica shares.",
            "",
            redis_url,
            metavar="URL",
            conventional_env="REDIS_URL",
        )
    )
    add(
        Setting(
            "secret-key",
            f"Server secret, at least {MIN_SECRET_LENGTH} characters: signs sessions, keys API key HMACs, encrypts stored InfluxDB passwords. Required outside --dev.",
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
            "Development mode: generate and keep a secret key under var/ when none is given.",
            False,
            boolean=True,
        )
    )
    add(
        Setting(
            "influxdb.url",
            "InfluxDB 1.x URL where tenant databases and read users are provisioned; empty disables provisioning.",
            "",
            optional_http_url,
            metavar="URL",
        )
    )
    add(
        Setting(
            "influxdb.admin-user", "InfluxDB admin user for provisioning.", "", str, metavar="USER"
        )
    )
    add(
        Setting(
            "influxdb.admin-password",
            "InfluxDB admin password for provisioning.",
            "",
            str,
            secret=True,
            metavar="PASSWORD",
        )
    )
    add(
        Setting(
            "influxdb.ingest-user",
            "InfluxDB user ingest writes as: the admin app keeps it a non-admin with a password "
            "and grants it WRITE (not READ) on every tenant database it provisions. Empty: none.",
            "",
            str,
            metavar="USER",
        )
    )
    add(
        Setting(
            "influxdb.ingest-password",
            "Password the admin app sets for influxdb.ingest-user (ingest's storage.password).",
            "",
            str,
            secret=True,
            metavar="PASSWORD",
        )
    )
    add(
        Setting(
            "influxdb.retention",
            "Retention of each tenant's default retention policy (InfluxQL duration).",
            "30d",
            _influx_retention,
            metavar="DURATION",
        )
    )
    add(
        Setting(
            "key-cache-seconds",
            "How old, at most, what a worker cached of a collector key (revoked or expired, its "
            "collector's and tenant's status, host tag), an API token or a session may be when "
            "a request is let in: revoking, logging out, disabling or a password change is felt "
            "within this time (max 5).",
            2.0,
            positive_float,
            metavar="SECONDS",
        )
    )
    add(
        Setting(
            "login.max-failures",
            "Wrong passwords (at login, and the current one on the password form) per account, and 4x "
            "per address, within the window before more are refused.",
            5,
            positive_int,
            metavar="N",
        )
    )
    add(
        Setting(
            "login.window-seconds",
            "Window of the login throttle.",
            900.0,
            positive_float,
            metavar="SECONDS",
        )
    )
    add(
        Setting(
            "invitation.valid-days",
            "How long a tenant admin's invitation link stays valid, in days (at most "
            f"{MAX_INVITATION_DAYS}); it is single use and can be revoked before then.",
            7,
            positive_int,
            metavar="DAYS",
            validate=_invitation_days,
        )
    )
    add(
        Setting(
            "loadtests.price-max-age-days",
            "Age in days beyond which a load test's price (its catalog row's as_of date) is "
            "called out of date: a comparison using it warns and marks its date.",
            180,
            positive_int,
            metavar="DAYS",
        )
    )
    add(
        Setting(
            "web.trusted-proxies",
            "Reverse proxies in front of the app whose X-Forwarded-For, -Proto and -Host are "
            "trusted (0: none). The audit log and login throttle then see the client's address "
            "rather than the proxy's. Set it to exactly the number of hops: each one more lets a "
            "client forge its address.",
            0,
            _proxy_count,
            metavar="N",
        )
    )
    add(
        Setting(
            "session.secure-cookie",
            "Send the session cookie over HTTPS only, and HSTS (enable behind TLS; always on "
            "with web.tls-cert-file).",
            False,
            boolean=True,
        )
    )
    spec.checks.append(_checks)
    return spec  # fmt: skip


def request_timeout_setting() -> Setting:
    """Shared by the admin app and ingest, which serve through perfanalysis.gthread_worker."""
    return Setting(
        "web.request-timeout",
        "Seconds a request may take to arrive whole once a thread has taken it up (its head and "
        "first 64 KiB of body are read without one); slower, it is cut off, with 408 where "
        "the answer can still be sent.",
        60.0,
        timeout_seconds,
        metavar="SECONDS",
    )


def previous_secret_keys_setting() -> Setting:
    """Shared by the admin app and ingest, which must accept the same secrets."""
    return Setting(
        "previous-secret-keys",
        "Earlier secret keys, comma-separated, still accepted during a rotation: sessions signed, "
        "keys and tokens hashed and passwords encrypted under them keep working, and a key or "
        "token is re-hashed under the current secret on its next use (docs/operations.md).",
        (),
        _secret_list,
        secret=True,
        metavar="SECRET,...",
    )


def _secret_list(text: str) -> tuple[str, ...]:
    keys = tuple(part.strip() for part in text.split(",") if part.strip())
    short = [index + 1 for index, key in enumerate(keys) if len(key) < MIN_SECRET_LENGTH]
    if short:
        raise ValueError(
            f"key number {', '.join(map(str, short))} is shorter than {MIN_SECRET_LENGTH} characters"
        )
    return keys


def credential_problems(values: dict[str, Any], secret_key_variable: str) -> list[str]:
    """The secret-key, previous-secret-keys and key-cache checks that the admin app and ingest,
    which verify the same keys, share; ``secret_key_variable`` names where the key may be given."""
    errors = []
    key = values["secret_key"]
    if key is None and not values["dev"]:
        errors.append(
            f"setting secret-key: required outside development mode: give --secret-key or "
            f"{secret_key_variable} (at least {MIN_SECRET_LENGTH} characters), or run with --dev"
        )
    elif key is not None and len(key) < MIN_SECRET_LENGTH:
        errors.append(f"setting secret-key: must be at least {MIN_SECRET_LENGTH} characters")
    if key is not None and key in values["previous_secret_keys"]:
        errors.append("setting previous-secret-keys: holds the current secret-key itself")
    if values["key_cache_seconds"] > 5:
        errors.append("setting key-cache-seconds: at most 5, so that revocation is felt within 5 s")
    return errors


def _invitation_days(days: int) -> str | None:
    return f"at most {MAX_INVITATION_DAYS} days" if days > MAX_INVITATION_DAYS else None


def _proxy_count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_PROXY_HOPS:
        raise ValueError(f"must be a whole number from 0 to {MAX_PROXY_HOPS}")
    return int(text)


def _checks(values: dict[str, Any]) -> list[str]:
    return (
        credential_problems(values, f"{ENV_PREFIX}SECRET_KEY")
        + _ingest_user_problems(values)
        + web_tls.problems(values)
    )


def _ingest_user_problems(values: dict[str, Any]) -> list[str]:
    """The ingest user must be named to have a password, and must not be the admin user."""
    user, password = values["influxdb_ingest_user"], values["influxdb_ingest_password"]
    if password and not user:
        return ["setting influxdb.ingest-password: given without influxdb.ingest-user"]
    if user and not password:
        return ["setting influxdb.ingest-user: needs influxdb.ingest-password as well"]
    if user and user == values["influxdb_admin_user"]:
        return [
            "setting influxdb.ingest-user: must not be the InfluxDB admin user "
            "(influxdb.admin-user): ingest only needs WRITE on the tenant databases"
        ]
    return []


def load(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse the admin settings; raises ConfigError listing every problem."""
    values = parse(build_spec(), argv, os.environ if environ is None else environ)
    if values["secret_key"] is None:
        values["secret_key"] = development_secret()
    if values["database_url"] is None:
        values["database_url"] = f"sqlite:///{var_dir() / 'admin.db'}"
    return values


def development_secret() -> str:
    """The secret key of development mode: ``dev-secret-key`` in the state directory, made on
    first use (0600, written whole to a temporary file that is then linked into place, so that
    neither a crash nor a second process starting at the same time leaves a partial or a
    different key); ConfigError naming PERFANALYSIS_VAR_DIR when it cannot be read or kept.

    A key file that is empty or shorter than the secret-key minimum is refused, not replaced:
    whatever was made under it (sessions, collector keys, stored InfluxDB passwords) depends on
    it, and only the developer knows whether that may go.
    """
    directory = var_dir()
    path = directory / SECRET_FILE
    try:
        secret = _read_secret(path)
        if secret is None:
            secret = _create_secret(path)
    except OSError as exc:
        # mkdir's FileExistsError: a file stands where a directory of the path must be
        reason = "Not a directory" if isinstance(exc, FileExistsError) else exc.strerror or exc
        raise ConfigError(
            [f"{VARIABLE} ({directory}): cannot keep the development secret key in {path}: "
             f"{reason}"]
        ) from None  # fmt: skip
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            [f"{VARIABLE} ({directory}): the development secret key in {path} "
             f"{f'has {len(secret)} characters' if secret else 'is empty'}, not the "
             f"{MIN_SECRET_LENGTH} or more a secret key needs: remove the file to have a new key "
             "made (what was signed or encrypted under the old one stops working), or give "
             "--secret-key"]
        )  # fmt: skip
    return secret


def _read_secret(path: Path) -> str | None:
    """The key the file holds; None when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        raise OSError("it is not UTF-8 text") from None


def _create_secret(path: Path) -> str:
    """A new key in PATH, or the one another process put there first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails, rather than replaces, when the file exists
        except FileExistsError:  # another process made it first: its key is the key
            return _read_secret(path) or ""
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return secret
