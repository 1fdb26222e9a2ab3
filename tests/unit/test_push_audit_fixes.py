"""The push path's audit fixes: a full spool file system, spool_error in /health, 413 on one
point, push metrics with --web.disable-exporter-metrics, and flag values that cannot work.

A full file system is faked: every write that would grow the spool directory's files past a
capacity fails with ENOSPC (or another errno: EDQUOT, EIO...), as on a small tmpfs (writing a
file over in place still works).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import exporter.push.spool as spool_module
from exporter.app import build_registry
from exporter.config import load
from exporter.exposition import render
from exporter.push.client import Verdict
from exporter.push.pusher import RECOVER_AFTER, Pusher
from exporter.push.service import PushingExporterServer, build_pusher
from exporter.push.spool import SEGMENT_HEADER_SIZE, Spool, SpoolError
from perfanalysis.config import ConfigError
from tests.unit.test_push_client import Answer, Received, Scripted, always, body, client_for, lines
from tests.unit.test_push_pusher import make_pusher, metric_lines, serve
from tests.unit.test_push_spool import RECORD, SEGMENT, drain, fill, open_spool, opened, payload

__all__ = ["make_pusher", "opened", "serve"]  # fixtures used by name


class FullDisk:
    """Fakes a file system of ``capacity`` bytes under the spool's writes (see the docstring)."""

    def __init__(self, directory: Path, capacity: int, error: int = errno.ENOSPC) -> None:
        self.directory = directory
        self.capacity = capacity
        self.error = error
        self.refused = 0
        self._write_all = spool_module._write_all

    def used(self) -> int:
        if not self.directory.exists():
            return 0
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def write_all(self, fd: int, data: bytes) -> None:
        if self.used() + len(data) > self.capacity:
            self.refused += 1
            raise OSError(self.error, os.strerror(self.error))
        self._write_all(fd, data)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FullDisk]:
    def make(directory: Path, capacity: int, error: int = errno.ENOSPC) -> FullDisk:
        disk = FullDisk(directory, capacity, error)
        monkeypatch.setattr(spool_module, "_write_all", disk.write_all)
        return disk

    return make


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


# -- 1. a full spool file system


def test_a_fully_acknowledged_active_segment_gives_its_space_back_on_a_full_disk(
    tmp_path: Path, opened: list[Spool], full_disk: Callable[[Path, int], FullDisk]
) -> None:
    """Before: the acknowledged records stayed in the active segment (it rolls over only at
    segment_bytes), so once the disk was full every append failed for good."""
    spool = open_spool(opened, tmp_path, segments=10)  # bound far above the disk
    disk = full_disk(tmp_path, capacity=spool_module.STATE_SIZE + SEGMENT_HEADER_SIZE + 2 * RECORD)
    fill(spool, range(2))  # the disk is full now
    assert drain(spool) == [0, 1]  # ingest acknowledged everything
    spool.append(payload(3), 10)
    assert disk.refused == 1  # this append found the disk full once, then had room
    assert spool.dropped_points == 0  # what it removed was acknowledged: nothing lost
    assert spool.disk_bytes == SEGMENT_HEADER_SIZE + RECORD
    assert spool.disk_bytes == sum(p.stat().st_size for p in segment_files(tmp_path))
    fill(spool, range(4, 5))
    spool.close()
    reopened = open_spool(opened, tmp_path)
    assert drain(reopened) == [3, 4]  # nothing acknowledged comes back, nothing new is lost


def test_giving_back_space_survives_a_crash_with_a_stale_state(
    tmp_path: Path, opened: list[Spool], full_disk: Callable[[Path, int], FullDisk]
) -> None:
    """The state is written over in place without a sync: after a machine crash it may still
    name the removed segment. The replay then starts at the segment that replaced it."""
    spool = open_spool(opened, tmp_path)
    full_disk(tmp_path, capacity=spool_module.STATE_SIZE + SEGMENT_HEADER_SIZE + 2 * RECORD)
    fill(spool, range(2))
    assert drain(spool) == [0, 1]
    stale = (tmp_path / "state").read_bytes()  # names the full segment, at its end
    spool.append(payload(2), 10)
    spool.close()
    (tmp_path / "state").write_bytes(stale)
    assert drain(open_spool(opened, tmp_path)) == [2]


