"""One series ingest refuses (a textfile metric with more labels than ingest's limits.max-tags)
costs only its own points: the host's other points of every batch are stored.

Before, a 400 dropped the whole batch, so such a .prom file silenced the host in InfluxDB.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from ingest.testing import IngestProcess, issue_collector_key
from perfanalysis.testing.servers import ServerRegistry, wait_until
from tenants import db as database
from tests.conftest import TEST_SECRET
from tests.integration.test_push_end_to_end import dropped, exporter_value

pytestmark = pytest.mark.integration

MAX_TAGS = 64  # ingest's default limits.max-tags


def test_a_series_ingest_refuses_costs_only_its_own_points(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> None:
    influxdb = servers.influxdb(auth=True)
    with app.app_context():
        key = issue_collector_key(
            database.session(), app.extensions["pa_hasher"], "bad", "web-01", hostname="bad-host"
        )
    influxdb.create_database(key.database)
    (tmp_path / "ingest-metrics").mkdir()
    ingest = servers.start(IngestProcess(servers.base_dir, {
        "PERFANALYSIS_INGEST_SECRET_KEY": TEST_SECRET,
        "PERFANALYSIS_INGEST_DATABASE_URL": database_url,
        "PERFANALYSIS_INGEST_STORAGE_URL": influxdb.url,
        "PERFANALYSIS_INGEST_STORAGE_USERNAME": influxdb.admin_user,
        "PERFANALYSIS_INGEST_STORAGE_PASSWORD": influxdb.admin_password,
        "PERFANALYSIS_INGEST_WEB_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "ingest-metrics"),
    }))  # fmt: skip
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    labels = ",".join(f'l{n}="v"' for n in range(MAX_TAGS + 1))
    (textfiles / "jobs.prom").write_text(
        "# HELP backup_ok Whether the last backup worked.\n"
        "# TYPE backup_ok gauge\n"
        "backup_ok 1\n"
        "# HELP too_many_labels One label more than ingest takes.\n"
        "# TYPE too_many_labels gauge\n"
        f"too_many_labels{{{labels}}} 1\n"
    )
    key_file = tmp_path / "collector.key"
    key_file.write_text(key.key + "\n")
    key_file.chmod(0o600)
    exporter = servers.exporter([
        "--collector.disable-defaults", "--collector.loadavg", "--collector.textfile",
        f"--collector.textfile.directory={textfiles}",
        f"--push.url={ingest.url}", f"--push.key-file={key_file}", "--push.interval=1s",
        f"--push.spool-dir={tmp_path / 'spool'}", "--push.host=bad-host",
    ])  # fmt: skip

    def stored(measurement: str) -> int:
        query = f'SELECT count(value) FROM "{measurement}"'  # noqa: S608 (a constant name)
        return sum(int(row["count"]) for row in influxdb.rows(query, db=key.database))

    wait_until(lambda: stored("node_load1") >= 3, timeout=30, what="three cycles of node_load1")
    assert stored("backup_ok") >= 3
    assert stored("too_many_labels") == 0
    refused = exporter_value(
        exporter, "perfanalysis_exporter_push_points_dropped_total", 'reason="rejected"'
    )
    assert refused >= 3  # the one bad point of each cycle, counted
    assert dropped(exporter) == refused  # nothing else was dropped
