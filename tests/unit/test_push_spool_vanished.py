"""Spool files that go away under a running exporter, and the file descriptors the spool keeps.

A failed open of the next segment to read left the reader's closed fd number stored: the next
read closed that number again, whatever the process had opened on it since (a collector's /proc
file, a socket, the spool's own new segment). A segment removed behind the spool's back failed
every read until the bound dropped it; a spool directory removed or replaced (``rm -rf; mkdir``,
as configuration management does) was written to without its lock, or not at all, for good.
Records are numbered (see test_push_spool.py), ten points each, three to a segment.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.push import spool as spool_module
from exporter.push.pusher import Pusher
from exporter.push.spool import Spool, SpoolBusy, SpoolError
from tests.unit.test_push_client import Answer, Scripted
from tests.unit.test_push_pusher import PER_SAMPLE, make_pusher, serve, values_of
from tests.unit.test_push_spool import (
    SEGMENT,
    drain,
    fill,
    open_spool,
    opened,
    payload,
    reopen,
    run_python,
    segment_bytes_on_disk,
    segment_files,
)

__all__ = ["make_pusher", "opened", "serve"]  # fixtures used by name


def identity(fd: int) -> tuple[int, int]:
    stat = os.fstat(fd)
    return stat.st_dev, stat.st_ino


def test_a_failed_open_of_the_next_segment_leaves_no_closed_fd_behind(
    tmp_path: Path, opened: list[Spool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader's fd is forgotten before it is closed: when opening the next segment fails
    (EMFILE here), a later read or close never closes the number another file has taken since."""
    spool = open_spool(opened, tmp_path / "spool")
    fill(spool, range(9))  # segments 1-3
    second = str(segment_files(spool.directory)[1])
    real_open = os.open

    def out_of_fds(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        if os.fspath(path) == second:
            raise OSError(errno.EMFILE, "Too many open files", second)
        return real_open(path, flags, *args)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", out_of_fds)
        with pytest.raises(OSError, match="Too many open files"):
            spool.read(1000)  # reads segment 1, then fails to open segment 2
    bystander = tmp_path / "bystander"
    bystander.write_text("a collector's file, a socket: anything the process opens meanwhile")
    other = os.open(bystander, os.O_RDONLY)  # the lowest free number: the one just closed
    try:
        expected = identity(other)
        assert drain(spool, max_points=1000) == list(range(9))
        assert identity(other) == expected  # neither closed nor taken by a segment
        spool.close()
        assert identity(other) == expected
    finally:
        os.close(other)


def test_a_vanished_segment_is_counted_lost_and_sending_goes_on(
    tmp_path: Path, opened: list[Spool], caplog: pytest.LogCaptureFixture
) -> None:
    """A sealed segment removed behind the spool's back: its points are lost, counted as one
    corrupt stretch (kept across restarts) and taken off queued_points, logged once; the records
    after it are sent at once, not when the bound drops the hole hours later."""
    spool = open_spool(opened, tmp_path)
    fill(spool, range(12))  # segments 1-4, the fourth active
    segment_files(tmp_path)[1].unlink()  # records 3-5
    with caplog.at_level(logging.WARNING, logger="exporter.push.spool"):
        assert drain(spool) == [0, 1, 2, 6, 7, 8, 9, 10, 11]
        assert spool.read(10) is None
    vanished = [r for r in caplog.records if "vanished" in r.getMessage()]
    assert len(vanished) == 1
    assert "30 unsent points" in vanished[0].getMessage()
    assert (spool.queued_points, spool.corrupt, spool.dropped_points) == (0, 1, 0)
    assert spool.disk_bytes == segment_bytes_on_disk(tmp_path)
    fill(spool, range(12, 14))
    spool = reopen(opened, spool)
    assert spool.corrupt == 1  # saved in the state
    assert drain(spool) == [12, 13]


def test_the_segment_at_the_cursor_and_the_active_one_may_vanish_too(
    tmp_path: Path, opened: list[Spool]
) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(7))  # segments 1 and 2 full, 3 with record 6
    batch = spool.read(10)
    assert batch is not None
    spool.commit(batch)  # the cursor in segment 1, after record 0
    spool = reopen(opened, spool)  # no segment open for reading
    fill(spool, range(7, 8))  # the active segment 4
    files = segment_files(tmp_path)
    files[0].unlink()  # the cursor's
    files[3].unlink()  # the active one
    assert drain(spool) == [3, 4, 5, 6]
    assert (spool.queued_points, spool.corrupt) == (0, 2)  # records 1-2 and 7 lost
    fill(spool, range(8, 10))  # into a new segment, not the vanished file
    assert drain(spool) == [8, 9]
    assert spool.disk_bytes == segment_bytes_on_disk(tmp_path)
    spool = reopen(opened, spool)
    assert (spool.queued_points, spool.corrupt) == (0, 2)


