"""bench/push measures push cycles through a real ingest, and node_exporter's scrape of the same
collectors, in one run."""

from __future__ import annotations

import os

import pytest

from bench.push import report, run

pytestmark = pytest.mark.integration


def test_a_short_run_gives_both_costs_and_their_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    affinity = os.sched_getaffinity(0)
    result = run(50)
    assert os.sched_getaffinity(0) == affinity  # pinned for the run only
    assert 150 <= result["points"] <= 1_000  # the default collectors on any Linux host
    assert result["cycle_ms"] > 0
    assert result["sample_ms"] > 0
    assert result["send_ms"] > 0
    assert result["points_sent"] == result["points_stored"] >= 70 * result["points"] * 0.9
    assert 0 < result["floor_ms"] < result["sample_ms"]  # the floor parses nothing
    assert result["node_exporter_scrape_ms"] > 0  # its CPU was read from /proc, not assumed
    assert result["back_to_back_cycle_ms"] > 0
    assert result["node_exporter_back_to_back_ms"] > 0
    assert result["reference_after_gap_ms"] > 0
    assert result["reference_back_to_back_ms"] > 0
    assert result["machine_slowdown"] == pytest.approx(
        result["reference_after_gap_ms"] / result["reference_back_to_back_ms"]
    )
    assert result["anchor_ratio"] == pytest.approx(
        result["cycle_mean_ms"] / result["node_exporter_scrape_ms"]
    )
    report(result)
    out = capsys.readouterr().out
    assert "push cycle / node_exporter scrape (means):" in out
    assert "target <= 2.0 ms per cycle:" in out
    assert "reading the same files, directories and file systems" in out
    assert "a fixed pure-Python loop cost" in out
    assert "back to back (" in out
    assert "stored in InfluxDB" in out
    assert "every one once" in out
