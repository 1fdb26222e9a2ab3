"""Uploading a result: headers, body and every kind of refusal, against a local HTTP stand-in.

The stand-in only plays the admin app's answers; the real endpoint is tested on the admin side
with documents this runner writes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from exporter.loadtest import main
from exporter.loadtest.cloud import CloudFacts
from exporter.loadtest.controller import LevelOutcome, Window
from exporter.loadtest.host import HostFacts
from exporter.loadtest.main import run
from exporter.loadtest.result import RunSettings, build
from exporter.loadtest.runner import RunOutcome
from exporter.loadtest.upload import field_errors

KEY = "pak_abcdefghijklm_" + "B" * 43


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class AdminStub:
    """Answers POSTs with ``status`` and ``answer``; records what it received."""

    status: int = 201
    answer: Any = None
    hold: threading.Event | None = None  # when set, the answer waits for this event
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def _handler(stub: AdminStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            stub.received.append(Received("POST", self.path, dict(self.headers.items()), body))
            if stub.hold is not None:
                stub.hold.wait(10)
            answer = stub.answer
            if answer is None:
                answer = {"id": 42, "url": f"{stub.url}/loadtests/42"}
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(stub.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def admin() -> Iterator[AdminStub]:
    stub = AdminStub()
    stub.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.server.daemon_threads = True
    thread = threading.Thread(target=stub.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield stub
    if stub.hold is not None:
        stub.hold.set()
    stub.server.shutdown()
    stub.server.server_close()
    thread.join(5)


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "collector.key"
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    return str(path)


HOST = HostFacts("vm", "AMD EPYC", 2, 8 << 30, "6.1.0", CloudFacts())


def outcomes(accepted: bool = True) -> list[LevelOutcome]:
    return [
        LevelOutcome(50, [Window(50.0, 50.2, 140.0, 49.0)] * 2, 2, accepted,
                     "" if accepted else "level 50%: outside"),
        LevelOutcome(100, [Window(100.0, 99.5, 280.0, 98.0)] * 2, 2, True),
    ]  # fmt: skip


@pytest.fixture
def result_file(tmp_path: Path) -> Path:
    doc = build(datetime.now(UTC), datetime.now(UTC), HOST, RunSettings(1.0, 2, 3.0), outcomes())
    path = tmp_path / "result.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def upload(path: Path, url: str, key_file: str, *extra: str) -> int:
    return run(["upload", str(path), "--upload", url, "--key-file", key_file, *extra], {})


def test_upload_posts_the_file_with_the_key(
    admin: AdminStub, result_file: Path, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert upload(result_file, admin.url + "/", key_file) == 0
    [request] = admin.received
    assert request.path == "/api/v1/loadtests"
    assert request.headers["Authorization"] == f"Token {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == result_file.read_bytes()
    assert capsys.readouterr().out == f"uploaded: stored as id 42, {admin.url}/loadtests/42\n"


def test_a_base_url_with_a_path_prefix(admin: AdminStub, result_file: Path, key_file: str) -> None:
    assert upload(result_file, admin.url + "/admin", key_file) == 0
    assert admin.received[0].path == "/admin/api/v1/loadtests"


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ({"error": {"code": "invalid", "message": "must be >= 0",
                    "field": "levels[0].units_per_second"}},
         ["  - levels[0].units_per_second: must be >= 0"]),
        ({"error": {"code": "invalid", "message": "2 problems", "details": [
            {"field": "host.vcpus", "message": "must be >= 1"},
            {"field": "levels", "message": "inconsistent"}]}},
         ["  - 2 problems", "  - host.vcpus: must be >= 1", "  - levels: inconsistent"]),
        ({"errors": {"host.cloud_provider": "unknown provider", "levels": ["empty", "unsorted"]}},
         ["  - host.cloud_provider: unknown provider", "  - levels: empty", "  - levels: unsorted"]),
        (b"<h1>Bad Request</h1>", ["  - <h1>Bad Request</h1>"]),
    ],
)  # fmt: skip
def test_a_refused_result_shows_the_servers_field_errors(
    admin: AdminStub,
    result_file: Path,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
    answer: Any,
    shown: list[str],
) -> None:
    admin.status, admin.answer = 400, answer
    assert upload(result_file, admin.url, key_file) == 1
    lines = capsys.readouterr().err.splitlines()
    assert (
        lines[0] == "perfanalysis loadtest: upload failed: the admin app refused the result (400):"
    )
    assert lines[1 : 1 + len(shown)] == shown
    assert lines[-1] == f"the result is kept in {result_file}"  # the same file would fail again


@pytest.mark.parametrize(
    ("status", "message", "transient"),
    [
        (401, "the admin app refused the collector key in", False),
        (403, "(403): check it is a current collector key", False),
        (404, "no load-test endpoint at", False),
        (422, "the admin app refused the result (422)", False),
        (429, "the admin app answered 429", True),
        (500, "the admin app answered 500", True),
        (503, "the admin app answered 503", True),
    ],
)
def test_other_refusals(
    admin: AdminStub,
    result_file: Path,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
    status: int,
    message: str,
    transient: bool,
) -> None:
    admin.status, admin.answer = status, {"error": {"code": "x", "message": "nope"}}
    assert upload(result_file, admin.url, key_file) == 1
    err = capsys.readouterr().err
    assert message in err
    assert f"the result is kept in {result_file}" in err
    assert ("retry with: perfanalysis loadtest upload" in err) is transient


def test_a_result_stored_before_is_reported_with_its_id_and_not_retried(
    admin: AdminStub, result_file: Path, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the admin app's answer when an earlier upload was stored but its answer was lost
    admin.status = 409
    admin.answer = {"error": {"code": "conflict", "field": "/",
                              "message": "this result was already uploaded as load test 7"}}  # fmt: skip
    assert upload(result_file, admin.url, key_file) == 0
    captured = capsys.readouterr()
    assert captured.out == "already uploaded: the admin app holds this result as load test 7\n"
    assert "retry" not in captured.err


def test_a_409_without_an_id_still_says_it_is_stored(
    admin: AdminStub, result_file: Path, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    admin.status, admin.answer = 409, b"Conflict"
    assert upload(result_file, admin.url, key_file) == 0
    assert capsys.readouterr().out == (
        "already uploaded: the admin app holds this result as a load test\n"
    )


def test_nobody_listening(
    admin: AdminStub, result_file: Path, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = admin.url
    assert admin.server is not None
    admin.server.shutdown()
    admin.server.server_close()
    assert upload(result_file, url, key_file) == 1
    err = capsys.readouterr().err
    assert f"cannot connect to {url}/api/v1/loadtests" in err
    assert f"retry with: perfanalysis loadtest upload {result_file} --upload {url}" in err


def test_no_answer_in_time(
    admin: AdminStub, result_file: Path, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    admin.hold = threading.Event()
    assert upload(result_file, admin.url, key_file, "--upload-timeout", "300ms") == 1
    err = capsys.readouterr().err
    assert "within 0.3s" in err
    assert f"retry with: perfanalysis loadtest upload {result_file}" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ("[" * 100_000 + "]" * 100_000, "is not JSON: nested too deeply"),
        ('{"schema": "perfanalysis.loadtest/1"}', "is not a load test result:"),
    ],
)
def test_a_bad_result_file_is_not_sent(
    admin: AdminStub,
    tmp_path: Path,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    message: str,
) -> None:
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    assert upload(path, admin.url, key_file) == 2
    assert message in capsys.readouterr().err
    assert admin.received == []


def test_field_errors_of_unknown_shapes() -> None:
    assert field_errors(None) == []
    assert field_errors({"detail": "x"}) == []
    assert field_errors({"error": "plain"}) == ["plain"]


# --- the run command's output and upload, with the load test itself faked -----------------------


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Replace the real load test; the list decides whether the 50% level is accepted."""
    accepted = [True]
    monkeypatch.setattr(main, "detect", lambda: CloudFacts("aws", None, "m5.large"))
    monkeypatch.setattr(
        main, "execute", lambda plan, progress: RunOutcome(outcomes(accepted[0]), 280.0, 1.0, 2)
    )
    return accepted


