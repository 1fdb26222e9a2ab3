"""A bounded on-disk queue of batches not yet acknowledged by ingest: it survives restarts and kill -9.

Layout of the spool directory::

    lock                     held (flock) by the exporter using the spool: one writer per spool
    state                    JSON: the cursor (segment, offset) of the first unacknowledged record,
                             the counters that must outlive a restart (points dropped when full,
                             corrupt stretches skipped) and a CRC-32 of them, padded to 256 bytes;
                             replaced atomically (tmp, fsync, rename, directory fsync) when the
                             spool opens, then overwritten in place, without a sync, at each
                             commit, and synced when it closes
    0000000000000042.seg     segments, oldest first: an 8-byte header b"PASPOOL1", then records

A record is a 16-byte header -- magic b"PAR1", payload length, point count, CRC-32 of (length,
points, payload), little-endian -- followed by the payload (a gzip-compressed line-protocol batch).
Each append is one write followed by fdatasync, or, for the pusher's samples, a write whose
fdatasync waits for ``sync()``: the pusher sends right after appending and calls it once the send
is settled, so a record ingest acknowledged in that send is never synced (storage has it: the
sync would cost every host a disk flush and about a seventh of a push cycle's CPU for nothing).
A new segment is fsynced along with its directory, and a sealed one first synced.

What a crash can cost:

* Lost, after kill -9 or any death of the process: at most the points sampled in memory but not
  yet appended (a write, synced or not, is in the kernel's page cache). After the machine itself
  crashes (power, kernel): also at most the record being appended, and the records appended
  unsynced while their first send was in flight (one sample, for up to ``--push.timeout``)
  that ingest had not stored. A torn or corrupt record fails its length or CRC check and is
  skipped -- the reader resynchronises on the next valid record -- so garbage is never replayed.
  Corrupt stretches found at start-up are logged and counted. A cursor left past a segment's end
  (the records behind it acknowledged, and lost in the crash before the kernel wrote them back)
  needs nothing: the spool reopens on a new segment and skips to it.
* Sent twice, after kill -9: at most the records of one in-flight batch (up to
  ``--push.batch-size`` points), when ingest acknowledged it but the cursor was not yet saved.
  After the machine itself crashes: also the batches acknowledged since the kernel last wrote the
  state file back (about 30 s with Linux's defaults); a torn state fails its CRC and the spool
  replays every record it still holds. Either is harmless: the points keep their timestamps, and
  InfluxDB overwrites a point with the same series and timestamp. Syncing the cursor at every
  commit would bound this tighter at a cost the exporter pays every interval: an atomic replace
  measured 660 us of CPU, a third of a push cycle's 2 ms budget, for a guarantee storage
  already gives.

The bound: the segments' total size stays within ``max_bytes``. An append that would pass it drops
whole segments, oldest first, and counts their unsent points; so does opening the spool with a
lower bound than its files were kept under. Replay is strictly in append order. The state, with
the cursor past a dropped segment and the count, is written before the segment's file is
removed: after a kill -9 at any point, points are counted as dropped exactly when they are gone
(a segment left behind the cursor is removed at the next start). A segment is forgotten only
once its file is removed: if the unlink fails (a read-only or failing filesystem), it stays
counted and the next commit tries again. Not thread-safe: one pusher thread owns the spool, and
since it commits or abandons each batch it reads before it appends again, no drop ever meets a
batch in flight (see pusher.py).

A full file system (ENOSPC, EDQUOT) is a condition to wait out, not a configuration error:

* Opening: segments wholly acknowledged are removed before anything is written, and a state
  that cannot be replaced for lack of room is written over in place (synced). If the spool
  still cannot start a segment (or create its directory or lock), it opens without one:
  ``unwritable`` says why, and every append tries again, failing with SpoolError until there is
  room. Opening never drops what is queued: that waits for an append that needs the room.
  Other errors (permissions, another exporter holding the lock) still fail the opening.
* Appending: the active segment is written to until it reaches ``segment_bytes``, however much
  of it ingest has acknowledged. When an append finds no room and everything in the spool is
  acknowledged, the active segment is removed (the acknowledged records are all it holds) and
  the append retried in a new segment. A crash in between loses nothing: a state naming the
  removed segment makes the replay start at the first segment left, as after any segment
  removed behind the cursor. This costs nothing while appends succeed.
* With unacknowledged records in the spool, the full file system is treated as the bound is:
  the append drops the oldest segment, counting its unsent points with those dropped at the
  bound, and tries again, segment after segment, until it succeeds -- the newest records survive,
  not the oldest. Sealed segments go first; the active one only when it is the last holding
  records (as at the bound, where it is the only segment). When nothing is left to drop (only an
  empty segment), the append fails with SpoolError (the pusher sends the batch from memory or
  counts it as spool_error). Only ENOSPC and EDQUOT drop anything: any other error fails the
  append, and what is queued stays.

Files removed behind the spool's back (by hand, a cleanup job, configuration management):

* A segment whose file is gone when the reader comes to it: its unsent points are lost. The
  spool logs it, counts it as one corrupt stretch, takes its points off ``queued_points``,
  moves the cursor past it and reads on; the active segment gone, the next append starts
  another. (A segment already open for reading is read to its end.)
* The directory removed, replaced (``rm -rf; mkdir``) or emptied: the spool's fds (lock,
  state, directory, segments) still refer to the old files, so before each append, and before
  it starts, opens for reading or removes a segment, one stat checks that the lock file at the
  path is the one it holds (about 2 us, a tenth of an append with its read and commit). If not,
  the spool abandons what it held (each segment with unsent points counted as a corrupt
  stretch, but none still in the same directory when only its lock file went: recovery finds
  them), logs it once, and creates, locks and recovers the path again, as at a start, before
  it writes: no append goes to a removed file, where a crash would lose it and another
  exporter could lock the new directory meanwhile. If another exporter holds it by then,
  every append fails with SpoolBusy, and the spool writes, reads and removes nothing there,
  until that exporter lets go. Between two appends, a commit may still write the removed
  state file, and a read go on in a removed segment it has open: what they held is lost
  with the directory either way.

Each fd the spool keeps is forgotten before it is closed (``_release_writer``,
``_release_reader``, ``_close_fds``): a close that fails, or an open after it that fails, never
leaves a closed number stored for a later read, write or close to reach whatever file the
process opens next on that number.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SEGMENT_MAGIC = b"PASPOOL1"
RECORD_MAGIC = b"PAR1"
RECORD_HEADER = struct.Struct("<4sIII")  # magic, payload length, points, crc32
_LENGTH_POINTS = struct.Struct("<II")
SEGMENT_HEADER_SIZE = len(SEGMENT_MAGIC)
STATE_VERSION = 2  # 1: the same JSON without the CRC, replaced atomically at every commit
STATE_SIZE = 256
_SEGMENT_NAME = re.compile(r"^(\d{16})\.seg$")
MIN_SEGMENT_BYTES = 4096
MAX_SEGMENT_BYTES = 4 << 20
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})  # a full file system: wait it out


class SpoolError(Exception):
    """The spool cannot be opened or written."""


class SpoolBusy(SpoolError):
    """Another process holds the spool directory's lock."""


