"""Our exporter as a real process pushing to a scripted receiver: kill -9 while it spools, SIGTERM.

The receiver stands in for ingest's status codes only (503 while "storage is down", then 204);
the end-to-end tests through the real ingest service and InfluxDB come with ingest.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfanalysis.testing.servers import ExporterProcess, ServerStartError, wait_until
from tests.unit.test_push_client import Answer, Received, Scripted, scripted_servers

pytestmark = pytest.mark.integration

HOST = "itest"
COLLECTORS = ["--collector.disable-defaults", "--collector.loadavg", "--collector.meminfo"]
_UNESCAPED_SPACE = re.compile(r"(?<!\\) ")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_EQUALS = re.compile(r"(?<!\\)=")


def parse_line(line: str) -> tuple[str, tuple[tuple[str, str], ...], float, int]:
    """Split one of our lines strictly; AssertionError if it is not well-formed."""
    parts = _UNESCAPED_SPACE.split(line)
    assert len(parts) == 3, line
    series, field, stamp = parts
    measurement, *tags = _UNESCAPED_COMMA.split(series)
    assert measurement, line
    pairs = []
    for tag in tags:
        key, value = _UNESCAPED_EQUALS.split(tag)  # exactly one unescaped "="
        assert key, line
        assert value, line  # empty tag values are never sent
        pairs.append((key, value))
    assert [k for k, _ in pairs] == sorted(k for k, _ in pairs), line
    assert field.startswith("value="), line
    return measurement, tuple(pairs), float(field[len("value=") :]), int(stamp)


@pytest.fixture
def receiver() -> Iterator[tuple[Scripted, dict[str, bool]]]:
    state = {"up": False}

    def answer(_received: Received) -> Answer:
        return Answer(204) if state["up"] else Answer(503, b"storage down")

    with scripted_servers() as start:
        yield start(answer), state


def gauge(exporter: ExporterProcess, name: str) -> float:
    for line in exporter.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not served")


def push_args(url: str, tmp_path: Path, **overrides: str) -> list[str]:
    key = tmp_path / "collector.key"
    key.write_text("pak_itest.secret\n")
    key.chmod(0o600)
    settings = {
        "push.url": url,
        "push.key-file": str(key),
        "push.interval": "1s",  # the shortest accepted
        "push.spool-dir": str(tmp_path / "spool"),
        "push.max-backoff": "300ms",
        "push.timeout": "2s",
        "push.host": HOST,
        **overrides,
    }
    return [*COLLECTORS, *(f"--{flag}={value}" for flag, value in settings.items())]


def test_kill_9_while_spooling_loses_nothing_synced_and_replays_in_order(
    receiver: tuple[Scripted, dict[str, bool]], tmp_path: Path
) -> None:
    server, state = receiver
    exporter = ExporterProcess(tmp_path / "exporter", push_args(server.url, tmp_path)).start()
    try:
        kills: list[tuple[int, float]] = []  # (time of kill in ns, points queued just before)
        rng = random.Random(7)
        for _ in range(3):
            time.sleep(2.0)  # two samples at least: the first comes within an interval (phase)
            queued = gauge(exporter, "perfanalysis_exporter_push_points_queued")
            time.sleep(rng.uniform(0.0, 1.0))  # land anywhere in a sample cycle
            kills.append((time.time_ns(), queued))
            exporter.kill()
            exporter.start()
            # everything counted as queued was fsynced: it is all still there after the crash
            assert gauge(exporter, "perfanalysis_exporter_push_points_queued") >= queued
        time.sleep(2.0)  # the last process also spools and retries while storage is "down"
        # (its first send waits for its phase, up to an interval)
        assert all(r.lines for r in server.received)
        offered = {line for r in server.received for line in r.lines}
        cut = len(server.received)
        state["up"] = True
        wait_until(
            lambda: gauge(exporter, "perfanalysis_exporter_push_points_queued") == 0,
            timeout=20,
            what="the spool to drain",
        )
        push = wait_until(
            lambda: (
                (p := exporter.request("GET", "/health").json()["push"])["status"] == "ok" and p
            ),
            timeout=5,
            what="/health to report push ok",
        )
        assert push["last_error"] == "503: storage down"
        assert push["last_success"] is not None
    finally:
        exporter.stop()

    accepted = [line for r in server.received[cut:] for line in r.lines]
    parsed = [parse_line(line) for line in accepted]  # every line well-formed, none corrupt
    assert all(dict(tags)["host"] == HOST for _, tags, _, _ in parsed)
    stamps = [stamp for *_, stamp in parsed]
    assert stamps == sorted(stamps)  # replayed strictly in order, across the three restarts
    points = {(m, tags, stamp) for m, tags, _, stamp in parsed}
    assert len(points) == len(parsed)  # nothing acknowledged before the kills: no duplicates
    assert offered <= set(accepted)  # whatever was read from the spool once was delivered
    for killed_at, queued in kills:
        before = sum(1 for *_, stamp in points if stamp <= killed_at)
        assert before >= queued, (killed_at, queued, before)
    samples = {stamp for *_, stamp in points}
    assert len(samples) >= 6  # two or more per process killed


def test_sigterm_abandons_a_hanging_request_and_keeps_the_spool(tmp_path: Path) -> None:
    with scripted_servers() as start:
        hanging = start(lambda _r: Answer(204, delay=30.0))
        exporter = ExporterProcess(
            tmp_path / "exporter",
            # the interval too: a request never runs into the next sample
            push_args(hanging.url, tmp_path, **{"push.timeout": "60s", "push.interval": "10s"}),
        ).start()
        wait_until(lambda: hanging.received, timeout=20, what="the first push")
        started = time.monotonic()
        assert exporter.stop() == 0
        assert time.monotonic() - started < 9.0  # 5 s for the request in flight, then abandoned
        log = exporter.log_tail()
        assert "abandoning it" in log
        fast = start(lambda _r: Answer(204))
        exporter.args = push_args(fast.url, tmp_path)
        exporter.start()
        try:
            wait_until(lambda: fast.received, timeout=10, what="the replay")
        finally:
            exporter.stop()
        in_flight = hanging.received[0].lines
        assert fast.received[0].lines[: len(in_flight)] == in_flight  # kept, and sent first


def test_a_second_exporter_on_the_same_spool_refuses_to_start(
    receiver: tuple[Scripted, dict[str, bool]], tmp_path: Path
) -> None:
    server, _ = receiver
    first = ExporterProcess(tmp_path / "one", push_args(server.url, tmp_path)).start()
    second = ExporterProcess(tmp_path / "two", push_args(server.url, tmp_path))
    try:
        with pytest.raises(ServerStartError, match="in use by another exporter"):
            second.start(timeout=20)
    finally:
        first.stop()
        second.stop()


def test_bad_push_settings_stop_the_exporter_at_start(tmp_path: Path) -> None:
    exporter = ExporterProcess(tmp_path / "exporter", [*COLLECTORS, "--push.url=ftp://x"])
    with pytest.raises(ServerStartError, match="http or https") as caught:
        exporter.start(timeout=20)
    assert "needs --push.key-file" not in str(caught.value)  # one problem per flag, clearly
