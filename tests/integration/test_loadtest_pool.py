"""The worker pool with real spawned processes: windows with quotas, flat out, a worker dying."""

from __future__ import annotations

import os
import signal
import time

import pytest

from exporter.loadtest.pool import PoolError, WorkerPool
from exporter.loadtest.worker import WindowReport

pytestmark = pytest.mark.integration


def one_window(pool: WorkerPool) -> list[WindowReport]:
    start = time.monotonic() + 0.05
    pool.dispatch(start, start + 0.2, None)
    return pool.collect(start + 0.2)


def test_quota_is_split_and_completed() -> None:
    with WorkerPool(2) as pool:
        start = time.monotonic() + 0.05
        pool.dispatch(start, start + 2.0, 7)
        reports = pool.collect(start + 2.0)
    assert sorted(report.units for report in reports) == [3, 4]
    assert not any(report.short for report in reports)
    assert all(report.cpu_seconds > 0 for report in reports)


def test_flat_out_runs_until_the_deadline() -> None:
    with WorkerPool(1) as pool:
        start = time.monotonic() + 0.05
        pool.dispatch(start, start + 0.3, None)
        [report] = pool.collect(start + 0.3)
        finished = time.monotonic()
    assert report.units >= 10  # a unit takes a few ms; even on a busy host 0.3 s holds many
    assert finished >= start + 0.3


def test_pinned_workers() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    with WorkerPool(len(cpus), pin_cpus=cpus) as pool:
        start = time.monotonic() + 0.05
        pool.dispatch(start, start + 1.0, len(cpus))
        assert [r.units for r in pool.collect(start + 1.0)] == [1] * len(cpus)


def test_a_dead_worker_is_reported() -> None:
    with WorkerPool(2) as pool:
        victim = pool._processes[1]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        with pytest.raises(PoolError, match=r"worker 1 (exited \(exit code -9\)|is gone)"):
            one_window(pool)
