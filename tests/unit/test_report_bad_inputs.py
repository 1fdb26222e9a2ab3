"""The report command against bad input: each gives a clear error (exit 2 for the flags and the
configuration, 1 for storage), never a hang, a traceback or a message that says nothing.

Found by running it against bad time ranges, hosts, output paths and configuration values:
* ``--config /dev/zero`` or ``password_file: /dev/zero`` read forever, taking all memory;
* an empty configuration file (or comments only) was "(top level): expected a mapping, got
  nothing (null)";
* empty text was "expected non-empty text, got text" (``timezone: ''``; ``hosts: ['']``: "item 1
  is text, expected a name");
* ``start: 2025-01-01`` (a date, as YAML reads it) was "expected an RFC 3339 time, got date";
* an InfluxDB URL with a user and password (``http://bob:secret@host:8086``) printed the password
  in every error about InfluxDB, and requests sent those credentials instead of the read user's;
* a tenant without a database in that InfluxDB: "InfluxDB refused a query on pa_x (HTTP 200):
  database not found: pa_x";
* a query past --influxdb.timeout on a reused connection: "did not answer: ConnectionError".
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import requests

from perfanalysis.config import ConfigError
from perfanalysis.report import settings as report_settings
from perfanalysis.report.cli import run as report
from perfanalysis.report.config import load_config
from perfanalysis.report.influx import InfluxReader, ReportError
from perfanalysis.report.validate import ReportConfigError
from tests.unit.test_yaml_input_fixes import refused_briefly, run

HEAD = "tenant: acme\nhosts: [web-01]\ntime: {last: 1h}\n"


def errors_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "report.yaml"
    path.write_text(text)
    with pytest.raises(ReportConfigError) as caught:
        load_config(path, environ or {})
    return caught.value.errors


def test_an_endless_configuration_file_is_refused_at_once(tmp_path: Path) -> None:
    output = str(tmp_path / "r.html")
    result = run(["-m", "perfanalysis.cli", "report", "--config", "/dev/zero", "--output", output], tmp_path)  # fmt: skip
    refused_briefly(
        result,
        "/dev/zero: longer than 1 MiB, which no report configuration is: is it the right file?",
    )
    big = tmp_path / "big.yaml"
    big.write_text(HEAD + "# " + "x" * 2**20 + "\n")
    assert errors_of(tmp_path, big.read_text())[0].endswith("longer than 1 MiB, which no report configuration is: is it the right file?")  # fmt: skip


def test_an_endless_password_file_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "report.yaml"
    path.write_text(HEAD + "influxdb: {username: reader, password_file: /dev/zero}\n")
    result = run(["-m", "perfanalysis.cli", "report", "--config", str(path)], tmp_path)
    refused_briefly(
        result,
        f"{path}: line 4: influxdb.password_file: /dev/zero is longer than 64 KiB: not a "
        "password file",
    )


def test_an_empty_configuration_file_says_so(tmp_path: Path) -> None:
    for empty in ("", "\n  \n", "# only a comment\n", "---\n"):
        assert errors_of(tmp_path, empty) == [
            f"{tmp_path / 'report.yaml'}: no configuration in the file (empty, or comments "
            "only): give at least tenant, hosts and time (see provisioning/examples/report.yaml)"
        ]


def test_empty_text_is_called_empty(tmp_path: Path) -> None:
    path = tmp_path / "report.yaml"
    zone = errors_of(tmp_path, HEAD.replace("{last: 1h}", "{last: 1h, timezone: ''}"))
    assert zone == [f"{path}: line 3: time.timezone: expected non-empty text, got empty text"]
    blank = errors_of(tmp_path, HEAD.replace("{last: 1h}", "{last: 1h, timezone: '  '}"))
    assert blank == [f"{path}: line 3: time.timezone: expected non-empty text, got only blanks"]
    hosts = errors_of(tmp_path, HEAD.replace("[web-01]", "[web-01, '']"))
    assert hosts == [f"{path}: line 2: hosts: item 2 is empty text, expected a name"]


def test_a_date_without_a_time_gets_the_time_to_write(tmp_path: Path) -> None:
    text = HEAD.replace("{last: 1h}", "{start: 2025-01-01, end: 2025-01-02T00:00:00Z}")
    assert errors_of(tmp_path, text) == [
        f"{tmp_path / 'report.yaml'}: line 3: time.start: 2025-01-01 is a date without a time: "
        "give an RFC 3339 time, e.g. 2025-01-01T00:00:00Z"
    ]


@pytest.mark.parametrize(
    ("given", "shown", "base"),
    [
        ("http://bob:hunter2@influx:8086", "http://bob:***@influx:8086", "http://influx:8086"),
        ("https://bob@p/influx/", "https://bob@p/influx/", "https://p/influx"),
    ],
)
def test_credentials_in_the_influxdb_url_are_refused_and_not_shown(
    tmp_path: Path, given: str, shown: str, base: str
) -> None:
    reason = (
        "not InfluxDB's base URL (it holds a user name or password, which would be sent "
        "instead of the tenant's read user and printed in messages: give them as "
        "influxdb.username and password_env or password_file in the report configuration): "
        f"give {base}, to which the report adds /query"
    )
    (in_the_file,) = errors_of(
        tmp_path,
        HEAD + f"influxdb: {{url: '{given}', username: r, password_env: PW}}\n",
        {"PW": "secret"},
    )
    assert in_the_file == (
        f"{tmp_path / 'report.yaml'}: line 4: influxdb.url: invalid value {shown!r}: {reason}"
    )
    with pytest.raises(ConfigError) as caught:
        report_settings.load(["--config", "report.yaml", "--influxdb.url", given], {})
    assert caught.value.errors == [f"flag --influxdb.url: invalid value {shown!r}: {reason}"]
    assert "hunter2" not in in_the_file + caught.value.errors[0]


class Answer:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code, self.body, self.text, self.reason = status, body, "", ""

    def json(self) -> dict[str, Any]:
        return self.body


class Session:
    """Stands in for the reader's requests session: answers, or raises, as told."""

    def __init__(self, outcome: Answer | Exception) -> None:
        self.outcome = outcome

    def post(self, *args: Any, **kwargs: Any) -> Answer:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def reader_meeting(monkeypatch: pytest.MonkeyPatch, outcome: Answer | Exception) -> InfluxReader:
    reader = InfluxReader("http://influx:8086", "pa_acme", "acme", "reader", "secret", 2.5)
    monkeypatch.setattr(reader, "_session", lambda: Session(outcome))
    return reader


