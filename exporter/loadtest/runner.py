"""A whole run on the real host: start the workers, note the background load, calibrate, run levels."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from exporter.loadtest.controller import LevelOutcome, Policy, run_levels
from exporter.loadtest.measure import SystemMeasurer
from exporter.loadtest.pool import WorkerPool
from exporter.loadtest.progress import Progress, describe_attempt, describe_level


@dataclass(frozen=True)
class Plan:
    levels: list[int]
    window_seconds: float
    policy: Policy
    workers: int = 0  # 0: one per CPU this process may use
    pin_workers: bool = False
    calibration_windows: int = 2

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Plan:
        background = values["max_background"]
        policy = Policy(
            tolerance=values["tolerance"],
            full_load_min=values["full_load_min"],
            repeats=values["repeats"],
            retries=values["retries"],
            max_background=None if background >= 100 else background,
        )
        return cls(
            levels=values["levels"],
            window_seconds=values["window"],
            policy=policy,
            workers=values["workers"],
            pin_workers=values["pin_workers"],
            calibration_windows=values["calibration_windows"],
        )


@dataclass(frozen=True)
class RunOutcome:
    levels: list[LevelOutcome]
    calibrated_units_per_second: float
    background_percent: float  # host busy% with the workers idle, before the levels
    workers: int


def execute(plan: Plan, progress: Progress) -> RunOutcome:
    cpus = sorted(os.sched_getaffinity(0))
    workers = plan.workers or len(cpus)
    vcpus = os.cpu_count() or 1
    if workers < vcpus:
        progress.line(
            f"warning: {workers} workers on a {vcpus}-vCPU host: busy cannot reach 100%, "
            "and the 100% level will fail"
        )
    progress.status(f"starting {workers} workers ...")
    with WorkerPool(workers, cpus if plan.pin_workers else None) as pool:
        measurer = SystemMeasurer(pool, plan.window_seconds, vcpus=vcpus)
        background = measurer.measure(0.0).busy_percent
        progress.line(f"host busy before the test (other work): {background:.1f}%")
        limit = plan.policy.max_background
        if limit is not None and background > limit:
            progress.line(
                f"warning: other work keeps the host {background:.1f}% busy (limit {limit:g} "
                "points): windows it disturbs are retried and levels may fail"
            )
        progress.status("calibrating ...")
        rate = measurer.calibrate(plan.calibration_windows)
        progress.line(f"calibrated: {rate:.1f} units/s with {workers} workers flat out")
        repeats = plan.policy.repeats
        outcomes = run_levels(
            measurer,
            plan.levels,
            plan.policy,
            observe=lambda attempt: progress.status(describe_attempt(attempt, repeats)),
            finished=lambda outcome: progress.line(describe_level(outcome)),
        )
    progress.close()
    return RunOutcome(outcomes, rate, background, workers)
