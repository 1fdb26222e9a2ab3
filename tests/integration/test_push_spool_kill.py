"""kill -9 a process that appends to, reads from and commits the spool as fast as it can.

Many kills land inside an append, a segment rotation or a state replacement. After each one the
spool must reopen and hold exactly a contiguous run of records: none corrupt, nothing lost that
the writer had seen fsynced, nothing committed coming back beyond the one batch in flight.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from exporter.push.spool import Spool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 4 << 20
SEGMENT_BYTES = 4096  # rotate every ~20 records
WRITER = textwrap.dedent(f"""
    import sys
    from exporter.push.spool import Spool
    spool = Spool(sys.argv[1], max_bytes={MAX_BYTES}, segment_bytes={SEGMENT_BYTES})
    seq = int(sys.argv[2])
    while True:
        spool.append(b"%012d" % seq * 16, 1)
        print("A", seq, flush=True)
        seq += 1
        if seq % 3 == 0:
            batch = spool.read(2)
            spool.commit(batch)
            print("C", int(batch.records[-1].payload[:12]), flush=True)
""")


def records_in(directory: Path) -> list[int]:
    """The sequence numbers of the records in the spool, oldest first, left uncommitted."""
    spool = Spool(directory, max_bytes=MAX_BYTES, segment_bytes=SEGMENT_BYTES)
    try:
        batch = spool.read(1 << 30)
        records = batch.records if batch else ()
        for record in records:
            assert record.payload == record.payload[:12] * 16, record.payload[:40]  # no garbage
        return [int(record.payload[:12]) for record in records]
    finally:
        spool.close()


def run_and_kill(directory: Path, start: int, rng: random.Random) -> tuple[int, int]:
    """Run the writer from ``start`` and SIGKILL it; the last append and commit it reported."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), str(start)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    appended, committed = start - 1, -1
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while not lines and time.monotonic() < deadline:  # started: the interpreter takes a while
        time.sleep(0.005)
    time.sleep(rng.uniform(0.05, 0.25))
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    reader.join(10)
    for line in lines:
        if not line.endswith("\n"):  # killed while printing it
            continue
        kind, _, number = line.partition(" ")
        if kind == "A":
            appended = int(number)
        elif kind == "C":
            committed = int(number)
    return appended, committed


def test_kill_9_never_leaves_garbage_or_gaps(tmp_path: Path) -> None:
    rng = random.Random(11)
    directory = tmp_path / "spool"
    first, start, appends = 0, 0, 0
    for _ in range(15):
        appended, committed = run_and_kill(directory, start, rng)
        assert appended > start, "the writer never appended"
        appends += appended - start + 1
        left = records_in(directory)
        assert left, "every append the writer reported is durable"
        assert left == list(range(left[0], left[-1] + 1))  # one contiguous run, in order
        assert appended <= left[-1] <= appended + 1  # at most the append it had no time to report
        # committed records are gone but for the batch (2 records) whose commit was not reported
        oldest = committed + 1 if committed >= 0 else first
        assert oldest <= left[0] <= oldest + 2
        first, start = left[0], left[-1] + 1
    assert appends > 150  # ~1,000 here: rotations (every ~20 records) and commits were hit
