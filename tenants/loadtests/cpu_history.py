"""A collector's CPU idle counters from its tenant's InfluxDB database, read as the tenant's
read-only user (never the admin): ``node_cpu_seconds_total`` as the exporter pushes it, tags
``cpu``, ``mode``, ``host``, ``tenant``, ``collector`` and field ``value``.

Idle time is modes ``idle`` and ``iowait`` together (``IDLE_MODES``), as the load test and the
alert rules count it. The last counter
value per CPU, mode and interval is fetched (``GROUP BY time(step), cpu, mode``), so a week at
one-minute steps is about 10,000 values per CPU and mode; longer windows get longer steps. An
interval counts for a CPU only when every mode the CPU reports has a value in it.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Protocol

import requests

from perfanalysis.alerting.catalogue import IDLE_MODES
from tenants.crypto import Vault
from tenants.influx import quote_identifier, quote_string
from tenants.loadtests.rightsizing import Counters
from tenants.models import Collector, Tenant

MEASUREMENT = "node_cpu_seconds_total"
MIN_STEP_SECONDS = 60
MAX_STEPS = 10_000


class HistoryUnavailable(Exception):
    """The history cannot be read: ``reason`` is "no_influxdb" or "history_error"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class CpuHistory(Protocol):
    def idle_counters(self, tenant: Tenant, collector: Collector, days: int) -> Counters:
        """Per CPU, its idle + iowait seconds counter over the last ``days``."""
        ...


def step_seconds(days: int) -> int:
    return max(MIN_STEP_SECONDS, math.ceil(days * 86400 / MAX_STEPS))


def idle_query(tenant: Tenant, collector: Collector, days: int) -> str:
    """InfluxQL, not SQL: every identifier and string in it is quoted (tenants.influx)."""
    mode = quote_identifier("mode")
    modes = " OR ".join(f"{mode} = {quote_string(name)}" for name in IDLE_MODES)
    where = (
        f"{quote_identifier('collector')} = {quote_string(collector.name)} "
        f"AND {quote_identifier('tenant')} = {quote_string(tenant.slug)} "
        f"AND ({modes}) AND time > now() - {int(days)}d"
    )
    group = f"time({step_seconds(days)}s), {quote_identifier('cpu')}, {mode}"
    field = quote_identifier("value")
    return " ".join(("SELECT", f"last({field})", "FROM", quote_identifier(MEASUREMENT),
                     "WHERE", where, "GROUP BY", group, "fill(none)"))  # fmt: skip


class NoCpuHistory:
    """No InfluxDB is configured for the admin app."""

    def idle_counters(self, tenant: Tenant, collector: Collector, days: int) -> Counters:
        raise HistoryUnavailable(
            "no_influxdb",
            "No InfluxDB is configured (setting influxdb.url), so there is no CPU history to size from.",
        )


class InfluxCpuHistory:
    def __init__(self, url: str, vault: Vault, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.vault = vault
        self.timeout = timeout

    def idle_counters(self, tenant: Tenant, collector: Collector, days: int) -> Counters:
        if not tenant.influx_read_user or not tenant.influx_read_password_encrypted:
            raise HistoryUnavailable("no_influxdb", f"Tenant {tenant.slug} has no InfluxDB read "
                                     "user: its storage was not provisioned.")  # fmt: skip
        try:
            password = self.vault.decrypt(tenant.influx_read_password_encrypted)
        except ValueError as exc:
            raise HistoryUnavailable("history_error", str(exc)) from None
        body = self._query(tenant, _basic(tenant.influx_read_user, password),
                           idle_query(tenant, collector, days))  # fmt: skip
        return _counters(body)

    def _query(self, tenant: Tenant, headers: dict[str, str], query: str) -> dict[str, Any]:
        try:
            response = requests.post(
                self.url + "/query",
                data={"q": query, "db": tenant.influx_database, "epoch": "s"},
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise HistoryUnavailable("history_error", f"InfluxDB at {self.url} did not answer: "
                                     f"{type(exc).__name__}") from None  # fmt: skip
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {}
        errors = [body.get("error")] + [r.get("error") for r in body.get("results", [])]
        problems = [str(error) for error in errors if error]
        if response.status_code != 200 or problems:
            reason = "; ".join(problems) or response.reason
            raise HistoryUnavailable("history_error", f"InfluxDB refused the CPU history query "
                                     f"(HTTP {response.status_code}: {reason})")  # fmt: skip
        return body


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def _counters(body: dict[str, Any]) -> Counters:
    """Each CPU's modes summed per interval; an interval missing one of the CPU's modes is left
    out (its sum would look like the counter jumping)."""
    by_cpu: dict[str, dict[float, dict[str, float]]] = {}
    for result in body.get("results", []):
        for series in result.get("series", []):
            tags = series.get("tags", {})
            moments = by_cpu.setdefault(str(tags.get("cpu", "")), {})
            for moment, value in series.get("values", []):
                if value is not None:
                    moments.setdefault(float(moment), {})[str(tags.get("mode", ""))] = float(value)
    counters: Counters = {}
    for cpu, moments in by_cpu.items():
        modes = {mode for values in moments.values() for mode in values}
        counters[cpu] = [(moment, sum(values.values())) for moment, values in sorted(moments.items())
                         if set(values) == modes]  # fmt: skip
    return counters
