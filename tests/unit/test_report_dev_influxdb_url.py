"""``perfanalysis report --dev`` reads InfluxDB where make up put it (var/addresses.json), and an
--influxdb.url naming one of InfluxDB's endpoints (make status once showed .../ping) is refused
with the base URL to give, rather than read as a base that every query 404s under."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from perfanalysis import devstack
from perfanalysis.config import ConfigError
from perfanalysis.report import settings as report_settings


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var"
    path.mkdir()
    (path / "dev-secret-key").write_text("k" * 64 + "\n")
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(path))
    for variable in devstack.DEFAULT_ADDRESSES:
        monkeypatch.delenv(variable, raising=False)
    return path


def running_stack_with_influxdb_at(var: Path, where: str) -> None:
    """var/ as make up leaves it with InfluxDB moved: its address recorded, a service running
    (its PID file naming a live process: this one)."""
    recorded = {**devstack.DEFAULT_ADDRESSES, "PERFANALYSIS_DEV_INFLUXDB_ADDRESS": where}
    (var / "addresses.json").write_text(json.dumps(recorded))
    (var / "run").mkdir()
    (var / "run" / "influxdb.pid").write_text(
        f"{os.getpid()} {devstack.process_identity(os.getpid())}\n"
    )


def load(*flags: str, environ: dict[str, str] | None = None) -> dict[str, object]:
    return report_settings.load(["--config", "report.yaml", *flags], environ or {})


def test_dev_takes_influxdb_from_the_addresses_make_up_recorded(var: Path) -> None:
    running_stack_with_influxdb_at(var, "127.0.0.1:25186")
    assert load("--dev")["influxdb_url"] == "http://127.0.0.1:25186"
    # as make status finds it, without the variable set
    assert devstack.address("PERFANALYSIS_DEV_INFLUXDB_ADDRESS") == "127.0.0.1:25186"


def test_dev_without_a_running_stack_follows_the_variable_make_up_would(
    var: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load("--dev")["influxdb_url"] == "http://127.0.0.1:8086"
    monkeypatch.setenv("PERFANALYSIS_DEV_INFLUXDB_ADDRESS", ":25187")
    assert load("--dev")["influxdb_url"] == "http://127.0.0.1:25187"


def test_a_given_url_wins_and_outside_dev_the_default_is_unchanged(var: Path) -> None:
    running_stack_with_influxdb_at(var, "127.0.0.1:25186")
    assert load("--dev", "--influxdb.url", "http://db:8086/")["influxdb_url"] == "http://db:8086"
    environ = {"PERFANALYSIS_REPORT_INFLUXDB_URL": "http://db:9999"}
    assert load("--dev", environ=environ)["influxdb_url"] == "http://db:9999"
    assert load()["influxdb_url"] == "http://127.0.0.1:8086"
    # a reverse proxy's prefix is a base URL
    assert load("--influxdb.url", "https://p/influx")["influxdb_url"] == "https://p/influx"


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://127.0.0.1:25186/ping", "http://127.0.0.1:25186"),
        ("http://127.0.0.1:25186/ping/", "http://127.0.0.1:25186"),
        ("http://h:8086/query?db=pa_demo", "http://h:8086"),
        ("https://p/influx/query", "https://p/influx"),
        ("http://h:8086/api/v2/write", "http://h:8086"),
        ("http://h:8086/?db=x", "http://h:8086"),
    ],
)
def test_an_endpoint_url_is_refused_with_the_base_url_to_give(
    var: Path, given: str, base: str
) -> None:
    for flags, environ, where in (
        (("--influxdb.url", given), {}, "flag --influxdb.url"),
        ((), {"PERFANALYSIS_REPORT_INFLUXDB_URL": given}, "PERFANALYSIS_REPORT_INFLUXDB_URL"),
    ):
        with pytest.raises(ConfigError) as refused:
            load("--dev", *flags, environ=environ)
        (error,) = refused.value.errors
        assert where in error
        assert f"give {base}, to which the report adds /query" in error


def test_the_docs_no_longer_send_the_ping_url_to_the_report() -> None:
    from perfanalysis.paths import ROOT

    operations = (ROOT / "docs/operations.md").read_text()
    passage = operations.split("## Producing a report", 1)[1].split("\n## ", 1)[0]
    assert "var/addresses.json" in passage
    assert "add `--influxdb.url http://HOST:PORT`, its base URL" in passage
    readme = (ROOT / "README.md").read_text()
    assert "`tail -F var/log/alerts.jsonl`" in readme
    assert "http://127.0.0.1:9095/" in readme
