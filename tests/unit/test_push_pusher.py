"""The push loop on a real registry, spool and client, against a scripted HTTP server."""

from __future__ import annotations

import errno
import gzip
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.exposition import render
from exporter.model import COUNTER, GAUGE, MetricFamily, family, single
from exporter.push.backoff import Backoff
from exporter.push.client import PushClient
from exporter.push.keyfile import KeyFile
from exporter.push.lineproto import LineEncoder
from exporter.push.metrics import PushMetrics
from exporter.push.pusher import Pusher
from exporter.push.spool import Spool
from exporter.registry import Registry
from perfanalysis.testing.servers import wait_until
from tests.unit.test_push_client import Answer, Received, Scripted, always, scripted_servers


class Counting:
    """A collector whose value rises by one per sample, with a NaN the encoder must skip."""

    name = "counting"

    def __init__(self, series: int = 3) -> None:
        self.series = series
        self.calls = 0

    def collect(self) -> list[MetricFamily]:
        self.calls += 1
        fam = family("test_events_total", "help", COUNTER, "n")
        for n in range(self.series):
            fam.add(float(self.calls), str(n))
        return [fam, single("test_broken", "help", GAUGE, math.nan)]


PER_SAMPLE = 3 + 2  # test_events_total x3, and node_scrape_collector_{duration,success}


@pytest.fixture
def serve() -> Iterator[Callable[..., Scripted]]:
    with scripted_servers() as start:
        yield start


@pytest.fixture
def make_pusher(
    tmp_path: Path,
) -> Iterator[Callable[..., Pusher]]:
    made: list[Pusher] = []

    def make(
        url: str,
        batch_size: int = 5000,
        interval: float = 60.0,
        series: int = 3,
        phase: float | None = None,
        max_bytes: int = 1 << 20,
        segment_bytes: int | None = None,
    ) -> Pusher:
        key = tmp_path / "key"
        key.write_text("pak_x.y")
        registry = Registry([Counting(series)])
        pusher = Pusher(
            registry,
            LineEncoder("h1"),
            Spool(tmp_path / "spool", max_bytes, segment_bytes),
            PushClient(url, KeyFile(str(key)), timeout=2.0),
            Backoff(0.5, 4.0, rand=lambda: 1.0),
            interval,
            batch_size,
            phase,
        )
        registry.extra.append(PushMetrics(pusher))
        made.append(pusher)
        return pusher

    yield make
    for pusher in made:
        pusher.stop(1.0)


def first_series(received: list[Received], measurement: str = "test_events_total") -> list[str]:
    """The lines received of ``measurement``'s first series (``n=0``), in order."""
    return [
        line
        for r in received
        for line in r.lines
        if line.startswith(measurement + ",") and "n=0" in line
    ]


def values_of(received: list[Received], measurement: str = "test_events_total") -> list[float]:
    return [
        float(line.split(" ")[1].removeprefix("value="))
        for line in first_series(received, measurement)
    ]


def metric_lines(pusher: Pusher) -> dict[str, float]:
    text = render(PushMetrics(pusher).collect()).decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if not line.startswith("#")
    }


def test_a_sample_is_spooled_then_sent_and_committed(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url)
    pusher.sample()
    queued = pusher.spool.queued_points
    assert queued >= PER_SAMPLE  # plus the push metrics themselves
    assert pusher.stats.non_finite == 1
    assert pusher.send() == 0.0
    assert pusher.spool.queued_points == 0
    assert pusher.stats.sent == queued
    assert pusher.stats.state == "ok"
    assert pusher.stats.last_success is not None
    [got] = server.received
    assert len(got.lines) == queued
    stamps = {line.rsplit(" ", 1)[1] for line in got.lines}
    assert len(stamps) == 1  # one timestamp per sample, in nanoseconds
    assert abs(int(stamps.pop()) / 1e9 - time.time()) < 60
    assert any(
        line.startswith("perfanalysis_exporter_push_points_queued,host=h1 ") for line in got.lines
    )


