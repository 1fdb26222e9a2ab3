"""Storage credentials go into the Authorization header of every storage request. A line break
in one (a token file's final newline, a Kubernetes Secret made from such a file) ended the head
early: InfluxDB and VictoriaMetrics then read an empty write, answered 204, and ingest counted
points as stored that never were."""

from __future__ import annotations

import pytest

from ingest.settings import load
from ingest.storage import V1Writer, V2Writer
from perfanalysis.config import ConfigError

BASE = {"PERFANALYSIS_INGEST_SECRET_KEY": "s" * 40}


@pytest.mark.parametrize(
    ("setting", "variable", "value"),
    [
        ("token", "PERFANALYSIS_INGEST_STORAGE_TOKEN", "tok\n"),
        ("token", "PERFANALYSIS_INGEST_STORAGE_TOKEN", "tok\r\nX-Injected: 1"),
        ("password", "PERFANALYSIS_INGEST_STORAGE_PASSWORD", "hunter2\n"),
        ("username", "PERFANALYSIS_INGEST_STORAGE_USERNAME", "ingest\t"),
    ],
)
def test_a_credential_with_a_control_character_is_refused_by_name(
    setting: str, variable: str, value: str
) -> None:
    environ = {**BASE, "PERFANALYSIS_INGEST_STORAGE_USERNAME": "ingest", variable: value}
    with pytest.raises(ConfigError) as refused:
        load([], environ)
    [error] = [e for e in refused.value.errors if f"storage.{setting}" in e]
    assert "contains a control character" in error
    assert value not in error  # a secret is not shown


def test_plain_credentials_load() -> None:
    environ = {**BASE, "PERFANALYSIS_INGEST_STORAGE_TOKEN": "tok-EN_1/+=="}
    assert load([], environ)["storage_token"] == "tok-EN_1/+=="


@pytest.mark.parametrize("token", ["tok\n", "tok\r", "to\x00k"])
def test_a_writer_refuses_a_header_a_line_break_would_split(token: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        V2Writer("http://127.0.0.1:8086", token, "-", 1.0)


def test_v1_credentials_are_encoded_and_need_no_refusal_there() -> None:
    V1Writer("http://127.0.0.1:8086", "ingest", "pass word", 1.0)