def test_a_removed_directory_is_created_locked_and_recovered_again_at_the_next_append(
    tmp_path: Path, opened: list[Spool], caplog: pytest.LogCaptureFixture
) -> None:
    """rm -rf of the spool directory: the next append notices (one stat per append), counts
    what the directory held unsent as lost, and creates, locks and writes the directory again.
    Before, appends went on into the removed segment until the next one started."""
    directory = tmp_path / "spool"
    spool = open_spool(opened, directory)
    fill(spool, range(5))  # segments 1 (records 0-2) and 2 (records 3-4)
    batch = spool.read(30)
    assert batch is not None
    spool.commit(batch)  # records 0-2 acknowledged; 3 and 4 not
    shutil.rmtree(directory)
    with caplog.at_level(logging.WARNING, logger="exporter.push.spool"):
        spool.append(payload(5), 10)  # segment 2 has room, but its file is gone: noticed
        spool.append(payload(6), 10)
        spool.append(payload(7), 10)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "removed, replaced or emptied" in messages[0]
    assert "20 unsent points in 1 segments lost" in messages[0]
    assert directory.is_dir()
    assert (directory / "lock").exists()
    assert (directory / "state").exists()
    assert (spool.queued_points, spool.corrupt) == (30, 1)  # records 3-4 lost, one stretch
    assert spool.disk_bytes == segment_bytes_on_disk(directory)
    with pytest.raises(SpoolBusy, match="in use by another exporter"):
        Spool(directory, max_bytes=spool.max_bytes, segment_bytes=spool.segment_bytes)
    assert drain(spool) == [5, 6, 7]
    spool = reopen(opened, spool)
    assert spool.corrupt == 1