def test_a_database_influxdb_does_not_have_is_named_with_what_to_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = Answer(200, {"results": [{"statement_id": 0, "error": "database not found: pa_acme"}]})  # fmt: skip
    with pytest.raises(ReportError) as caught:
        reader_meeting(monkeypatch, missing).query(["SHOW TAG VALUES"])
    assert str(caught.value) == (
        "InfluxDB at http://influx:8086 has no database pa_acme, tenant acme's: is that the "
        "InfluxDB its data is in (--influxdb.url, or influxdb.url in the configuration), and was "
        "the tenant's storage provisioned?"
    )


@pytest.mark.parametrize(
    "raised",
    [
        # as requests raises a read timeout on a reused connection
        requests.ConnectionError("HTTPConnectionPool(host='influx', port=8086): Read timed out."),
        requests.ReadTimeout("read timed out"),
    ],
)
def test_a_query_past_the_timeout_says_so(
    monkeypatch: pytest.MonkeyPatch, raised: Exception
) -> None:
    with pytest.raises(ReportError) as caught:
        reader_meeting(monkeypatch, raised).query(["SELECT 1"])
    assert str(caught.value) == (
        "InfluxDB at http://influx:8086 did not answer: no answer to a query within 2.5s "
        "(--influxdb.timeout): check that it is InfluxDB at that URL, or give a longer "
        "--influxdb.timeout"
    )


def test_a_refused_connection_is_still_named_by_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = requests.ConnectionError("Failed to establish: [Errno 111] Connection refused')")
    with pytest.raises(ReportError) as caught:
        reader_meeting(monkeypatch, refused).query(["SELECT 1"])
    assert str(caught.value).endswith("did not answer: ConnectionError (Connection refused)")


def test_the_command_exits_1_naming_the_missing_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = Answer(200, {"results": [{"statement_id": 0, "error": "database not found: pa_acme"}]})  # fmt: skip
    monkeypatch.setattr(InfluxReader, "_session", lambda self: Session(missing))
    monkeypatch.setenv("PW", "secret")
    path = tmp_path / "report.yaml"
    path.write_text(HEAD + "influxdb: {url: 'http://influx:8086', username: r, password_env: PW}\n")
    err = io.StringIO()
    assert report(["--config", str(path), "--output", str(tmp_path / "r.html")], stderr=err) == 1
    assert "has no database pa_acme, tenant acme's" in err.getvalue()
    assert "Traceback" not in err.getvalue()


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("{tmp}/out/r.html/", "ends in /: give a file name"),
        ("/proc/perfanalysis-report.html", "no file may be created in /proc"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_refused_before_any_query(
    tmp_path: Path, output: str, expected: str
) -> None:
    """A trailing slash quietly wrote ``r.html``; a directory such as /proc, where permissions
    allow but no file can be made, passed the check and failed after every query, as "No such
    file or directory"."""
    (tmp_path / "out").mkdir()
    config = tmp_path / "report.yaml"
    config.write_text(HEAD)
    err = io.StringIO()
    argv = ["--config", str(config), "--output", output.format(tmp=tmp_path),
            "--influxdb.url", "http://127.0.0.1:9"]  # fmt: skip
    assert report(argv, stderr=err) == 2
    assert expected in err.getvalue()
    assert list((tmp_path / "out").iterdir()) == []


def test_a_chromium_that_is_not_there_is_a_settings_error(tmp_path: Path) -> None:
    """It was exit 1, as if InfluxDB had failed, where every other flag refused is exit 2."""
    (tmp_path / "password").write_text("secret\n")
    config = tmp_path / "report.yaml"
    config.write_text(
        HEAD + f"influxdb: {{username: reader, password_file: {tmp_path}/password}}\n"
    )
    err = io.StringIO()
    argv = ["--config", str(config), "--output", str(tmp_path / "r.html"), "--pdf",
            str(tmp_path / "r.pdf"), "--chromium", str(tmp_path / "no-such-chromium"),
            "--influxdb.url", "http://127.0.0.1:9"]  # fmt: skip
    assert report(argv, stderr=err) == 2
    assert "--chromium" in err.getvalue()
    assert "not found or not executable" in err.getvalue()
    assert not (tmp_path / "r.html").exists()
