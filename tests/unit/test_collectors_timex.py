"""timex collector: adjtimex(2)'s fields with node_exporter 1.5.0's units and sync rule."""

from __future__ import annotations

import errno

import pytest

from exporter.collectors.timex import FIELDS, STA_NANO, TimexCollector
from exporter.model import NoDataError
from exporter.paths import Paths


def collect(state: int, **fields: int) -> dict[str, tuple[str, str, float]]:
    tx = dict.fromkeys(FIELDS, 0) | fields
    collector = TimexCollector(Paths(), adjtimex=lambda: (state, tx))
    return {f.name: (f.type, f.help, f.samples[0][1]) for f in collector.collect()}


def test_microsecond_units_and_synchronised() -> None:
    got = collect(0, offset=-1500, freq=65536, maxerror=16_000_000, esterror=4000, status=1,
                  constant=7, tick=10000, ppsfreq=131072, jitter=250, shift=4, stabil=65536,
                  jitcnt=1, calcnt=2, errcnt=3, stbcnt=4, tai=37)  # fmt: skip
    values = {name: v for name, (_, _, v) in got.items()}
    assert values == {
        "node_timex_sync_status": 1,
        "node_timex_offset_seconds": -0.0015,
        "node_timex_frequency_adjustment_ratio": 1.000001,
        "node_timex_maxerror_seconds": 16,
        "node_timex_estimated_error_seconds": 0.004,
        "node_timex_status": 1,
        "node_timex_loop_time_constant": 7,
        "node_timex_tick_seconds": 0.01,
        "node_timex_pps_frequency_hertz": 2e-6,
        "node_timex_pps_jitter_seconds": 0.00025,
        "node_timex_pps_shift_seconds": 4,
        "node_timex_pps_stability_hertz": 1e-6,
        "node_timex_pps_jitter_total": 1,
        "node_timex_pps_calibration_total": 2,
        "node_timex_pps_error_total": 3,
        "node_timex_pps_stability_exceeded_total": 4,
        "node_timex_tai_offset_seconds": 37,
    }
    assert got["node_timex_pps_error_total"][0] == "counter"
    assert got["node_timex_sync_status"][1] == (
        "Is clock synchronized to a reliable server (1 = yes, 0 = no)."
    )


def test_nanosecond_status_changes_offset_and_jitter_only() -> None:
    got = collect(5, offset=-1500, jitter=250, maxerror=1000, tick=10000, status=STA_NANO | 0x40)
    assert got["node_timex_offset_seconds"][2] == -1.5e-6
    assert got["node_timex_pps_jitter_seconds"][2] == 2.5e-7
    assert got["node_timex_maxerror_seconds"][2] == 0.001
    assert got["node_timex_tick_seconds"][2] == 0.01
    assert got["node_timex_sync_status"][2] == 0  # TIME_ERROR
    assert got["node_timex_status"][2] == STA_NANO | 0x40


def test_not_permitted_is_no_data_other_errors_fail() -> None:
    def refused() -> tuple[int, dict[str, int]]:
        raise OSError(errno.EPERM, "Operation not permitted")

    with pytest.raises(NoDataError):
        TimexCollector(Paths(), adjtimex=refused).collect()

    def broken() -> tuple[int, dict[str, int]]:
        raise OSError(errno.EFAULT, "Bad address")

    with pytest.raises(OSError, match="failed to retrieve adjtimex stats"):
        TimexCollector(Paths(), adjtimex=broken).collect()


def test_real_adjtimex_reads_the_clock() -> None:
    got = collect_real()
    assert got["node_timex_tick_seconds"] > 0
    assert got["node_timex_sync_status"] in (0, 1)


def collect_real() -> dict[str, float]:
    return {f.name: f.samples[0][1] for f in TimexCollector(Paths()).collect()}
