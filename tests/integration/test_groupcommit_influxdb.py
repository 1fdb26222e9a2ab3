"""Group commit against the real InfluxDB 1.6.7: a group that storage refuses in part is written
again member by member, and every point is stored exactly once."""

from __future__ import annotations

import threading
import time

import pytest

from ingest.groupcommit import GroupCommitWriter
from ingest.storage import StorageConflict, V1Writer
from perfanalysis.testing.servers import InfluxDB, ServerRegistry, wait_until

pytestmark = pytest.mark.integration

DEADLINE = 10.0


class HeldFirstWrite:
    """The real writer, except that the first write waits until ``release`` is set."""

    name = "v1"

    def __init__(self, inner: V1Writer) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.started = threading.Event()
        self.writes = 0

    def write(self, database: str, payload: bytes) -> None:
        self.writes += 1
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(DEADLINE)
        self.inner.write(database, payload)

    def health(self) -> str:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()


def test_a_partly_refused_group_stores_every_good_point_once_and_refuses_only_the_bad_request(
    servers: ServerRegistry,
) -> None:
    influxdb: InfluxDB = servers.influxdb()
    influxdb.create_database("tenant_a")
    now = time.time_ns()
    influxdb_writer = V1Writer(influxdb.url, "", "", timeout=10)
    influxdb_writer.write("tenant_a", b"cpu value=1 %d" % now)  # cpu's value is a float
    held = HeldFirstWrite(influxdb_writer)
    writer = GroupCommitWriter(held, lanes=1, max_bytes=1 << 20)
    payloads = {
        "first": b"\n".join(b"mem,n=%d value=1 %d" % (n, now) for n in range(10)),
        "good": b"\n".join(b"disk,n=%d value=2 %d" % (n, now) for n in range(20)),
        "conflict": b"cpu value=5i %d\nload value=1 %d" % (now - 1, now),
        "also good": b"\n".join(b"net,n=%d value=3 %d" % (n, now) for n in range(30)),
    }
    outcome: dict[str, BaseException | None] = {}

    def request(name: str) -> None:
        try:
            writer.write("tenant_a", payloads[name])
            outcome[name] = None
        except Exception as exc:
            outcome[name] = exc

    threads = [threading.Thread(target=request, args=("first",))]
    threads[0].start()
    assert held.started.wait(DEADLINE)
    for name in ("good", "conflict", "also good"):
        threads.append(threading.Thread(target=request, args=(name,)))
        threads[-1].start()
    wait_until(lambda: len(writer._lines["tenant_a"].waiting) == 3, DEADLINE,
               what="three requests queued behind the first")  # fmt: skip
    held.release.set()
    for thread in threads:
        thread.join(DEADLINE)
    assert [outcome[name] for name in ("first", "good", "also good")] == [None, None, None]
    assert isinstance(outcome["conflict"], StorageConflict)
    assert "field type conflict" in outcome["conflict"].message
    # the first, the group (refused in part), then each member of the group alone
    assert held.writes == 1 + 1 + 3
    result = influxdb.query("SELECT count(value) FROM /.*/", db="tenant_a")["results"][0]
    counts = {series["name"]: series["values"][0][1] for series in result["series"]}
    assert counts == {"mem": 10, "disk": 20, "net": 30, "load": 1, "cpu": 1}
    influxdb_writer.close()
