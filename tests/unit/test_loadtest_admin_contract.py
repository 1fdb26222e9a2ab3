"""Documents this runner writes pass the admin app's own check of perfanalysis.loadtest/1.

The admin side (tenants/loadtests/contract.py) is built alongside; this catches the two sides
drifting apart. It is skipped where the admin app is not installed (an exporter-only host).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from exporter.loadtest.cloud import CloudFacts
from exporter.loadtest.controller import LevelOutcome, Window
from exporter.loadtest.host import HostFacts, gather
from exporter.loadtest.result import RunSettings, build

contract = pytest.importorskip("tenants.loadtests.contract")

STARTED = datetime.now(UTC) - timedelta(minutes=1)


def level(target: int, units: list[float], accepted: bool = True) -> LevelOutcome:
    busy = float(target) if accepted else min(100.0, target + 40.0)
    return LevelOutcome(target, [Window(target, busy, u, busy - 1) for u in units], 4, accepted)


def check(outcomes: list[LevelOutcome], host: HostFacts, repeats: int) -> None:
    document = build(STARTED, datetime.now(UTC), host, RunSettings(1.0, repeats, 3.0), outcomes)
    contract.parse_bytes(json.dumps(document, indent=2).encode())


def test_a_full_run_on_this_host() -> None:
    outcomes = [level(t, [t * 6.0, t * 6.1, t * 5.9]) for t in range(10, 101, 10)]
    check(outcomes, gather(CloudFacts("oci", "us-phoenix-1", "VM.Standard.E5.Flex")), 3)


def test_one_repeat_and_a_failed_level() -> None:
    outcomes = [level(20, [120.0]), level(50, [300.0], accepted=False), level(100, [600.0])]
    check(outcomes, gather(CloudFacts()), 1)
