"""The result document (schema perfanalysis.loadtest/1): its keys and types, and its validation."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from exporter.loadtest.cloud import CloudFacts
from exporter.loadtest.controller import LevelOutcome, Window
from exporter.loadtest.host import HostFacts
from exporter.loadtest.result import SCHEMA, RunSettings, build, validate

HOST = HostFacts("perftest-vm-02", "AMD EPYC 9J14 96-Core Processor", 2, 4 * 1024**3, "6.1.0",
                 CloudFacts("oci", "us-phoenix-1", "VM.Standard.E5.Flex"))  # fmt: skip


def outcome(
    target: int, units: list[float], accepted: bool = True, attempts: int = 3
) -> LevelOutcome:
    windows = [Window(float(target), min(target + 0.5, 100.0), u) for u in units]
    return LevelOutcome(target, windows, attempts, accepted)


def document() -> dict[str, Any]:
    outcomes = [
        outcome(10, [18.0, 18.0, 19.0]),
        outcome(50, [92.0, 90.0, 94.0], attempts=4),
        outcome(90, [150.0, 160.0, 155.0], accepted=False, attempts=13),
        outcome(100, [182.0, 180.0, 184.0]),
    ]
    return build(
        datetime(2026, 1, 10, 0, 18, 51, tzinfo=UTC),
        datetime(2026, 1, 10, 0, 19, 30, 500000, tzinfo=UTC),
        HOST,
        RunSettings(1.0, 3, 3.0),
        outcomes,
    )


def test_the_document_has_the_contract_keys_and_values() -> None:
    doc = document()
    assert list(doc) == ["schema", "started_at", "finished_at", "host", "settings", "levels",
                         "max_units_per_second", "repeatability_cv_percent"]  # fmt: skip
    assert doc["schema"] == SCHEMA == "perfanalysis.loadtest/1"
    assert doc["started_at"] == "2026-01-10T00:18:51Z"
    assert doc["finished_at"] == "2026-01-10T00:19:30Z"
    assert doc["host"] == {
        "hostname": "perftest-vm-02", "cpu_model": "AMD EPYC 9J14 96-Core Processor",
        "vcpus": 2, "memory_bytes": 4294967296, "kernel": "6.1.0", "cloud_provider": "oci",
        "region": "us-phoenix-1", "instance_type": "VM.Standard.E5.Flex",
    }  # fmt: skip
    assert doc["settings"] == {
        "window_seconds": 1.0, "repeats": 3, "tolerance_points": 3.0, "full_load_min": 95.0,
        "unit": {"name": "pa-mem4m-v1", "buffer_bytes": 4194304},
    }  # fmt: skip
    assert doc["levels"][0] == {
        "target_busy_percent": 10, "measured_busy_percent": 10.5, "units_per_second": 18.3,
        "repeats": [18.0, 18.0, 19.0], "cv_percent": 3.15, "attempts": 3, "accepted": True,
    }  # fmt: skip
    assert doc["levels"][2]["accepted"] is False
    assert doc["levels"][2]["attempts"] == 13
    assert doc["max_units_per_second"] == 182.0  # the measured 100% level
    # the 100% level's own CV (182, 180, 184: 1.10%), not the mean with the lower levels' quotas
    assert doc["repeatability_cv_percent"] == doc["levels"][-1]["cv_percent"] == 1.1
    assert validate(doc) == []
    assert validate(json.loads(json.dumps(doc))) == []


def test_one_repeat_measures_no_cv() -> None:
    doc = build(datetime.now(UTC), datetime.now(UTC), HOST, RunSettings(0.5, 1, 3.0),
                [outcome(20, [50.0]), outcome(100, [250.0])])  # fmt: skip
    assert [level["cv_percent"] for level in doc["levels"]] == [None, None]
    assert doc["repeatability_cv_percent"] is None
    assert validate(doc) == []


def test_repeatability_is_the_full_levels_throughput_noise_not_the_controllers_moves() -> None:
    # below 100% a repeat's units are the quota asked for: a nudge between repeats shows as CV
    nudged = [outcome(10, [18.0, 18.0, 22.0]), outcome(50, [90.0, 90.0, 90.0]),
              outcome(100, [182.0, 182.0, 182.0])]  # fmt: skip
    doc = build(datetime.now(UTC), datetime.now(UTC), HOST, RunSettings(1.0, 3, 3.0), nudged)
    assert doc["levels"][0]["cv_percent"] > 10
    assert doc["repeatability_cv_percent"] == 0.0
    assert validate(doc) == []


def test_repeatability_is_not_measured_when_the_full_level_failed() -> None:
    failed = [outcome(50, [90.0, 91.0, 92.0]), outcome(100, [150.0, 182.0, 170.0], False, 33)]
    doc = build(datetime.now(UTC), datetime.now(UTC), HOST, RunSettings(1.0, 3, 3.0), failed)
    assert doc["levels"][1]["cv_percent"] is not None
    assert doc["repeatability_cv_percent"] is None
    assert validate(doc) == []


def test_the_maximum_is_the_measured_full_level_even_when_a_failed_level_shows_more() -> None:
    doc = build(datetime.now(UTC), datetime.now(UTC), HOST, RunSettings(1.0, 1, 3.0),
                [outcome(90, [290.0], accepted=False), outcome(100, [280.0])])  # fmt: skip
    assert doc["max_units_per_second"] == 280.0
    assert validate(doc) == []  # a dip within the run's noise (5%)


def test_units_falling_beyond_the_noise_are_refused_here_as_by_the_admin_app() -> None:
    doc = build(datetime.now(UTC), datetime.now(UTC), HOST, RunSettings(1.0, 1, 3.0),
                [outcome(90, [300.0], accepted=False), outcome(100, [280.0])])  # fmt: skip
    assert validate(doc) == ["/levels/1/units_per_second (280) falls below the 90% level's 300 by "
                             "more than the run's noise (5%): units must grow with busy%"]  # fmt: skip


def test_a_result_needs_the_full_level() -> None:
    with pytest.raises(ValueError, match="100% level"):
        build(datetime.now(UTC), datetime.now(UTC), HOST, RunSettings(1.0, 1, 3.0),
              [outcome(50, [100.0])])  # fmt: skip


def broken(change: str) -> dict[str, Any]:
    doc = copy.deepcopy(document())
    exec(change, {"doc": doc})  # noqa: S102 - test-only edits of a known document
    return doc


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("doc['schema'] = 'perfanalysis.loadtest/2'", "/schema must be 'perfanalysis.loadtest/1'"),
        ("doc['started_at'] = '2026-01-10 00:18:51'", "/started_at must be a date and time with its UTC offset"),
        ("doc['finished_at'] = 'yesterdayZ'", "/finished_at must be a date and time"),
        ("del doc['host']['region']", "/host/region is required"),
        ("doc['host']['vcpus'] = '2'", "/host/vcpus must be a whole number"),
        ("doc['host']['vcpus'] = True", "/host/vcpus must be a whole number"),
        ("doc['host']['cloud_provider'] = 'ibm'", "/host/cloud_provider must be one of aws, azure, gcp, oci or null"),
        ("doc['settings']['unit'] = 'pa'", "/settings/unit must be a JSON object"),
        ("doc['settings']['window_seconds'] = 0", "/settings/window_seconds must be more than 0"),
        ("doc['settings']['full_load_min'] = 0", "/settings/full_load_min must be at least 1"),
        ("doc['settings']['full_load_min'] = None", "/settings/full_load_min must be a number"),
        ("doc['levels'] = []", "/levels must hold 2 to 100 levels (it holds 0)"),
        ("doc['levels'] = doc['levels'][:1]", "/levels must hold 2 to 100 levels (it holds 1)"),
        ("doc['levels'].pop()", "/levels must end with the measured 100% level"),
        ("doc['levels'].reverse()", "/levels/1/target_busy_percent (90) is below the level before (100)"),
        ("doc['levels'][0]['repeats'] = [18.0]", "/levels/0/repeats must hold 3 results (/settings/repeats), not 1"),
        ("doc['levels'][0]['cv_percent'] = -1", "/levels/0/cv_percent must be at least 0"),
        ("del doc['levels'][0]['cv_percent']", "/levels/0/cv_percent is required"),
        ("doc['max_units_per_second'] = 190.0", "/max_units_per_second (190) must equal the 100% level's units_per_second (182)"),
        ("doc['max_units_per_second'] = 0", "/max_units_per_second must be more than 0"),
        ("doc['repeatability_cv_percent'] = 'low'", "/repeatability_cv_percent must be a number or null"),
        ("doc['levels'][1]['target_busy_percent'] = 110", "/levels/1/target_busy_percent must be between 1 and 100"),
        ("doc['levels'][1]['target_busy_percent'] = 10", "/levels/1/target_busy_percent (10) repeats the level before"),
        ("doc['levels'][0]['units_per_second'] = -1", "/levels/0/units_per_second must be more than 0"),
        ("doc['levels'][0]['repeats'] = []", "/levels/0/repeats must hold 1 to 100 numbers (it holds 0)"),
        ("doc['levels'][0]['repeats'] = [1, 'x', 2]", "/levels/0/repeats/1 must be a number"),
        ("doc['levels'][0]['attempts'] = 0", "/levels/0/attempts must be between 1 and 1000"),
        ("doc['levels'][0]['accepted'] = 'yes'", "/levels/0/accepted must be true or false"),
        ("del doc['max_units_per_second']", "/max_units_per_second is required"),
    ],
)  # fmt: skip
def test_validation_names_each_problem(change: str, problem: str) -> None:
    problems = validate(broken(change))
    assert any(problem in text for text in problems), problems


def test_validation_lists_every_problem_at_once() -> None:
    doc = broken("doc['host']['vcpus'] = 0; doc['levels'][0]['accepted'] = None; del doc['schema']")
    assert len(validate(doc)) == 3
    assert validate([1, 2]) == ["the result must be a JSON object"]


def test_the_full_load_min_applied_is_recorded_and_may_be_absent() -> None:
    doc = build(datetime.now(UTC), datetime.now(UTC), HOST, RunSettings(1.0, 1, 3.0, 90.0),
                [outcome(20, [50.0]), outcome(100, [250.0])])  # fmt: skip
    assert doc["settings"]["full_load_min"] == 90.0
    del doc["settings"]["full_load_min"]  # a result written before it was recorded
    assert validate(doc) == []