def frame(payload: bytes, points: int) -> bytes:
    """One record: header (magic, length, points, CRC-32) and payload."""
    length_points = _LENGTH_POINTS.pack(len(payload), points)
    crc = zlib.crc32(payload, zlib.crc32(length_points))
    return RECORD_MAGIC + length_points + struct.pack("<I", crc) + payload


@dataclass(frozen=True, slots=True, order=True)
class Position:
    segment: int
    offset: int


@dataclass(frozen=True, slots=True)
class Record:
    segment: int
    payload: bytes
    points: int
    end: Position  # just past the record: the cursor once it and those before are committed


@dataclass(frozen=True, slots=True)
class _Framed:
    """A record's payload and point count as read and checked, before it is placed."""

    payload: bytes
    points: int


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive records from the cursor; ``commit`` it once ingest has acknowledged it."""

    records: tuple[Record, ...]
    start: Position
    end: Position

    @property
    def points(self) -> int:
        return sum(r.points for r in self.records)

    def first(self, count: int) -> Batch:
        """The batch of its first ``count`` records (at least one): committed on its own, the
        cursor stops just past them."""
        if not 1 <= count <= len(self.records):
            raise ValueError(f"count {count} outside 1..{len(self.records)} records")
        return Batch(self.records[:count], self.start, self.records[count - 1].end)


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    size: int
    points: int  # unacknowledged points in valid records


def _parse(header: bytes, payload: bytes) -> _Framed | None:
    magic, length, points, crc = RECORD_HEADER.unpack(header)
    if magic != RECORD_MAGIC or len(payload) != length:
        return None
    if zlib.crc32(payload, zlib.crc32(header[4:12])) != crc:
        return None
    return _Framed(payload, points)


def _record_at(fd: int, offset: int, end: int) -> _Framed | None:
    if end - offset < RECORD_HEADER.size:
        return None
    header = os.pread(fd, RECORD_HEADER.size, offset)
    if header[:4] != RECORD_MAGIC:
        return None
    length = _LENGTH_POINTS.unpack_from(header, 4)[0]
    if length > end - offset - RECORD_HEADER.size:
        return None
    return _parse(header, os.pread(fd, length, offset + RECORD_HEADER.size))


def _next_valid(fd: int, offset: int, end: int) -> tuple[int, _Framed | None, bool]:
    """The first valid record at or after ``offset``: (its offset, record, whether bytes were skipped).

    ``(end, None, skipped)`` when there is none before ``end``.
    """
    record = _record_at(fd, offset, end)
    if record is not None or offset >= end:
        return offset, record, False
    rest = os.pread(fd, end - offset, offset)  # a corrupt stretch: rare, and a segment is small
    at = rest.find(RECORD_MAGIC, 1)
    while at != -1:
        header = rest[at : at + RECORD_HEADER.size]
        if len(header) == RECORD_HEADER.size:
            length = _LENGTH_POINTS.unpack_from(header, 4)[0]
            body_at = at + RECORD_HEADER.size
            record = _parse(header, rest[body_at : body_at + length])
            if record is not None:
                return offset + at, record, True
        at = rest.find(RECORD_MAGIC, at + 1)
    return end, None, True


def _crc(state: dict[str, int]) -> int:
    return zlib.crc32(json.dumps(state, sort_keys=True).encode())


def _state_bytes(state: dict[str, int]) -> bytes:
    """The state as JSON with its ``crc32`` (of the state's own sorted JSON) as the last key,
    padded to STATE_SIZE so that it can be overwritten in place."""
    body = json.dumps(state, sort_keys=True).encode()
    signed = body[:-1] + b', "crc32": %d}' % zlib.crc32(body)
    return signed.ljust(STATE_SIZE - 1) + b"\n"


def _no_space(exc: SpoolError) -> bool:
    """Whether ``exc`` comes from a full file system."""
    return isinstance(exc.__cause__, OSError) and exc.__cause__.errno in NO_SPACE


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _close_quietly(fd: int) -> None:
    """Close an fd its holder has already forgotten, ignoring an error: close(2) releases the
    number even when it reports one (EIO from NFS, say), and the callers close only fds whose
    writes are synced or no longer matter."""
    with contextlib.suppress(OSError):
        os.close(fd)


class Spool:
    """Append batches, read them back in order from the cursor, commit what was acknowledged."""

    def __init__(
        self, directory: str | os.PathLike[str], max_bytes: int, segment_bytes: int | None = None
    ) -> None:
        if segment_bytes is None:
            segment_bytes = min(
                max_bytes, MAX_SEGMENT_BYTES, max(MIN_SEGMENT_BYTES, max_bytes // 16)
            )
        if max_bytes < segment_bytes or segment_bytes <= SEGMENT_HEADER_SIZE:
            raise ValueError("max_bytes must hold at least one segment")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.dropped_points = 0  # points dropped, oldest first, to stay within max_bytes
        self.corrupt = 0  # corrupt or torn stretches skipped (their points are lost)
        self._segments: list[_Segment] = []  # the last is the active one when _write_fd >= 0
        self._cursor = Position(0, SEGMENT_HEADER_SIZE)
        self._next_seq = 1  # the number of the next segment started
        self._recovered = False  # the directory is locked and its segments read
        self._unwritable: str | None = None  # why the spool opened without a segment
        self._given_back = 0  # times a full file system made it remove the active segment
        self._queued = 0
        self._bytes = 0
        self._write_fd = -1
        self._unsynced_end: Position | None = None  # the end of what was appended unsynced
        self._read: tuple[int, int] | None = None  # (segment seq, fd)
        self._lock_path = str(self.directory / "lock")
        self._lock_fd = -1
        self._locked: tuple[int, int] | None = None  # (st_dev, st_ino) of the lock file held
        self._carried = (0, 0)  # (dropped_points, corrupt) when the directory was last abandoned
        self._dir_fd = -1
        self._state_fd = -1
        try:
            self._open()
        except SpoolError:
            self.close()
            raise
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                self.close()
                raise SpoolError(f"cannot open the spool in {self.directory}: {exc}") from exc
            self._unwritable = f"cannot write to the spool in {self.directory}: {exc}"
            log.warning("spool: %s; every append tries again", self._unwritable)

    # -- what the pusher and the metrics read

    @property
    def queued_points(self) -> int:
        return self._queued

    @property
    def disk_bytes(self) -> int:
        """Bytes on disk in segment files, the quantity bounded by ``max_bytes``."""
        return self._bytes

    @property
    def cursor(self) -> Position:
        return self._cursor

    @property
    def unwritable(self) -> str | None:
        """Why the spool has no segment to append to (it opened on a full disk), else None."""
        return self._unwritable if self._write_fd < 0 else None

    # -- opening and recovery

    def _open(self) -> None:
        """Lock and recover the directory (once), then start a segment to append to and save the
        state. Raises OSError; after one of NO_SPACE, calling it again goes on where it failed.
        A directory removed or replaced since it was locked is abandoned and locked again."""
        if self._recovered and self._moved():
            self._abandon()
        if not self._recovered:
            self._lock()
            self._recover_all()
            self._recovered = True
        self._drop_acknowledged()  # give their space back before asking for more
        self._new_segment(self._next_seq)  # never append after a possibly torn tail
        self._write_state()
        self._make_room(0)  # opened with a lower bound than the files were kept under

    def _lock(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self._lock_fd < 0:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fd, self._lock_fd = self._lock_fd, -1  # the next try opens the path's lock file anew
            _close_quietly(fd)
            raise SpoolBusy(f"{self.directory} is in use by another exporter") from None
        stat = os.fstat(self._lock_fd)
        self._locked = (stat.st_dev, stat.st_ino)
        if self._dir_fd < 0:
            self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _recover_all(self) -> None:
        """Read the state and the segments: the cursor, the counters and what is queued."""
        self._segments = []
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "state.tmp").unlink()
        cursor, dropped, corrupt = self._load_state()
        self.dropped_points = max(self._carried[0], dropped)  # counters never go back in a run
        self.corrupt = max(self._carried[1], corrupt)
        last_seq = cursor.segment
        for seq in sorted(self._segment_numbers()):
            last_seq = max(last_seq, seq)
            path = self._path(seq)
            if seq < cursor.segment:  # acknowledged; the crash came before it was removed
                path.unlink(missing_ok=True)
                continue
            start = cursor.offset if seq == cursor.segment else SEGMENT_HEADER_SIZE
            try:
                segment = self._recover(seq, path, start)
            except FileNotFoundError:  # removed since the directory was listed
                continue
            if segment is not None:
                self._segments.append(segment)
        if not any(s.seq == cursor.segment for s in self._segments):
            cursor = Position(last_seq + 1, SEGMENT_HEADER_SIZE)
            if self._segments:
                cursor = Position(self._segments[0].seq, SEGMENT_HEADER_SIZE)
        self._cursor = cursor
        self._next_seq = last_seq + 1
        self._queued = sum(s.points for s in self._segments)
        self._bytes = sum(s.size for s in self._segments)

    def _segment_numbers(self) -> list[int]:
        names = (_SEGMENT_NAME.match(p.name) for p in self.directory.iterdir())
        return [int(m.group(1)) for m in names if m]

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:016d}.seg"

    def _load_state(self) -> tuple[Position, int, int]:
        """The cursor and the counters (dropped_points, corrupt) the state holds."""
        path = self.directory / "state"
        try:
            state = json.loads(path.read_text())
            if state.get("version") not in (1, STATE_VERSION):
                raise ValueError(f"unknown version {state.get('version')!r}")
            if state["version"] == STATE_VERSION and state.pop("crc32") != _crc(state):
                raise ValueError("CRC mismatch (torn by a crash?)")
            cursor = Position(int(state["segment"]), int(state["offset"]))
            return cursor, int(state["dropped_points"]), int(state["corrupt"])
        except FileNotFoundError:
            return Position(0, SEGMENT_HEADER_SIZE), 0, 0
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("spool state %s unreadable (%s): replaying every segment", path, exc)
            return Position(0, SEGMENT_HEADER_SIZE), 0, 0

    def _recover(self, seq: int, path: Path, start: int) -> _Segment | None:
        """Scan a segment from ``start``: count its valid points, log and count corrupt stretches."""
        with open(path, "rb") as handle:
            fd = handle.fileno()
            size = os.fstat(fd).st_size
            if os.pread(fd, SEGMENT_HEADER_SIZE, 0) != SEGMENT_MAGIC:
                if size:  # an empty file is a segment created just before a crash
                    log.warning("spool: %s is not a spool segment, removed", path)
                    self.corrupt += 1
                path.unlink(missing_ok=True)
                return None
            points, offset = 0, max(start, SEGMENT_HEADER_SIZE)
            while offset < size:
                at, record, skipped = _next_valid(fd, offset, size)
                if skipped:
                    self.corrupt += 1
                    log.warning(
                        "spool: %s bytes %d-%d are torn or corrupt: skipped, never sent",
                        path,
                        offset,
                        at,
                    )
                if record is None:
                    break
                points += record.points
                offset = at + RECORD_HEADER.size + len(record.payload)
        return _Segment(seq, path, size, points)

    # -- appending

    @property
    def record_limit(self) -> int:
        """The largest payload a segment holds; a larger one gets a segment of its own."""
        return self.segment_bytes - SEGMENT_HEADER_SIZE - RECORD_HEADER.size

    def append(self, payload: bytes, points: int, *, sync: bool = True) -> None:
        """Append one batch; drop the oldest segments first if the bound requires it, or while
        the file system has no room for it. Durably, unless ``sync`` is false: then the record
        is written but synced only by ``sync()`` (or the next synced append, a new segment or
        closing), which skips the fdatasync if ingest acknowledged it meanwhile.

        Raises SpoolError if anything on the way fails (a read-only or failing filesystem, a full
        one with nothing left to drop: starting a segment, dropping the oldest, the write itself);
        the segment written to is left as before.
        """
        data = frame(payload, points)
        if len(data) + SEGMENT_HEADER_SIZE > self.max_bytes:
            log.warning("spool: a batch of %d bytes can never fit in the spool, dropped", len(data))
            self._count_dropped(points)
            try:
                self._writable()
                self._write_state()
            except OSError as exc:
                self.dropped_points -= points  # the caller counts them: never appended
                raise SpoolError(f"cannot save the state in {self.directory}: {exc}") from exc
            return
        while True:
            try:
                self._write(data, sync)
                break
            except SpoolError as exc:
                if not _no_space(exc) or not self._room_made():
                    raise
        self._segments[-1].points += points
        self._queued += points

    def _writable(self) -> None:
        """Start a segment to append to if the spool has none (it opened on a full disk, or
        abandoned its directory and could not lock it again yet)."""
        if self._write_fd >= 0:
            return
        self._open()
        self._unwritable = None

    def _write(self, data: bytes, sync: bool) -> None:
        """Write one framed record (synced if ``sync``), starting a segment or dropping the oldest
        first if needed; SpoolError (from the OSError) on any failure, the segment left as it
        was. A directory removed, replaced or emptied since it was locked is abandoned first,
        and the path created, locked and recovered again, so that the record is written there."""
        try:
            if self._write_fd >= 0 and self._moved():  # one stat, about 2 us: never a lost write
                self._abandon()
            self._writable()  # after an abandon: creates, locks and recovers the path again
        except OSError as exc:
            raise SpoolError(f"cannot start a segment in {self.directory}: {exc}") from exc
        try:
            active = self._segments[-1]
            if active.size + len(data) > self.segment_bytes and active.size > SEGMENT_HEADER_SIZE:
                self._start_segment()
            self._make_room(len(data))
        except OSError as exc:
            raise SpoolError(f"cannot make room in {self.directory}: {exc}") from exc
        active = self._segments[-1]
        try:
            _write_all(self._write_fd, data)
            if sync:
                os.fdatasync(self._write_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._write_fd, active.size)
            raise SpoolError(f"cannot append to {active.path}: {exc}") from exc
        active.size += len(data)
        self._bytes += len(data)
        self._unsynced_end = None if sync else Position(active.seq, active.size)

    def sync(self) -> None:
        """Make the records appended unsynced durable, unless ingest has acknowledged them all
        (then no fdatasync is needed: storage has them). SpoolError if the fdatasync fails; the
        records stay in the spool, readable and sent as usual, and the next sync tries again."""
        if self._unsynced_end is None:
            return
        if self._cursor >= self._unsynced_end or self._write_fd < 0:
            self._unsynced_end = None
            return
        try:
            os.fdatasync(self._write_fd)
        except OSError as exc:
            raise SpoolError(f"cannot sync {self._segments[-1].path}: {exc}") from exc
        self._unsynced_end = None

    def _give_back(self) -> bool:
        """On a full file system, remove the active segment if ingest has acknowledged all of it
        (and with it everything before); True if that freed space, so that an append may retry.

        The records it held were all acknowledged: no point is lost, and the next append starts
        a new segment, where the cursor moves. A crash at any point of this loses nothing either:
        a state still naming the removed segment makes the replay start at the first one left.
        """
        if self._write_fd < 0 or not self._segments:
            return False
        active = self._segments[-1]
        if active.size <= SEGMENT_HEADER_SIZE or self._cursor < Position(active.seq, active.size):
            return False
        self._release_writer()  # it holds acknowledged records only
        freed = self._bytes
        try:
            while self._segments:
                self._queued -= self._forget_head().points  # zero: all acknowledged
        except OSError as exc:
            log.warning("spool: cannot remove acknowledged segments: %s", exc)
        if self._segments:
            return False
        self._cursor = Position(self._next_seq, SEGMENT_HEADER_SIZE)
        with contextlib.suppress(OSError):
            self._write_state()  # in place, needs no space; a stale one costs nothing either
        self._given_back += 1
        log.log(
            logging.WARNING if self._given_back & (self._given_back - 1) == 0 else logging.DEBUG,
            "spool: the file system of %s is full; removed %d bytes of records ingest "
            "acknowledged to append (%d times since start)",
            self.directory, freed, self._given_back,
        )  # fmt: skip
        return True

    def _room_made(self) -> bool:
        """The file system is full: give back an acknowledged active segment, else drop the oldest
        segment; True if either freed space, so that the append may retry."""
        try:
            return self._give_back() or self._drop_for_room()
        except OSError as exc:
            raise SpoolError(f"cannot make room in {self.directory}: {exc}") from exc

    def _drop_for_room(self) -> bool:
        """Drop the oldest segment because the file system is full: the sealed ones first, the
        active one when it is the last to hold records (the next append starts a segment).
        False when nothing is left whose removal frees space (at most an empty segment)."""
        if not self._segments:
            return False
        if self._write_fd >= 0 and len(self._segments) == 1:
            if self._segments[0].size <= SEGMENT_HEADER_SIZE:
                return False
            self._release_writer()  # its segment is dropped next
        self._drop_head(f"no room left on the file system of {self.directory}")
        return True

    def _make_room(self, size: int) -> None:
        """Drop the oldest segments until ``size`` more bytes fit the bound."""
        while self._bytes + size > self.max_bytes:
            self._drop_oldest()

    def _count_dropped(self, points: int) -> None:
        self.dropped_points += points

    def _drop_oldest(self) -> None:
        # only the active segment: start another, drop this one (unless the directory was
        # gone: the spool then holds only the new directory's segment)
        if len(self._segments) == 1 and self._start_segment():
            return
        self._drop_head(f"full ({self.max_bytes} bytes)")

    def _drop_head(self, why: str) -> None:
        """Drop the oldest segment and count its unacknowledged points.

        The state goes first, with the cursor past the segment and the count: a kill -9 before
        it keeps the segment and counts nothing, one after it finds the segment behind the
        cursor and removes it at the next start. If the state cannot be written, nothing is
        dropped; if the unlink fails, the segment stays behind the cursor, holding no point and
        counted in disk_bytes, until a later commit or drop removes it.
        """
        head, cursor, points = self._segments[0], self._cursor, self._segments[0].points
        if cursor.segment <= head.seq:
            after = self._segments[1].seq if len(self._segments) > 1 else self._next_seq
            self._cursor = Position(after, SEGMENT_HEADER_SIZE)
        self._queued -= points  # before the count: a scrape never sees a point as both
        self._count_dropped(points)
        try:
            self._write_state()
        except OSError:
            self._cursor = cursor
            self.dropped_points -= points
            self._queued += points
            raise
        head.points = 0
        self._forget_head()
        log.warning("spool: %s: dropped %d points, oldest first", why, points)

    def _start_segment(self) -> bool:
        """Seal the active segment and start the next one, once sure (one stat per segment) that
        the directory is still the one locked. If it was removed, replaced or emptied, abandon
        it and lock and recover the path again (raising SpoolBusy if another exporter holds it
        now); True then: the spool holds only the new directory's segments."""
        try:
            if not self._moved():
                self._new_segment(self._next_seq)
                return False
        except FileNotFoundError:  # removed since the stat
            if not self._moved():
                raise
        self._abandon()
        self._open()
        return True

    def _moved(self) -> bool:
        """Whether the lock file at the directory's path is no longer the one this spool holds:
        the directory was removed, replaced (rm -rf; mkdir) or emptied since it was locked."""
        try:
            stat = os.stat(self._lock_path)
        except (FileNotFoundError, NotADirectoryError):
            return True
        return (stat.st_dev, stat.st_ino) != self._locked

    def _abandon(self) -> None:
        """The directory is no longer the one locked: the segments it held are lost, each with
        unsent points counted as a corrupt stretch (but those still in the same directory, whose
        lock file alone went: recovering it finds them). Close every fd on it and forget its
        segments, so that _open() creates, locks and recovers the path again. Logged once."""
        same = self._same_directory()
        lost = [s for s in self._segments if s.points and not (same and s.path.exists())]
        points = sum(s.points for s in lost)
        self.corrupt += len(lost)
        log.warning(
            "spool: %s was removed, replaced or emptied while in use: %d unsent points in %d "
            "segments lost; creating, locking and recovering it again",
            self.directory, points, len(lost),
        )  # fmt: skip
        self._carried = (self.dropped_points, self.corrupt)
        if same and self._unsynced_end is not None and self._write_fd >= 0:
            with contextlib.suppress(OSError):  # its file may still be there, and recovered
                os.fdatasync(self._write_fd)
        self._close_fds()
        self._locked = None
        self._recovered = False
        self._segments = []
        self._queued = self._bytes = 0
        self._unsynced_end = None

    def _same_directory(self) -> bool:
        """Whether the directory's path still names the directory the spool opened."""
        try:
            path, opened = os.stat(self.directory), os.fstat(self._dir_fd)
        except OSError:
            return False
        return (path.st_dev, path.st_ino) == (opened.st_dev, opened.st_ino)

    def _new_segment(self, seq: int) -> None:
        if self._unsynced_end is not None and self._write_fd >= 0:
            os.fdatasync(self._write_fd)  # a sealed segment holds no unsynced records
            self._unsynced_end = None
        path = self._path(seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, SEGMENT_MAGIC)
            os.fsync(fd)
            os.fsync(self._dir_fd)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        sealed, self._write_fd = self._write_fd, fd
        self._segments.append(_Segment(seq, path, SEGMENT_HEADER_SIZE, 0))
        self._next_seq = seq + 1
        self._bytes += SEGMENT_HEADER_SIZE
        if sealed >= 0:
            _close_quietly(sealed)  # synced above

    def _forget_head(self) -> _Segment:
        """Remove the oldest segment's file, then the segment (the caller fsyncs the directory,
        through _write_state). If the unlink fails, the segment stays, still counted, and the
        OSError propagates: the next commit or drop tries again."""
        segment = self._segments[0]
        if self._read is not None and self._read[0] == segment.seq:
            self._release_reader()
        if not self._moved():  # else the name is another directory's (the next read notices)
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
        self._segments.pop(0)
        self._bytes -= segment.size
        return segment

    # -- reading and committing

    def read(self, max_points: int) -> Batch | None:
        """Records from the cursor, in order, up to ``max_points`` (at least one record)."""
        records: list[Record] = []
        points = 0
        position = self._cursor
        index = next((i for i, s in enumerate(self._segments) if s.seq == position.segment), None)
        if index is None:  # no segment at all: everything was acknowledged on a full disk
            return None
        while True:
            segment = self._segments[index]
            try:
                fd = self._reader(segment)
            except FileNotFoundError:
                if self._moved():  # the whole directory
                    self._abandon()
                    return None
                self._vanished(index)  # removed by hand, say: skip it rather than stall
                if index == len(self._segments):
                    position = Position(self._next_seq, SEGMENT_HEADER_SIZE)
                    break
                position = Position(self._segments[index].seq, SEGMENT_HEADER_SIZE)
                continue
            at, record, _ = _next_valid(fd, position.offset, segment.size)
            if record is None:
                if index == len(self._segments) - 1:
                    position = Position(segment.seq, max(position.offset, at))
                    break
                index += 1
                position = Position(self._segments[index].seq, SEGMENT_HEADER_SIZE)
                continue
            if records and points + record.points > max_points:
                break
            position = Position(segment.seq, at + RECORD_HEADER.size + len(record.payload))
            records.append(Record(segment.seq, record.payload, record.points, position))
            points += record.points
            if points >= max_points:
                break
        if not records:
            if position != self._cursor:  # only empty or corrupt stretches: move past them
                self._advance(position)
            return None
        return Batch(tuple(records), self._cursor, position)

    def _reader(self, segment: _Segment) -> int:
        """A read-only fd on ``segment``, kept until the next segment is read. Before opening
        one, a stat makes sure the directory is still the one locked (FileNotFoundError if
        not): segment numbers start again in a new directory, another exporter's perhaps."""
        if self._read is not None:
            if self._read[0] == segment.seq:
                return self._read[1]
            self._release_reader()  # a failed open below must not leave it stored
        if self._moved():
            raise FileNotFoundError(errno.ENOENT, "spool directory removed or replaced")
        fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
        self._read = (segment.seq, fd)
        return fd

    def _vanished(self, index: int) -> None:
        """The file of the segment at ``index`` is gone, the directory still the one locked:
        its unsent points are lost, counted as one corrupt stretch and logged; the segment is
        forgotten (the cursor moved past it) and reading goes on with the next. The active
        segment's records are written to a file nobody can read: the next append starts
        another."""
        segment = self._segments.pop(index)
        log.warning(
            "spool: %s vanished: its %d unsent points are lost", segment.path, segment.points
        )
        if segment.points:
            self.corrupt += 1
        self._queued -= segment.points
        self._bytes -= segment.size
        if index == len(self._segments) and self._write_fd >= 0:
            self._release_writer()  # its file is gone
            self._unsynced_end = None
        if self._cursor.segment == segment.seq:
            after = self._segments[index].seq if index < len(self._segments) else self._next_seq
            self._cursor = Position(after, SEGMENT_HEADER_SIZE)
        with contextlib.suppress(OSError):  # the next commit saves it if this cannot
            self._write_state()

    def commit(self, batch: Batch) -> None:
        """Forget a batch ingest has acknowledged (or refused for good): move the cursor past it."""
        if batch.start != self._cursor:
            log.warning(
                "spool: commit of a stale batch ignored (%s != %s)", batch.start, self._cursor
            )
            return
        by_seq = {s.seq: s for s in self._segments}
        for record in batch.records:
            segment = by_seq.get(record.segment)
            if segment is not None:
                segment.points -= record.points
                self._queued -= record.points
        self._advance(batch.end)

    def _advance(self, position: Position) -> None:
        """Set the cursor, remove segments wholly behind it, and save the state."""
        self._cursor = position
        self._drop_acknowledged()
        self._write_state()

    def _drop_acknowledged(self) -> None:
        """Remove the segments wholly behind the cursor, but the one appended to."""
        while len(self._segments) > (1 if self._write_fd >= 0 else 0):
            head, cursor = self._segments[0], self._cursor
            if head.seq > cursor.segment or (
                head.seq == cursor.segment and cursor.offset < head.size
            ):
                break
            self._forget_head()
            self._queued -= head.points  # zero: every record behind the cursor was committed
            if head.seq == cursor.segment:
                seq = self._segments[0].seq if self._segments else self._next_seq
                self._cursor = Position(seq, SEGMENT_HEADER_SIZE)

    def _write_state(self) -> None:
        """Overwrite the state in place (see the module's docstring for why it is not synced)."""
        state: dict[str, int] = {
            "version": STATE_VERSION,
            "segment": self._cursor.segment,
            "offset": self._cursor.offset,
            "dropped_points": self.dropped_points,
            "corrupt": self.corrupt,
        }
        data = _state_bytes(state)
        if self._state_fd >= 0:
            if os.pwrite(self._state_fd, data, 0) == len(data):
                return
            fd, self._state_fd = self._state_fd, -1  # a short write: replace the file instead
            _close_quietly(fd)
        try:
            self._state_fd = self._replace_state(data)
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
            self._state_fd = self._overwrite_state(data, exc)

    def _replace_state(self, data: bytes) -> int:
        tmp = self.directory / "state.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, data)
            os.fsync(fd)
            os.replace(tmp, self.directory / "state")
            os.fsync(self._dir_fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()  # its space, on a full disk
            raise
        return fd

    def _overwrite_state(self, data: bytes, no_space: OSError) -> int:
        """No room for a replacement: write the state over the one on disk, in place and synced,
        if it has the fixed size (a write torn by a crash fails the CRC: everything replays)."""
        try:
            fd = os.open(self.directory / "state", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise no_space from None
        try:
            if os.fstat(fd).st_size != STATE_SIZE or os.pwrite(fd, data, 0) != len(data):
                raise no_space
            os.fdatasync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        if self._unsynced_end is not None and self._write_fd >= 0:
            with contextlib.suppress(OSError):
                os.fdatasync(self._write_fd)
        if self._state_fd >= 0:
            with contextlib.suppress(OSError):
                os.fdatasync(self._state_fd)
        self._close_fds()

    def _close_fds(self) -> None:
        """Close every fd the spool holds, each forgotten before it is closed."""
        fds = (
            self._write_fd,
            self._read[1] if self._read else -1,
            self._state_fd,
            self._dir_fd,
            self._lock_fd,
        )
        self._write_fd = self._state_fd = self._dir_fd = self._lock_fd = -1
        self._read = None
        for fd in fds:
            if fd >= 0:
                _close_quietly(fd)

    def _release_writer(self) -> None:
        """Forget the active segment's fd, then close it (see _close_quietly); only where its
        records need no sync: acknowledged, dropped, or in a file that is gone."""
        fd, self._write_fd = self._write_fd, -1
        _close_quietly(fd)

    def _release_reader(self) -> None:
        """Forget the read-only fd of the segment being read, then close it."""
        read, self._read = self._read, None
        if read is not None:
            _close_quietly(read[1])
