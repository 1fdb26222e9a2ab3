"""A full spool file system drops the oldest queued records, as the spool's bound does.

Before, an append that found no room while unacknowledged records were queued failed: the new
sample was lost (spool_error) and the old ones kept. The full disk is faked as in
test_push_audit_fixes.py: a write that would grow the directory's files past a capacity fails.
Records are numbered (see test_push_spool.py), ten points each, three to a segment.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.push.pusher import Pusher
from exporter.push.spool import SEGMENT_HEADER_SIZE, STATE_SIZE, Spool, SpoolError
from tests.unit.test_push_audit_fixes import FullDisk, full_disk
from tests.unit.test_push_client import Answer, Received, Scripted
from tests.unit.test_push_pusher import PER_SAMPLE, make_pusher, metric_lines, serve, values_of
from tests.unit.test_push_spool import (
    RECORD,
    SEGMENT,
    drain,
    fill,
    open_spool,
    opened,
    payload,
    segment_files,
)

__all__ = ["full_disk", "make_pusher", "opened", "serve"]  # fixtures used by name

MakeDisk = Callable[..., FullDisk]


def disk_bytes_on_disk(directory: Path) -> int:
    return sum(p.stat().st_size for p in segment_files(directory))


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_drops_the_oldest_segment_and_the_newest_record_survives(
    tmp_path: Path, opened: list[Spool], full_disk: MakeDisk, error: int
) -> None:
    spool = open_spool(opened, tmp_path, segments=10)  # a bound far above the disk
    fill(spool, range(9))  # three full segments
    disk = full_disk(tmp_path, capacity=STATE_SIZE + 3 * SEGMENT, error=error)  # full now
    spool.append(payload(9), 10)  # no room for a fourth segment: the oldest (0-2) goes
    assert disk.refused == 1
    assert spool.dropped_points == 30
    assert spool.queued_points == 70
    assert (
        spool.disk_bytes
        == disk_bytes_on_disk(tmp_path)
        == 2 * SEGMENT + SEGMENT_HEADER_SIZE + RECORD
    )
    fill(spool, range(10, 12))  # room in the new segment: nothing more dropped
    assert spool.dropped_points == 30
    spool.close()
    reopened = open_spool(opened, tmp_path)
    assert reopened.dropped_points == 30  # kept across restarts, with those dropped at the bound
    assert drain(reopened) == [3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_an_append_drops_as_many_segments_as_the_disk_needs(
    tmp_path: Path, opened: list[Spool], full_disk: MakeDisk
) -> None:
    """Another file took a segment's worth of the disk: the next append drops two segments."""
    spool = open_spool(opened, tmp_path)
    fill(spool, range(9))
    full_disk(tmp_path, capacity=STATE_SIZE + 2 * SEGMENT)
    spool.append(payload(9), 10)
    assert spool.dropped_points == 60
    assert spool.queued_points == 40
    assert drain(spool) == [6, 7, 8, 9]


def test_the_active_segment_goes_last_when_it_alone_holds_records(
    tmp_path: Path, opened: list[Spool], full_disk: MakeDisk
) -> None:
    """A disk with room for less than a segment: the records queued in the active segment make
    way for the new one, as the bound drops the active segment when it is the only one."""
    spool = open_spool(opened, tmp_path)
    full_disk(tmp_path, capacity=STATE_SIZE + SEGMENT_HEADER_SIZE + 2 * RECORD)
    fill(spool, range(2))  # full
    spool.append(payload(2), 10)
    assert (spool.dropped_points, spool.queued_points) == (20, 10)
    assert spool.disk_bytes == disk_bytes_on_disk(tmp_path) == SEGMENT_HEADER_SIZE + RECORD
    spool.append(payload(3), 10)  # fits beside it
    assert spool.dropped_points == 20
    assert drain(spool) == [2, 3]


