"""timex: node_timex_* from adjtimex(2), read only (modes 0), as node_exporter 1.5.0.

``node_timex_sync_status`` is 1 unless adjtimex returns TIME_ERROR (5), the clock state the
kernel keeps while no NTP daemon has synchronised it. Offset and jitter are in microseconds, or
nanoseconds when the status has STA_NANO (0x2000); maxerror, esterror and tick always in
microseconds; freq, ppsfreq and stabil in parts per million with a 16-bit fraction (the frequency
adjustment is exported as a ratio around 1). libc's adjtimex is called through ctypes (loaded on
the collector's first scrape, about 0.7 MiB): without it, or when the call is not permitted (a
seccomp filter), the collector has no data, as 1.5.0 answers EPERM.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from exporter.model import COUNTER, GAUGE, MetricFamily, NoDataError, single
from exporter.paths import Paths

TIME_ERROR = 5
STA_NANO = 0x2000
NANOSECONDS = 1e9
MICROSECONDS = 1e6
PPM16FRAC = 1_000_000.0 * 65536.0

# struct timex's fields, in the order of <sys/timex.h> (glibc and musl alike)
FIELDS = (
    "modes", "offset", "freq", "maxerror", "esterror", "status", "constant", "precision",
    "tolerance", "time_sec", "time_usec", "tick", "ppsfreq", "jitter", "shift", "stabil",
    "jitcnt", "calcnt", "errcnt", "stbcnt", "tai",
)  # fmt: skip
INT_FIELDS = frozenset({"modes", "status", "shift", "tai"})

# (name, HELP, kind, field, divisor: a number, or "offset" for the STA_NANO-dependent one)
METRICS: tuple[tuple[str, str, str, str, Any], ...] = (
    ("offset_seconds", "Time offset in between local system and reference clock.", GAUGE, "offset", "offset"),
    ("maxerror_seconds", "Maximum error in seconds.", GAUGE, "maxerror", MICROSECONDS),
    ("estimated_error_seconds", "Estimated error in seconds.", GAUGE, "esterror", MICROSECONDS),
    ("status", "Value of the status array bits.", GAUGE, "status", 1),
    ("loop_time_constant", "Phase-locked loop time constant.", GAUGE, "constant", 1),
    ("tick_seconds", "Seconds between clock ticks.", GAUGE, "tick", MICROSECONDS),
    ("pps_frequency_hertz", "Pulse per second frequency.", GAUGE, "ppsfreq", PPM16FRAC),
    ("pps_jitter_seconds", "Pulse per second jitter.", GAUGE, "jitter", "offset"),
    ("pps_shift_seconds", "Pulse per second interval duration.", GAUGE, "shift", 1),
    ("pps_stability_hertz", "Pulse per second stability, average of recent frequency changes.", GAUGE, "stabil", PPM16FRAC),
    ("pps_jitter_total", "Pulse per second count of jitter limit exceeded events.", COUNTER, "jitcnt", 1),
    ("pps_calibration_total", "Pulse per second count of calibration intervals.", COUNTER, "calcnt", 1),
    ("pps_error_total", "Pulse per second count of calibration errors.", COUNTER, "errcnt", 1),
    ("pps_stability_exceeded_total", "Pulse per second count of stability limit exceeded events.", COUNTER, "stbcnt", 1),
    ("tai_offset_seconds", "International Atomic Time (TAI) offset.", GAUGE, "tai", 1),
)  # fmt: skip


def _libc_adjtimex() -> Any:
    """A function reading the kernel's clock state: (return value, fields by name)."""
    import ctypes

    long, int_ = ctypes.c_long, ctypes.c_int
    layout: list[tuple[str, Any]] = [(n, int_ if n in INT_FIELDS else long) for n in FIELDS]
    layout.append(("_reserved", int_ * 11))
    timex = type("Timex", (ctypes.Structure,), {"_fields_": layout})
    libc = ctypes.CDLL(None, use_errno=True)
    call = libc.adjtimex
    call.argtypes = [ctypes.POINTER(timex)]
    call.restype = int_

    def adjtimex() -> tuple[int, dict[str, int]]:
        buf = timex()  # modes 0: read only
        state = call(ctypes.byref(buf))
        if state < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return state, {name: getattr(buf, name) for name in FIELDS}

    return adjtimex


class TimexCollector:
    name = "timex"

    def __init__(self, paths: Paths, adjtimex: Any = None) -> None:
        self.paths = paths
        self._adjtimex = adjtimex  # injectable for tests: () -> (state, fields)

    def collect(self) -> list[MetricFamily]:
        if self._adjtimex is None:
            self._adjtimex = _libc_adjtimex()
        try:
            state, tx = self._adjtimex()
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise NoDataError(f"Not collecting timex metrics: {exc}") from None
            raise OSError(exc.errno, f"failed to retrieve adjtimex stats: {exc}") from None
        offset_divisor = NANOSECONDS if tx["status"] & STA_NANO else MICROSECONDS
        out = [
            single(
                "node_timex_sync_status",
                "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
                GAUGE,
                0.0 if state == TIME_ERROR else 1.0,
            ),
            single(
                "node_timex_frequency_adjustment_ratio",
                "Local clock frequency adjustment.",
                GAUGE,
                1 + tx["freq"] / PPM16FRAC,
            ),
        ]
        for name, help_text, kind, field, divisor in METRICS:
            scale = offset_divisor if divisor == "offset" else divisor
            value = float(tx[field]) if scale == 1 else tx[field] / scale
            out.append(single(f"node_timex_{name}", help_text, kind, value))
        return out
