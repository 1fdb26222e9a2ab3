"""Uploading a result: headers, body and every kind of refusal, against a local HTTP stand-in.

The stand-in only plays the admin app's answers; the real endpoint is tested on the admin side
with documents this runner writes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
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
    """Answers POSTs with ``status`` and ``answer`` (and a ``location`` header when set), and
    every GET with a 200 HTML login page; records what it received."""

    status: int = 201
    answer: Any = None
    hold: threading.Event | None = None  # when set, the answer waits for this event
    location: str | None = None
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
            if stub.location is not None:
                self.send_header("Location", stub.location)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)  # a client that timed out has gone

        def do_GET(self) -> None:  # where a followed redirect would land: a login page
            stub.received.append(Received("GET", self.path, dict(self.headers.items()), b""))
            data = b"<!DOCTYPE html><html><title>Sign in</title></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
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


# --- only 201 or 409 means stored: redirects and other answers are failures ----------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_is_not_followed(
    admin: AdminStub,
    result_file: Path,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
    status: int,
) -> None:
    # the admin app behind a wrong path prefix: a 302 to its login page, which answers 200 HTML
    admin.status, admin.answer, admin.location = status, b"", "/login"
    assert upload(result_file, admin.url + "/admin", key_file) == 1
    assert [r.method for r in admin.received] == ["POST"]  # the login page was never fetched
    captured = capsys.readouterr()
    assert captured.out == ""
    first, *_, last = captured.err.splitlines()
    assert first == (
        f"perfanalysis loadtest: upload failed: {admin.url}/admin/api/v1/loadtests answered "
        f"{status}, redirecting to {admin.url}/login: the upload is not sent across a redirect "
        "and nothing was stored; it does not point to the load-test endpoint (a login page, for "
        "instance, when the path prefix is wrong): --upload must be the admin app's own base URL"
    )
    assert last == f"the result is kept in {result_file}"  # no retry: the URL needs fixing


@pytest.mark.parametrize(
    ("location", "base"),
    [
        ("https://admin.example.com/api/v1/loadtests", "https://admin.example.com"),
        ("/perf/api/v1/loadtests/", "{url}/perf"),
    ],
)
def test_a_redirect_to_the_endpoint_elsewhere_names_the_base_url_to_give(
    admin: AdminStub,
    result_file: Path,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
    location: str,
    base: str,
) -> None:
    admin.status, admin.answer, admin.location = 308, b"", location
    assert upload(result_file, admin.url, key_file) == 1
    assert len(admin.received) == 1
    err = capsys.readouterr().err
    assert f"give the base URL it points to: --upload {base.format(url=admin.url)}\n" in err
    assert "retry with" not in err


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (200, b"<!DOCTYPE html><html>Sign in</html>"),  # a page, not the admin app
        (200, {"id": 42, "url": "http://x/loadtests/42"}),  # only 201 means created
        (202, {"id": 42}),
        (204, b""),
        (201, b"<html>created</html>"),
        (201, {"status": "ok"}),  # JSON, but no stored run
    ],
)
def test_any_other_success_status_or_answer_is_a_failure(
    admin: AdminStub,
    result_file: Path,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
    status: int,
    answer: Any,
) -> None:
    admin.status, admin.answer = status, answer
    assert upload(result_file, admin.url, key_file) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        f"upload failed: {admin.url}/api/v1/loadtests answered {status} but not with the admin "
        "app's answer (201 with the stored run as JSON)" in captured.err
    )
    assert captured.err.endswith(f"the result is kept in {result_file}\n")


def test_run_upload_treats_a_redirect_as_a_failure(
    fake_run: list[bool],
    admin: AdminStub,
    tmp_path: Path,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin.status, admin.answer, admin.location = 302, b"", "/login"
    output = tmp_path / "out.json"
    argv = ["run", "--output", str(output), "--upload", admin.url + "/admin", "--key-file",
            key_file, "--progress", "off", "--repeats", "2"]  # fmt: skip
    assert run(argv, {}) == 1
    assert [r.method for r in admin.received] == ["POST"]
    assert "redirecting to" in capsys.readouterr().err
    assert json.loads(output.read_text())["schema"] == "perfanalysis.loadtest/1"


# --- the retry command pastes into a shell --------------------------------------------------------


def test_the_retry_command_is_quoted_for_the_shell(
    admin: AdminStub,
    result_file: Path,
    tmp_path: Path,
    key_file: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spaced = tmp_path / "my results" / "run 1's.json"
    spaced.parent.mkdir()
    spaced.write_bytes(result_file.read_bytes())
    admin.status = 503
    assert upload(spaced, admin.url, key_file) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    command = last.split("; retry with: ", 1)[1]
    assert shlex.split(command) == ["perfanalysis", "loadtest", "upload", str(spaced),
                                    "--upload", admin.url, "--key-file", key_file]  # fmt: skip


def test_a_retry_command_never_takes_the_file_for_a_flag() -> None:
    assert main.retry_command("--odd.json", "http://a", "k").split()[3] == "./--odd.json"


# --- run --upload without --output: the default file's directory is checked before the run -------


@pytest.fixture
def never_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def execute(plan: Any, progress: Any) -> RunOutcome:
        raise AssertionError("the load test ran")

    monkeypatch.setattr(main, "detect", lambda: CloudFacts())
    monkeypatch.setattr(main, "execute", execute)


def test_run_upload_refuses_an_unwritable_current_directory_before_running(
    never_run: None,
    admin: AdminStub,
    tmp_path: Path,
    key_file: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    real_access = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:  # as chattr +i or a read-only mount
        if mode & os.W_OK and os.path.realpath(path) == os.path.realpath(tmp_path):
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    argv = ["run", "--upload", admin.url, "--key-file", key_file, "--progress", "off"]
    assert run(argv, {}) == 2
    err = capsys.readouterr().err
    assert (
        "flag --upload without --output writes the result to ./loadtest-<host>-<time>.json" in err
    )
    assert f"the current directory {tmp_path} is not writable by this user" in err
    assert admin.received == []
    # an --output elsewhere is the way out
    monkeypatch.setattr(main, "execute", lambda plan, progress: RunOutcome(outcomes(), 280.0, 1, 2))
    (tmp_path / "elsewhere").mkdir()
    assert (
        run([*argv, "--output", str(tmp_path / "elsewhere" / "r.json"), "--repeats", "2"], {}) == 0
    )
    assert len(admin.received) == 1


def test_run_upload_refuses_a_removed_current_directory_before_running(
    never_run: None,
    admin: AdminStub,
    tmp_path: Path,
    key_file: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    argv = ["run", "--upload", admin.url, "--key-file", key_file, "--progress", "off"]
    assert run(argv, {}) == 2
    assert "but the current directory no longer exists" in capsys.readouterr().err


@pytest.mark.parametrize(("status", "uploaded"), [(201, True), (503, False)])
def test_a_result_that_could_not_be_written_is_still_uploaded(
    fake_run: list[bool],
    admin: AdminStub,
    tmp_path: Path,
    key_file: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    status: int,
    uploaded: bool,
) -> None:
    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(main.atomicfile, "write", disk_full)
    admin.status = status
    argv = ["run", "--upload", admin.url, "--key-file", key_file, "--progress", "off",
            "--repeats", "2"]  # fmt: skip
    assert run(argv, {}) == 1  # the write failed, whatever became of the upload
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # stdout holds the result alone
    assert json.loads(admin.received[0].body) == document
    assert "cannot write loadtest-" in captured.err
    if uploaded:
        assert f"uploaded: stored as id 42, {admin.url}/loadtests/42\n" in captured.err
        assert captured.err.endswith("(it is on stdout); the admin app holds it\n")
    else:
        assert (
            "the result is not in a file: save it from stdout to FILE, then retry with: "
            f"perfanalysis loadtest upload FILE --upload {admin.url} --key-file {key_file}\n"
        ) in captured.err
        assert captured.err.endswith("(it is on stdout); the upload failed too\n")
    assert list(tmp_path.glob("loadtest-*.json")) == []


def test_a_redirect_back_to_the_same_base_url_says_so(
    admin: AdminStub, result_file: Path, key_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    admin.status, admin.answer, admin.location = 301, b"", "/api/v1/loadtests/"
    assert upload(result_file, admin.url, key_file) == 1
    assert "it points back to the same base URL" in capsys.readouterr().err
