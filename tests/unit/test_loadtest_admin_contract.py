"""Documents this runner writes pass the admin app's own check of perfanalysis.loadtest/1.

The admin side (tenants/loadtests/contract.py) is built alongside; this catches the two sides
drifting apart. It is skipped where the admin app is not installed (an exporter-only host).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from exporter.loadtest.cloud import CloudFacts
from exporter.loadtest.controller import Band, LevelOutcome, Window
from exporter.loadtest.host import HostFacts, gather
from exporter.loadtest.result import RunSettings, build

contract = pytest.importorskip("tenants.loadtests.contract")

STARTED = datetime.now(UTC) - timedelta(minutes=1)


def level(
    target: int, units: list[float], accepted: bool = True, busy: float | None = None
) -> LevelOutcome:
    if busy is None:
        busy = float(target) if accepted else min(100.0, target + 40.0)
    return LevelOutcome(target, [Window(target, busy, u, busy - 1) for u in units], 4, accepted)


def check(
    outcomes: list[LevelOutcome], host: HostFacts, repeats: int, settings: RunSettings | None = None
) -> None:
    settings = settings or RunSettings(1.0, repeats, 3.0)
    document = build(STARTED, datetime.now(UTC), host, settings, outcomes)
    contract.parse_bytes(json.dumps(document, indent=2).encode())


def test_a_full_run_on_this_host() -> None:
    outcomes = [level(t, [t * 6.0, t * 6.1, t * 5.9]) for t in range(10, 101, 10)]
    check(outcomes, gather(CloudFacts("oci", "us-phoenix-1", "VM.Standard.E5.Flex")), 3)


def test_one_repeat_and_a_failed_level() -> None:
    outcomes = [level(20, [120.0]), level(50, [300.0], accepted=False), level(100, [600.0])]
    check(outcomes, gather(CloudFacts()), 1)


@pytest.mark.parametrize(
    ("full_busy", "settings"),
    [
        (95.0, RunSettings(1.0, 3, 3.0)),  # the runner's defaults: --full-load-min 95
        (96.04, RunSettings(1.0, 3, 3.0)),
        (97.0, RunSettings(1.0, 3, 3.0)),
        (98.5, RunSettings(1.0, 3, 1.0)),  # --tolerance 1
        (80.0, RunSettings(1.0, 3, 3.0, full_load_min=80.0)),
    ],
)
def test_a_full_level_the_runner_accepted_is_accepted_by_the_admin_app(
    full_busy: float, settings: RunSettings
) -> None:
    band = Band(100, settings.tolerance_points, settings.full_load_min)
    assert band.accepts(full_busy)
    outcomes = [level(t, [t * 6.0] * 3) for t in range(10, 100, 10)]
    outcomes.append(level(100, [600.0] * 3, busy=full_busy))
    check(outcomes, gather(CloudFacts()), 3, settings)
