"""Acceptance bands, nudging, retries, repeats and the background check, against fake measurers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from exporter.loadtest.controller import (
    Attempt,
    Band,
    Policy,
    Verdict,
    Window,
    judge,
    nudge,
    run_level,
    run_levels,
)

UNITS_PER_POINT = 3.0  # the fake host: 300 units/s flat out


class Linear:
    """A host whose busy% is ``gain * load + background``, never above 100."""

    def __init__(self, gain: float = 1.0, background: float = 0.0, own: bool = True) -> None:
        self.gain, self.background, self.own = gain, background, own
        self.loads: list[float] = []

    def measure(self, load_percent: float) -> Window:
        self.loads.append(load_percent)
        ours = min(100.0, self.gain * load_percent)
        busy = min(100.0, ours + self.background)
        return Window(load_percent, busy, ours * UNITS_PER_POINT, ours if self.own else None)


class Scripted:
    """Measured busy% values in order, whatever the load."""

    def __init__(self, busy: list[float]) -> None:
        self.busy: Iterator[float] = iter(busy)
        self.loads: list[float] = []

    def measure(self, load_percent: float) -> Window:
        self.loads.append(load_percent)
        return Window(load_percent, next(self.busy), load_percent * UNITS_PER_POINT)


class ScriptedWindows:
    """Whole windows in order, whatever the load."""

    def __init__(self, windows: list[Window]) -> None:
        self.windows = iter(windows)

    def measure(self, load_percent: float) -> Window:
        return next(self.windows)


@pytest.mark.parametrize(
    ("target", "busy", "accepted"),
    [
        (50, 47.0, True),
        (50, 53.0, True),
        (50, 46.9, False),
        (50, 53.1, False),
        (10, 10.6, True),
        (100, 95.0, True),
        (100, 94.9, False),
        (100, 100.0, True),
    ],
)
def test_band(target: int, busy: float, accepted: bool) -> None:
    assert Band(target, 3.0, 95.0).accepts(busy) is accepted


def test_band_descriptions() -> None:
    assert str(Band(50, 3.0, 95.0)) == "47-53%"
    assert str(Band(100, 3.0, 95.0)) == ">= 95%"


def test_nudge_moves_the_load_by_the_error_within_0_and_100() -> None:
    assert nudge(50.0, 50, 56.0) == 44.0
    assert nudge(50.0, 50, 40.0) == 60.0
    assert nudge(5.0, 10, 30.0) == 0.0
    assert nudge(95.0, 90, 70.0) == 100.0


def test_a_calibrated_host_is_accepted_at_the_first_attempt() -> None:
    host = Linear()
    outcome = run_level(host, 40, Policy(repeats=3))
    assert outcome.accepted
    assert outcome.attempts == 3
    assert outcome.units == [120.0, 120.0, 120.0]
    assert outcome.busy_percent == 40.0
    assert outcome.cv_percent == 0.0
    assert host.loads == [40.0, 40.0, 40.0]


def test_a_miss_is_nudged_and_the_nudged_load_carries_to_the_next_repeat() -> None:
    host = Linear(gain=1.25)  # calibration 25% optimistic: load 40 makes 50% busy
    outcome = run_level(host, 40, Policy(repeats=2))
    assert outcome.accepted
    assert host.loads == [40.0, 30.0, 30.0]  # one miss, then 37.5% busy is in 37-43
    assert outcome.attempts == 3
    assert outcome.busy_percent == 37.5


def test_retries_run_out_into_a_recorded_failure() -> None:
    host = Scripted([80.0] * 20)  # something keeps the host at 80% whatever we do
    outcome = run_level(host, 30, Policy(repeats=3, retries=4, max_background=None))
    assert not outcome.accepted
    # the first try and 4 retries; then one window for each remaining repeat, so that the level
    # still has a result per repeat (the failed repeat's last window is what gets recorded)
    assert outcome.attempts == 5 + 1 + 1
    assert len(outcome.windows) == 3
    assert host.loads == [30.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # nudged down to nothing
    assert outcome.failure == (
        "level 30%: measured busy 80.0% is outside 27-33% after 5 attempts (repeat 1)"
    )


def test_a_later_repeat_can_fail_the_level() -> None:
    host = Scripted([30.0, 31.0, 60.0, 60.0])
    outcome = run_level(host, 30, Policy(repeats=3, retries=1, max_background=None))
    assert not outcome.accepted
    assert outcome.attempts == 4
    assert [w.busy_percent for w in outcome.windows] == [30.0, 31.0, 60.0]
    assert "(repeat 3)" in outcome.failure


def test_the_full_level_runs_flat_out_and_is_never_nudged() -> None:
    host = Scripted([92.0, 96.0, 99.0, 97.0])
    outcome = run_level(host, 100, Policy(repeats=3), start_load=40.0)
    assert outcome.accepted
    assert host.loads == [100.0, 100.0, 100.0, 100.0]
    assert outcome.attempts == 4
    assert outcome.busy_percent == pytest.approx((96.0 + 99.0 + 97.0) / 3)


def test_the_full_level_fails_below_its_minimum() -> None:
    host = Scripted([90.0, 91.0, 89.0])
    outcome = run_level(host, 100, Policy(repeats=1, retries=2, full_load_min=95.0))
    assert not outcome.accepted
    assert ">= 95%" in outcome.failure


def test_other_work_on_the_host_disturbs_windows_instead_of_being_taken_for_ours() -> None:
    # our workers make 20%, something else 40%: busy 60% at a 60% target looks right but is not ours
    host = Linear(background=40.0)
    outcome = run_level(host, 60, Policy(repeats=1, retries=3, max_background=5.0))
    assert not outcome.accepted
    assert host.loads == [60.0, 60.0, 60.0, 60.0]  # not nudged: the load is not what is wrong
    assert "busy with other work (40.0 points of 100.0% busy are not ours; limit 5)" in (
        outcome.failure
    )


def test_steal_is_named_in_the_failure() -> None:
    window = Window(50.0, 70.0, 150.0, own_busy_percent=50.0, steal_percent=15.0)
    outcome = run_level(ScriptedWindows([window] * 2), 50, Policy(repeats=1, retries=1))
    assert "(20.0 points of 70.0% busy are not ours, 15.0 of them steal: the hypervisor ran " in (
        outcome.failure
    )


def test_background_within_the_limit_is_nudged_away() -> None:
    host = Linear(background=4.0)
    outcome = run_level(host, 50, Policy(repeats=2, max_background=5.0))
    assert outcome.accepted
    assert host.loads == [50.0, 46.0, 46.0]


def test_without_own_cpu_time_the_background_check_is_skipped() -> None:
    window = Window(20.0, 60.0, 60.0, own_busy_percent=None)
    assert judge(window, Band(60, 3.0, 95.0), max_background=5.0) is Verdict.ACCEPTED


def test_the_check_can_be_turned_off() -> None:
    window = Window(20.0, 60.0, 60.0, own_busy_percent=20.0)
    assert judge(window, Band(60, 3.0, 95.0), max_background=None) is Verdict.ACCEPTED
    assert judge(window, Band(60, 3.0, 95.0), max_background=5.0) is Verdict.DISTURBED


def test_levels_start_from_the_offset_the_last_accepted_level_needed() -> None:
    host = Linear(background=3.0)  # every level needs 3 points less load
    finished: list[int] = []
    outcomes = run_levels(
        host,
        [10, 20, 100],
        Policy(repeats=1, tolerance=1.0),
        finished=lambda o: finished.append(o.target),
    )
    assert [o.accepted for o in outcomes] == [True, True, True]
    assert host.loads == [10.0, 7.0, 17.0, 100.0]  # 20% started at 17, not 20
    assert finished == [10, 20, 100]
    assert [o.units_per_second for o in outcomes] == [21.0, 51.0, 300.0]


def test_every_attempt_is_reported() -> None:
    seen: list[Attempt] = []
    observe: Callable[[Attempt], None] = seen.append
    run_level(Linear(gain=1.25), 40, Policy(repeats=2), observe=observe)
    assert [(a.repeat, a.attempt, a.verdict) for a in seen] == [
        (1, 1, Verdict.MISSED),
        (1, 2, Verdict.ACCEPTED),
        (2, 3, Verdict.ACCEPTED),
    ]
