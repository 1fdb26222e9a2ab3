"""One busy level: windows at a load, accepted within a band, nudged and retried, then repeated.

Pure logic: the windows come from a ``Measurer``, so the controller runs the same against the real
worker pool and against a scripted fake in the unit tests.

- A level below 100% is accepted when the measured busy% is within ``target ± tolerance``; the 100%
  level when it is at least ``full_load_min`` (the load cannot go higher than flat out).
- A miss nudges the load by the error (``load += target - measured``, kept within 0..100) and
  retries, up to ``retries`` times per repeat. A repeat still outside the band after that fails the
  level: the level is recorded with ``accepted: false``, and each remaining repeat gets one window
  without retries, so that every level still reports one result per repeat.
- The 100% level is always run flat out and measured; a miss only retries.
- Busy% is the whole host's, so other work on the host would pass for ours (a level "accepted"
  with our workers idle). When the measurer also reports our workers' own CPU time, a window whose
  remainder (``busy - own``, the background) exceeds ``max_background`` points is *disturbed*: it
  is never accepted and does not nudge the load (the load is not what is wrong); it is retried and
  counts as an attempt, so a host busy with other work ends in a recorded failure, not a bad number.
- A window in which the workers did no work (0.0 units/s as the result writes it) is never
  accepted, whatever ``max_background`` says: its busy% is all other work's (the load was nudged
  to nothing because other work alone filled the band). It is retried without nudging.
- ``run_levels`` stops the run (``NoWorkDone``) at a level that did no work over its repeats:
  the admin app refuses a result holding such a level (``units_per_second must be more than
  0``), so the levels after it would be measured for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from exporter.loadtest.stats import cv_percent, mean

FULL_LOAD = 100.0
DEFAULT_FULL_LOAD_MIN = 95.0
UNITS_DECIMALS = 1  # units per second as the result writes them (result.level_json)


def did_work(units_per_second: float) -> bool:
    """Whether a rate is more than 0 as the result writes it: the admin app refuses a level whose
    written units_per_second is 0 (exporter/loadtest/contract.py, the format both check)."""
    return round(units_per_second, UNITS_DECIMALS) > 0


class NoWorkDone(Exception):
    """A level's workers did no work: no result of this run could be stored, so it stops."""


@dataclass(frozen=True)
class Policy:
    tolerance: float = 3.0  # points either side of the target
    full_load_min: float = DEFAULT_FULL_LOAD_MIN  # busy% that accepts the 100% level
    repeats: int = 3
    retries: int = 10  # per repeat, after its first attempt
    max_background: float | None = 5.0  # points of busy% not ours that disturb a window; None: off


class Verdict(Enum):
    ACCEPTED = "accepted"
    MISSED = "missed"  # outside the band: nudge and retry
    DISTURBED = "disturbed"  # other work on the host: retry as it is
    NO_WORK = "no work"  # in the band, but with our workers idle: retry as it is


@dataclass(frozen=True)
class Band:
    target: int
    tolerance: float
    full_load_min: float

    def accepts(self, busy_percent: float) -> bool:
        if self.target >= FULL_LOAD:
            return busy_percent >= self.full_load_min
        return abs(busy_percent - self.target) <= self.tolerance

    def __str__(self) -> str:
        if self.target >= FULL_LOAD:
            return f">= {self.full_load_min:g}%"
        return f"{self.target - self.tolerance:g}-{self.target + self.tolerance:g}%"


@dataclass(frozen=True)
class Window:
    """One measured window: the load asked for and what came of it."""

    load_percent: float
    busy_percent: float  # the host's busy% from /proc/stat
    units_per_second: float  # all workers
    own_busy_percent: float | None = None  # the workers' own CPU time, as a share of the host
    steal_percent: float = 0.0  # part of busy% the hypervisor gave to other guests

    @property
    def background_percent(self) -> float | None:
        if self.own_busy_percent is None:
            return None
        return self.busy_percent - self.own_busy_percent


class Measurer(Protocol):
    def measure(self, load_percent: float) -> Window: ...


@dataclass(frozen=True)
class Attempt:
    """What the controller reports after each window (for the progress display)."""

    target: int
    repeat: int
    attempt: int  # within the level, from 1
    window: Window
    verdict: Verdict
    band: Band

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED


