"""The upload format, checked strictly: every refusal names its field as a JSON pointer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tenants.errors import Invalid
from tenants.loadtests.contract import check, parse_bytes
from tenants.loadtests.openapi_paths import DOCUMENT
from tests.unit.test_loadtests_support import EXAMPLES, document, variant

NAN = float("nan")


def refusal(value: Any) -> Invalid:
    with pytest.raises(Invalid) as refused:
        check(value)
    return refused.value


def test_a_valid_document_is_read() -> None:
    result = check(document())
    assert result.max_units_per_second == 182.0
    assert [level.target_busy_percent for level in result.levels] == list(range(10, 101, 10))
    assert result.host.instance_type == "VM.Standard.E5.Flex"
    assert result.settings.unit.name == "pa-mem4m-v1"
    assert result.started_at.tzinfo is not None


@pytest.mark.parametrize(
    ("pointer", "value", "field"),
    [
        ("/schema", "perfanalysis.loadtest/2", "/schema"),
        ("/schema", ..., "/schema"),
        ("/extra", 1, "/extra"),
        ("/started_at", "yesterday", "/started_at"),
        ("/started_at", "2026-11-01T10:00:00", "/started_at"),  # no UTC offset
        ("/finished_at", "2026-11-01T09:00:00Z", "/finished_at"),  # before the start
        ("/started_at", "2099-01-01T00:00:00Z", "/started_at"),  # in the future
        ("/started_at", "0001-01-01T00:00:00+01:00", "/started_at"),  # no UTC time: overflows
        ("/started_at", "1969-12-31T23:59:59Z", "/started_at"),
        ("/finished_at", "9999-12-31T23:59:59-01:00", "/finished_at"),  # overflows too
        ("/host", "web1", "/host"),
        ("/host/vcpus", 0, "/host/vcpus"),
        ("/host/vcpus", 2.5, "/host/vcpus"),
        ("/host/vcpus", True, "/host/vcpus"),
        ("/host/memory_bytes", -1, "/host/memory_bytes"),
        ("/host/hostname", "", "/host/hostname"),
        ("/host/hostname", "web\n1", "/host/hostname"),
        ("/host/cloud_provider", "ibm", "/host/cloud_provider"),
        ("/host/instance_type", "c5 large", "/host/instance_type"),
        ("/host/kernel", ..., "/host/kernel"),
        ("/settings/window_seconds", 0, "/settings/window_seconds"),
        ("/settings/tolerance_points", -3.0, "/settings/tolerance_points"),
        ("/settings/repeats", "3", "/settings/repeats"),
        ("/settings/unit/name", "", "/settings/unit/name"),
        ("/settings/unit/buffer_bytes", 0, "/settings/unit/buffer_bytes"),
        ("/levels", [], "/levels"),
        ("/levels", {}, "/levels"),
        ("/levels/3/units_per_second", -5.0, "/levels/3/units_per_second"),
        ("/levels/3/units_per_second", 0, "/levels/3/units_per_second"),
        ("/levels/3/units_per_second", "72", "/levels/3/units_per_second"),
        ("/levels/3/units_per_second", NAN, "/levels/3/units_per_second"),
        ("/levels/3/units_per_second", float("inf"), "/levels/3/units_per_second"),
        ("/levels/3/measured_busy_percent", 101.0, "/levels/3/measured_busy_percent"),
        ("/levels/3/measured_busy_percent", 60.0, "/levels/3/measured_busy_percent"),  # out of band
        ("/levels/3/target_busy_percent", 0, "/levels/3/target_busy_percent"),
        ("/levels/3/target_busy_percent", 30, "/levels/3/target_busy_percent"),  # duplicated
        ("/levels/3/target_busy_percent", 25, "/levels/3/target_busy_percent"),  # not ascending
        ("/levels/3/repeats", [72.0, 72.0], "/levels/3/repeats"),  # settings.repeats is 3
        ("/levels/3/repeats/1", -1, "/levels/3/repeats/1"),
        ("/levels/3/repeats", [80.0, 81.0, 82.0], "/levels/3/units_per_second"),  # not their mean
        ("/levels/3/cv_percent", -1.0, "/levels/3/cv_percent"),
        ("/levels/3/attempts", 0, "/levels/3/attempts"),
        ("/levels/3/accepted", "yes", "/levels/3/accepted"),
        ("/levels/3/bogus", 1, "/levels/3/bogus"),
        ("/levels/9/target_busy_percent", 95, "/levels"),  # no 100 % level
        ("/max_units_per_second", 200.0, "/max_units_per_second"),
        ("/max_units_per_second", ..., "/max_units_per_second"),
        ("/repeatability_cv_percent", -0.1, "/repeatability_cv_percent"),
    ],
)
def test_each_refusal_names_its_field(pointer: str, value: Any, field: str) -> None:
    assert refusal(variant(document(), pointer, value)).field == field


def test_units_may_dip_within_noise_but_not_beyond() -> None:
    noisy = document()
    noisy["levels"][5]["units_per_second"] = 95.0  # below the 50 % level's 92? no: 95 > 92
    noisy["levels"][5]["repeats"] = [95.0, 95.0, 96.0]
    check(noisy)
    dip = document()
    dip["levels"][5].update(units_per_second=89.0, repeats=[89.0, 89.0, 90.0])  # 3 % under 92
    check(dip)
    fall = document()
    fall["levels"][5].update(units_per_second=70.0, repeats=[70.0, 70.0, 71.0], cv_percent=1.0)
    fall["levels"][4]["cv_percent"] = 1.0
    problem = refusal(fall)
    assert problem.field == "/levels/5/units_per_second"
    assert "units must grow with busy%" in problem.message


def test_a_level_that_missed_its_band_may_be_stored_when_marked_so() -> None:
    missed = document()
    missed["levels"][8].update(measured_busy_percent=80.0, accepted=False)
    assert not check(missed).levels[8].accepted


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "the load test result is not JSON: Expecting property name enclosed in "
                       "double quotes: line 1 column 2 (char 1)"),
        (b"\xff\xfe", "the load test result is not UTF-8 text (byte 0)"),
        (b"[]", "the result must be a JSON object"),
    ],
)  # fmt: skip
def test_malformed_files_are_refused_as_a_whole(raw: bytes, message: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_bytes(raw)
    assert refused.value.message == message
    assert refused.value.field == "/"


def test_a_key_given_twice_is_named_by_its_path() -> None:
    with pytest.raises(Invalid) as refused:
        parse_bytes(b'{"schema": "a", "schema": "b"}')
    assert refused.value.message == (
        "/schema appears more than once in one object (which value was meant?)"
    )
    assert refused.value.field == "/schema"


def test_nan_in_the_file_is_named_by_its_field() -> None:
    text = json.dumps(document()).replace('"units_per_second": 72.0', '"units_per_second": NaN')
    with pytest.raises(Invalid) as refused:
        parse_bytes(text.encode())
    assert refused.value.field == "/levels/3/units_per_second"
    assert "finite" in refused.value.message


@pytest.mark.parametrize(
    ("sent", "full_repeats", "accepted", "stored"),
    [
        (2.4, [182.0, 182.0, 183.0], True, 0.32),  # an older client's mean of every level's CV
        (0.32, [182.0, 182.0, 183.0], True, 0.32),
        (None, [182.0, 182.0, 183.0], True, 0.32),
        (0.32, [182.0, 182.0, 183.0], False, None),  # a disturbed 100% level measured none
        (3.1, [182.0, 182.0, 182.0], True, 0.0),  # the 100% level's repeats, not the sent CV
    ],
)
def test_repeatability_is_the_full_load_levels_cv_whatever_the_client_sent(
    sent: float | None, full_repeats: list[float], accepted: bool, stored: float | None
) -> None:
    doc = variant(document(), "/repeatability_cv_percent", sent)
    doc["levels"][-1]["repeats"] = full_repeats
    doc["levels"][-1]["accepted"] = accepted
    assert check(doc).repeatability_cv_percent == stored


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_the_shipped_examples_follow_the_format(path: Path) -> None:
    result = parse_bytes(path.read_bytes())
    assert result.levels[-1].target_busy_percent == 100
    assert result.repeatability_cv_percent is None  # the original measured none


def with_full_level(busy: float, full_load_min: float | None) -> dict[str, Any]:
    doc = document()
    if full_load_min is not None:
        doc["settings"]["full_load_min"] = full_load_min
    doc["levels"][-1]["measured_busy_percent"] = busy
    return doc


@pytest.mark.parametrize(("busy", "full_load_min"), [(95.0, 95.0), (96.0, 95.0), (94.96, 95.0),
                                                     (80.0, 80.0), (100.0, 100.0)])  # fmt: skip
def test_the_full_level_is_accepted_at_the_runners_full_load_min(
    busy: float, full_load_min: float
) -> None:
    result = check(with_full_level(busy, full_load_min))
    assert result.settings.full_load_min == full_load_min
    assert result.levels[-1].accepted


def test_a_full_level_below_full_load_min_is_refused() -> None:
    problem = refusal(with_full_level(94.9, 95.0))
    assert problem.field == "/levels/9/measured_busy_percent"
    assert "below /settings/full_load_min (95)" in problem.message


def test_without_full_load_min_the_full_level_keeps_the_band_check() -> None:
    assert check(with_full_level(97.0, None)).settings.full_load_min is None
    problem = refusal(with_full_level(96.0, None))  # 100 - 96 > tolerance 3
    assert problem.field == "/levels/9/measured_busy_percent"
    assert "outside the tolerance band 100±3" in problem.message


def test_full_load_min_leaves_the_other_levels_in_their_band() -> None:
    doc = with_full_level(96.0, 95.0)
    doc["levels"][4]["measured_busy_percent"] = 56.0
    assert refusal(doc).field == "/levels/4/measured_busy_percent"


@pytest.mark.parametrize("value", [0, 0.5, 100.5, "95", None, True, NAN])
def test_a_bad_full_load_min_is_refused(value: Any) -> None:
    assert refusal(variant(document(), "/settings/full_load_min", value)).field == (
        "/settings/full_load_min"
    )


def test_the_api_document_has_full_load_min_as_an_optional_setting() -> None:
    settings = DOCUMENT["properties"]["settings"]
    assert settings["properties"]["full_load_min"]["minimum"] == 1
    assert settings["properties"]["full_load_min"]["maximum"] == 100
    assert "full_load_min" not in settings["required"]
