"""A benchmark stopped by SIGTERM or SIGHUP (a CI timeout, ``kill``, a closed terminal) unwinds as
on Ctrl-C, so that its ``finally`` blocks stop the servers it started; Python's default for those
signals ends the process at once and left InfluxDB, ingest and node_exporter running."""

from __future__ import annotations

import signal
from types import FrameType


def unwind_on_termination() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit (status 128 + the signal's number)."""

    def unwind(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, unwind)