@dataclass
class LevelOutcome:
    target: int
    windows: list[Window] = field(default_factory=list)  # one per repeat that ran
    attempts: int = 0
    accepted: bool = True
    failure: str = ""

    @property
    def units(self) -> list[float]:
        return [w.units_per_second for w in self.windows]

    @property
    def units_per_second(self) -> float:
        return mean(self.units)

    @property
    def busy_percent(self) -> float:
        return mean([w.busy_percent for w in self.windows])

    @property
    def cv_percent(self) -> float | None:
        return cv_percent(self.units)

    @property
    def final_load(self) -> float:
        return self.windows[-1].load_percent if self.windows else float(self.target)


def nudge(load_percent: float, target: float, busy_percent: float) -> float:
    """The next load after a miss: moved by the error, within 0..100."""
    return min(FULL_LOAD, max(0.0, load_percent + (target - busy_percent)))


def judge(window: Window, band: Band, max_background: float | None) -> Verdict:
    background = window.background_percent
    if max_background is not None and background is not None and background > max_background:
        return Verdict.DISTURBED
    if not band.accepts(window.busy_percent):
        return Verdict.MISSED
    return Verdict.ACCEPTED if did_work(window.units_per_second) else Verdict.NO_WORK


def failure_text(target: int, window: Window, band: Band, policy: Policy, repeat: int) -> str:
    tries = f"after {policy.retries + 1} attempts (repeat {repeat})"
    background = window.background_percent
    limit = policy.max_background
    if limit is not None and background is not None and background > limit:
        steal = ""
        if window.steal_percent >= 1.0:
            steal = f", {window.steal_percent:.1f} of them steal: the hypervisor ran other guests"
        return (
            f"level {target}%: the host is busy with other work ({background:.1f} points of "
            f"{window.busy_percent:.1f}% busy are not ours{steal}; limit {limit:g}) {tries}"
        )
    if band.accepts(window.busy_percent) and not did_work(window.units_per_second):
        return (
            f"level {target}%: our workers did no work ({window.units_per_second:.1f} units/s at "
            f"load {window.load_percent:.1f}%): other work alone kept the host "
            f"{window.busy_percent:.1f}% busy, within {band}, {tries}"
        )
    return f"level {target}%: measured busy {window.busy_percent:.1f}% is outside {band} {tries}"


def run_level(
    measurer: Measurer,
    target: int,
    policy: Policy,
    start_load: float | None = None,
    observe: Callable[[Attempt], None] | None = None,
) -> LevelOutcome:
    band = Band(target, policy.tolerance, policy.full_load_min)
    full = target >= FULL_LOAD
    load = FULL_LOAD if full else float(target if start_load is None else start_load)
    outcome = LevelOutcome(target)
    for repeat in range(1, policy.repeats + 1):
        tries = policy.retries + 1 if outcome.accepted else 1
        for _ in range(tries):
            window = measurer.measure(load)
            outcome.attempts += 1
            verdict = judge(window, band, policy.max_background)
            if observe is not None:
                observe(Attempt(target, repeat, outcome.attempts, window, verdict, band))
            if verdict is Verdict.ACCEPTED:
                break
            if verdict is Verdict.MISSED and not full:
                load = nudge(load, target, window.busy_percent)
        outcome.windows.append(window)
        if verdict is not Verdict.ACCEPTED and outcome.accepted:
            outcome.accepted = False
            outcome.failure = failure_text(target, window, band, policy, repeat)
    return outcome


def run_levels(
    measurer: Measurer,
    targets: list[int],
    policy: Policy,
    observe: Callable[[Attempt], None] | None = None,
    finished: Callable[[LevelOutcome], None] | None = None,
) -> list[LevelOutcome]:
    """Every level in order; each starts from the load offset the last accepted level needed.

    NoWorkDone, after ``finished`` has seen it, at the first level that did no work."""
    offset = 0.0
    outcomes = []
    for target in targets:
        start = min(FULL_LOAD, max(0.0, target + offset))
        outcome = run_level(measurer, target, policy, start, observe)
        if outcome.accepted and target < FULL_LOAD:
            offset = outcome.final_load - target
        outcomes.append(outcome)
        if finished is not None:
            finished(outcome)
        if not did_work(outcome.units_per_second):
            raise NoWorkDone(no_work_text(outcome))
    return outcomes


def no_work_text(outcome: LevelOutcome) -> str:
    """Why the run stops at a level that did no work, and what to do."""
    why = outcome.failure or f"level {outcome.target}%: our workers did no work"
    return (
        f"{why}; the level averaged {outcome.units_per_second:.1f} units/s, and the admin app "
        "refuses a result with a level that did no work (units_per_second must be more than 0), "
        "so the run stops here: run it when other work leaves the host quieter (the line 'host "
        "busy before the test' says how busy it was)"
    )
