"""The spool directory removed and made again under a running exporter (rm -rf; mkdir, as
configuration management does), and a second exporter started on it meanwhile.

Before, the first exporter wrote segments into the new directory without its lock, so the second
was let in and both wrote there, colliding on segment numbers. Now the first notices at its next
segment (64 KiB spool: 4 KiB segments, a new one every few samples), finds the directory held,
refuses it -- /health says spool_error, in use by another exporter, and samples are sent from
memory -- and takes the directory over once the second has stopped.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perfanalysis.testing.servers import ExporterProcess, wait_until
from tests.integration.test_push_crash import push_args
from tests.unit.test_push_client import Answer, Received, Scripted, scripted_servers

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[Scripted]:
    def answer(_received: Received) -> Answer:
        return Answer(204)

    with scripted_servers() as start:
        yield start(answer)


def push_health(exporter: ExporterProcess) -> dict[str, Any]:
    push: dict[str, Any] = exporter.request("GET", "/health").json()["push"]
    return push


def lines_from(server: Scripted, host: str) -> int:
    return sum(1 for r in server.received for line in r.lines if f",host={host}," in line)


def test_a_replaced_spool_directory_held_by_another_exporter_is_refused_then_taken_back(
    receiver: Scripted, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"

    def args(host: str) -> list[str]:
        return push_args(
            receiver.url, tmp_path, **{"push.host": host, "push.spool-max-bytes": "64KiB"}
        )

    first = ExporterProcess(tmp_path / "one", args("one")).start()
    second = ExporterProcess(tmp_path / "two", args("two"))
    try:
        wait_until(lambda: push_health(first)["status"] == "ok", timeout=10, what="push ok")
        shutil.rmtree(spool)
        spool.mkdir()
        second.start(timeout=20)  # the lock in the new directory is free: it is let in
        refused = wait_until(
            lambda: (p := push_health(first))["status"] == "spool_error" and p,
            timeout=30,
            what="the first exporter to notice at its next segment",
        )
        assert "in use by another exporter" in refused["spool_error"]
        assert refused["queued_points"] == 0
        assert refused["spool_bytes"] == 0
        sent = lines_from(receiver, "one")
        wait_until(
            lambda: lines_from(receiver, "one") > sent, timeout=10, what="a sample from memory"
        )
        assert push_health(first)["status"] == "spool_error"
        assert push_health(second)["status"] == "ok"  # its segments untouched by the first
        second.stop()
        wait_until(
            lambda: push_health(first)["status"] == "ok",
            timeout=10,
            what="the first exporter to take the directory over",
        )
        wait_until(lambda: push_health(first)["spool_bytes"] > 0, timeout=10, what="spooling")
        log = first.log_tail()
        assert log.count("removed, replaced or emptied while in use") == 1
        assert log.count("in use by another exporter") == 1  # logged when it began, once
    finally:
        second.stop()
        first.stop()
