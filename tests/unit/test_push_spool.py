"""The spool against real files: order, restarts, the size bound, torn and corrupt data, fsync."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.push.spool import (
    RECORD_HEADER,
    SEGMENT_HEADER_SIZE,
    STATE_SIZE,
    Spool,
    SpoolBusy,
    SpoolError,
    frame,
)

PAYLOAD = 100  # bytes per test payload
RECORD = RECORD_HEADER.size + PAYLOAD  # 116 bytes on disk per record
PER_SEGMENT = 3
SEGMENT = SEGMENT_HEADER_SIZE + PER_SEGMENT * RECORD


def payload(n: int) -> bytes:
    return f"{n:04d}".encode() * (PAYLOAD // 4)


def number(data: bytes) -> int:
    return int(data[:4])


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[list[Spool]]:
    """Spools opened by a test, closed after it (a test may reopen the same directory)."""
    spools: list[Spool] = []
    yield spools
    for spool in spools:
        spool.close()


def open_spool(opened: list[Spool], directory: Path, segments: int = 10) -> Spool:
    spool = Spool(directory, max_bytes=segments * SEGMENT, segment_bytes=SEGMENT)
    opened.append(spool)
    return spool


def reopen(opened: list[Spool], spool: Spool, segments: int = 10) -> Spool:
    spool.close()
    return open_spool(opened, spool.directory, segments)


def fill(spool: Spool, numbers: range, points: int = 10) -> None:
    for n in numbers:
        spool.append(payload(n), points)


def drain(spool: Spool, max_points: int = 10) -> list[int]:
    seen = []
    while (batch := spool.read(max_points)) is not None:
        seen += [number(r.payload) for r in batch.records]
        spool.commit(batch)
    return seen


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_replays_in_append_order_and_commit_moves_on(tmp_path: Path, opened: list[Spool]) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(8))
    assert spool.queued_points == 80
    batch = spool.read(max_points=25)
    assert batch is not None
    assert [number(r.payload) for r in batch.records] == [0, 1]  # a third would pass 25 points
    assert batch.points == 20
    assert spool.read(25) == batch  # not committed: read again, same batch
    spool.commit(batch)
    assert spool.queued_points == 60
    assert drain(spool) == [2, 3, 4, 5, 6, 7]
    assert spool.queued_points == 0
    assert spool.read(10) is None


def test_a_record_larger_than_max_points_is_still_read_alone(
    tmp_path: Path, opened: list[Spool]
) -> None:
    spool = open_spool(opened, tmp_path)
    spool.append(payload(1), 50)
    batch = spool.read(10)
    assert batch is not None
    assert batch.points == 50


def test_acknowledged_segments_are_deleted(tmp_path: Path, opened: list[Spool]) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(7))  # three segments: 3 + 3 + 1 records
    assert len(segment_files(tmp_path)) == 3
    assert spool.disk_bytes == 2 * SEGMENT + SEGMENT_HEADER_SIZE + RECORD
    drain(spool)
    assert len(segment_files(tmp_path)) == 1  # the active one stays
    assert spool.disk_bytes == SEGMENT_HEADER_SIZE + RECORD


def test_survives_restart_at_the_cursor(tmp_path: Path, opened: list[Spool]) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(5))
    batch = spool.read(20)
    assert batch is not None
    spool.commit(batch)
    spool = reopen(opened, spool)
    assert spool.queued_points == 30
    fill(spool, range(5, 7))
    assert drain(spool) == [2, 3, 4, 5, 6]


def test_an_unacknowledged_batch_is_sent_again_after_a_restart(
    tmp_path: Path, opened: list[Spool]
) -> None:
    """The documented bound: a batch sent but not committed before a crash is replayed once."""
    spool = open_spool(opened, tmp_path)
    fill(spool, range(3))
    assert spool.read(20) is not None  # "sent", then the process dies before the commit
    spool = reopen(opened, spool)
    assert drain(spool) == [0, 1, 2]


def test_full_spool_drops_oldest_segments_with_exact_counts(
    tmp_path: Path, opened: list[Spool]
) -> None:
    spool = open_spool(opened, tmp_path, segments=3)
    fill(spool, range(9))  # exactly three full segments: at the bound, nothing dropped
    assert spool.disk_bytes == 3 * SEGMENT
    assert spool.dropped_points == 0
    spool.append(payload(9), 10)  # needs a fourth segment: the oldest (records 0-2) goes
    assert spool.dropped_points == 30
    assert spool.queued_points == 70
    assert spool.disk_bytes <= 3 * SEGMENT
    batch = spool.read(10)
    assert batch is not None
    spool.commit(batch)  # record 3 acknowledged; its segment still holds 4 and 5
    fill(spool, range(10, 13))  # record 12 needs room: the segment of 3-5 goes, two unsent
    assert spool.dropped_points == 30 + 20
    assert spool.queued_points == 70  # records 6 to 12
    spool = reopen(opened, spool, segments=3)
    assert spool.dropped_points == 50  # kept across restarts, in the state file
    assert drain(spool) == [6, 7, 8, 9, 10, 11, 12]
    assert spool.disk_bytes <= 3 * SEGMENT


def test_a_batch_that_can_never_fit_is_dropped_and_counted(
    tmp_path: Path, opened: list[Spool]
) -> None:
    spool = open_spool(opened, tmp_path, segments=1)
    spool.append(b"x" * SEGMENT, 7)
    assert spool.dropped_points == 7
    assert spool.queued_points == 0
    assert spool.read(10) is None


def test_torn_tail_is_detected_and_skipped(tmp_path: Path, opened: list[Spool]) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(3))
    spool.close()
    segment = segment_files(tmp_path)[0]
    with segment.open("r+b") as handle:  # kill -9 in the middle of the third record's write
        handle.truncate(segment.stat().st_size - 40)
    spool = open_spool(opened, tmp_path)
    assert spool.corrupt == 1
    assert spool.queued_points == 20
    fill(spool, range(3, 5))  # appends go to a new segment, never after the torn tail
    assert drain(spool) == [0, 1, 3, 4]


@pytest.mark.parametrize(
    "where",
    [
        RECORD_HEADER.size + 50,  # inside the payload: the CRC fails
        4,  # the length field: the record's size is wrong, so is the CRC
        0,  # the magic
        8,  # the point count: covered by the CRC too
    ],
)
def test_a_flipped_byte_skips_that_record_only(
    tmp_path: Path, opened: list[Spool], where: int
) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(3))
    spool.close()
    segment = segment_files(tmp_path)[0]
    data = bytearray(segment.read_bytes())
    data[SEGMENT_HEADER_SIZE + RECORD + where] ^= 0x01  # in record 1
    segment.write_bytes(bytes(data))
    spool = open_spool(opened, tmp_path)
    assert spool.corrupt == 1
    assert spool.queued_points == 20
    assert drain(spool) == [0, 2]


def test_a_file_that_is_not_a_segment_is_removed_and_counted(
    tmp_path: Path, opened: list[Spool]
) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(2))
    spool.close()
    (tmp_path / "0000000000000007.seg").write_bytes(b"not a spool segment at all")
    (tmp_path / "0000000000000008.seg").write_bytes(b"")  # created just before a crash
    spool = open_spool(opened, tmp_path)
    assert spool.corrupt == 1
    assert not (tmp_path / "0000000000000007.seg").exists()
    assert not (tmp_path / "0000000000000008.seg").exists()
    assert drain(spool) == [0, 1]


def test_unreadable_state_replays_everything(tmp_path: Path, opened: list[Spool]) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(4))
    batch = spool.read(20)
    assert batch is not None
    spool.commit(batch)
    spool.close()
    (tmp_path / "state").write_text("{torn")
    spool = open_spool(opened, tmp_path)
    assert drain(spool) == [0, 1, 2, 3]  # 0 and 1 again: duplicates, never a loss


def test_state_is_json_with_cursor_counters_and_crc_overwritten_in_place(
    tmp_path: Path, opened: list[Spool]
) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(2))
    inode = (tmp_path / "state").stat().st_ino
    for committed in (1, 2):
        batch = spool.read(10)
        assert batch is not None
        spool.commit(batch)
        text = (tmp_path / "state").read_bytes()
        assert len(text) == STATE_SIZE
        assert text.endswith(b"\n")
        state = json.loads(text)
        fields = {
            "version": 2,
            "segment": spool.cursor.segment,
            "offset": SEGMENT_HEADER_SIZE + committed * RECORD,
            "dropped_points": 0,
            "corrupt": 0,
        }
        assert state == {**fields, "crc32": zlib.crc32(json.dumps(fields, sort_keys=True).encode())}
    assert (tmp_path / "state").stat().st_ino == inode  # not replaced: written over
    assert not (tmp_path / "state.tmp").exists()


def test_a_state_failing_its_crc_replays_everything(tmp_path: Path, opened: list[Spool]) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(3))
    batch = spool.read(20)
    assert batch is not None
    spool.commit(batch)
    spool.close()
    state = json.loads((tmp_path / "state").read_text())
    assert state["offset"] == SEGMENT_HEADER_SIZE + 2 * RECORD
    state["offset"] = SEGMENT_HEADER_SIZE + 3 * RECORD  # as a torn write could leave it
    (tmp_path / "state").write_text(json.dumps(state))
    spool = open_spool(opened, tmp_path)
    assert drain(spool) == [0, 1, 2]  # 0 and 1 again: duplicates, never a loss


def test_a_version_1_state_is_read_and_rewritten(tmp_path: Path, opened: list[Spool]) -> None:
    spool = open_spool(opened, tmp_path)
    fill(spool, range(3))
    segment = spool.cursor.segment
    spool.close()
    (tmp_path / "state").write_text(json.dumps({
        "version": 1, "segment": segment, "offset": SEGMENT_HEADER_SIZE + RECORD,
        "dropped_points": 7, "corrupt": 1,
    }))  # fmt: skip
    spool = open_spool(opened, tmp_path)
    assert (spool.dropped_points, spool.corrupt) == (7, 1)
    assert json.loads((tmp_path / "state").read_text())["version"] == 2
    assert drain(spool) == [1, 2]


def test_one_exporter_per_spool_directory(tmp_path: Path, opened: list[Spool]) -> None:
    open_spool(opened, tmp_path)
    with pytest.raises(SpoolBusy, match="in use"):
        open_spool(opened, tmp_path)


def test_an_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SpoolError, match="cannot open the spool"):
        Spool(blocker / "spool", max_bytes=10 * SEGMENT)


def test_record_frame_layout() -> None:
    data = frame(b"abc", 7)
    assert data[:4] == b"PAR1"
    assert int.from_bytes(data[4:8], "little") == 3
    assert int.from_bytes(data[8:12], "little") == 7
    assert data[16:] == b"abc"


def run_python(code: str, *prefix: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_a_failed_write_leaves_the_segment_as_it_was(tmp_path: Path) -> None:
    """A write that fails (here: the file-size limit, as a full disk would) is undone and raised."""
    result = run_python(f"""
        import resource, signal
        from exporter.push.spool import Spool, SpoolError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        spool = Spool({str(tmp_path)!r}, max_bytes=1 << 20, segment_bytes=1 << 20)
        spool.append(b"a" * 100, 1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))
        try:
            spool.append(b"b" * 400, 2)
        except SpoolError as exc:
            print("raised", exc)
        print(spool.queued_points, spool.disk_bytes)
    """)
    assert result.returncode == 0, result.stderr
    assert "raised cannot append" in result.stdout
    assert result.stdout.splitlines()[-1] == f"1 {SEGMENT_HEADER_SIZE + RECORD_HEADER.size + 100}"
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 20)
    batch = spool.read(10)
    spool.close()
    assert batch is not None
    assert [r.payload for r in batch.records] == [b"a" * 100]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_appends_fdatasync_new_segments_fsync_the_directory_commits_write_over(
    tmp_path: Path,
) -> None:
    """Seen from the kernel's side (strace), not with mocks: the syscalls durability rests on."""
    spool_dir = tmp_path / "spool"
    result = run_python(
        f"""
        from exporter.push.spool import Spool
        spool = Spool({str(spool_dir)!r}, max_bytes=1 << 20, segment_bytes=1 << 20)
        spool.append(b"x" * 100, 1)
        spool.append(b"y" * 100, 1)
        for _ in range(2):
            spool.commit(spool.read(1))
        spool.close()
        """,
        "strace", "-f", "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,pwrite64",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    calls = [line for line in result.stderr.splitlines() if "sync(" in line or "rename" in line]
    directory_syncs = [
        c for c in calls if c.split("(")[0].endswith("fsync") and f"<{spool_dir}>" in c
    ]
    segment = f"<{spool_dir}/0000000000000001.seg>"
    assert any(c.startswith("fdatasync(") and segment in c for c in calls), calls
    assert any("fsync(" in c and segment in c for c in calls), calls  # its header, at creation
    assert len(directory_syncs) >= 2, calls  # after creating the segment and after each rename
    rename = next(i for i, c in enumerate(calls) if "rename" in c and "state.tmp" in c)
    assert any(f"<{spool_dir}/state.tmp>" in c for c in calls[:rename])  # state synced first
    assert any(f"<{spool_dir}>" in c for c in calls[rename + 1 :])  # then the directory
    # each commit writes the state over, unsynced; closing syncs it
    state = f"<{spool_dir}/state>"
    writes = [c for c in result.stderr.splitlines() if c.startswith("pwrite64(") and state in c]
    assert len(writes) == 2, result.stderr
    after = calls[rename + 1 :]
    assert not any("rename" in c for c in after), calls  # no replace after opening
    assert [c for c in after if state in c] == [next(c for c in after if state in c)]
    assert after[-1].startswith("fdatasync("), calls
    assert state in after[-1], calls


def segment_bytes_on_disk(directory: Path) -> int:
    return sum(p.stat().st_size for p in segment_files(directory))


def test_every_failure_on_the_way_to_an_append_is_a_spool_error(
    tmp_path: Path, opened: list[Spool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting a segment (EIO writing its header, EROFS creating it) and saving the state
    after dropping the oldest fail as SpoolError, which the pusher counts, not as a bare OSError."""
    spool = open_spool(opened, tmp_path, segments=3)
    fill(spool, range(3))  # the first segment is full: the next append starts another

    def io_error(*_args: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    def no_space(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(spool, "_new_segment", io_error)
        with pytest.raises(SpoolError, match="Input/output error"):
            spool.append(payload(3), 10)
    assert spool.queued_points == 30
    assert spool.disk_bytes == segment_bytes_on_disk(tmp_path)
    fill(spool, range(3, 9))  # at the bound: the next append drops the oldest segment
    with monkeypatch.context() as patch:
        patch.setattr(spool, "_write_state", no_space)
        with pytest.raises(SpoolError, match="No space left on device"):
            spool.append(payload(9), 10)
    assert spool.disk_bytes == segment_bytes_on_disk(tmp_path)
    # a drop the state cannot record does not happen: the segment stays, nothing is counted
    assert (spool.queued_points, spool.dropped_points) == (90, 0)
    dropped = spool.dropped_points
    with monkeypatch.context() as patch:
        patch.setattr(spool, "_write_state", no_space)
        with pytest.raises(SpoolError, match="No space left on device"):
            spool.append(b"x" * 4 * SEGMENT, 7)  # can never fit, and the state cannot be saved
    assert spool.dropped_points == dropped  # the caller counts its points, once
    spool.append(payload(10), 10)  # works again once the disk does
    assert drain(spool) == [3, 4, 5, 6, 7, 8, 10]


def test_a_lowered_bound_is_enforced_when_the_spool_opens(
    tmp_path: Path, opened: list[Spool]
) -> None:
    spool = open_spool(opened, tmp_path, segments=10)
    fill(spool, range(27))  # nine full segments
    spool = reopen(opened, spool, segments=4)
    assert spool.disk_bytes <= 4 * SEGMENT
    assert segment_bytes_on_disk(tmp_path) == spool.disk_bytes
    assert spool.queued_points + spool.dropped_points == 270  # dropped oldest first, counted
    kept = drain(spool)
    assert kept == list(range(27 - len(kept), 27))
    spool = reopen(opened, spool, segments=4)
    assert spool.dropped_points == 270 - 10 * len(kept)  # the count was saved


def test_a_segment_is_forgotten_only_once_its_file_is_removed(
    tmp_path: Path, opened: list[Spool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that cannot remove an acknowledged segment (EROFS, EIO) raises; the segment stays
    counted in disk_bytes, and a later commit removes it."""
    spool = open_spool(opened, tmp_path)
    fill(spool, range(5))  # segments of records 0-2 and 3-4
    unlink = Path.unlink

    def refusing_unlink(path: Path, missing_ok: bool = False) -> None:
        if path.suffix == ".seg":
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        unlink(path, missing_ok)

    batch = spool.read(30)
    assert batch is not None
    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", refusing_unlink)
        with pytest.raises(OSError, match="Read-only file system"):
            spool.commit(batch)
    assert len(segment_files(tmp_path)) == 2
    assert spool.disk_bytes == segment_bytes_on_disk(tmp_path)
    assert spool.queued_points == 20
    assert drain(spool) == [3, 4]  # the acknowledged batch is not sent again
    assert len(segment_files(tmp_path)) == 1  # removed by the later commit
    assert spool.disk_bytes == segment_bytes_on_disk(tmp_path)
    spool = reopen(opened, spool)
    assert drain(spool) == []
