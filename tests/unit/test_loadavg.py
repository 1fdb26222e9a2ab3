"""loadavg collector: node_load1/5/15 as gauges, the first three fields of /proc/loadavg."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.promtext import headers, parse_samples, scrape, success, tree, value


@pytest.mark.parametrize(
    ("kernel", "loads"),
    [("3.10", (0.52, 0.58, 0.59)), ("4.19", (1.07, 0.89, 0.65)), ("6.8", (12.34, 8.05, 4.2))],
)
def test_load_averages(kernel: str, loads: tuple[float, float, float]) -> None:
    text = scrape(tree(kernel), "loadavg")
    samples = parse_samples(text)
    assert (
        value(samples, "node_load1"),
        value(samples, "node_load5"),
        value(samples, "node_load15"),
    ) == loads
    assert headers(text)["node_load15"] == ("gauge", "15m load average.")


def test_truncated_loadavg_fails_only_loadavg(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "loadavg").write_text("0.5 0.4\n")
    samples = parse_samples(scrape(tmp_path, "loadavg"))
    assert success(samples) == {"loadavg": 0}
    assert ("node_load1", frozenset()) not in samples
