"""Each host's phase in the push interval, and the push path built with it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from exporter.app import build_registry
from exporter.config import load
from exporter.push.schedule import host_phase, until_phase
from exporter.push.service import build_pusher


def test_a_host_keeps_its_phase_and_hosts_differ() -> None:
    assert host_phase("web-01", 10.0) == host_phase("web-01", 10.0)
    assert host_phase("web-01", 10.0) != host_phase("web-02", 10.0)
    assert 0.0 <= host_phase("web-01", 10.0) < 10.0
    assert host_phase("web-01", 60.0) == pytest.approx(6 * host_phase("web-01", 10.0))


def test_a_fleet_is_spread_evenly_over_the_interval() -> None:
    hosts = [f"node-{n:05d}.dc1.example.com" for n in range(10_000)]
    tenths = Counter(int(host_phase(host, 15.0) / 1.5) for host in hosts)
    assert sorted(tenths) == list(range(10))
    assert all(850 <= count <= 1150 for count in tenths.values()), tenths


@pytest.mark.parametrize(
    ("now", "expected"),
    [(100.0, 3.0), (103.0, 0.0), (103.5, 9.5), (109.999, 3.001), (1e9 + 2.0, 1.0)],
)
def test_until_phase(now: float, expected: float) -> None:
    assert until_phase(now, 10.0, 3.0) == pytest.approx(expected)


def test_the_exporter_pushes_at_its_hosts_phase(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("pak_x.y\n")
    key.chmod(0o600)
    values = load(
        [
            "--push.url=http://127.0.0.1:9/",
            f"--push.key-file={key}",
            f"--push.spool-dir={tmp_path / 'spool'}",
            "--push.host=web-01",
            "--push.interval=15s",
        ],
        {},
    )
    pusher = build_pusher(values, build_registry(values))
    try:
        assert pusher.phase == host_phase("web-01", 15.0)
        status = pusher.status()
        assert status["interval_seconds"] == 15.0
        assert status["phase_seconds"] == host_phase("web-01", 15.0)
    finally:
        pusher.stop(1.0)