def test_an_append_after_the_directory_was_removed_survives_a_kill(tmp_path: Path) -> None:
    """The directory removed between two appends, then kill -9: the second append's record is
    in the new directory, found by the next start. Before, it went to the removed segment (no
    crash safety) until the next segment: after the kill, the new directory was empty."""
    directory = tmp_path / "spool"
    result = run_python(f"""
        import os, shutil, signal
        from exporter.push.spool import Spool
        spool = Spool({str(directory)!r}, max_bytes={10 * SEGMENT}, segment_bytes={SEGMENT})
        spool.append({payload(0)!r}, 10, sync=False)
        shutil.rmtree({str(directory)!r})
        spool.append({payload(1)!r}, 10, sync=False)  # unsynced: as the pusher appends
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert result.returncode == -signal.SIGKILL, result.stderr
    spool = Spool(directory, max_bytes=10 * SEGMENT, segment_bytes=SEGMENT)
    try:
        assert spool.queued_points == 10
        assert spool.corrupt == 1  # record 0, in the removed directory: counted once, kept
        assert drain(spool) == [1]
    finally:
        spool.close()


def test_an_emptied_directory_counts_what_it_held_and_a_lost_lock_file_nothing(
    tmp_path: Path, opened: list[Spool]
) -> None:
    """The same directory, its files removed (rm -rf spool/*): the segments are lost and
    counted. Its lock file alone removed: the spool locks it again and recovers its own
    segments, nothing lost nor counted, nothing sent twice."""
    directory = tmp_path / "spool"
    spool = open_spool(opened, directory)
    fill(spool, range(4))  # segments 1 (records 0-2) and 2 (record 3)
    (directory / "lock").unlink()
    spool.append(payload(4), 10)  # noticed at once: locked again, its own segments recovered
    assert spool.corrupt == 0
    assert spool.queued_points == 50
    with pytest.raises(SpoolBusy):
        Spool(directory, max_bytes=spool.max_bytes, segment_bytes=spool.segment_bytes)
    assert drain(spool) == [0, 1, 2, 3, 4]
    fill(spool, range(10, 14))  # the active segment, then another
    for path in directory.iterdir():
        path.unlink()
    spool.append(payload(14), 10)  # noticed at once
    assert spool.corrupt == 2  # the segments with records 10-11 and 12-13
    assert drain(spool) == [14]
    assert spool.disk_bytes == segment_bytes_on_disk(directory)


def test_a_replaced_directory_another_exporter_holds_is_refused_until_it_lets_go(
    tmp_path: Path, opened: list[Spool]
) -> None:
    """rm -rf; mkdir, and a second exporter starts on the new directory before the first notices:
    the first refuses to write there (SpoolBusy, a SpoolError, at each append) and never touches
    the second's files; once the second is gone it takes the directory over, as at a restart."""
    directory = tmp_path / "spool"
    first = open_spool(opened, directory)
    fill(first, range(2))
    shutil.rmtree(directory)
    directory.mkdir()
    second = open_spool(opened, directory)
    fill(second, range(100, 104))  # segments 1 and 2 of the new directory
    files = {p.name: p.read_bytes() for p in segment_files(directory)}
    state = (directory / "state").read_bytes()
    for attempt in range(2):  # from the first append on, though its segment has room
        with pytest.raises(SpoolBusy, match="in use by another exporter"):
            first.append(payload(2 + attempt), 10)
    assert (first.queued_points, first.disk_bytes) == (0, 0)
    assert first.read(10) is None
    assert {p.name: p.read_bytes() for p in segment_files(directory)} == files
    assert (directory / "state").read_bytes() == state
    assert drain(second) == [100, 101, 102, 103]
    fill(second, range(104, 105))
    second.close()
    first.append(payload(200), 10)  # takes the directory over, with what the second left
    assert drain(first) == [104, 200]
    assert first.corrupt == 1  # what the removed directory held (records 0 and 1)


def test_the_reader_never_opens_a_segment_of_a_replaced_directory(
    tmp_path: Path, opened: list[Spool]
) -> None:
    """Segment numbers start again in a new directory: moving on to its next segment, the reader
    of a spool whose directory was replaced would read another exporter's file as its own."""
    directory = tmp_path / "spool"
    first = open_spool(opened, directory)
    fill(first, range(4))  # segments 1 and 2
    batch = first.read(10)  # the reader holds segment 1 open
    assert batch is not None
    first.commit(batch)
    shutil.rmtree(directory)
    directory.mkdir()
    second = open_spool(opened, directory)
    fill(second, range(100, 106))  # its own segments 1 and 2
    assert drain(first) == [1, 2]  # from the open segment 1; the new directory's 2 is not read
    assert first.queued_points == 0
    assert drain(second) == [100, 101, 102, 103, 104, 105]


def test_the_pusher_sends_from_memory_while_another_exporter_holds_the_directory(
    serve: Callable[..., Scripted], make_pusher: Callable[..., Pusher], tmp_path: Path
) -> None:
    """The data path as for any spool error: each sample is sent at once from memory, /health
    says spool_error with the reason; once the directory is free again, samples are spooled."""
    server = serve(lambda _received: Answer(204))
    pusher = make_pusher(server.url, segment_bytes=512)
    pusher.registry.extra.clear()
    spool = pusher.spool
    pusher.sample()
    assert pusher.send() == 0.0
    shutil.rmtree(spool.directory)
    spool.directory.mkdir()
    other = Spool(spool.directory, max_bytes=spool.max_bytes, segment_bytes=512)
    files = {p.name: p.read_bytes() for p in segment_files(spool.directory)}
    try:
        for _ in range(20):  # until a sample needs a new segment
            pusher.sample()
            if pusher.status()["status"] == "spool_error":
                break
            assert pusher.send() == 0.0
        status = pusher.status()
        assert status["status"] == "spool_error"
        assert "in use by another exporter" in status["spool_error"]
        sent = len(values_of(server.received))
        pusher.sample()  # not spooled: sent at once from memory
        assert spool.queued_points == 0
        assert len(values_of(server.received)) == sent + 1
        assert pusher.stats.spool_error == 0
        assert {p.name: p.read_bytes() for p in segment_files(spool.directory)} == files
    finally:
        other.close()
    pusher.sample()
    assert pusher.status()["status"] == "ok"
    assert spool.queued_points == PER_SAMPLE
    assert pusher.send() == 0.0


def test_a_directory_path_taken_by_a_file_is_a_spool_error_at_each_append(
    tmp_path: Path, opened: list[Spool]
) -> None:
    """The directory removed and its path taken by a file: every append fails with SpoolError
    (the pusher sends from memory), and works again once the path is a directory."""
    directory = tmp_path / "spool"
    spool = open_spool(opened, directory)
    spool.append(payload(0), 10)
    shutil.rmtree(directory)
    directory.write_text("")
    with pytest.raises(SpoolError):
        spool.append(payload(1), 10)
    with pytest.raises(SpoolError):
        spool.append(payload(2), 10)
    directory.unlink()
    spool.append(payload(3), 10)
    assert drain(spool) == [3]


def give_back_on_a_full_disk(spool: Spool, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Everything acknowledged, the disk full: the next append closes and removes the active
    segment (_give_back) and starts another."""
    fill(spool, range(2))
    assert drain(spool) == [0, 1]
    write_all = spool_module._write_all
    full = {"once": True}

    def no_room_once(fd: int, data: bytes) -> None:
        if full.pop("once", False):
            raise OSError(errno.ENOSPC, "No space left on device")
        write_all(fd, data)

    monkeypatch.setattr(spool_module, "_write_all", no_room_once)
    return lambda: spool.append(payload(2), 10)


def seal_the_active_segment(spool: Spool, _monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """The active segment full: the next append closes it and starts another (_new_segment)."""
    fill(spool, range(3))
    return lambda: spool.append(payload(3), 10)


def commit_past_the_read_segment(
    spool: Spool, _monkeypatch: pytest.MonkeyPatch
) -> Callable[[], None]:
    """A commit past the segment the reader holds closes the reader's fd (_forget_head)."""
    fill(spool, range(4))
    batch = spool.read(30)
    assert batch is not None
    return lambda: spool.commit(batch)


@pytest.mark.parametrize(
    "closing", [give_back_on_a_full_disk, seal_the_active_segment, commit_past_the_read_segment]
)
def test_a_close_that_reports_an_error_leaves_no_fd_number_stored(
    tmp_path: Path,
    opened: list[Spool],
    monkeypatch: pytest.MonkeyPatch,
    closing: Callable[[Spool, pytest.MonkeyPatch], Callable[[], None]],
) -> None:
    """close(2) releases the fd even when it reports an error (EIO from NFS, say): the spool
    forgets each fd before closing it, so no later write, read or close of the spool reaches the
    file that takes the number next. Before, the spool's records went into that file."""
    spool = open_spool(opened, tmp_path / "spool")
    operation = closing(spool, monkeypatch)
    real_close = os.close

    def close_reporting_eio(fd: int) -> None:
        real_close(fd)
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(os, "close", close_reporting_eio)
        operation()  # the error is of no consequence there
    monkeypatch.undo()
    bystander = tmp_path / "bystander"
    bystander.write_bytes(b"not the spool's")
    other = os.open(bystander, os.O_RDWR)  # the lowest free number: the one just closed
    try:
        expected = identity(other)
        fill(spool, range(10, 14))
        assert drain(spool, max_points=1000)[-4:] == [10, 11, 12, 13]
        spool.close()
        assert identity(other) == expected
        assert bystander.read_bytes() == b"not the spool's"
    finally:
        real_close(other)