def test_the_spool_opens_on_a_full_disk_and_appends_once_there_is_room(
    tmp_path: Path, opened: list[Spool], full_disk: Callable[[Path, int], FullDisk]
) -> None:
    """Before: a full disk (another file filled it) made opening fail: the exporter exited."""
    disk = full_disk(tmp_path / "spool", capacity=0)
    spool = Spool(tmp_path / "spool", max_bytes=10 * SEGMENT, segment_bytes=SEGMENT)
    opened.append(spool)
    assert spool.unwritable is not None
    assert "No space left on device" in spool.unwritable
    assert spool.queued_points == 0
    assert spool.read(10) is None
    with pytest.raises(SpoolError, match="No space left on device"):
        spool.append(payload(0), 10)
    assert segment_files(tmp_path / "spool") == []
    disk.capacity = 1 << 20  # the other file was removed
    fill(spool, range(1, 3))
    assert spool.unwritable is None
    assert drain(spool) == [1, 2]


def test_a_restart_on_a_full_disk_removes_acknowledged_segments_before_writing(
    tmp_path: Path, opened: list[Spool], full_disk: Callable[[Path, int], FullDisk]
) -> None:
    """Before: opening started a segment and replaced the state before removing what was
    acknowledged, so a spool that had filled the disk could not be opened again."""
    spool = open_spool(opened, tmp_path)
    fill(spool, range(2))
    assert drain(spool) == [0, 1]
    spool.close()
    full_disk(tmp_path, capacity=sum(p.stat().st_size for p in tmp_path.iterdir()))
    spool = open_spool(opened, tmp_path)
    assert spool.unwritable is None
    fill(spool, range(2, 3))
    assert drain(spool) == [2]


def test_other_errors_still_fail_the_opening(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SpoolError, match="cannot open the spool"):
        Spool(tmp_path / "file" / "spool", max_bytes=10 * SEGMENT, segment_bytes=SEGMENT)


@pytest.fixture
def push_values(tmp_path: Path) -> Callable[..., dict[str, object]]:
    key = tmp_path / "key"
    key.write_text("pak_x.y\n")
    key.chmod(0o600)

    def values(url: str, *flags: str) -> dict[str, object]:
        return load(
            [
                f"--push.url={url}",
                f"--push.key-file={key}",
                f"--push.spool-dir={tmp_path / 'spool'}",
                "--collector.disable-defaults",
                "--collector.loadavg",
                *flags,
            ],
            {},
        )

    return values


def health_of(pusher: Pusher) -> dict[str, object]:
    server = PushingExporterServer(("127.0.0.1", 0), pusher.registry, pusher=pusher)
    try:
        return server.health()
    finally:
        server.server_close()


def test_the_exporter_starts_on_a_full_disk_says_spool_error_and_sends_samples_directly(
    tmp_path: Path,
    serve: Callable[..., Scripted],
    push_values: Callable[..., dict[str, object]],
    full_disk: Callable[[Path, int], FullDisk],
) -> None:
    """Before: build_pusher raised PushSetupError (``--push.spool-dir: ... No space left``)."""
    server = serve(always(Answer(204)))
    values = push_values(server.url)
    disk = full_disk(tmp_path / "spool", capacity=0)
    pusher = build_pusher(values, build_registry(values))
    try:
        health = health_of(pusher)
        assert health["status"] == "degraded"
        push = health["push"]
        assert isinstance(push, dict)
        assert push["status"] == "spool_error"
        assert "No space left on device" in push["spool_error"]
        pusher.sample()  # the spool cannot take it: sent at once from memory
        assert pusher.stats.spool_error == 0
        assert pusher.stats.sent == sum(len(r.lines) for r in server.received) > 0
        assert pusher.status()["status"] == "spool_error"  # no crash safety meanwhile
        disk.capacity = 1 << 20
        pusher.sample()
        assert pusher.spool.queued_points > 0
        assert pusher.send() == 0.0
        assert pusher.status()["status"] == "ok"
        assert pusher.status()["spool_error"] is None
    finally:
        pusher.stop(1.0)


