"""Busy% from two /proc/stat snapshots: busy = 1 - (idle + iowait) / total."""

from __future__ import annotations

import pytest

from exporter.loadtest.procstat import (
    CpuTimes,
    busy_percent,
    parse_cpu_times,
    read_cpu_times,
    steal_percent,
)

BEFORE = """cpu  1000 10 500 8000 200 0 40 50 300 7
cpu0 500 5 250 4000 100 0 20 25 150 3
cpu1 500 5 250 4000 100 0 20 25 150 4
intr 123456 0 0
ctxt 987654
"""
# over the interval: user +120, nice +0, system +30, idle +40, iowait +10, irq 0, softirq +0,
# steal +0, guest +100 (already inside user, so not added again)
AFTER = """cpu  1120 10 530 8040 210 0 40 50 400 7
cpu0 560 5 265 4020 105 0 20 25 200 3
cpu1 560 5 265 4020 105 0 20 25 200 4
intr 123999 0 0
"""


def test_aggregate_line_sums_eight_columns_and_counts_iowait_as_idle() -> None:
    times = parse_cpu_times(BEFORE)
    assert times == CpuTimes(
        idle=8000 + 200, total=1000 + 10 + 500 + 8000 + 200 + 0 + 40 + 50, steal=50
    )


def test_busy_over_the_interval() -> None:
    busy = busy_percent(parse_cpu_times(BEFORE), parse_cpu_times(AFTER))
    # total delta 200 ticks, idle + iowait delta 50: 75% busy
    assert busy == pytest.approx(75.0)


def test_steal_counts_as_busy_and_is_measured_on_its_own() -> None:
    before = CpuTimes(idle=100, total=100, steal=0)
    after = parse_cpu_times("cpu  50 0 0 100 0 0 0 150\n")  # +50 user, +150 steal
    assert busy_percent(before, after) == pytest.approx(100.0)
    assert steal_percent(before, after) == pytest.approx(75.0)
    assert steal_percent(before, before) == 0.0


def test_old_kernels_with_four_columns() -> None:
    assert parse_cpu_times("cpu 10 20 30 40\n") == CpuTimes(idle=40, total=100, steal=0)


def test_iowait_going_backwards_is_clamped() -> None:
    # tickless kernels can report a smaller iowait later; busy stays within 0..100
    assert busy_percent(CpuTimes(idle=500, total=1000), CpuTimes(idle=450, total=1100)) == 100.0
    assert busy_percent(CpuTimes(idle=0, total=0), CpuTimes(idle=200, total=100)) == 0.0


def test_no_elapsed_time_is_an_error() -> None:
    with pytest.raises(ValueError, match="no CPU time elapsed"):
        busy_percent(CpuTimes(1, 10), CpuTimes(1, 10))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpu0 1 2 3 4\n", "no aggregate cpu line"),
        ("cpu  1 2 x 4\n", "malformed cpu line"),
        ("cpu  1 2 3\n", "too few fields"),
    ],
)
def test_malformed_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cpu_times(text)


def test_reads_this_hosts_proc_stat() -> None:
    times = read_cpu_times()
    assert 0 <= times.idle <= times.total
