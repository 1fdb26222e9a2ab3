"""The worker process: waits for a window, runs its share of units in it, reports, and waits again.

A window is given in ``time.monotonic()`` seconds, which on Linux is CLOCK_MONOTONIC and the same
clock in every process, so all workers start and stop together. With a quota the worker runs that
many units and then sleeps until the next window (the duty cycle); without one (the 100% level and
calibration) it runs units until the deadline. A unit that ends after the deadline is not counted.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from exporter.loadtest.unit import WorkUnit

READY = "ready"


@dataclass(frozen=True)
class WindowCommand:
    start: float  # time.monotonic() at which to begin
    deadline: float  # time.monotonic() at which the window ends
    quota: int | None  # units to run; None: as many as fit


@dataclass(frozen=True)
class WindowReport:
    units: int  # units completed by the deadline
    cpu_seconds: float  # this process's CPU time during the window
    short: bool  # the quota was not reached by the deadline


def sleep_until(moment: float) -> None:
    while (remaining := moment - time.monotonic()) > 0:
        time.sleep(remaining)


def run_window(unit: WorkUnit, command: WindowCommand) -> WindowReport:
    sleep_until(command.start)
    cpu_before = time.process_time()
    units = 0
    while command.quota is None or units < command.quota:
        if time.monotonic() >= command.deadline:
            break
        unit.run()
        if time.monotonic() > command.deadline:
            break
        units += 1
    short = command.quota is not None and units < command.quota
    return WindowReport(units, time.process_time() - cpu_before, short)


def serve(connection: Connection, cpu: int | None) -> None:
    """Process entry point. Ctrl-C goes to the coordinator, which stops the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    unit = WorkUnit()
    unit.run()  # fault the buffer in before the first window
    try:
        connection.send(READY)
        while (command := connection.recv()) is not None:
            connection.send(run_window(unit, command))
    except (EOFError, OSError):
        pass  # the coordinator has gone: nothing to report to
    finally:
        connection.close()
