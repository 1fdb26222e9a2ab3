"""pressure collector: PSI totals from /proc/pressure in seconds, and kernels without PSI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.promtext import NODE_COLLECTORS, headers, parse_samples, scrape, success, tree

PSI_NAMES = {
    "node_pressure_cpu_waiting_seconds_total",
    "node_pressure_io_waiting_seconds_total",
    "node_pressure_io_stalled_seconds_total",
    "node_pressure_memory_waiting_seconds_total",
    "node_pressure_memory_stalled_seconds_total",
    "node_pressure_irq_stalled_seconds_total",
}


def seconds(microseconds: int) -> float:
    """node_exporter divides twice, float64(total) / 1000.0 / 1000.0: 14036781 µs prints as
    14.036781000000001, not the 14.036781 of a single division by 1e6."""
    return microseconds / 1000.0 / 1000.0


def pressure(root: Path) -> dict[str, float]:
    samples = parse_samples(scrape(root, "pressure"))
    return {name: v for (name, _), v in samples.items() if name.startswith("node_pressure_")}


def test_totals_on_6_8() -> None:
    assert pressure(tree("6.8")) == {
        "node_pressure_cpu_waiting_seconds_total": seconds(14036781),
        "node_pressure_io_waiting_seconds_total": seconds(4898320),
        "node_pressure_io_stalled_seconds_total": seconds(4617172),
        "node_pressure_memory_waiting_seconds_total": seconds(123456),
        "node_pressure_memory_stalled_seconds_total": seconds(98765),
        "node_pressure_irq_stalled_seconds_total": seconds(2345678),
    }


def test_exposition_matches_node_exporter_digits() -> None:
    text = scrape(tree("6.8"), "pressure")
    assert "node_pressure_cpu_waiting_seconds_total 14.036781000000001\n" in text
    assert "node_pressure_io_stalled_seconds_total 4.617171999999999\n" in text


def test_counters_with_node_exporter_help() -> None:
    found = headers(scrape(tree("6.8"), "pressure"))
    assert {name: kind for name, (kind, _) in found.items() if name in PSI_NAMES} == dict.fromkeys(
        PSI_NAMES, "counter"
    )
    assert found["node_pressure_io_stalled_seconds_total"][1] == (
        "Total time in seconds no process could make progress due to IO congestion"
    )


@pytest.mark.parametrize("kernel", ["3.10", "4.19"])
def test_no_psi_fails_only_pressure(kernel: str) -> None:
    samples = parse_samples(scrape(tree(kernel)))
    assert success(samples) == {name: 0 if name == "pressure" else 1 for name in NODE_COLLECTORS}
    assert not any(name.startswith("node_pressure_") for name, _ in samples)
    assert any(name == "node_load1" for name, _ in samples)


def test_only_the_files_present_are_read(tmp_path: Path) -> None:
    (tmp_path / "proc" / "pressure").mkdir(parents=True)
    (tmp_path / "proc" / "pressure" / "memory").write_text(
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=5000000\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=250\n"
    )
    assert pressure(tmp_path) == {
        "node_pressure_memory_waiting_seconds_total": 5.0,
        "node_pressure_memory_stalled_seconds_total": seconds(250),
    }