# -- 2. /health says spool_error when an append fails


def test_an_append_that_fails_reports_spool_error_whatever_sending_does(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: the append's failure was counted but left the state as it was: /health said ok
    (or retrying) while every sample was lost."""
    refusing = {"on": True}
    server = serve(lambda _r: Answer(503, b"storage down") if refusing["on"] else Answer(204))
    pusher = make_pusher(server.url)
    pusher.sample()
    assert pusher.send() > 0  # 503: a retry is pending
    assert pusher.stats.state == "retrying"
    append = pusher.spool.append

    def no_space(payload: bytes, points: int, sync: bool = True) -> None:
        raise SpoolError("cannot append to x.seg: [Errno 28] No space left on device")

    monkeypatch.setattr(pusher.spool, "append", no_space)
    requests = len(server.received)
    pusher.sample()
    assert len(server.received) == requests  # a retry is pending: not sent at once either
    assert pusher._held  # kept in memory for the end of the backoff
    assert pusher.stats.spool_error == 0
    health = health_of(pusher)
    assert health["status"] == "degraded"
    push = health["push"]
    assert isinstance(push, dict)
    assert push["status"] == "spool_error"
    assert "No space left on device" in push["spool_error"]
    pusher.send()  # 503 again: the spool failing still shows first
    assert pusher.status()["status"] == "spool_error"
    assert pusher.status()["last_error"] == "503: storage down"
    refusing["on"] = False
    while pusher.spool.queued_points:
        pusher.send()
    assert pusher.status()["status"] == "spool_error"  # sending works, the spool does not
    monkeypatch.setattr(pusher.spool, "append", append)
    pusher.sample()
    assert pusher.status()["status"] == "ok"  # sending was ok: back to it
    assert pusher.status()["spool_error"] is None


def test_what_the_spool_cannot_take_is_sent_at_once_or_after_the_backoff_or_counted_lost(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([Answer(204), Answer(503), Answer(204)])
    server = serve(lambda _r: next(answers))
    pusher = make_pusher(server.url)
    pusher.registry.extra.clear()  # the same points in every sample

    def no_space(payload: bytes, points: int, sync: bool = True) -> None:
        raise SpoolError("No space left on device")

    monkeypatch.setattr(pusher.spool, "append", no_space)
    pusher.sample()
    sent = len(server.received[0].lines)
    assert pusher.stats.sent == sent
    assert pusher.stats.spool_error == 0
    assert pusher.stats.last_success is not None
    pusher.sample()  # 503: lost, counted; and a backoff starts
    assert pusher.stats.spool_error == sent
    assert pusher.stats.sent == sent
    pusher.sample()  # in the backoff: kept, not tried yet
    assert len(server.received) == 2
    assert pusher.stats.spool_error == sent
    assert sum(points for _, points in pusher._held) == sent
    pusher._next_sample = time.monotonic() + 60.0
    give_up = time.monotonic() + 10.0
    while pusher._held:  # the push loop's steps: the backoff waited out, then the send
        assert time.monotonic() < give_up, "the held chunk was never sent"
        wait = pusher._step()
        if wait > 0:
            pusher._stop.wait(wait)
    assert len(server.received) == 3
    assert pusher.stats.sent == 2 * sent
    assert pusher.stats.spool_error == sent
    lines_of = metric_lines(pusher)
    assert lines_of['perfanalysis_exporter_push_points_dropped_total{reason="spool_error"}'] == (
        sent
    )


# -- 3. 413


def test_a_point_too_large_on_its_own_is_dropped_as_too_large_not_a_batch_size(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    """Before: the 413 answered to the pair holding the bad point counted as the batch size
    found too large, and the point counted as rejected."""
    server = serve(lambda r: Answer(413) if any(" 1005" in x for x in r.lines) else Answer(204))
    delivery = client_for(server.url, key_file).deliver(body(lines(16)), 16)
    assert delivery.verdict is Verdict.SETTLED
    assert (delivery.sent, delivery.rejected, delivery.too_large) == (15, 0, 1)
    assert delivery.too_large_at is None
    assert "too large on its own" in delivery.error


def test_a_batch_too_large_by_size_is_still_found(
    serve: Callable[..., Scripted], key_file: Path
) -> None:
    too_large = {"at": 5}
    server = serve(lambda r: Answer(413) if len(r.lines) >= too_large["at"] else Answer(204))
    delivery = client_for(server.url, key_file).deliver(body(lines(16)), 16)
    assert (delivery.sent, delivery.too_large, delivery.too_large_at) == (16, 0, 8)
    # a size limit and a bad point together: the size is found, the point dropped
    server.answer = lambda r: (
        Answer(413) if len(r.lines) >= 5 or any(" 1005" in x for x in r.lines) else Answer(204)
    )
    delivery = client_for(server.url, key_file).deliver(body(lines(16)), 16)
    assert (delivery.sent, delivery.too_large, delivery.too_large_at) == (15, 1, 8)


def test_one_point_too_large_leaves_the_batch_size_alone(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: batches were cut to one point for good (one request and fdatasync per point)."""
    server = serve(lambda r: Answer(413) if any(",n=1 " in x for x in r.lines) else Answer(204))
    pusher = make_pusher(server.url, series=20)
    for _ in range(3):
        pusher.sample()
        while pusher.spool.queued_points:
            assert pusher.send() == 0.0
    assert pusher.max_points == 5000
    assert pusher.status()["max_batch_points"] == 5000
    assert pusher.stats.too_large == 3
    assert pusher.stats.rejected == 0
    metrics = metric_lines(pusher)
    assert metrics["perfanalysis_exporter_push_batch_max_points"] == 5000
    assert metrics['perfanalysis_exporter_push_points_dropped_total{reason="too_large"}'] == 3
    assert metrics['perfanalysis_exporter_push_points_dropped_total{reason="rejected"}'] == 0
    server.answer = always(Answer(204))
    before = len(server.received)
    pusher.sample()
    pusher.send()
    assert len(server.received) == before + 1  # the whole sample in one request
    assert not [r for r in caplog.records if "requests now hold" in r.getMessage()]
    assert [r for r in caplog.records if "too large (413) on its own" in r.getMessage()]


def test_a_lowered_batch_size_recovers_after_settled_sends(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: one early 413 (a proxy with a lower limit for a while) capped batches for good."""
    proxy = {"limit": 8}
    server = serve(lambda r: Answer(413) if len(r.lines) > proxy["limit"] else Answer(204))
    pusher = make_pusher(server.url, series=40, batch_size=64)
    caplog.set_level(logging.INFO, logger="exporter.push.pusher")
    pusher.sample()  # over 40 points in one record
    pusher.send()
    assert pusher.spool.queued_points == 0
    assert 4 <= pusher.max_points <= 8
    assert pusher.status()["max_batch_points"] == pusher.max_points
    assert metric_lines(pusher)["perfanalysis_exporter_push_batch_max_points"] == pusher.max_points
    message = re.compile(
        r"ingest refused a request of (9|1[0-6]) points as too large \(413\) and took its "
        rf"halves: requests now hold at most {pusher.max_points} points$"
    )
    assert [r for r in caplog.records if message.match(r.getMessage())]
    proxy["limit"] = 1000
    seen = []
    for _ in range(RECOVER_AFTER * 5):
        pusher.sample()
        while pusher.spool.queued_points:
            assert pusher.send() == 0.0
        seen.append(pusher.max_points)
        if pusher.max_points == 64:
            break
    assert pusher.max_points == 64, seen
    assert seen == sorted(seen)
    assert any("may hold up to 64 points again" in r.getMessage() for r in caplog.records)


def test_a_real_limit_is_probed_rarely_and_nothing_is_lost(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher]
) -> None:
    """A limit that stays: recovering costs one 413 every RECOVER_AFTER sends or so, not a
    request per point, and every point is stored once."""
    answered: list[int] = []

    def answer(received: Received) -> Answer:
        answered.append(413 if len(received.lines) > 20 else 204)
        return Answer(answered[-1])

    server = serve(answer)
    pusher = make_pusher(server.url, series=3, batch_size=5000)
    pusher.registry.extra.clear()  # five points a sample
    for _ in range(200):  # a backlog: ingest was away
        pusher.sample()
    assert pusher.send() == 0.0  # one batch, split in halves until each part fits
    assert pusher.spool.queued_points == 0
    assert pusher.max_points <= 20
    found = answered.count(413)
    sends = 0
    for _ in range(10):  # more backlogs of 100 points
        for _ in range(20):
            pusher.sample()
        while pusher.spool.queued_points:
            assert pusher.send() == 0.0
            sends += 1
    refused = answered.count(413) - found
    assert 0 < refused <= sends // RECOVER_AFTER + 1, (refused, sends)
    assert sends <= 1000 // 10  # batches of at least two samples, never one point each
    stored = [line for r, code in zip(server.received, answered, strict=True) if code == 204
              for line in r.lines]  # fmt: skip
    assert len(stored) == len(set(stored)) == pusher.stats.sent == 2000


# -- 4. push metrics with --web.disable-exporter-metrics


def test_disabling_exporter_metrics_keeps_the_push_metrics(
    push_values: Callable[..., dict[str, object]],
) -> None:
    """Before: the flag also removed every perfanalysis_exporter_push_* family, which the alert
    rules and the ingest dashboard query; it is documented to remove process_* and build only."""
    for flag, process_metrics in (
        ("--web.disable-exporter-metrics", False),
        ("--no-web.disable-exporter-metrics", True),
    ):
        values = push_values("http://127.0.0.1:9", flag)
        registry = build_registry(values)
        pusher = build_pusher(values, registry)
        try:
            text = render(registry.scrape().families).decode()
        finally:
            pusher.stop(1.0)
        assert "perfanalysis_exporter_push_points_sent_total 0" in text, flag
        assert "perfanalysis_exporter_push_last_success_timestamp_seconds" in text, flag
        assert ("\nprocess_" in text) is process_metrics, flag


# -- 5. flag values that cannot work


def errors_of(argv: list[str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(argv, {})
    return caught.value.errors


@pytest.mark.parametrize("url", ["http://127.0.0.1:0", "https://ingest.example:0/base"])
def test_port_0_is_refused_naming_the_flag(key_file: Path, url: str) -> None:
    [error] = errors_of([f"--push.url={url}", f"--push.key-file={key_file}"])
    assert error.startswith(f"flag --push.url: invalid value {url!r}: port 0 cannot be connected")


@pytest.mark.parametrize("interval", ["0.000001s", "1ms", "999ms", "0.5"])
def test_an_interval_under_a_second_is_refused_naming_the_flag(
    key_file: Path, interval: str
) -> None:
    [error] = errors_of(
        [
            "--push.url=http://127.0.0.1:1",
            f"--push.key-file={key_file}",
            f"--push.interval={interval}",
        ]
    )
    assert error == f"flag --push.interval: invalid value {interval!r}: must be at least 1s"


def test_an_interval_of_a_second_is_accepted(key_file: Path) -> None:
    values = load(
        ["--push.url=http://127.0.0.1:1", f"--push.key-file={key_file}", "--push.interval=1000ms"],
        {},
    )
    assert values["push_interval"] == 1.0
