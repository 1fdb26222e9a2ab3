"""A window's mechanics without processes: the worker loop on a fake clock, quotas, calibration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.loadtest import worker
from exporter.loadtest.measure import SystemMeasurer
from exporter.loadtest.pool import WorkerPool, split_quota
from exporter.loadtest.procstat import CpuTimes
from exporter.loadtest.worker import WindowCommand, WindowReport, run_window


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.cpu = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def process_time(self) -> float:
        return self.cpu

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeUnit:
    def __init__(self, clock: FakeTime, seconds: float) -> None:
        self.clock, self.seconds, self.runs = clock, seconds, 0

    def run(self) -> None:
        self.runs += 1
        self.clock.now += self.seconds
        self.clock.cpu += self.seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(worker, "time", fake)
    return fake


def test_a_quota_runs_then_the_worker_idles(clock: FakeTime) -> None:
    unit = FakeUnit(clock, 0.004)
    report = run_window(unit, WindowCommand(start=100.5, deadline=101.5, quota=50))  # type: ignore[arg-type]
    assert clock.slept == [0.5]  # waited for the start
    assert report == WindowReport(units=50, cpu_seconds=pytest.approx(0.2), short=False)
    assert clock.now == pytest.approx(100.7)  # 0.8 s of the window left idle


def test_flat_out_counts_only_units_finished_by_the_deadline(clock: FakeTime) -> None:
    unit = FakeUnit(clock, 0.003)
    report = run_window(unit, WindowCommand(start=100.0, deadline=101.0, quota=None))  # type: ignore[arg-type]
    assert report.units == 333  # the 334th ends at 101.002: run, but not counted
    assert unit.runs == 334
    assert not report.short


def test_a_quota_too_big_for_the_window_is_reported_short(clock: FakeTime) -> None:
    unit = FakeUnit(clock, 1 / 128)  # exact in binary: 64 units end exactly at the deadline
    report = run_window(unit, WindowCommand(start=100.0, deadline=100.5, quota=80))  # type: ignore[arg-type]
    assert report.units == 64
    assert report.short


def test_quota_split_over_workers() -> None:
    assert split_quota(10, 4) == [3, 3, 2, 2]
    assert split_quota(0, 2) == [0, 0]
    assert sum(split_quota(1001, 7)) == 1001


class FakePool:
    """Answers every window with fixed units and CPU seconds per worker."""

    def __init__(self, units: int, cpu_seconds: float, workers: int = 2) -> None:
        self.units, self.cpu_seconds, self.workers = units, cpu_seconds, workers
        self.quotas: list[int | None] = []

    def dispatch(self, start: float, deadline: float, quota: int | None) -> None:
        self.quotas.append(quota)

    def collect(self, deadline: float) -> list[WindowReport]:
        return [WindowReport(self.units, self.cpu_seconds, False)] * self.workers


def ticks(*pairs: tuple[int, int]) -> Iterator[CpuTimes]:
    return iter(CpuTimes(idle, total) for idle, total in pairs)


def measurer(pool: FakePool, times: Iterator[CpuTimes], window: float = 0.2) -> SystemMeasurer:
    fake: WorkerPool = pool  # type: ignore[assignment]
    return SystemMeasurer(
        fake, window, read_times=lambda: next(times), vcpus=2, wait_until=lambda _: None
    )


def test_a_window_measures_host_busy_and_our_share() -> None:
    pool = FakePool(units=30, cpu_seconds=0.1)
    window = measurer(pool, ticks((0, 0), (10, 40))).measure(100.0)
    assert pool.quotas == [None]  # 100%: flat out
    assert window.busy_percent == 75.0
    assert window.units_per_second == 300.0  # 60 units in 0.2 s
    assert window.own_busy_percent == pytest.approx(50.0)  # 0.2 CPU-s of 0.4 available
    assert window.background_percent == pytest.approx(25.0)


def test_calibration_turns_loads_into_quotas_of_cpu_time() -> None:
    # flat out, 50 units per worker per 0.2 s window on 0.18 CPU-s each (other work took the rest)
    pool = FakePool(units=50, cpu_seconds=0.18)
    host = measurer(pool, ticks(*[(0, 100 * i) for i in range(10)]))
    assert host.calibrate(windows=2) == 500.0  # units per wall second
    assert host.units_per_cpu_second == pytest.approx(100 / 0.36)
    assert host.quota(100.0) is None
    # 50% of 2 vCPUs for 0.2 s is 0.2 CPU-s: 0.2 * 277.8 units
    assert host.quota(50.0) == 56
    assert host.quota(0.0) == 0
    host.measure(25.0)
    assert pool.quotas == [None, None, 28]
