"""InfluxQL over InfluxDB 1.x's HTTP API, as a tenant's read-only user.

Credentials travel in an HTTP Basic header, never in a URL; queries are POSTed (``/query`` with
``db`` and ``epoch=s``). Several statements may share a request (``;``-separated): the answer has
one result per statement. Errors are ReportError with InfluxDB's reason and no password.
"""

from __future__ import annotations

import base64
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import requests


class ReportError(RuntimeError):
    """The report cannot be built: storage unreachable, unknown tenant or host, and so on."""


@dataclass(frozen=True)
class SeriesRows:
    """One series of a result: measurement ``name``, its group-by ``tags`` and the rows."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]


@dataclass
class InfluxReader:
    """A tenant's reader: its database, its read user, and its slug, the ``tenant`` tag value
    every query of the report filters on (perfanalysis.report.influxql.where)."""

    url: str
    database: str
    tenant: str
    username: str
    password: str = field(repr=False)
    timeout: float = 60.0
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        if not self.tenant:
            raise ValueError("an InfluxReader reads one tenant's points: give its slug")

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # the storage is named by URL; no proxy from the environment
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
            session.headers["Authorization"] = f"Basic {token}"
            self._local.session = session
        return session

    def query(self, statements: list[str]) -> list[list[SeriesRows]]:
        """Run the statements in one request; per statement, its series."""
        try:
            response = self._session().post(
                self.url + "/query",
                data={"q": ";\n".join(statements), "db": self.database, "epoch": "s"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise ReportError(f"InfluxDB at {self.url} did not answer: {self._why(exc)}") from None
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {"error": response.text[:500] or response.reason}
        problems = [str(body["error"])] if body.get("error") else []
        results = body.get("results", [])
        problems += [str(r["error"]) for r in results if r.get("error")]
        if response.status_code == 401:
            raise ReportError(
                f"InfluxDB at {self.url} refused user {self.username!r}: "
                f"{'; '.join(problems) or 'authentication failed'}"
            )
        if any(problem.startswith("database not found") for problem in problems):
            raise ReportError(
                f"InfluxDB at {self.url} has no database {self.database}, tenant "
                f"{self.tenant}'s: is that the InfluxDB its data is in (--influxdb.url, or "
                "influxdb.url in the configuration), and was the tenant's storage provisioned?"
            )
        if response.status_code != 200 or problems:
            raise ReportError(
                f"InfluxDB refused a query on {self.database} (HTTP "
                f"{response.status_code}): {'; '.join(problems)}"
            )
        by_statement: list[list[SeriesRows]] = [[] for _ in statements]
        for index, result in enumerate(results):
            position = int(result.get("statement_id", index))
            by_statement[position] = [
                SeriesRows(
                    s.get("name", ""), s.get("tags") or {}, s["columns"], s.get("values") or []
                )
                for s in result.get("series", [])
            ]
        return by_statement

    def _why(self, exc: requests.RequestException) -> str:
        """The exception's type and errno text; a timeout says which (requests raises a read
        timeout on a reused connection as a bare ConnectionError, which said nothing)."""
        if isinstance(exc, requests.Timeout) or "timed out" in str(exc):
            return (
                f"no answer to a query within {self.timeout:g}s (--influxdb.timeout): check "
                "that it is InfluxDB at that URL, or give a longer --influxdb.timeout"
            )
        errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
        return f"{type(exc).__name__}" + (f" ({errno[1].strip()})" if errno else "")

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
