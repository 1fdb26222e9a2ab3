"""Bad input and half-written output in ``perfanalysis grafana`` and ``perfanalysis loadtest``.

* ``grafana check`` and ``grafana generate`` compare files as bytes: a generated file that is not
  UTF-8, or a directory in a file's place, is a line naming it, never a traceback;
* ``grafana generate`` writes all or nothing: a file it cannot write (its directory unwritable,
  or not a directory) leaves every file as it was, never new dashboards beside old alerting;
* ``grafana sync --tenants`` given empty, blank or ``,`` is refused (it meant every tenant), as is
  a slug the admin app would never have made, with exit 2 and the flag named;
* ``loadtest upload`` reads a result file as the admin app does: a key given twice (named by its
  path), an unknown key (with the key meant), UTF-16 text or NaN are refused locally with exit 2
  and nothing sent, where they used to pass, be sent and be refused by the server (exit 1).
"""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from exporter.loadtest import result
from exporter.loadtest.cloud import CloudFacts
from exporter.loadtest.controller import LevelOutcome, Window
from exporter.loadtest.host import HostFacts
from exporter.loadtest.main import run as loadtest
from exporter.loadtest.result import RunSettings, build, parse, validate
from perfanalysis import atomicfile
from perfanalysis.config import ConfigError
from perfanalysis.grafana import cli, provisioning, render
from perfanalysis.grafana.settings import load as load_sync_settings

# --- grafana generate and check ------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (hidden ones too) and directory under root, with file contents."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Path:
    """A generated tree under tmp_path instead of the committed one."""
    monkeypatch.setattr(render, "default_dir", lambda: tmp_path / "grafana" / "dashboards")
    monkeypatch.setattr(provisioning, "default_dir", lambda: tmp_path / "provisioning" / "grafana")
    assert cli.run(["generate"]) == 0
    assert cli.run(["check"]) == 0
    capsys.readouterr()
    return tmp_path


def a_dashboard(root: Path) -> Path:
    return sorted((root / "grafana" / "dashboards").glob("*.json"))[0]


def alert_rules(root: Path) -> Path:
    path = root / "provisioning" / "grafana" / "alerting" / "rules.yaml"
    assert path.is_file()
    return path


NOT_UTF8 = b'{"title": "\xff\xfe caf\xe9"}\n'


