"""Where the runner and the admin app used to disagree, and the side each case now takes.

* Times: any RFC 3339 offset and lower-case ``t``/``z`` (the admin app took them; the runner
  wanted a final ``Z``); nothing looser (no seconds, a basic-format time, an offset without its
  colon, or one of 24 hours), which the admin app took through Python's own parser.
* An empty ``cpu_model`` or ``kernel`` says nothing: refused by both (the admin app took it);
  a kernel not recorded is null, as in the original system's results.
* The admin app's limits (vCPUs, memory, string lengths, busy% up to 100, attempts, CVs) and
  its checks across levels: the runner now applies them before it uploads, and a run checks the
  host's facts before it starts.
* Unpaired surrogates in text: refused by both (the admin app failed with a 500 storing them).
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from exporter.loadtest import main
from exporter.loadtest.cloud import CloudFacts
from exporter.loadtest.controller import LevelOutcome, Window
from exporter.loadtest.host import HostFacts
from exporter.loadtest.result import RunSettings, build, validate
from exporter.loadtest.runner import RunOutcome
from exporter.loadtest.upload import field_errors
from tenants import db as database
from tenants.errors import Invalid
from tenants.loadtests import contract as admin_contract
from tenants.loadtests.models import LoadTestRun
from tenants.loadtests.openapi_paths import DOCUMENT, RUN_HOST
from tenants.loadtests.runs import canonical_digest
from tests.conftest import login
from tests.unit.test_loadtest_upload import (  # noqa: F401 (fixtures)
    AdminStub,
    admin,
    key_file,
)
from tests.unit.test_loadtests_api import bearer
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    EXAMPLES,
    UNITS,
    VIEWER,
    World,
    build_world,
    cheap_password_hashing,
    document,
    upload_with_key,
    variant,
)


def verdicts(doc: dict[str, Any]) -> tuple[list[str], str | None]:
    """(the runner's problems, the admin app's refusal or None) for one document."""
    try:
        admin_contract.check(doc)
    except Invalid as refused:
        return validate(doc), refused.message
    return validate(doc), None


@pytest.mark.parametrize(
    ("started", "finished"),
    [
        ("2026-11-01T10:00:00Z", "2026-11-01T10:05:00Z"),
        ("2026-11-01T12:00:00+02:00", "2026-11-01T12:05:00+02:00"),
        ("2026-11-01t10:00:00z", "2026-11-01T10:05:00.123456789-00:00"),
        ("2026-11-01T05:00:00-05:00", "2026-11-01T10:05:00.5Z"),
    ],
)
def test_any_rfc3339_offset_is_taken_by_both(started: str, finished: str) -> None:
    doc = {**document(), "started_at": started, "finished_at": finished}
    assert verdicts(doc) == ([], None)


@pytest.mark.parametrize(
    "moment",
    ["2026-11-01T10:00Z", "20261101T100000Z", "2026-11-01T10:00:00+0200", "2026-11-01T10:00:00+02",
     "2026-11-01 10:00:00Z", "2026-11-01T10:00:00", "2026-11-01T10:00:00+24:00",
     "2026-11-01T10:00:00.1234567890Z", "2026-W44-7T10:00:00Z", "\uff12\uff10\uff12\uff16-11-01T10:00:00Z"],
)  # fmt: skip
def test_what_rfc3339_does_not_allow_is_refused_by_both_in_the_same_words(moment: str) -> None:
    runner, admin_app = verdicts({**document(), "started_at": moment})
    assert runner == [admin_app]
    assert admin_app is not None
    assert admin_app.startswith("/started_at ")


@pytest.mark.parametrize(
    ("pointer", "value", "said"),
    [
        ("/host/kernel", "", "/host/kernel must not be empty (null when not known)"),
        ("/host/cpu_model", "", "/host/cpu_model must not be empty"),
        ("/host/vcpus", 4097, "/host/vcpus must be between 1 and 4096"),
        ("/host/memory_bytes", 2**50 + 1, "/host/memory_bytes must be between 1 and "
                                          "1125899906842624"),
        ("/host/hostname", "h" * 254, "/host/hostname must be 1 to 253 characters long (it has "
                                      "254)"),
        ("/host/hostname", "web\ud800", "/host/hostname holds an unpaired surrogate "
                                        "(\\ud800-\\udfff), which is not a character"),
        ("/host/kernel", "6.1\x00", "/host/kernel must not contain control characters (U+0000 "
                                    "to U+001F, U+007F)"),
        ("/host/region", "r" * 61, "/host/region must be 1 to 60 characters long (it has 61)"),
        ("/host/instance_type", "c5 large", "/host/instance_type must be letters, digits, '.', "
                                            "'_' and '-', beginning with a letter or digit"),
        ("/levels/3/attempts", 1001, "/levels/3/attempts must be between 1 and 1000"),
        ("/levels/3/cv_percent", 1000.5, "/levels/3/cv_percent must be at most 1000"),
        ("/settings/window_seconds", 3600.5, "/settings/window_seconds must be at most 3600"),
    ],
)  # fmt: skip
def test_the_admin_apps_limits_are_the_runners(pointer: str, value: Any, said: str) -> None:
    assert verdicts(variant(document(), pointer, value)) == ([said], said)


def test_a_kernel_not_recorded_is_null_and_is_taken_by_both() -> None:
    doc = variant(document(), "/host/kernel", None)
    assert verdicts(doc) == ([], None)
    assert admin_contract.check(doc).host.kernel is None


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_the_examples_kernel_not_recorded_keeps_the_digest_stored_before(path: Path) -> None:
    """The examples said "" before null: load-examples must still find the runs it stored."""
    raw = json.loads(path.read_bytes())
    assert raw["host"]["kernel"] is None
    assert validate(raw) == []
    before = variant(raw, "/host/kernel", "")
    assert canonical_digest(raw) == canonical_digest(before)


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def test_the_api_stores_a_kernel_not_recorded_and_refuses_a_surrogate_with_400(
    client: FlaskClient, world: World
) -> None:
    stored = upload_with_key(client, world.key_a, variant(document(), "/host/kernel", None))
    assert stored.status_code == 201, stored.get_json()
    assert stored.get_json()["host"]["kernel"] is None
    refused = upload_with_key(client, world.key_a, document(hostname="web\ud800"))
    assert refused.status_code == 400
    assert refused.get_json()["error"]["field"] == "/host/hostname"


def test_a_kernel_not_recorded_is_null_in_the_api_and_the_exports_and_absent_on_the_page(
    app: Flask, client: FlaskClient, world: World
) -> None:
    """Stored as "" (the column is NOT NULL, and the examples' runs were stored so): every JSON
    answer gives null, never "", and the run's page leaves the kernel out of the host's facts."""
    unknown = upload_with_key(client, world.key_a, variant(document(), "/host/kernel", None))
    known = upload_with_key(client, world.key_a, document([u * 2 for u in UNITS]))
    assert unknown.status_code == known.status_code == 201
    unknown_id, known_id = unknown.get_json()["id"], known.get_json()["id"]
    with app.app_context():
        stored = database.session().get(LoadTestRun, unknown_id)
        assert stored is not None
        assert stored.kernel == ""
    api = bearer(app, VIEWER)
    one = client.get(f"/api/v1/tenants/a/loadtests/{unknown_id}", headers=api)
    assert one.get_json()["host"]["kernel"] is None
    listed = client.get("/api/v1/tenants/a/loadtests", headers=api).get_json()["loadtests"]
    assert {run["id"]: run["host"]["kernel"] for run in listed} == {
        unknown_id: None,
        known_id: "6.1.0",
    }
    ids = f"ids={unknown_id},{known_id}"
    compared = client.get(f"/api/v1/tenants/a/loadtests/compare?{ids}", headers=api).get_json()
    assert [row["run"]["host"]["kernel"] for row in compared["runs"]] == [None, "6.1.0"]
    login(client, VIEWER)
    exported = json.loads(client.get(f"/tenants/a/loadtests/compare.json?{ids}").get_data())
    assert [row["run"]["host"]["kernel"] for row in exported["runs"]] == [None, "6.1.0"]
    page = client.get(f"/tenants/a/loadtests/{unknown_id}").get_data(as_text=True)
    [facts] = re.findall(r"<dt>Host</dt><dd>(.*?)</dd>", page)
    assert "kernel" not in facts
    [embedded] = re.findall(r'id="run-data" data-json="([^"]*)"', page)
    assert json.loads(html.unescape(embedded))["host"]["kernel"] is None


def test_the_api_schema_is_built_from_the_same_rules() -> None:
    host = DOCUMENT["properties"]["host"]["properties"]
    assert host["kernel"]["minLength"] == host["cpu_model"]["minLength"] == 1
    assert host["kernel"]["nullable"] is True
    answered = RUN_HOST["properties"]["kernel"]
    assert (answered["nullable"], answered["minLength"]) == (True, 1)  # null, never ""
    assert host["vcpus"]["maximum"] == 4096
    assert DOCUMENT["properties"]["levels"]["items"]["properties"]["attempts"]["maximum"] == 1000


def test_the_admin_apps_message_is_shown_once_with_its_field() -> None:
    said = "/host/vcpus must be between 1 and 4096"
    assert field_errors(
        {"error": {"code": "invalid", "message": said, "field": "/host/vcpus"}}
    ) == [said]
    assert field_errors({"error": {"message": "too big", "field": "label"}}) == ["label: too big"]


# ---- the runner: refused facts are told before the run, a refused result is not uploaded ------


def test_a_host_whose_facts_would_be_refused_is_told_before_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def execute(plan: Any, progress: Any) -> RunOutcome:
        raise AssertionError("the load test ran")

    huge = HostFacts("vm", "AMD EPYC", 5000, 8 << 30, "6.1.0", CloudFacts())
    monkeypatch.setattr(main, "gather", lambda cloud: huge)
    monkeypatch.setattr(main, "detect", lambda: CloudFacts())
    monkeypatch.setattr(main, "execute", execute)
    assert main.run(["run", "--progress", "off"], {}) == 1
    assert capsys.readouterr().err.splitlines() == [
        "perfanalysis loadtest: the admin app would refuse any result of this host, so the load "
        "test is not run:",
        "  - /host/vcpus must be between 1 and 4096",
    ]


def test_a_result_the_admin_app_would_refuse_is_written_but_not_uploaded(
    admin: AdminStub,  # noqa: F811
    key_file: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A disturbed 100% level measured far less than the 50% level's quota."""
    levels = [LevelOutcome(50, [Window(50.0, 50.2, 140.0, 49.0)], 1, True),
              LevelOutcome(100, [Window(100.0, 80.0, 100.0, 60.0)], 11, False, "disturbed")]  # fmt: skip
    monkeypatch.setattr(main, "detect", lambda: CloudFacts())
    monkeypatch.setattr(main, "execute", lambda plan, progress: RunOutcome(levels, 280.0, 1, 2))
    output = tmp_path / "result.json"
    argv = ["run", "--levels", "50,100", "--repeats", "1", "--progress", "off", "--output",
            str(output), "--upload", admin.url, "--key-file", key_file]  # fmt: skip
    assert main.run(argv, {}) == 1
    assert admin.received == []
    written = json.loads(output.read_text())
    problem = ("/levels/1/units_per_second (100) falls below the 50% level's 140 by more than the "
               "run's noise (5%): units must grow with busy%")  # fmt: skip
    assert validate(written) == [problem]
    err = capsys.readouterr().err
    assert ("perfanalysis loadtest: exit status 1: the admin app would refuse this result, so it "
            f"was not uploaded:\n  - {problem}\n") in err  # fmt: skip


def test_the_runners_own_result_is_within_every_limit() -> None:
    now = datetime.now(UTC)
    host = HostFacts("h" * 253, "c" * 200, 4096, 2**50, "k" * 100, CloudFacts("gcp", "r" * 60))
    levels = [LevelOutcome(1, [Window(1.0, 1.0, 0.1)], 1000, True),
              LevelOutcome(100, [Window(100.0, 100.0, 1e12)], 1, True)]  # fmt: skip
    assert validate(build(now, now, host, RunSettings(60.0, 1, 25.0, 100.0), levels)) == []
