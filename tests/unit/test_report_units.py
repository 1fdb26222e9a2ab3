"""Numbers as the report shows them, and the chart axes' ticks."""

from __future__ import annotations

from perfanalysis.report.units import format_value, nice_ticks, scale_for


def test_values_read_with_three_significant_digits_and_their_unit() -> None:
    assert format_value(12.345, "percent") == "12.3%"
    assert format_value(0.99999, "percent") == "1.00%"  # rounded first: never "1.000%"
    assert format_value(99.96, "percent") == "100%"
    assert format_value(1536, "bytes") == "1.50 KiB"
    assert format_value(2.5e6, "bytes/s") == "2.38 MiB/s"
    assert format_value(1500, "per second") == "1.50k/s"
    assert format_value(3.4, "ms") == "3.40 ms"
    assert format_value(0, "percent") == "0%"
    assert format_value(None, "count") == "\u2013"


def test_axes_get_round_ticks_in_a_readable_unit() -> None:
    assert nice_ticks(93) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert nice_ticks(0.7) == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(0) == [0.0, 1.0]
    assert scale_for("bytes", 3 * 1024**3) == (1024.0**3, "GiB")
    assert scale_for("per second", 2500) == (1000.0, "k/s")
    assert scale_for("percent", 50) == (1.0, "%")