def test_check_names_a_file_that_is_not_utf8_instead_of_a_traceback(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = a_dashboard(tree)
    dashboard.write_bytes(NOT_UTF8)
    assert cli.run(["check"]) == 1
    assert capsys.readouterr().err == (
        f"{dashboard}: differs from what the generator produces (run generate)\n"
    )


def test_check_names_a_directory_in_a_files_place(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = alert_rules(tree)
    rules.unlink()
    rules.mkdir()
    assert cli.run(["check"]) == 1
    assert capsys.readouterr().err == (
        f"{rules}: is a directory, not the generated file (run generate)\n"
    )


def test_check_still_lists_missing_and_no_longer_produced_files(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = a_dashboard(tree)
    dashboard.unlink()
    extra = dashboard.with_name("left-over.json")
    extra.write_text("{}\n")
    assert cli.run(["check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{dashboard}: missing (run generate)",
        f"{extra}: not produced by the generator",
    ]


def test_generate_rewrites_a_file_that_is_not_utf8(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = a_dashboard(tree)
    wanted = dashboard.read_bytes()
    dashboard.write_bytes(NOT_UTF8)
    assert cli.run(["generate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"wrote {dashboard}"
    assert out[-1].startswith("1 file(s) written, ")
    assert dashboard.read_bytes() == wanted
    assert cli.run(["check"]) == 0


def test_generate_refuses_a_directory_in_a_files_place_writing_nothing(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = a_dashboard(tree)
    dashboard.write_text("{}\n")  # would be rewritten
    rules = alert_rules(tree)
    rules.unlink()
    rules.mkdir()
    before = snapshot(tree)
    assert cli.run(["generate"]) == 1
    assert capsys.readouterr().err == (
        f"perfanalysis grafana generate: cannot write {rules}: it is a directory\n"
    )
    assert snapshot(tree) == before


def test_generate_writes_nothing_when_the_alerting_directory_cannot_be_written(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dashboards come first in the files generate writes: they used to be replaced before the
    alerting file failed, leaving new dashboards beside old alert provisioning."""
    dashboard = a_dashboard(tree)
    dashboard.write_text("{}\n")
    rules = alert_rules(tree)
    rules.write_text("groups: []\n")
    before = snapshot(tree)
    stage = atomicfile.stage

    def unwritable_alerting(path: Path, data: bytes) -> Path:
        if path.parent.name == "alerting":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return stage(path, data)

    monkeypatch.setattr(atomicfile, "stage", unwritable_alerting)
    assert cli.run(["generate"]) == 1
    assert capsys.readouterr().err == (
        f"perfanalysis grafana generate: cannot write {rules}: Permission denied\n"
    )
    assert snapshot(tree) == before  # no dashboard replaced, no temporary file left


def test_generate_writes_nothing_when_the_alerting_directory_is_a_file(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = a_dashboard(tree)
    dashboard.write_text("{}\n")
    alerting = alert_rules(tree).parent
    for path in alerting.iterdir():
        path.unlink()
    alerting.rmdir()
    alerting.write_text("not a directory\n")
    before = snapshot(tree)
    assert cli.run(["generate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"perfanalysis grafana generate: cannot write {alerting}/")
    assert err.endswith(f": {alerting} is not a directory\n")
    assert snapshot(tree) == before


# --- grafana sync --tenants ----------------------------------------------------------------------

SYNC_ENV = {
    "PERFANALYSIS_GRAFANA_URL": "http://grafana:3000",
    "PERFANALYSIS_GRAFANA_TOKEN": "t",
    "PERFANALYSIS_GRAFANA_INFLUXDB_URL": "http://influxdb:8086",
    "PERFANALYSIS_GRAFANA_DATABASE_URL": "postgresql://u@db/admin",
    "PERFANALYSIS_GRAFANA_SECRET_KEY": "s" * 40,
}
NAMES_NO_TENANT = (
    "names no tenant: give one or more slugs separated by commas, or leave the setting out to "
    "sync every active tenant"
)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", f"flag --tenants: {NAMES_NO_TENANT}"),
        ("  ", f"flag --tenants: {NAMES_NO_TENANT}"),
        (",", "flag --tenants: invalid value ',': entry 1 is empty: give slugs separated by "
              "single commas"),
        ("acme,,globex", "flag --tenants: invalid value 'acme,,globex': entry 2 is empty"),
        ("acme,", "flag --tenants: invalid value 'acme,': entry 2 is empty"),
        ("Acme", "flag --tenants: invalid value 'Acme': 'Acme' is not a tenant slug (1-40 "
                 "lowercase letters, digits and inner hyphens, e.g. acme-prod)"),
        ("acme,-x", "flag --tenants: invalid value 'acme,-x': '-x' is not a tenant slug"),
        ("acme,acme", "flag --tenants: invalid value 'acme,acme': 'acme' is listed twice"),
    ],
)  # fmt: skip
def test_a_tenants_value_that_names_no_valid_tenant_is_refused(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_sync_settings([f"--tenants={value}"], SYNC_ENV)
    [error] = refused.value.errors
    assert error.startswith(problem), error


def test_an_empty_tenants_variable_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError) as refused:
        load_sync_settings([], {**SYNC_ENV, "PERFANALYSIS_GRAFANA_TENANTS": ""})
    assert refused.value.errors == [
        f"environment variable PERFANALYSIS_GRAFANA_TENANTS: {NAMES_NO_TENANT}"
    ]


def test_tenants_left_out_means_every_tenant_and_slugs_are_taken_as_given() -> None:
    assert load_sync_settings([], SYNC_ENV)["tenants"] == []
    given = load_sync_settings(["--tenants", " acme , globex-2"], SYNC_ENV)
    assert given["tenants"] == ["acme", "globex-2"]


def test_sync_with_an_empty_tenants_flag_exits_2_before_reaching_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SYNC_ENV.items():
        monkeypatch.setenv(name, value)
    assert cli.run(["sync", "--tenants", ","]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "perfanalysis grafana sync: invalid configuration:",
        "  - flag --tenants: invalid value ',': entry 1 is empty: give slugs separated by single "
        "commas",
    ]


# --- loadtest upload -----------------------------------------------------------------------------

KEY = "pak_abcdefghijklm_" + "B" * 43
HOST = HostFacts("vm", "AMD EPYC", 2, 8 << 30, "6.1.0", CloudFacts())


class Admin:
    """A stand-in for the admin app that stores every upload (201) and records it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stub.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps({"id": 7, "url": f"{stub.url}/loadtests/7"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def admin() -> Iterator[Admin]:
    stub = Admin()
    thread = threading.Thread(target=stub.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()
    thread.join(5)


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "collector.key"
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    return str(path)


def document() -> dict[str, Any]:
    """A result as ``loadtest run`` writes it."""
    outcomes = [
        LevelOutcome(50, [Window(50.0, 50.2, 140.0, 49.0)] * 2, 2, True),
        LevelOutcome(100, [Window(100.0, 99.5, 280.0, 98.0)] * 2, 2, True),
    ]
    return build(datetime.now(UTC), datetime.now(UTC), HOST, RunSettings(1.0, 2, 3.0), outcomes)


def text() -> str:
    return json.dumps(document(), indent=2)


def upload(tmp_path: Path, data: bytes, admin: Admin, key_file: str) -> int:
    path = tmp_path / "result.json"
    path.write_bytes(data)
    return loadtest(["upload", str(path), "--upload", admin.url, "--key-file", key_file], {})


def server_refuses(data: bytes) -> str:
    contract = pytest.importorskip("tenants.loadtests.contract")
    from tenants.errors import Invalid

    with pytest.raises(Invalid) as refused:
        contract.parse_bytes(data)
    return refused.value.message


def test_a_runners_result_passes_the_local_check_and_the_admin_apps_and_is_sent(
    tmp_path: Path, admin: Admin, key_file: str
) -> None:
    contract = pytest.importorskip("tenants.loadtests.contract")
    data = text().encode()
    assert validate(parse(data)) == []
    contract.parse_bytes(data)
    assert upload(tmp_path, data, admin, key_file) == 0
    assert admin.bodies == [data]


def test_the_keys_taken_are_the_admin_apps() -> None:
    admin = pytest.importorskip("tenants.loadtests.contract")
    from exporter.loadtest import contract

    assert admin.check.__module__ == "tenants.loadtests.contract"
    assert admin.LoadTestDocument is contract.LoadTestDocument  # one definition for both
    assert result.TOP_FIELDS == contract.TOP_FIELDS
    assert result.SETTINGS_FIELDS == ("window_seconds", "repeats", "tolerance_points", "unit",
                                      "full_load_min")  # fmt: skip


def test_a_key_given_twice_is_refused_by_its_path_and_not_sent(
    tmp_path: Path, admin: Admin, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = text().replace('"vcpus": 2,', '"vcpus": 4, "vcpus": 8,').encode()
    said = "/host/vcpus appears more than once in one object (which value was meant?)"
    assert server_refuses(data) == said
    assert upload(tmp_path, data, admin, key_file) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"perfanalysis loadtest upload: {tmp_path / 'result.json'} is not a load test result:",
        f"  - {said}",
    ]
    assert admin.bodies == []


def test_a_key_given_twice_inside_a_level_is_named_with_its_index() -> None:
    doc = document()
    raw = json.dumps(doc).replace('"attempts": 2,', '"attempts": 2, "attempts": 3,', 2)
    problems = validate(parse(raw.encode()))
    assert [p.split()[0] for p in problems] == ["/levels/0/attempts", "/levels/1/attempts"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("doc['host']['vpus'] = 2", "/host/vpus is not a field of the format (did you mean "
                                    "vcpus?)"),
        ("doc['vcpus'] = 2", "/vcpus is not a field of the format"),
        ("doc['settings']['full_load'] = 95", "/settings/full_load is not a field of the format "
                                              "(did you mean full_load_min?)"),
        ("doc['settings']['unit']['buffer_byte'] = 1", "/settings/unit/buffer_byte is not a field "
                                                       "of the format (did you mean buffer_bytes?)"),
        ("doc['levels'][1]['acceptd'] = True", "/levels/1/acceptd is not a field of the format "
                                               "(did you mean accepted?)"),
    ],
)  # fmt: skip
def test_an_unknown_key_is_refused_with_the_key_meant_and_not_sent(
    tmp_path: Path,
    admin: Admin,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
    change: str,
    problem: str,
) -> None:
    doc = document()
    exec(change, {"doc": doc})  # noqa: S102 - test-only edits of a known document
    data = json.dumps(doc, indent=2).encode()
    assert server_refuses(data).startswith(problem)
    assert upload(tmp_path, data, admin, key_file) == 2
    assert f"  - {problem}" in capsys.readouterr().err
    assert admin.bodies == []


def test_full_load_min_may_still_be_left_out() -> None:
    doc = document()
    del doc["settings"]["full_load_min"]  # results written before it was recorded
    assert validate(parse(json.dumps(doc).encode())) == []


def test_text_that_is_not_utf8_is_refused_as_the_admin_app_refuses_it(
    tmp_path: Path, admin: Admin, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = text().encode("utf-16")
    assert json.loads(data)["schema"] == result.SCHEMA  # Python's json takes UTF-16 too
    assert "not UTF-8" in server_refuses(data)
    assert upload(tmp_path, data, admin, key_file) == 2
    assert capsys.readouterr().err == (
        f"perfanalysis loadtest upload: {tmp_path / 'result.json'} is not UTF-8 text (byte 0)\n"
    )
    assert admin.bodies == []


def test_a_byte_order_mark_is_taken_as_the_admin_app_takes_it(
    tmp_path: Path, admin: Admin, key_file: str
) -> None:
    data = text().encode("utf-8-sig")
    contract = pytest.importorskip("tenants.loadtests.contract")
    contract.parse_bytes(data)
    assert upload(tmp_path, data, admin, key_file) == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused_and_not_sent(
    tmp_path: Path,
    admin: Admin,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
    constant: str,
) -> None:
    data = text().replace('"measured_busy_percent": 50.2', f'"measured_busy_percent": {constant}')
    assert constant in data
    said = "/levels/0/measured_busy_percent must be a finite number"
    assert server_refuses(data.encode()) == said
    assert upload(tmp_path, data.encode(), admin, key_file) == 2
    assert f"  - {said}\n" in capsys.readouterr().err
    assert admin.bodies == []


def test_a_huge_integer_maximum_is_a_problem_not_a_traceback() -> None:
    doc = document()
    doc["max_units_per_second"] = 10**400  # float() of it overflows
    problems = validate(parse(json.dumps(doc).encode()))
    assert problems == ["/max_units_per_second must be at most 1e+12"]


def test_deep_nesting_json_reads_is_walked_without_a_recursion_error() -> None:
    depth = 900
    data = b'{"x": ' + b"[" * depth + b"]" * depth + b"}"
    problems = validate(parse(data))
    assert problems[0] == "/x is not a field of the format"
