"""Tenant storage on InfluxDB 1.x: a database, its default retention policy and a read-only user,
and WRITE on the database for the one non-admin user ingest writes as (when configured).

Plain ``requests`` against the v1 HTTP API: one InfluxQL statement per ``POST /query``, the admin
credentials in an HTTP Basic ``Authorization`` header, so no password is ever part of a URL.

Provisioning a new tenant refuses a database that exists already and holds data (created by hand,
or left by a restore or an earlier tenant), unless told to adopt it, so that a new tenant's read
user is not given data that was never its tenant's. Otherwise provisioning converges, so running
it again is safe: what is missing is created, the retention
policy is reset to the configured one, the read user's privileges are cut back to READ on its own
database and its password is rotated, the ingest user is kept a non-admin with the configured
password and granted WRITE (which in InfluxDB 1.x does not include READ). When a step fails,
what this run created is dropped again, so no tenant is left half-provisioned (the ingest user,
shared by every tenant and wanted whatever happens, is not dropped; a grant on a dropped
database goes with it). Errors are ``StorageError``s that name the statement that failed, with
passwords redacted.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from tenants.errors import DatabaseInUse

log = logging.getLogger(__name__)

RETENTION_POLICY = "default"
PASSWORD_BYTES = 32
REDACTED = "[redacted]"
DURATION = re.compile(r"([0-9]+)(ns|u|µ|ms|s|m|h|d|w)")  # whole text: fullmatch
NANOSECONDS = {
    "ns": 1,
    "u": 10**3,
    "µ": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86400 * 10**9,
    "w": 7 * 86400 * 10**9,
}
HOUR_NS, DAY_NS = NANOSECONDS["h"], NANOSECONDS["d"]
MAX_DURATION_NS = 2**63 - 1  # InfluxDB keeps durations as Go int64 nanoseconds


class StorageError(RuntimeError):
    """InfluxDB refused a statement or could not be reached; never carries a password."""

    def __init__(self, statement: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"InfluxDB: {statement} failed: {reason}")
        self.statement = statement
        self.reason = reason
        self.status = status


# ---------------------------------------------------------------------------------------------
# InfluxQL text


def quote_identifier(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Retention:
    """A validated retention: the InfluxQL duration and the shard group duration that suits it."""

    duration: str
    shard_duration: str


def parse_retention(text: str) -> Retention:
    """``30d``, ``720h``, ``2w``... (one integer and one unit, at least 1h) or ``INF``."""
    if text.strip().upper() == "INF":
        return Retention("INF", "7d")
    match = DURATION.fullmatch(text)
    if not match:
        raise ValueError(
            f"InfluxDB retention {text!r} is not an InfluxQL duration: expected an integer and "
            "one unit of ns, u, µ, ms, s, m, h, d or w (e.g. 30d), or INF"
        )
    nanoseconds = int(match.group(1)) * NANOSECONDS[match.group(2)]
    if nanoseconds < HOUR_NS:
        raise ValueError(f"InfluxDB retention {text!r} is shorter than InfluxDB's minimum of 1h")
    if nanoseconds > MAX_DURATION_NS:
        raise ValueError(f"InfluxDB retention {text!r} is too long; use INF to keep data forever")
    return Retention(text, shard_duration_for(nanoseconds))


def shard_duration_for(retention_ns: int) -> str:
    """InfluxDB's own default: 1h shards under 2 days, 1d under 6 months, else 7d."""
    if retention_ns < 2 * DAY_NS:
        return "1h"
    if retention_ns < 180 * DAY_NS:
        return "1d"
    return "7d"


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


@dataclass(frozen=True)
class Statement:
    """One InfluxQL statement; ``secret`` is a password it contains, hidden from every message."""

    query: str
    secret: str = ""

    @property
    def shown(self) -> str:
        return self.scrub(self.query.replace(quote_string(self.secret), REDACTED))

    def scrub(self, text: str) -> str:
        return text.replace(self.secret, REDACTED) if self.secret else text


