"""The exporter pushes through real ingest (gunicorn) into real InfluxDB 1.6.7, across faults.

InfluxDB is stopped for 30 seconds mid-stream, and ingest is killed with SIGKILL and restarted.
Sampling keeps its schedule meanwhile and the spool holds what is unacknowledged. Afterwards:

* nothing acknowledged is missing: the points stored are at least the exporter's
  ``points_sent_total`` read just before counting, and nothing was dropped;
* nothing collected is missing: ``node_load1``'s stored timestamps have no gap wider than the
  push interval allows, across both outages;
* every stored batch is whole: each sample time carries every measurement;
* storage holds no duplicates by construction (same series and timestamp overwrite), so a replay
  after a lost acknowledgement cannot double-count.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from flask import Flask

from ingest.testing import IngestProcess, issue_collector_key
from perfanalysis.testing.servers import (
    ExporterProcess,
    InfluxDB,
    ServerRegistry,
    wait_until,
)
from tenants import db as database
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.integration

INTERVAL_S = 1.0  # the shortest --push.interval accepted
OUTAGE_S = 30.0
COLLECTORS = ["--collector.disable-defaults", "--collector.loadavg", "--collector.stat"]


def exporter_value(exporter: ExporterProcess, name: str, labels: str = "") -> float:
    """A sample's value from the exporter's /metrics (0 when the series is absent)."""
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in exporter.metrics().splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def dropped(exporter: ExporterProcess) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exporter.metrics().splitlines()
        if line.startswith("perfanalysis_exporter_push_points_dropped_total{")
    )


def stored_points(influxdb: InfluxDB, database_name: str) -> int:
    rows = influxdb.rows("SELECT count(value) FROM /.*/", db=database_name)
    return sum(int(row["count"]) for row in rows)


def load1_times(influxdb: InfluxDB, database_name: str) -> list[int]:
    rows = influxdb.rows("SELECT value FROM node_load1", db=database_name, epoch="ns")
    return sorted(int(row["time"]) for row in rows)


def measurements_per_time(influxdb: InfluxDB, database_name: str, times: list[int]) -> set[int]:
    """How many node_* measurements each sample time carries (one number if all whole)."""
    counts: dict[int, int] = dict.fromkeys(times, 0)
    for measurement in measurement_names(influxdb, database_name):
        query = f'SELECT value FROM "{measurement}"'  # noqa: S608 (names from SHOW MEASUREMENTS)
        for row in influxdb.rows(query, db=database_name, epoch="ns"):
            stamp = int(row["time"])
            if stamp in counts:
                counts[stamp] += 1
    return set(counts.values())


def measurement_names(influxdb: InfluxDB, database_name: str) -> list[str]:
    """The host's node_* measurements: the same every cycle (the exporter's own push metrics
    gain series as events happen, e.g. a first 503)."""
    rows = influxdb.rows("SHOW MEASUREMENTS", db=database_name)
    return [row["name"] for row in rows if row["name"].startswith("node_")]


def wait_drained(exporter: ExporterProcess, timeout: float) -> None:
    wait_until(
        lambda: (
            exporter_value(exporter, "perfanalysis_exporter_push_points_queued") == 0
            and exporter_value(exporter, "perfanalysis_exporter_push_points_sent_total") > 0
        ),
        timeout=timeout,
        what="the exporter's spool to drain",
    )


@pytest.fixture
def pipeline(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> tuple[InfluxDB, IngestProcess, ExporterProcess, str]:
    influxdb = servers.influxdb(auth=True)
    with app.app_context():
        key = issue_collector_key(
            database.session(), app.extensions["pa_hasher"], "e2e", "web-01", hostname="e2e-host"
        )
    influxdb.create_database(key.database)
    env = {
        "PERFANALYSIS_INGEST_SECRET_KEY": TEST_SECRET,
        "PERFANALYSIS_INGEST_DATABASE_URL": database_url,
        "PERFANALYSIS_INGEST_STORAGE_URL": influxdb.url,
        "PERFANALYSIS_INGEST_STORAGE_USERNAME": influxdb.admin_user,
        "PERFANALYSIS_INGEST_STORAGE_PASSWORD": influxdb.admin_password,
        "PERFANALYSIS_INGEST_STORAGE_TIMEOUT": "2s",
        "PERFANALYSIS_INGEST_STORAGE_RETRY_AFTER": "1",
        "PERFANALYSIS_INGEST_WEB_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "ingest-metrics"),
    }
    (tmp_path / "ingest-metrics").mkdir()
    ingest = servers.start(IngestProcess(servers.base_dir, env))
    key_file = tmp_path / "collector.key"
    key_file.write_text(key.key + "\n")
    key_file.chmod(0o600)
    exporter = servers.exporter(
        [
            *COLLECTORS,
            f"--push.url={ingest.url}",
            f"--push.key-file={key_file}",
            f"--push.interval={int(INTERVAL_S * 1000)}ms",
            f"--push.spool-dir={tmp_path / 'spool'}",
            "--push.max-backoff=1s",
            "--push.timeout=3s",
            "--push.host=e2e-host",
        ]
    )
    return influxdb, ingest, exporter, key.database


def test_influxdb_down_for_30_s_and_ingest_killed_lose_nothing(
    pipeline: tuple[InfluxDB, IngestProcess, ExporterProcess, str],
) -> None:
    influxdb, ingest, exporter, database_name = pipeline
    wait_drained(exporter, timeout=30)
    wait_until(lambda: stored_points(influxdb, database_name) > 0, 30, what="first points stored")

    influxdb.stop()
    wait_until(
        lambda: exporter_value(exporter, "perfanalysis_exporter_push_points_queued") > 0,
        timeout=15,
        what="points to queue while InfluxDB is down",
    )
    wait_until(
        lambda: exporter_value(exporter, "perfanalysis_exporter_push_points_retried_total") > 0,
        timeout=15,
        what="the exporter to retry",
    )
    queued_before = exporter_value(exporter, "perfanalysis_exporter_push_points_queued")
    wait_until(
        lambda: (
            exporter_value(exporter, "perfanalysis_exporter_push_points_queued") > queued_before
        ),
        timeout=OUTAGE_S,
        what="sampling to go on during the outage",
    )
    keep_down(exporter, OUTAGE_S)
    influxdb.start()
    wait_drained(exporter, timeout=60)

    ingest.kill()
    wait_until(
        lambda: exporter_value(exporter, "perfanalysis_exporter_push_points_queued") > 0,
        timeout=15,
        what="points to queue while ingest is dead",
    )
    ingest.start()
    wait_drained(exporter, timeout=60)

    sent = exporter_value(exporter, "perfanalysis_exporter_push_points_sent_total")
    stored = stored_points(influxdb, database_name)
    assert stored >= sent, f"acknowledged {sent:.0f} points but storage holds {stored}"
    assert dropped(exporter) == 0

    times = load1_times(influxdb, database_name)
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(times)]
    assert len(times) > OUTAGE_S / INTERVAL_S, "fewer samples than the outage alone spans"
    assert max(gaps) <= INTERVAL_S * 2.5, (
        f"a gap of {max(gaps):.2f}s: collected samples are missing"
    )
    assert len(measurements_per_time(influxdb, database_name, times[:-2])) == 1, (
        "some sample times carry fewer measurements than others: a batch was stored in part"
    )


def keep_down(exporter: ExporterProcess, seconds: float) -> None:
    """Let ``seconds`` of outage pass, checking all along that the exporter answers and spools."""
    end = time.monotonic() + seconds
    wait_until(
        lambda: (
            time.monotonic() >= end
            and exporter_value(exporter, "perfanalysis_exporter_push_points_queued") > 0
        ),
        timeout=seconds + 10,
        interval=0.5,
        what=f"{seconds:.0f} s of storage outage",
    )