def test_only_the_unsent_points_of_the_cursors_segment_are_counted(
    tmp_path: Path, opened: list[Spool], full_disk: MakeDisk
) -> None:
    """A segment partly acknowledged counts only what ingest has not acknowledged; a batch read
    before its segment was dropped commits nothing (the pusher never lets that happen, see
    pusher.py; the spool's counts stay exact anyway)."""
    spool = open_spool(opened, tmp_path)
    fill(spool, range(9))
    acknowledged = spool.read(10)
    assert acknowledged is not None
    spool.commit(acknowledged)  # record 0
    in_flight = spool.read(20)  # records 1 and 2, from the segment about to be dropped
    assert in_flight is not None
    full_disk(tmp_path, capacity=STATE_SIZE + 3 * SEGMENT)
    spool.append(payload(9), 10)
    assert spool.dropped_points == 20  # records 1 and 2; record 0 was sent
    assert spool.queued_points == 70
    spool.commit(in_flight)  # stale: ignored
    assert (spool.dropped_points, spool.queued_points) == (20, 70)
    assert drain(spool) == [3, 4, 5, 6, 7, 8, 9]


def test_a_spool_reopened_on_a_full_disk_drops_for_the_first_append(
    tmp_path: Path, opened: list[Spool], full_disk: MakeDisk
) -> None:
    """A restart after a long outage on a small disk: opening keeps everything (it cannot even
    start a segment); the first append makes its room."""
    spool = open_spool(opened, tmp_path)
    fill(spool, range(9))
    spool.close()
    full_disk(tmp_path, capacity=sum(p.stat().st_size for p in tmp_path.iterdir()))
    spool = open_spool(opened, tmp_path)
    assert spool.unwritable is not None
    assert (spool.queued_points, spool.dropped_points) == (90, 0)
    spool.append(payload(9), 10)
    assert spool.unwritable is None
    assert (spool.queued_points, spool.dropped_points) == (70, 30)
    assert drain(spool) == [3, 4, 5, 6, 7, 8, 9]


def test_with_nothing_left_to_drop_the_append_fails_and_everything_is_counted(
    tmp_path: Path, opened: list[Spool], full_disk: MakeDisk
) -> None:
    """The disk holds the state and an empty segment, no record: every queued point was dropped
    trying, counted, and the append fails as before (the pusher sends it from memory)."""
    spool = open_spool(opened, tmp_path)
    fill(spool, range(5))
    disk = full_disk(tmp_path, capacity=STATE_SIZE + SEGMENT_HEADER_SIZE + RECORD - 1)
    with pytest.raises(SpoolError, match="No space left on device"):
        spool.append(payload(5), 10)
    assert (spool.queued_points, spool.dropped_points) == (0, 50)
    assert spool.disk_bytes == disk_bytes_on_disk(tmp_path) == SEGMENT_HEADER_SIZE
    with pytest.raises(SpoolError, match="No space left on device"):
        spool.append(payload(6), 10)  # nothing left: fails at once, counts nothing more
    assert spool.dropped_points == 50
    disk.capacity += 1
    spool.append(payload(7), 10)
    assert drain(spool) == [7]


@pytest.mark.parametrize("error", [errno.EIO, errno.EROFS, errno.EACCES])
def test_other_write_errors_drop_nothing(
    tmp_path: Path, opened: list[Spool], full_disk: MakeDisk, error: int
) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(9))
    full_disk(tmp_path, capacity=STATE_SIZE + 3 * SEGMENT, error=error)
    with pytest.raises(SpoolError):
        spool.append(payload(9), 10)
    assert (spool.queued_points, spool.dropped_points) == (90, 0)
    assert drain(spool) == list(range(9))


def test_a_drop_the_state_cannot_record_does_not_happen(
    tmp_path: Path, opened: list[Spool], full_disk: MakeDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(9))
    full_disk(tmp_path, capacity=STATE_SIZE + 3 * SEGMENT)

    def io_error() -> None:
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(spool, "_write_state", io_error)
        with pytest.raises(SpoolError, match="Input/output error"):
            spool.append(payload(9), 10)
    assert (spool.queued_points, spool.dropped_points) == (90, 0)
    assert len(segment_files(tmp_path)) == 3
    assert drain(spool) == list(range(9))