def test_run_writes_the_result_and_uploads_it(
    fake_run: list[bool], admin: AdminStub, tmp_path: Path, key_file: str
) -> None:
    output = tmp_path / "out.json"
    argv = ["run", "--output", str(output), "--upload", admin.url, "--key-file", key_file,
            "--region", "us-east-1", "--progress", "off", "--repeats", "2",
            "--full-load-min", "97.5"]  # fmt: skip
    assert run(argv, {}) == 0
    document = json.loads(output.read_text())
    assert document["settings"]["full_load_min"] == 97.5
    assert document["host"]["cloud_provider"] == "aws"
    assert document["host"]["region"] == "us-east-1"
    assert document["host"]["instance_type"] == "m5.large"
    assert json.loads(admin.received[0].body) == document


def test_a_failed_upload_keeps_the_result_file(
    fake_run: list[bool],
    admin: AdminStub,
    tmp_path: Path,
    key_file: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    admin.status = 502
    argv = ["run", "--upload", admin.url, "--key-file", key_file, "--progress", "off",
            "--repeats", "2"]  # fmt: skip
    assert run(argv, {}) == 1
    [kept] = list(tmp_path.glob("loadtest-*.json"))
    assert json.loads(kept.read_text())["schema"] == "perfanalysis.loadtest/1"
    err = capsys.readouterr().err
    assert f"result written to {kept.name}" in err
    assert f"retry with: perfanalysis loadtest upload {kept.name} --upload {admin.url}" in err


def test_a_run_whose_result_is_already_stored_succeeds(
    fake_run: list[bool], admin: AdminStub, tmp_path: Path, key_file: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    admin.status = 409
    admin.answer = {"error": {"message": "this result was already uploaded as load test 3"}}
    argv = ["run", "--output", str(tmp_path / "out.json"), "--upload", admin.url, "--key-file",
            key_file, "--progress", "off", "--repeats", "2"]  # fmt: skip
    assert run(argv, {}) == 0
    assert "holds this result as load test 3" in capsys.readouterr().out


def test_a_level_that_failed_is_recorded_and_exits_3(
    fake_run: list[bool], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_run[0] = False
    assert run(["run", "--progress", "off", "--repeats", "2"], {}) == 3
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert [level["accepted"] for level in document["levels"]] == [False, True]
    assert "1 of 2 levels were not accepted:\n  - level 50%: outside" in captured.err
