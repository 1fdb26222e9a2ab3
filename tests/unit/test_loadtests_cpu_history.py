"""Right-sizing's CPU history from InfluxDB, against a canned answer: iowait counts as idle, as in
the load test's own busy% (``1 - (idle + iowait) / total``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tenants.crypto import Vault
from tenants.loadtests import cpu_history
from tenants.loadtests.cpu_history import InfluxCpuHistory
from tenants.loadtests.rightsizing import busy_percents
from tenants.models import Collector, Tenant
from tests.conftest import TEST_SECRET


def series(cpu: str, mode: str, values: list[tuple[int, float | None]]) -> dict[str, Any]:
    return {"name": "node_cpu_seconds_total", "tags": {"cpu": cpu, "mode": mode},
            "columns": ["time", "last"], "values": [list(value) for value in values]}  # fmt: skip


def influx_answer(body: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    return response


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The queries sent; the answer: two CPUs over three minutes.

    cpu0 spends 0-60 s waiting on its disk (iowait +45 s, idle +15 s) and is idle at 120 s
    without an iowait value (left out); cpu1 idles the whole time."""
    queries: list[str] = []
    body = {"results": [{"statement_id": 0, "series": [
        series("0", "idle", [(0, 100.0), (60, 115.0), (120, 175.0)]),
        series("0", "iowait", [(0, 10.0), (60, 55.0), (120, None)]),
        series("1", "idle", [(0, 500.0), (60, 560.0), (120, 620.0)]),
        series("1", "iowait", [(0, 1.0), (60, 1.0), (120, 1.0)]),
    ]}]}  # fmt: skip

    def post(url: str, data: dict[str, str], **_: Any) -> requests.Response:
        queries.append(data["q"])
        return influx_answer(body)

    monkeypatch.setattr(cpu_history.requests, "post", post)
    return queries


def test_iowait_counts_as_idle(asked: list[str]) -> None:
    vault = Vault(TEST_SECRET)
    tenant = Tenant(slug="a", influx_database="pa_a", influx_read_user="reader",
                    influx_read_password_encrypted=vault.encrypt("secret"))  # fmt: skip
    history = InfluxCpuHistory("http://influx.test:8086", vault)
    counters = history.idle_counters(tenant, Collector(name="web-a"), 1)
    assert counters == {"0": [(0.0, 110.0), (60.0, 170.0)],
                        "1": [(0.0, 501.0), (60.0, 561.0), (120.0, 621.0)]}  # fmt: skip
    assert busy_percents(counters) == [0.0]  # waiting on a disk is not CPU work
    [query] = asked
    assert "\"mode\" = 'idle' OR \"mode\" = 'iowait'" in query
    assert query.endswith('GROUP BY time(60s), "cpu", "mode" fill(none)')
