"""The load-test contract's refusals are safe to show and cheap to make.

A key the format does not know is quoted in the refusal; a lone surrogate in it (which UTF-8
cannot encode) made the upload page answer 500 while the API, whose JSON escapes it, said 400.
Messages now quote keys through ``contract.shown``. And a megabyte of unknown keys cost the
admin app a second of CPU (a difflib hint for each, every problem computed for an answer that
names the first), a megabyte of keys given twice ten: the admin app now stops after
``READ_PROBLEMS``, the runner lists ``LISTED_PROBLEMS`` and says how many more, only the first
``HINTED_KEYS`` unknown keys get a hint, and keys given twice are found in linear time.
"""

from __future__ import annotations

import difflib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from exporter.loadtest import contract
from exporter.loadtest.main import run
from exporter.loadtest.result import parse, validate
from tenants.web import MAX_BODY_BYTES
from tests.conftest import csrf
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    ANALYST,
    World,
    build_world,
    cheap_password_hashing,
    document,
    logged_in,
    table_rows,
    upload_with_key,
)

UNKNOWN_KEYS = 34_000  # about a megabyte of them, the admin app's largest body


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def with_host_key(written: str) -> bytes:
    """A valid document whose "hostname" key is written as ``written`` (JSON text)."""
    return json.dumps(document()).replace('"hostname"', f'"{written}"', 1).encode()


def unknown_keys(count: int = UNKNOWN_KEYS) -> bytes:
    return json.dumps({f"max_units_per_secon{i}": 0 for i in range(count)}).encode()


def keys_given_twice(count: int = 45_000) -> bytes:
    return ("{" + ",".join(f'"k{i}":0,"k{i}":1' for i in range(count)) + "}").encode()


def unknown_keys_in_levels() -> bytes:
    doc = document()
    for level in doc["levels"]:
        level.update({f"repeat{i}": 0 for i in range(6_000)})
    return json.dumps(doc).encode()


def cpu(work: Callable[[], Any]) -> tuple[Any, float]:
    """What ``work`` returns and the CPU seconds it took (its process's, whatever else runs)."""
    start = time.process_time()
    value = work()
    return value, time.process_time() - start


# ---- every message is safe to render and to log -------------------------------------------


@pytest.mark.parametrize(
    ("text", "as_shown"),
    [
        ("hostname", "hostname"),
        ("x\ud800", "x\\ud800"),
        ("\udc80", "\\udc80"),
        ("a\x00b\x1f\x7f", "a\\u0000b\\u001f\\u007f"),
        ("\n\t\r", "\\n\\t\\r"),
        ("evil\u202eexe", "evil\\u202eexe"),  # a right-to-left override reorders what follows
        ("no\u00a0break", "no\\u00a0break"),
        ("\U000e0001", "\\U000e0001"),
        ("a\\ud800", "a\\\\ud800"),  # a backslash written in the key: never taken for an escape
        ("é 😀 /~\"'", "é 😀 /~\"'"),
        ("k" * contract.MAX_SHOWN, "k" * contract.MAX_SHOWN),
        ("k" * (contract.MAX_SHOWN + 1), "k" * contract.MAX_SHOWN + "…"),
        ("\ud800" * 1000, "\\ud800" * contract.MAX_SHOWN + "…"),
    ],
)  # fmt: skip
def test_a_key_is_shown_printable_and_short(text: str, as_shown: str) -> None:
    shown = contract.shown(text)
    assert shown == as_shown
    assert shown.isprintable()
    shown.encode("utf-8")