def test_a_kill_at_any_step_of_a_drop_counts_each_point_exactly_once(
    tmp_path: Path, opened: list[Spool], full_disk: MakeDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool directory as kill -9 would leave it just before and just after each unlink of a
    segment file (a kill -9 keeps what was written, synced or not): reopened, each holds a
    contiguous run of the newest records, and every point is either queued or counted dropped.
    Removing the file before saving the state lost the count of a kill in between."""
    live = tmp_path / "spool"
    spool = open_spool(opened, live)
    fill(spool, range(9))
    full_disk(live, capacity=STATE_SIZE + 3 * SEGMENT)
    snapshots: list[Path] = []
    unlink = Path.unlink

    def snapshot() -> None:
        copy = tmp_path / f"kill-{len(snapshots)}"
        shutil.copytree(live, copy)
        (copy / "lock").unlink()
        snapshots.append(copy)

    def unlink_between_snapshots(path: Path, missing_ok: bool = False) -> None:
        if path.parent == live and path.suffix == ".seg":
            snapshot()
            unlink(path, missing_ok)
            snapshot()
        else:
            unlink(path, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink_between_snapshots)
    spool.append(payload(9), 10)
    monkeypatch.undo()
    dropped = []
    for copy in snapshots:
        crashed = Spool(copy, max_bytes=10 * SEGMENT, segment_bytes=SEGMENT)
        opened.append(crashed)
        assert crashed.corrupt == 0, copy.name
        files = len(segment_files(copy))
        kept = drain(crashed)
        assert kept == list(range(9 - len(kept), 9)), copy.name
        assert crashed.dropped_points == 10 * (9 - len(kept)), copy.name
        assert files == len(kept) // 3 + 1, copy.name  # the dropped one removed, one started
        dropped.append(crashed.dropped_points)
    # the new segment that found no room is removed first, then the oldest segment
    assert dropped == [0, 0, 30, 30]


# -- the pusher: a batch that failed, then dropped, is neither sent nor counted twice


def test_the_pusher_keeps_the_newest_samples_and_counts_each_point_once(
    serve: Callable[..., Scripted],
    make_pusher: Callable[..., Pusher],
    full_disk: MakeDisk,
) -> None:
    """Ingest is down; the batch it failed last (the oldest samples) is dropped when the disk
    fills; once ingest is back, the newest samples reach it, each once, and every point is
    counted once: sent or spool_full, never spool_error."""
    answered: list[int] = []
    ingest = {"up": False}

    def answer(_received: Received) -> Answer:
        answered.append(204 if ingest["up"] else 503)
        return Answer(answered[-1])

    server = serve(answer)
    pusher = make_pusher(server.url, batch_size=2 * PER_SAMPLE, segment_bytes=512)
    pusher.registry.extra.clear()  # PER_SAMPLE points a sample, one record each
    for _ in range(6):
        pusher.sample()
    assert pusher.send() > 0  # 503: the two oldest samples are kept for a retry
    assert pusher.stats.retried == 2 * PER_SAMPLE
    failed = values_of(server.received)
    assert failed == [1.0, 2.0]
    spool = pusher.spool
    full_disk(spool.directory, capacity=STATE_SIZE + spool.disk_bytes)  # full now
    for _ in range(6):
        pusher.sample()
    assert spool.dropped_points > 0
    assert pusher.stats.spool_error == 0
    assert pusher.status()["status"] == "retrying"  # the spool took every sample
    ingest["up"] = True
    while spool.queued_points:
        assert pusher.send() == 0.0
    stored = values_of(
        [r for r, code in zip(server.received, answered, strict=True) if code == 204]
    )
    assert stored == [float(v) for v in range(12 - len(stored) + 1, 13)]  # the newest, once each
    assert not set(failed) & set(stored)  # the failed batch was dropped, never sent
    assert pusher.stats.sent == PER_SAMPLE * len(stored)
    assert spool.dropped_points == PER_SAMPLE * (12 - len(stored))
    assert pusher.stats.spool_error == 0
    metrics = metric_lines(pusher)
    dropped = 'perfanalysis_exporter_push_points_dropped_total{reason="spool_full"}'
    assert metrics[dropped] == spool.dropped_points
    assert spool.disk_bytes == disk_bytes_on_disk(spool.directory)