def create_database(database: str, retention: Retention) -> Statement:
    return Statement(
        f"CREATE DATABASE {quote_identifier(database)} WITH DURATION {retention.duration} "
        f"REPLICATION 1 SHARD DURATION {retention.shard_duration} "
        f"NAME {quote_identifier(RETENTION_POLICY)}"
    )


def set_retention_policy(database: str, retention: Retention, exists: bool) -> Statement:
    verb = "ALTER" if exists else "CREATE"
    return Statement(
        f"{verb} RETENTION POLICY {quote_identifier(RETENTION_POLICY)} ON "
        f"{quote_identifier(database)} DURATION {retention.duration} REPLICATION 1 "
        f"SHARD DURATION {retention.shard_duration} DEFAULT"
    )


def create_user(user: str, password: str) -> Statement:
    return Statement(
        f"CREATE USER {quote_identifier(user)} WITH PASSWORD {quote_string(password)}", password
    )


def set_password(user: str, password: str) -> Statement:
    return Statement(
        f"SET PASSWORD FOR {quote_identifier(user)} = {quote_string(password)}", password
    )


def grant_read(database: str, user: str) -> Statement:
    return Statement(f"GRANT READ ON {quote_identifier(database)} TO {quote_identifier(user)}")


def grant_write(database: str, user: str) -> Statement:
    return Statement(f"GRANT WRITE ON {quote_identifier(database)} TO {quote_identifier(user)}")


def revoke_admin(user: str) -> Statement:
    return Statement(f"REVOKE ALL PRIVILEGES FROM {quote_identifier(user)}")


def revoke_all_on(database: str, user: str) -> Statement:
    return Statement(f"REVOKE ALL ON {quote_identifier(database)} FROM {quote_identifier(user)}")


def drop_user(user: str) -> Statement:
    return Statement(f"DROP USER {quote_identifier(user)}")


def drop_database(database: str) -> Statement:
    return Statement(f"DROP DATABASE {quote_identifier(database)}")


def _require_name(value: str, what: str) -> None:
    if not value:
        raise ValueError(f"InfluxDB {what} name must not be empty")


# ---------------------------------------------------------------------------------------------
# The storage


