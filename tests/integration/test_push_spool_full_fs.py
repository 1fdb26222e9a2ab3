"""A spool on a real, small, full filesystem, its writer killed with kill -9 again and again.

Ingest stays away: the writer only appends. The filesystem (a 128 KiB tmpfs) fills long before
the spool's bound, so every append past that point finds ENOSPC and drops the oldest segment.
After each kill the spool must reopen holding a contiguous run of the newest records, none
corrupt, and every record older than that run counted as dropped -- exactly, whichever step of a
drop the kill interrupted.

The tmpfs is mounted in a private mount namespace (``unshare -rm``, as an unprivileged user
could) held by a child process, and reached from here through ``/proc/<pid>/root``. Skips when
the kernel or the container does not allow that.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.push.spool import Spool
from perfanalysis.testing.servers import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FS_BYTES = 128 << 10
MAX_BYTES = 64 << 20  # far above the filesystem: only a full filesystem drops anything
SEGMENT_BYTES = 4096  # one tmpfs page: ~19 records, ~30 segments fill the filesystem
WRITER = textwrap.dedent(f"""
    import logging, sys
    from exporter.push.spool import Spool
    logging.disable(logging.WARNING)  # one warning per segment dropped
    spool = Spool(sys.argv[1], max_bytes={MAX_BYTES}, segment_bytes={SEGMENT_BYTES})
    seq = int(sys.argv[2])
    while True:
        spool.append(b"%012d" % seq * 16, 1)
        print("A", seq, spool.dropped_points, flush=True)
        seq += 1
""")


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    holder = subprocess.Popen(
        ["unshare", "-rm", "sh", "-c",
         f'mount -t tmpfs -o size={FS_BYTES} tmpfs "$0" && echo mounted && exec cat',
         str(mount_point)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdin is not None
    assert holder.stdout is not None
    assert holder.stderr is not None
    if holder.stdout.readline().strip() != "mounted":
        holder.wait(10)
        pytest.skip(f"cannot mount a tmpfs in a new namespace: {holder.stderr.read().strip()}")
    try:
        seen = Path(f"/proc/{holder.pid}/root") / mount_point.relative_to("/")
        stat = os.statvfs(seen)
        assert stat.f_blocks * stat.f_frsize == FS_BYTES, "not the tmpfs"
        yield seen
    finally:
        holder.stdin.close()  # cat ends, and the namespace with its tmpfs
        holder.wait(10)


def run_until_dropping_then_kill(
    directory: Path, start: int, dropped_before: int, rng: random.Random
) -> int:
    """Run the writer from ``start`` until it has dropped more, then SIGKILL it at a random point
    after; the last append it reported."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), str(start)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()

    def dropping() -> bool:
        assert process.poll() is None, "the writer died"
        complete = [line for line in lines[-50:] if line.endswith("\n")]
        return bool(complete) and int(complete[-1].split()[2]) > dropped_before

    wait_until(dropping, 20, 0.005, "the writer dropping a segment")
    time.sleep(rng.uniform(0, 0.1))  # land the kill anywhere: in an append, a drop, a rotation
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    reader.join(10)
    appended = [int(line.split()[1]) for line in lines if line.endswith("\n")]
    return appended[-1]


def test_kill_9_on_a_full_filesystem_keeps_the_newest_and_counts_every_drop(
    small_filesystem: Path,
) -> None:
    rng = random.Random(3)
    directory = small_filesystem / "spool"
    start, dropped, corrupt = 0, 0, 0
    for _ in range(10):
        appended = run_until_dropping_then_kill(directory, start, dropped, rng)
        spool = Spool(directory, max_bytes=MAX_BYTES, segment_bytes=SEGMENT_BYTES)
        try:
            batch = spool.read(1 << 30)
            assert batch is not None
            for record in batch.records:
                assert record.payload == record.payload[:12] * 16, record.payload[:40]
            left = [int(record.payload[:12]) for record in batch.records]
            assert left == list(range(left[0], left[-1] + 1))  # one contiguous run, in order
            assert appended <= left[-1] <= appended + 1  # the newest survived
            assert len(left) > FS_BYTES // SEGMENT_BYTES * 5  # most of the filesystem's worth
            assert spool.dropped_points > dropped
            assert spool.dropped_points == left[0]  # every older record counted, once
            assert spool.queued_points == len(left)
            assert spool.corrupt <= corrupt + 1  # at most the append the kill tore
            dropped, corrupt = spool.dropped_points, spool.corrupt
        finally:
            spool.close()
        start = left[-1] + 1