HOSTILE = [
    pytest.param(b'{"x\\ud800": 1}', "/x\\ud800", "/x\\ud800 is not a field of the format",
                 id="surrogate in an unknown key"),
    pytest.param(with_host_key("hostname\\udfff"), "/host/hostname\\udfff",
                 "/host/hostname\\udfff is not a field of the format (did you mean hostname?)",
                 id="surrogate in a host key"),
    pytest.param(b'{"\\udc80": 1, "\\udc80": 2}', "/\\udc80",
                 "/\\udc80 appears more than once in one object (which value was meant?)",
                 id="surrogate key given twice"),
    pytest.param(with_host_key("host\\u0000\\u202ename"), "/host/host\\u0000\\u202ename",
                 "/host/host\\u0000\\u202ename is not a field of the format (did you mean "
                 "hostname?)", id="control and format characters"),
    pytest.param(json.dumps({"x" * 100_000: 1}).encode(), "/" + "x" * contract.MAX_SHOWN + "…",
                 "/" + "x" * contract.MAX_SHOWN + "… is not a field of the format",
                 id="a key of 100 000 characters"),
    pytest.param(b'{"a/b~\\\\": 1}', "/a~1b~0\\\\", "/a~1b~0\\\\ is not a field of the format",
                 id="slash, tilde and backslash"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field", "message"), HOSTILE)
def test_the_api_refuses_an_unprintable_key_by_its_escaped_name(
    app: Flask, client: FlaskClient, world: World, body: bytes, field: str, message: str
) -> None:
    before = table_rows(app)
    response = upload_with_key(client, world.key_a, body)
    assert response.status_code == 400
    assert response.get_json()["error"] == {"code": "invalid", "message": message, "field": field}
    assert table_rows(app) == before


@pytest.mark.parametrize(("body", "field", "message"), HOSTILE)
def test_the_upload_page_shows_an_unprintable_key_by_its_escaped_name(
    app: Flask, world: World, body: bytes, field: str, message: str
) -> None:
    client = logged_in(app, ANALYST)
    before = table_rows(app)
    data = {"file": (io.BytesIO(body), "result.json"), "csrf_token": csrf(client)}
    response = client.post("/tenants/a/loadtests", data=data, content_type="multipart/form-data")
    assert response.status_code == 400  # was 500: the page could not encode the surrogate
    assert message in response.get_data(as_text=True)
    assert table_rows(app) == before


@pytest.mark.parametrize(("body", "field", "message"), HOSTILE)
def test_the_runner_says_what_the_admin_app_says(body: bytes, field: str, message: str) -> None:
    listed = contract.problems(parse(body))
    assert (listed[0].field, listed[0].message) == (field, message)
    assert all(problem.message.isprintable() for problem in listed)


# ---- keys given twice -------------------------------------------------------------------------


def test_a_key_given_twice_is_told_with_its_object() -> None:
    body = b'{"schema": 1, "host": {"vcpus": 1, "vcpus": 2}, "x": {"a": 1, "a": 2}}'
    messages = validate(parse(body))
    assert messages[:2] == ["/x is not a field of the format",
                            "/schema must be 'perfanalysis.loadtest/1'"]  # fmt: skip
    assert "/host/vcpus appears more than once in one object (which value was meant?)" in messages
    # inside a value refused already (an unknown key's) it is not told again
    assert not any(message.startswith("/x/a") for message in messages)


def test_a_megabyte_of_keys_given_twice_is_read_in_linear_time() -> None:
    body = keys_given_twice()
    assert len(body) <= MAX_BODY_BYTES
    value, seconds = cpu(lambda: contract.decode(body))
    assert value.repeated[:2] == ("k0", "k1")
    assert len(value.repeated) == 45_000
    assert seconds < 1.0  # was 11 s: each key looked up in the list of those already repeated


# ---- the work a refusal costs is bounded ------------------------------------------------------


def test_the_runner_lists_the_first_problems_and_how_many_more() -> None:
    listed = contract.problems(parse(unknown_keys()))
    more = UNKNOWN_KEYS + len(contract.DOCUMENT.required()) - contract.LISTED_PROBLEMS
    assert len(listed) == contract.LISTED_PROBLEMS + 1
    assert listed[-1] == contract.Problem(
        "/", f"... and {more} more problems (only the first {contract.LISTED_PROBLEMS} are listed)"
    )
    assert listed[0].message == (
        "/max_units_per_secon0 is not a field of the format (did you mean max_units_per_second?)"
    )


def test_one_more_problem_is_said_in_the_singular() -> None:
    count = contract.LISTED_PROBLEMS + 1 - len(contract.DOCUMENT.required())  # and those
    listed = contract.problems({f"x{i}": 0 for i in range(count)})
    assert listed[-1].message == (
        f"... and 1 more problem (only the first {contract.LISTED_PROBLEMS} are listed)"
    )


def test_loadtest_upload_prints_the_first_problems_and_how_many_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "result.json"
    path.write_bytes(unknown_keys())
    key = tmp_path / "key"
    key.write_text("pak_abcdefghijklm_" + "B" * 43 + "\n")
    key.chmod(0o600)
    # refused before anything is sent: nothing listens on the discard port
    assert run(["upload", str(path), "--upload", "http://127.0.0.1:9", "--key-file", str(key)],
               {}) == 2  # fmt: skip
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("is not a load test result:")
    assert len(lines) == 1 + contract.LISTED_PROBLEMS + 1
    assert lines[-1].startswith("  - ... and ")


def test_only_the_first_unknown_keys_get_a_hint() -> None:
    near_misses = ["schemaa", "started_att", "finished_att", "hostt", "settingss", "levelss",
                   "max_units_per_secnd"]  # fmt: skip
    doc = {**document(), **dict.fromkeys(near_misses, 0)}
    messages = validate(doc)
    hinted = [message for message in messages if "did you mean" in message]
    assert len(hinted) == contract.HINTED_KEYS
    assert messages[contract.HINTED_KEYS : len(near_misses)] == [
        f"/{name} is not a field of the format" for name in near_misses[contract.HINTED_KEYS :]
    ]


@pytest.mark.parametrize("side", ["runner", "admin app"])
def test_a_megabyte_of_unknown_keys_costs_a_few_hints(
    monkeypatch: pytest.MonkeyPatch, side: str
) -> None:
    compared: list[str] = []
    original = difflib.get_close_matches

    def counted(word: str, *args: Any, **kwargs: Any) -> list[str]:
        compared.append(word)
        return original(word, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counted)
    value = parse(unknown_keys())
    if side == "runner":
        contract.problems(value)
    else:
        with pytest.raises(contract.Refused):
            contract.read(value)
    assert compared == [f"max_units_per_secon{i}" for i in range(contract.HINTED_KEYS)]


def test_the_admin_app_stops_after_the_first_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    value = parse(unknown_keys())
    listed = contract.problems(value)
    made: list[tuple[str, str]] = []
    original = contract.Problem

    def counted(field: str, message: str) -> contract.Problem:
        made.append((field, message))
        return original(field, message)

    monkeypatch.setattr(contract, "Problem", counted)
    with pytest.raises(contract.Refused) as refused:
        contract.read(value)
    assert refused.value.problems == tuple(listed[: contract.READ_PROBLEMS])
    assert len(made) == contract.READ_PROBLEMS  # not one for each of the 34 008


@pytest.mark.parametrize(
    "make", [unknown_keys, keys_given_twice, unknown_keys_in_levels],
    ids=["unknown keys", "keys given twice", "unknown keys in levels"],
)  # fmt: skip
def test_a_hostile_megabyte_costs_the_admin_app_little_cpu(
    app: Flask, client: FlaskClient, world: World, make: Callable[[], bytes]
) -> None:
    body = make()
    assert len(body) <= MAX_BODY_BYTES
    before = table_rows(app)
    response, seconds = cpu(lambda: upload_with_key(client, world.key_a, body))
    assert response.status_code == 400
    # was 1 to 11 s of CPU; now a few hundredths (the bound leaves room for a slow machine)
    assert seconds < 0.5
    assert table_rows(app) == before