class InfluxStorage:
    """Provisions tenant databases and read-only users on InfluxDB 1.x (tenants.tenancy.Storage)."""

    def __init__(
        self,
        url: str,
        admin_user: str,
        admin_password: str,
        retention: str = "30d",
        timeout: float = 10.0,
        ingest_user: str = "",
        ingest_password: str = "",
    ) -> None:
        if urlsplit(url).password is not None:
            raise ValueError("give the InfluxDB admin password as a setting, not inside the URL")
        if ingest_user and ingest_user == admin_user:
            raise ValueError(f"the ingest user must not be the InfluxDB admin user {admin_user!r}")
        if ingest_password and not ingest_user:
            raise ValueError("an InfluxDB ingest password was given without an ingest user")
        self.url = url.rstrip("/")
        self.admin_user = admin_user
        self.ingest_user = ingest_user
        self._ingest_password = ingest_password
        self.retention = parse_retention(retention)
        self.timeout = timeout
        self._headers = _basic_auth(admin_user, admin_password)

    def __repr__(self) -> str:
        return f"InfluxStorage({self.url!r}, retention={self.retention.duration!r})"

    def provision(self, database: str, read_user: str, *, adopt: bool = False) -> str:
        """Create or converge the database and the read user; return the user's new password.

        A database that exists already and holds any measurement is refused (DatabaseInUse,
        before anything is created or changed) unless ``adopt``: its data would become readable
        as the new tenant's. An existing empty one is taken (a failed run may have left it).
        An existing read user's password is changed by the last statement, so a run that fails
        leaves it the password the admin database holds.
        """
        _require_name(database, "database")
        _require_name(read_user, "read user")
        if read_user == self.admin_user:
            raise ValueError(f"the read user must not be the InfluxDB admin user {read_user!r}")
        if read_user == self.ingest_user:
            raise ValueError(f"the read user must not be the InfluxDB ingest user {read_user!r}")
        existing = self._databases()
        if database in existing and not adopt:
            measurement = self._a_measurement(database)
            if measurement is not None:
                raise DatabaseInUse(database, measurement)
        password = new_password()
        undo: list[Statement] = []
        try:
            if self.ingest_user:
                self._ensure_ingest_user()  # first: a failure here has created nothing
            self._ensure_database(database, database in existing, undo)
            users = self._users()
            if read_user in users:
                self._restrict_to_read(read_user, database, is_admin=users[read_user])
            else:
                self._execute(create_user(read_user, password))
                undo.append(drop_user(read_user))
                self._execute(grant_read(database, read_user))
            if self.ingest_user:
                self._execute(grant_write(database, self.ingest_user))  # undone by DROP DATABASE
            if read_user in users:  # last: a failure before leaves the stored password working
                self._execute(set_password(read_user, password))
        except Exception:
            self._undo(undo)
            raise
        log.info("provisioned InfluxDB database %s with read user %s", database, read_user)
        return password

    def grant_ingest_writes(
        self, databases: Sequence[str], report: Callable[[str, str], None] | None = None
    ) -> dict[str, str]:
        """Make sure the ingest user exists and may WRITE to each existing database (idempotent).

        Returns database → "granted" (WRITE is now its privilege there), "unchanged" (it was) or
        "missing" (no such database: nothing granted); ``report(database, outcome)`` hears each
        as it is done. ValueError without an ingest user.
        """
        if not self.ingest_user:
            raise ValueError("no InfluxDB ingest user is configured (influxdb.ingest-user)")
        self._ensure_ingest_user()
        existing = self._databases()
        held = self._grants(self.ingest_user)
        outcome: dict[str, str] = {}
        for database in databases:
            _require_name(database, "database")
            if database not in existing:
                outcome[database] = "missing"
            elif held.get(database) == "WRITE":  # ALL or READ are narrowed to WRITE
                outcome[database] = "unchanged"
            else:
                self._execute(grant_write(database, self.ingest_user))
                outcome[database] = "granted"
            if report is not None:
                report(database, outcome[database])
        if outcome:
            log.info("ingest user %s: WRITE on %s", self.ingest_user, outcome)
        return outcome

    def restore_read_password(self, read_user: str, password: str) -> None:
        """Give ``read_user`` back ``password`` (the one the admin database holds), when the
        new one ``provision`` set could not be stored; StorageError if InfluxDB refuses."""
        _require_name(read_user, "read user")
        self._execute(set_password(read_user, password))
        log.info("gave InfluxDB read user %s its previous password back", read_user)

    def deprovision(self, database: str, read_user: str) -> None:
        """Drop the read user, then the database; either may already be gone."""
        _require_name(database, "database")
        _require_name(read_user, "read user")
        if read_user in self._users():
            self._execute(drop_user(read_user))
        self._execute(drop_database(database))  # no error when it does not exist
        log.info("dropped InfluxDB database %s and read user %s", database, read_user)

    def check(self) -> None:
        """InfluxDB answers /ping and accepts the admin credentials; StorageError otherwise."""
        response = self._request("GET", "/ping", Statement("GET /ping"))
        if response.status_code != 204:
            raise StorageError("GET /ping", f"HTTP {response.status_code}", response.status_code)
        self._execute(Statement("SHOW DATABASES"))

    # -- provisioning steps

    def _ensure_database(self, database: str, exists: bool, undo: list[Statement]) -> None:
        if not exists:
            self._execute(create_database(database, self.retention))
            undo.append(drop_database(database))
            return
        exists = RETENTION_POLICY in self._retention_policies(database)
        self._execute(set_retention_policy(database, self.retention, exists))

    def _ensure_ingest_user(self) -> None:
        """The ingest user exists, has the configured password and is not an admin."""
        users = self._users()
        if self.ingest_user not in users:
            try:
                self._execute(create_user(self.ingest_user, self._ingest_password))
                return
            except StorageError:
                users = self._users()  # a concurrent provisioning may have created it
                if self.ingest_user not in users:
                    raise
        if users[self.ingest_user]:
            self._execute(revoke_admin(self.ingest_user))
        self._execute(set_password(self.ingest_user, self._ingest_password))

    def _restrict_to_read(self, user: str, database: str, is_admin: bool) -> None:
        """An existing user keeps READ on its own database and nothing else."""
        if is_admin:
            self._execute(revoke_admin(user))
        for other, privilege in self._grants(user).items():
            if other != database and privilege != "NO PRIVILEGES":
                self._execute(revoke_all_on(other, user))
        self._execute(grant_read(database, user))

    def _undo(self, statements: list[Statement]) -> None:
        for statement in reversed(statements):
            try:
                self._execute(statement)
            except StorageError as exc:
                log.warning("could not undo a failed provisioning: %s", exc)

    # -- reading state

    def _databases(self) -> set[str]:
        return {row[0] for row in self._rows(Statement("SHOW DATABASES"))}

    def _users(self) -> dict[str, bool]:
        """User name → whether it is an admin."""
        return {row[0]: bool(row[1]) for row in self._rows(Statement("SHOW USERS"))}

    def _grants(self, user: str) -> dict[str, str]:
        """Database → privilege (READ, WRITE, ALL PRIVILEGES, NO PRIVILEGES)."""
        rows = self._rows(Statement(f"SHOW GRANTS FOR {quote_identifier(user)}"))
        return {row[0]: row[1] for row in rows}

    def _a_measurement(self, database: str) -> str | None:
        """One measurement of ``database``, or None when it holds none."""
        found = self._rows(Statement(f"SHOW MEASUREMENTS ON {quote_identifier(database)} LIMIT 1"))
        return str(found[0][0]) if found else None

    def _retention_policies(self, database: str) -> set[str]:
        query = f"SHOW RETENTION POLICIES ON {quote_identifier(database)}"
        return {row[0] for row in self._rows(Statement(query))}

    def _rows(self, statement: Statement) -> list[list[Any]]:
        series = self._execute(statement).get("series", [])
        return [list(values) for one in series for values in one.get("values", [])]

    # -- HTTP

    def _execute(self, statement: Statement) -> dict[str, Any]:
        """Run one statement; its result, or StorageError naming it."""
        response = self._request("POST", "/query", statement, data={"q": statement.query})
        body = _json_body(response)
        errors = [body["error"]] if "error" in body else []
        results = body.get("results") or [{}]
        errors += [str(result["error"]) for result in results if "error" in result]
        if response.status_code != 200 or errors:
            reason = f"HTTP {response.status_code}: {'; '.join(errors) or response.reason}"
            raise StorageError(statement.shown, statement.scrub(reason), response.status_code)
        result: dict[str, Any] = results[0]
        return result

    def _request(
        self, method: str, path: str, statement: Statement, **kwargs: Any
    ) -> requests.Response:
        """One HTTP request; StorageError naming ``statement`` if InfluxDB cannot be reached."""
        try:
            return requests.request(
                method, self.url + path, headers=self._headers, timeout=self.timeout, **kwargs
            )
        except requests.Timeout:
            reason = f"no answer from {self.url} within {self.timeout:g}s"
            raise StorageError(statement.shown, reason) from None
        except requests.RequestException as exc:
            reason = f"cannot reach {self.url}: {_network_reason(exc)}"
            raise StorageError(statement.shown, statement.scrub(reason)) from None


def _basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header (UTF-8, which requests' tuple auth would not allow); none without a user."""
    if not user:
        return {}
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def _json_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": f"not a JSON answer: {response.text[:300]!r}"}
    return body if isinstance(body, dict) else {"error": f"unexpected answer {body!r:.200}"}


def _network_reason(exc: BaseException) -> str:
    """The operating system's words (e.g. "Connection refused") if the chain holds them."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__
