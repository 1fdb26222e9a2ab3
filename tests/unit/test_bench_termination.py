"""A benchmark stopped by SIGTERM or SIGHUP runs its ``finally`` blocks (where it stops its
servers) instead of dying at once and leaving them running."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import sys, time
from bench.termination import unwind_on_termination
unwind_on_termination()
try:
    print("ready", flush=True)
    time.sleep(60)
finally:
    open(sys.argv[1], "w").write("servers stopped")
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_termination_signal_unwinds_through_finally(tmp_path: Path, signum: int) -> None:
    marker = tmp_path / "stopped"
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(marker)], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"  # the handler is in place
        child.send_signal(signum)
        assert child.wait(timeout=10) == 128 + signum
    finally:
        child.kill()
        child.wait()
    assert marker.read_text() == "servers stopped"


def test_every_benchmark_entry_point_installs_it() -> None:
    bench = Path(__file__).resolve().parents[2] / "bench"
    mains = [p for p in bench.glob("*.py") if 'if __name__ == "__main__":' in p.read_text()]
    assert len(mains) >= 5
    for path in mains:
        block = path.read_text().split('if __name__ == "__main__":', 1)[1]
        assert "unwind_on_termination()" in block, path.name
