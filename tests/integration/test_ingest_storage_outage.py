"""Ingest while its InfluxDB 1.6.7 does not answer: stopped with SIGSTOP, as a hung process is
(it still accepts connections, and answers nothing). From the audit of 2026-11-25: 8 concurrent
writes were answered 503 after 4, 4, 4.1, 8, 8.1, 8.1, 12 and 12.1 s, each queued group making
its own write after the one ahead had timed out, past Telegraf's 5 s timeout.

Now the writes queued behind the one storage does not answer fail with it, or at their own
deadline (storage.timeout after their arrival, here while the test still holds the one ahead),
without a write of their own; until storage answers again, writes are answered 503 without
asking it, but for one probe at a time; and every write answered 204 is stored. Which writes reach storage is counted
(and the ones that must wait, held) by a wrapper around ingest's own writer, so nothing is timed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from ingest.app import create_app
from ingest.groupcommit import GroupCommitWriter
from ingest.settings import load
from ingest.storage import TimedStorageWriter
from ingest.testing import issue_collector_key
from perfanalysis.testing.servers import InfluxDB, ServerRegistry, wait_until
from tenants import db as database
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration

DEADLINE = 30.0
NOW_S = int(time.time())


class CountedWrites:
    """ingest's storage writer, counting the writes that reach it; the n-th waits while
    ``gates[n]`` is clear (``arrived[n]`` is set once it is there)."""

    def __init__(self, inner: TimedStorageWriter) -> None:
        self.inner = inner
        self.name = inner.name
        self.timeout = inner.timeout
        self.count = 0
        self.gates: dict[int, threading.Event] = {}
        self.arrived: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def hold(self, number: int) -> threading.Event:
        self.arrived[number] = threading.Event()
        gate = self.gates[number] = threading.Event()
        return gate

    def write(self, database: str, payload: bytes, timeout: float | None = None) -> None:
        with self._lock:
            self.count += 1
            number = self.count
        if number in self.gates:
            self.arrived[number].set()
            assert self.gates[number].wait(DEADLINE), "the test never let the write go"
        self.inner.write(database, payload, timeout)

    def health(self) -> str:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def stoppable(servers: ServerRegistry) -> Iterator[InfluxDB]:
    """An InfluxDB of this test's own, running again (SIGCONT) whatever the test left it in."""
    influxdb = servers.influxdb()
    yield influxdb
    if influxdb.pid is not None:
        os.kill(influxdb.pid, signal.SIGCONT)


def test_writes_while_storage_hangs_fail_at_once_and_every_acknowledged_point_is_stored(
    stoppable: InfluxDB, app: Flask, database_url: str
) -> None:
    influxdb = stoppable
    assert influxdb.pid is not None
    with app.app_context():
        key = issue_collector_key(database.session(), app.extensions["pa_hasher"], "hung", "web-01")
    influxdb.create_database(key.database)
    # 2s: the five writes queue within it, whatever the machine's load
    settings = load(["--storage.timeout=2s", "--storage.writes-in-flight=1",
                     "--storage.retry-after=3", "--limits.rate=0"],
                    {"PERFANALYSIS_INGEST_SECRET_KEY": TEST_SECRET,
                     "PERFANALYSIS_INGEST_DATABASE_URL": database_url,
                     "PERFANALYSIS_INGEST_STORAGE_URL": influxdb.url})  # fmt: skip
    ingest = create_app(settings)
    writer = ingest.extensions["ingest"].writer
    assert isinstance(writer, GroupCommitWriter)
    counted = CountedWrites(writer.inner)
    writer.inner = counted
    answers: dict[int, Any] = {}

    def post(number: int) -> Any:
        answer = ingest.test_client().post(
            "/write?precision=s",
            data=f"cpu,n={number} value={number} {NOW_S}",
            headers={"Authorization": f"Token {key.key}"},
        )
        answers[number] = answer
        return answer

    def posting(number: int) -> threading.Thread:
        thread = threading.Thread(target=post, args=(number,))
        thread.start()
        return thread

    def waiting() -> int:
        line = writer._lines.get(key.database)
        return 0 if line is None else len(line.waiting)

    try:
        assert post(0).status_code == 204
        os.kill(influxdb.pid, signal.SIGSTOP)
        lane = counted.hold(2)  # the next write holds its lane until the others queue behind it
        threads = [posting(1)]
        assert counted.arrived[2].wait(DEADLINE)
        threads += [posting(number) for number in range(2, 7)]
        wait_until(lambda: waiting() == 5, DEADLINE, what="five writes queued behind the first")
        lane.set()  # to the stopped InfluxDB: no answer within storage.timeout
        for thread in threads:
            thread.join(DEADLINE)
            assert not thread.is_alive()
        assert [(answers[n].status_code, answers[n].headers["Retry-After"]) for n in range(1, 7)] \
            == [(503, "3")] * 6  # fmt: skip
        assert counted.count == 2, "the queued writes failed with the first, without writing"

        counted.hold(3)  # the next write is the probe: held while another comes
        threads = [posting(7)]
        assert counted.arrived[3].wait(DEADLINE)
        meanwhile = post(8)
        assert (meanwhile.status_code, meanwhile.headers["Retry-After"]) == (503, "3")
        assert counted.count == 3, "answered at once, without asking storage"
    finally:
        os.kill(influxdb.pid, signal.SIGCONT)
        for gate in counted.gates.values():
            gate.set()
    threads[0].join(DEADLINE)
    assert answers[7].status_code in (204, 503)  # 503 if InfluxDB took long to come back

    number = iter(range(9, 1000))
    wait_until(lambda: post(next(number)).status_code == 204, DEADLINE,
               what="a write stored once InfluxDB answers again")  # fmt: skip
    acknowledged = {n for n, answer in answers.items() if answer.status_code == 204}
    rows = influxdb.rows('SELECT "value" FROM "cpu"', db=key.database)
    stored = {int(row["value"]) for row in rows}
    assert acknowledged <= stored, "a write answered 204 is not stored"
    assert writer._outages == {}
    ingest.extensions["ingest"].close()
