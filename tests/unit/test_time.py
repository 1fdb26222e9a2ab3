"""time collector: clocksources from the fake sysfs, the clock and the zone offset."""

from __future__ import annotations

import time

import pytest

from tests.unit.promtext import headers, parse_samples, scrape, series, tree, value


@pytest.mark.parametrize(
    ("kernel", "available", "current"),
    [
        ("3.10", {"tsc", "hpet", "acpi_pm"}, "tsc"),
        ("4.19", {"tsc", "hpet", "acpi_pm"}, "hpet"),
        ("6.8", {"kvm-clock", "tsc", "hpet", "acpi_pm"}, "kvm-clock"),
    ],
)
def test_clocksources(kernel: str, available: set[str], current: str) -> None:
    samples = parse_samples(scrape(tree(kernel), "time"))
    assert series(samples, "node_time_clocksource_available_info") == {
        frozenset({("device", "0"), ("clocksource", name)}): 1 for name in available
    }
    assert series(samples, "node_time_clocksource_current_info") == {
        frozenset({("device", "0"), ("clocksource", current)}): 1
    }


def test_time_seconds_and_zone() -> None:
    before = time.time()
    text = scrape(tree("6.8"), "time")
    after = time.time()
    samples = parse_samples(text)
    assert before <= value(samples, "node_time_seconds") <= after
    (zone,) = series(samples, "node_time_zone_offset_seconds").items()
    assert zone[1] == time.localtime(int(after)).tm_gmtoff
    assert headers(text)["node_time_clocksource_current_info"] == (
        "gauge",
        "Current clocksource read from '/sys/devices/system/clocksource'.",
    )