def test_unavailable_keeps_everything_and_replays_in_order_merged(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    up = False
    server = serve(lambda _r: Answer(204) if up else Answer(503, headers={"Retry-After": "2"}))
    pusher = make_pusher(server.url)
    pusher.sample()
    assert pusher.send() == pytest.approx(2.4)  # Retry-After plus the spread (rand is 1)
    assert pusher.stats.state == "retrying"
    assert pusher.stats.retried == pusher.spool.queued_points
    pusher.sample()
    pusher.sample()
    queued = pusher.spool.queued_points
    up = True
    assert pusher.send() == 0.0
    assert pusher.spool.queued_points == 0
    assert pusher.stats.sent == queued
    assert len(server.received) == 2  # three records merged into one request
    assert values_of(server.received[-1:]) == [1.0, 2.0, 3.0]
    assert pusher.backoff.attempt == 0


def test_batch_size_bounds_points_per_request(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url, batch_size=4, series=10)
    pusher.sample()
    while pusher.spool.queued_points:
        assert pusher.send() == 0.0
    assert all(len(r.lines) <= 4 for r in server.received)
    assert values_of(server.received) == [1.0]
    assert sum(len(r.lines) for r in server.received) == pusher.stats.sent


def test_bad_data_is_dropped_counted_and_not_retried(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(400, b'{"error":"line 1: bad"}')))
    pusher = make_pusher(server.url)
    pusher.sample()
    queued = pusher.spool.queued_points
    assert pusher.send() == 0.0
    assert pusher.spool.queued_points == 0
    assert pusher.stats.rejected == queued
    assert (
        metric_lines(pusher)['perfanalysis_exporter_push_points_dropped_total{reason="rejected"}']
        == queued
    )


def test_413_lowers_the_batch_size_for_what_follows(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(lambda r: Answer(413) if len(r.lines) > 8 else Answer(204))
    pusher = make_pusher(server.url, series=20)
    pusher.sample()
    pusher.send()
    assert pusher.spool.queued_points == 0
    assert pusher.max_points <= 8
    sent_before = len(server.received)
    pusher.sample()
    while pusher.spool.queued_points:
        pusher.send()
    assert all(len(r.lines) <= 8 for r in server.received[sent_before:])


def test_unauthorized_keeps_the_data_and_reports_it(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(401, b"unknown key")))
    pusher = make_pusher(server.url)
    pusher.sample()
    queued = pusher.spool.queued_points
    assert pusher.send() == 0.5  # the first backoff: the key file did not change
    assert pusher.spool.queued_points == queued
    assert pusher.stats.state == "unauthorized"
    status = pusher.status()
    assert status["status"] == "unauthorized"
    assert "401" in status["last_error"]
    assert metric_lines(pusher)['perfanalysis_exporter_push_requests_total{code="401"}'] == 1


def test_metrics_show_queued_sent_dropped_retried_and_spool(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(503)))
    pusher = make_pusher(server.url)
    pusher.sample()
    pusher.send()
    metrics = metric_lines(pusher)
    queued = pusher.spool.queued_points
    started = metrics.pop("perfanalysis_exporter_push_started_timestamp_seconds")
    assert time.time() - 60 < started <= time.time()
    assert metrics == {
        "perfanalysis_exporter_push_batch_max_points": 5000.0,
        "perfanalysis_exporter_push_last_success_timestamp_seconds": 0.0,
        'perfanalysis_exporter_push_points_dropped_total{reason="non_finite"}': 1.0,
        'perfanalysis_exporter_push_points_dropped_total{reason="rejected"}': 0.0,
        'perfanalysis_exporter_push_points_dropped_total{reason="spool_error"}': 0.0,
        'perfanalysis_exporter_push_points_dropped_total{reason="spool_full"}': 0.0,
        'perfanalysis_exporter_push_points_dropped_total{reason="too_large"}': 0.0,
        "perfanalysis_exporter_push_points_queued": queued,
        "perfanalysis_exporter_push_points_retried_total": queued,
        "perfanalysis_exporter_push_points_sent_total": 0.0,
        "perfanalysis_exporter_push_requests_cut_total": 0.0,
        'perfanalysis_exporter_push_requests_total{code="503"}': 1.0,
        "perfanalysis_exporter_push_samples_skipped_total": 0.0,
        "perfanalysis_exporter_push_spool_bytes": pusher.spool.disk_bytes,
        "perfanalysis_exporter_push_spool_corrupt_total": 0.0,
    }


