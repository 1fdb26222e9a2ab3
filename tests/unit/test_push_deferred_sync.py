"""A sample's records are synced only when ingest has not acknowledged them once their send
settles: seen from the kernel's side (strace) for the spool, and through the real fdatasync for
the pusher."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.push.pusher import Pusher
from exporter.push.spool import SEGMENT_HEADER_SIZE, Spool, SpoolError
from tests.unit.test_push_client import Answer, Scripted, always
from tests.unit.test_push_pusher import make_pusher, serve
from tests.unit.test_push_spool import run_python

__all__ = ["make_pusher", "serve"]  # fixtures

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


def fdatasyncs(spool_dir: Path, code: str) -> list[str]:
    """The fdatasync calls on the spool's first segment while ``code`` runs on ``spool``."""
    result = run_python(
        f"""
        from exporter.push.spool import Spool
        spool = Spool({str(spool_dir)!r}, max_bytes=1 << 20, segment_bytes=4096)
        print("begin", flush=True)
        {code}
        print("end", flush=True)
        """,
        "strace", "-f", "-y", "-e", "trace=fdatasync,write",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    begin = next(i for i, line in enumerate(lines) if "write(1<" in line and "begin" in line)
    end = next(i for i, line in enumerate(lines) if "write(1<" in line and "end" in line)
    segment = f"<{spool_dir}/0000000000000001.seg>"
    return [line for line in lines[begin:end] if line.startswith("fdatasync(") and segment in line]


@needs_strace
@pytest.mark.parametrize(
    ("code", "syncs"),
    [
        pytest.param(
            'spool.append(b"x" * 100, 1, sync=False); spool.commit(spool.read(10)); spool.sync()',
            0,
            id="acknowledged before sync(): never synced",
        ),
        pytest.param(
            'spool.append(b"x" * 100, 1, sync=False); spool.sync(); spool.sync()',
            1,
            id="unacknowledged at sync(): synced once",
        ),
        pytest.param('spool.append(b"x" * 100, 1)', 1, id="a synced append: at once"),
        pytest.param(
            # the second record does not fit the 4 KiB segment; sync() only ever syncs the
            # segment appended to, so the sealed one is synced before the spool moves on
            'spool.append(b"x" * 3000, 1, sync=False); spool.append(b"y" * 3000, 1, sync=False)',
            1,
            id="a segment sealed with unsynced records: synced first",
        ),
        pytest.param(
            'spool.append(b"x" * 100, 1, sync=False); spool.close()',
            1,
            id="closing: synced",
        ),
    ],
)
def test_unsynced_appends_are_fdatasynced_only_while_unacknowledged(
    tmp_path: Path, code: str, syncs: int
) -> None:
    calls = fdatasyncs(tmp_path / "spool", code)
    assert len(calls) == syncs, calls


def test_a_cursor_past_the_end_of_a_segment_the_crash_cut_short_loses_no_later_record(
    tmp_path: Path,
) -> None:
    """After a machine crash, the state's cursor may point past records that were acknowledged
    but never written back. The spool reopens on a new segment and sends what comes after."""
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir, max_bytes=1 << 20, segment_bytes=4096)
    spool.append(b"acknowledged" * 10, 3, sync=False)
    batch = spool.read(10)
    assert batch is not None
    spool.commit(batch)
    spool.close()
    segment = spool_dir / "0000000000000001.seg"
    os.truncate(segment, SEGMENT_HEADER_SIZE)  # the record's bytes never reached the disk

    reopened = Spool(spool_dir, max_bytes=1 << 20, segment_bytes=4096)
    try:
        assert reopened.queued_points == 0
        assert reopened.corrupt == 0
        reopened.append(b"after the crash", 2, sync=False)
        assert reopened.queued_points == 2
        batch = reopened.read(10)
        assert batch is not None
        assert [r.payload for r in batch.records] == [b"after the crash"]
        reopened.commit(batch)
        assert reopened.queued_points == 0
    finally:
        reopened.close()
    assert not segment.exists()


@pytest.fixture
def segment_syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files of the spool's segments that fdatasync (the real one) was called on."""
    synced: list[str] = []
    real = os.fdatasync

    def watched(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith(".seg"):
            synced.append(target)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", watched)
    return synced


def test_a_sample_ingest_acknowledges_costs_no_fdatasync(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    segment_syncs: list[str],
) -> None:
    pusher = make_pusher(serve(always(Answer(204))).url)
    for _ in range(3):
        pusher.sample()
        assert pusher.send() == 0.0
    assert pusher.stats.sent > 0
    assert pusher.spool.queued_points == 0
    assert segment_syncs == []


def test_a_sample_ingest_does_not_acknowledge_is_synced_when_the_send_settles(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    segment_syncs: list[str],
) -> None:
    pusher = make_pusher(serve(always(Answer(503, b"storage down"))).url)
    pusher.sample()
    assert segment_syncs == []  # appended, not yet synced: the send comes first
    assert pusher.send() > 0
    assert len(segment_syncs) == 1
    assert pusher.spool.queued_points > 0


def test_a_sample_taken_while_backing_off_is_synced_before_the_loop_waits(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    segment_syncs: list[str],
) -> None:
    """No send is due: the step after the sample waits, and syncs first."""
    pusher = make_pusher(serve(always(Answer(503, b"storage down"))).url)
    assert pusher._step() == 0.0  # the first sample
    assert pusher._step() == 0.0  # its send: 503, so it is synced and sending backs off
    assert len(segment_syncs) == 1
    pusher._next_sample = 0.0  # a sample is due now; the next send only after the backoff
    assert pusher._step() == 0.0  # the sample
    assert len(segment_syncs) == 1
    assert pusher._step() > 0  # nothing due: it would wait
    assert len(segment_syncs) == 2


def test_a_sync_that_fails_is_reported_and_keeps_the_records_queued(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = serve(always(Answer(503, b"storage down")))
    pusher = make_pusher(server.url)
    pusher.sample()

    def failing_sync() -> None:
        raise SpoolError("cannot sync the segment: [Errno 5] Input/output error")

    monkeypatch.setattr(pusher.spool, "sync", failing_sync)
    pusher.send()
    queued = pusher.spool.queued_points
    assert queued > 0
    assert pusher.stats.state == "spool_error"
    assert "Input/output error" in pusher.status()["spool_error"]
    monkeypatch.undo()
    server.answer = always(Answer(204))
    pusher.sample()  # an append that succeeds clears the state
    assert pusher.stats.state != "spool_error"
    while pusher.spool.queued_points:
        assert pusher.send() == 0.0
    assert pusher.stats.sent >= queued