def test_the_thread_samples_on_schedule_and_stops_promptly(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(204)))
    # a request gets at most the time left until the next sample: 0.2 s, ample on loopback
    # (at 0.05 s one could time out on a loaded machine after ingest took it, and be sent twice)
    interval = 0.2
    pusher = make_pusher(server.url, interval=interval)
    began = time.monotonic()
    pusher.start()
    wait_until(lambda: len(values_of(server.received)) >= 8, 10, 0.01, "eight samples")
    took = time.monotonic() - began
    started = time.monotonic()
    assert pusher.stop(5.0)
    assert time.monotonic() - started < 1.0
    assert took >= 7 * interval - 0.01  # the 8th sample is due 7 intervals after the first
    values = values_of(server.received)
    assert values == [float(v) for v in range(1, len(values) + 1)]  # none lost, none twice


def timestamps_of(received: list[Received]) -> list[float]:
    """The sample times (seconds) of the ``test_events_total`` points received, in order."""
    return [int(line.rsplit(" ", 1)[1]) / 1e9 for line in first_series(received)]


def test_with_a_phase_each_sample_comes_that_far_into_a_wall_clock_interval(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    server = serve(always(Answer(204)))
    interval = 0.5
    started = time.time()
    phase = (started + 0.3) % interval  # the first sample is due 0.3 s after the start
    pusher = make_pusher(server.url, interval=interval, phase=phase)
    pusher.start()
    wait_until(lambda: len(timestamps_of(server.received)) >= 3, 10, 0.01, "three samples")
    first, *later = timestamps_of(server.received)
    assert first >= started + 0.3 - 0.005  # not before its phase
    for sampled in (first, *later):
        late = (sampled - phase) % interval
        assert late < 0.2, f"sampled {late:.3f}s after this host's phase"
    assert pusher.status()["phase_seconds"] == phase


def test_with_a_phase_what_the_spool_kept_waits_for_it_too(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    arrivals: list[float] = []

    def answer(_received: Received) -> Answer:
        arrivals.append(time.time())
        return Answer(204)

    server = serve(answer)
    interval = 0.5
    pusher = make_pusher(server.url, interval=interval)
    pusher.sample()  # kept from before a restart
    assert pusher.spool.queued_points > 0
    started = time.time()
    pusher.phase = (started + 0.3) % interval
    pusher.start()
    wait_until(lambda: len(values_of(server.received)) >= 2, 10, 0.01, "the kept and a new sample")
    assert arrivals[0] >= started + 0.3 - 0.005
    assert values_of(server.received)[:2] == [1.0, 2.0]  # in order, the kept one first


def test_stop_abandons_a_hanging_request_and_keeps_its_batch(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher], tmp_path: Path
) -> None:
    server = serve(always(Answer(204, delay=5.0)))
    pusher = make_pusher(server.url, interval=60.0)
    pusher.start()
    while not server.received:
        time.sleep(0.01)
    started = time.monotonic()
    assert pusher.stop(0.3)
    assert time.monotonic() - started < 1.5
    reopened = Spool(tmp_path / "spool", max_bytes=1 << 20)
    try:
        batch = reopened.read(5000)
        assert batch is not None
        assert (
            gzip.decompress(batch.records[0].payload).decode().splitlines()
            == server.received[0].lines
        )
    finally:
        reopened.close()


def health_of(pusher: Pusher) -> dict[str, Any]:
    """What the exporter's /health says with this pusher."""
    from exporter.push.service import PushingExporterServer

    server = PushingExporterServer(("127.0.0.1", 0), pusher.registry, pusher=pusher)
    try:
        return server.health()
    finally:
        server.server_close()


def test_health_includes_push_status(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    ingest = serve(always(Answer(503, b"storage down")))
    pusher = make_pusher(ingest.url)
    pusher.sample()
    pusher.send()
    health = health_of(pusher)
    assert health["status"] == "degraded"
    push = health["push"]
    assert push["status"] == "retrying"
    assert push["last_success"] is None
    assert push["last_error"] == "503: storage down"
    assert push["queued_points"] == pusher.spool.queued_points
    json.dumps(health)


# -- review fixes: backoff floor, a thread that survives, every point counted once


def test_retry_after_zero_or_a_past_date_backs_off_exponentially(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    headers = iter([{"Retry-After": "0"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}] * 3)
    server = serve(lambda _r: Answer(503, headers=next(headers)))
    pusher = make_pusher(server.url)
    pusher.sample()
    delays = [pusher.send() for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # never 0: rand is 1, the cap 4 s
    assert len(server.received) == 6


def segment_bytes_on_disk(spool: Spool) -> int:
    return sum(p.stat().st_size for p in spool.directory.glob("*.seg"))


def test_the_thread_outlives_a_spool_that_cannot_commit_and_recovers(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EROFS or EIO while removing an acknowledged segment (a filesystem remounted read-only):
    the thread reports spool_error, backs off and goes on; the spool's byte count stays true."""
    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url, interval=0.5, segment_bytes=256)  # requests get 0.5 s
    failing = {"on": True}
    unlink = Path.unlink

    def refusing_unlink(path: Path, missing_ok: bool = False) -> None:
        if failing["on"] and path.suffix == ".seg":
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        unlink(path, missing_ok)

    monkeypatch.setattr(Path, "unlink", refusing_unlink)
    pusher.sample()
    pusher.sample()  # two records, two segments: a commit must remove the first
    pusher.start()
    wait_until(lambda: pusher.stats.state == "spool_error", 10, 0.01, "a failed commit")
    assert pusher.alive
    assert pusher.status()["status"] == "spool_error"
    assert "Read-only file system" in pusher.stats.last_error
    assert pusher.spool.disk_bytes == segment_bytes_on_disk(pusher.spool)
    failing["on"] = False
    wait_until(lambda: pusher.stats.state == "ok", 20, 0.01, "the thread pushing again")
    samples_then = len(values_of(server.received))
    wait_until(lambda: len(values_of(server.received)) > samples_then, 20, 0.01, "a new sample")
    assert pusher.stop(5.0)
    values = values_of(server.received)
    assert values == [float(v) for v in range(1, len(values) + 1)]  # none lost, none twice
    assert pusher.stats.sent == sum(len(r.lines) for r in server.received)
    assert pusher.spool.disk_bytes == segment_bytes_on_disk(pusher.spool)


def test_a_dead_thread_is_reported_stopped_and_degrades_health(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    ingest = serve(always(Answer(204)))
    pusher = make_pusher(ingest.url)

    pusher._run = lambda: None  # type: ignore[method-assign]  # the thread ends at once
    assert pusher.status()["status"] == "starting"
    pusher.start()
    thread = pusher._thread
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()
    assert pusher.status()["status"] == "stopped"
    assert health_of(pusher)["status"] == "degraded"


def test_a_spool_that_cannot_start_a_segment_counts_every_point_it_lost(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve(always(Answer(503)))
    pusher = make_pusher(server.url, batch_size=4, series=40, segment_bytes=256)

    def no_space(seq: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    pusher.sample()
    produced = pusher.spool.queued_points
    monkeypatch.setattr(pusher.spool, "_new_segment", no_space)
    pusher.sample()  # the same points again (the push metrics aside): each chunk needs a segment
    lost = pusher.stats.spool_error
    assert lost == 4  # the chunk sent at once, refused (503); the others wait for the backoff
    held = sum(points for _, points in pusher._held)
    assert held > 0
    # the spool dropped what it held, oldest first, before finding nothing left to drop
    spool = pusher.spool
    assert spool.queued_points + spool.dropped_points + lost + held == 2 * produced
    assert "No space left on device" in pusher.status()["spool_error"]
    assert pusher.stats.state == "spool_error"


class Noisy:
    """``series`` points with random values: gzip gains little on them, as on real floats."""

    name = "noisy"

    def __init__(self, series: int) -> None:
        self.series = series
        self.random = random.Random(5)

    def collect(self) -> list[MetricFamily]:
        fam = family("test_noise", "help", GAUGE, "n")
        for n in range(self.series):
            fam.add(self.random.random() * 1e6, str(n))
        return [fam]


def test_a_chunk_too_large_for_a_segment_is_split_not_dropped(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    """At the smallest spool (64KiB, 4KiB segments) a 5,000-point chunk compresses to ~80 KB."""
    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url, max_bytes=64 << 10)  # the flag's minimum
    pusher.registry.collectors[:] = [Noisy(2000)]  # ~33 KB: fits the spool, not a segment
    pusher.sample()
    assert pusher.spool.dropped_points == 0
    assert pusher.spool.queued_points >= 2000
    sizes = [p.stat().st_size for p in pusher.spool.directory.glob("*.seg")]
    assert max(sizes) <= pusher.spool.segment_bytes
    queued = pusher.spool.queued_points
    while pusher.spool.queued_points:
        assert pusher.send() == 0.0
    assert pusher.stats.sent == queued
    assert sum(len(r.lines) for r in server.received) == queued

    pusher.registry.collectors[:] = [Noisy(5000)]  # ~84 KB: more than the whole spool holds
    pusher.sample()
    dropped, queued = pusher.spool.dropped_points, pusher.spool.queued_points
    assert queued >= 2500  # the newest parts are kept; before, the whole chunk was dropped
    assert dropped + queued >= 5000  # and the oldest parts dropped are counted
    assert pusher.spool.disk_bytes <= 64 << 10


def test_a_single_point_that_can_never_fit_is_dropped_and_counted(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    class Huge:
        name = "huge"

        def collect(self) -> list[MetricFamily]:
            fam = family("test_huge", "help", GAUGE, "blob")
            fam.add(1.0, random.Random(3).randbytes(60_000).hex())  # ~75 KB compressed
            fam.add(2.0, "small")
            return [fam]

    server = serve(always(Answer(204)))
    pusher = make_pusher(server.url, max_bytes=64 << 10)  # the flag's minimum
    pusher.registry.collectors[:] = [Huge()]
    pusher.sample()
    assert pusher.spool.dropped_points == 1
    while pusher.spool.queued_points:
        pusher.send()
    lines = [line for r in server.received for line in r.lines]
    assert any(line.startswith("test_huge,blob=small,") for line in lines)
    assert not any("test_huge" in line and "blob=small" not in line for line in lines)


def test_a_batch_refused_whole_is_not_a_success(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    refusing = {"on": True}
    server = serve(
        lambda _r: Answer(400, b'{"error":"line 1: bad"}') if refusing["on"] else Answer(204)
    )
    pusher = make_pusher(server.url)
    for _ in range(2):
        pusher.sample()
        assert pusher.send() == 0.0
    assert pusher.stats.sent == 0
    assert pusher.stats.last_success is None
    assert pusher.stats.state == "rejecting"
    assert metric_lines(pusher)["perfanalysis_exporter_push_last_success_timestamp_seconds"] == 0
    health = health_of(pusher)
    assert health["status"] == "degraded"
    assert health["push"]["status"] == "rejecting"
    assert "400" in health["push"]["last_error"]
    refusing["on"] = False
    pusher.sample()
    assert pusher.send() == 0.0
    assert pusher.stats.state == "ok"
    assert pusher.stats.last_success is not None


def test_a_413_split_failing_part_way_counts_each_point_once(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    """The first parts acknowledged, a later one 503 twice: each retry makes that request again,
    none acknowledged is sent again, and each point is counted once, as sent. (Before, the batch
    was kept and sent again whole at each retry, the 413 and the acknowledged parts too.)"""
    failures = {"left": 2}
    answered: list[tuple[int, int]] = []  # (status, lines)

    def answer(received: Received) -> Answer:
        if len(received.lines) > 4:
            status = 413
        elif failures["left"] and any(",n=7 " in line for line in received.lines):
            failures["left"] -= 1
            status = 503
        else:
            status = 204
        answered.append((status, len(received.lines)))
        return Answer(status)

    server = serve(answer)
    pusher = make_pusher(server.url, series=8)
    pusher.sample()
    queued = pusher.spool.queued_points
    for _ in range(2):
        assert pusher.send() > 0  # the backoff
        assert pusher.stats.sent == pusher.spool.queued_points - queued == 0  # one record
    assert pusher.send() == 0.0
    assert pusher.spool.queued_points == 0
    assert (pusher.stats.sent, pusher.stats.rejected) == (queued, 0)
    taken = [r for r, (status, _) in zip(server.received, answered, strict=True) if status == 204]
    acknowledged = [line for r in taken for line in r.lines]
    assert sorted(acknowledged) == sorted(set(acknowledged))  # none twice
    assert len(acknowledged) == queued
    failed = [i for i, (status, _) in enumerate(answered) if status == 503]
    assert len(failed) == 2
    assert [n for _, n in answered].count(queued) == 1  # the 413'd batch was not sent again
    again = [tuple(server.received[i].lines) for i in (*failed, failed[-1] + 1)]
    assert len(set(again)) == 1  # the failed request, made again at each retry, then taken
    assert pusher.stats.retried == 2 * len(again[0])
