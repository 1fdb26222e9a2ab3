"""The test-server layer against the real Debian servers: start, one round trip, stop, restart."""

from __future__ import annotations

import os
import time

import pytest
import requests
import yaml

from perfanalysis.testing.servers import (
    InfluxDB,
    Prometheus,
    ServerError,
    ServerRegistry,
    ServerStartError,
    amtool,
    port_is_free,
    prometheus_config,
    promtool,
    wait_until,
)

pytestmark = pytest.mark.integration

THREE_POINTS = "\n".join(f"cpu,host=a value={i} {1_700_000_000 + i}" for i in range(3))
NODE_ARGS = ["--collector.disable-defaults", "--collector.loadavg"]
ALERTMANAGER_CONFIG = {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}
RULES = """\
groups:
  - name: test
    rules:
      - record: job:node_load1:max
        expr: max by (job) (node_load1)
"""


def count_points(influxdb: InfluxDB, db: str) -> int:
    rows = influxdb.rows("SELECT count(value) FROM cpu", db=db)
    return int(rows[0]["count"]) if rows else 0


def assert_gone(pid: int, port: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert port_is_free(port)


def test_influxdb_round_trip(servers: ServerRegistry) -> None:
    influxdb = servers.influxdb()
    influxdb.create_database("metrics")
    influxdb.write("metrics", THREE_POINTS, precision="s")
    assert count_points(influxdb, "metrics") == 3


def test_influxdb_with_auth_refuses_anonymous_queries(servers: ServerRegistry) -> None:
    influxdb = servers.influxdb(auth=True)
    anonymous = requests.get(f"{influxdb.url}/query", params={"q": "SHOW DATABASES"}, timeout=5)
    assert anonymous.status_code == 401
    with pytest.raises(ServerError) as refused:
        influxdb.query(
            "SHOW DATABASES", user=influxdb.admin_user, password=influxdb.admin_password + "x"
        )
    assert refused.value.status == 401

    influxdb.create_database("secured")  # as the admin, by default
    databases = influxdb.rows(
        "SHOW DATABASES", user=influxdb.admin_user, password=influxdb.admin_password
    )
    assert {"name": "secured"} in databases


def test_influxdb_keeps_its_data_and_port_across_a_restart(servers: ServerRegistry) -> None:
    influxdb = servers.influxdb(auth=True)
    influxdb.create_database("durable")
    influxdb.write("durable", THREE_POINTS, precision="s")
    pid, port = influxdb.pid, influxdb.port
    assert pid is not None

    influxdb.stop()
    assert_gone(pid, port)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{influxdb.url}/ping", timeout=2)

    influxdb.start()
    assert (influxdb.port, influxdb.pid != pid) == (port, True)
    assert count_points(influxdb, "durable") == 3  # the admin user survived too


def test_shared_influxdb_gives_each_test_its_own_database(shared_influxdb: InfluxDB) -> None:
    first, second = shared_influxdb.unique_database(), shared_influxdb.unique_database()
    assert first != second
    shared_influxdb.write(first, THREE_POINTS, precision="s")
    assert (count_points(shared_influxdb, first), count_points(shared_influxdb, second)) == (3, 0)


def test_prometheus_scrapes_node_exporter_and_evaluates_rules(servers: ServerRegistry) -> None:
    node = servers.node_exporter(NODE_ARGS)
    prometheus = servers.prometheus(
        prometheus_config({"node": [node.address]}), {"rules.yml": RULES}
    )

    target = prometheus.wait_for_target_up("node")
    assert target["scrapeUrl"] == f"{node.url}/metrics"
    samples = wait_until(
        lambda: prometheus.query('job:node_load1:max{job="node"}'), 10, what="the recording rule"
    )
    assert float(samples[0]["value"][1]) >= 0
    assert [group["name"] for group in prometheus.rules()] == ["test"]

    checked = promtool("check", "config", prometheus.config_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_reload_applies_a_new_config(servers: ServerRegistry) -> None:
    prometheus = servers.prometheus(prometheus_config({"first": ["127.0.0.1:1"]}))
    prometheus.reload(prometheus_config({"second": ["127.0.0.1:1"]}))
    loaded = yaml.safe_load(prometheus.api("/api/v1/status/config")["yaml"])
    assert [job["job_name"] for job in loaded["scrape_configs"]] == ["second"]

    with pytest.raises(ServerError, match="job_name is empty"):
        prometheus.reload("scrape_configs: [{job_name: }]")
    assert prometheus.running  # a refused reload keeps the old config


def test_alertmanager_answers_and_its_config_passes_amtool(servers: ServerRegistry) -> None:
    alertmanager = servers.alertmanager(ALERTMANAGER_CONFIG)
    status = alertmanager.status()
    assert status["cluster"]["status"] == "disabled"
    assert yaml.safe_load(status["config"]["original"])["route"]["receiver"] == "null"

    checked = amtool("check-config", alertmanager.config_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_victoriametrics_accepts_v2_line_protocol(servers: ServerRegistry) -> None:
    vm = servers.victoriametrics()
    line = f"disk,host=b used=42.5 {time.time_ns()}"
    vm.request(
        "POST", "/api/v2/write", expect=(204,), params={"bucket": "b", "org": "o"}, data=line
    )
    vm.force_flush()

    samples = wait_until(lambda: vm.query('disk_used{host="b"}'), 10, what="the written point")
    assert samples[0]["value"][1] == "42.5"
    assert vm.export('{__name__="disk_used"}')[0]["values"] == [42.5]


def test_our_exporter_serves_metrics(servers: ServerRegistry) -> None:
    exporter = servers.exporter(NODE_ARGS)
    assert "node_load1 " in exporter.metrics()


def test_stop_ends_the_process_and_frees_the_port(servers: ServerRegistry) -> None:
    node = servers.node_exporter(NODE_ARGS)
    pid, port = node.pid, node.port
    assert pid is not None
    assert not port_is_free(port)

    assert node.stop() == -15  # SIGTERM was enough
    assert (node.pid, node.running) == (None, False)
    assert_gone(pid, port)


def test_a_server_that_exits_at_once_fails_fast_with_its_log(tmp_path: os.PathLike[str]) -> None:
    prometheus = Prometheus(tmp_path, "scrape_configs: [{job_name: }]")
    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"exited with code [1-9]") as failure:
        prometheus.start()
    assert time.monotonic() - started < 10
    assert "Error loading config" in str(failure.value)
    assert not prometheus.running


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match="the impossible"):
        wait_until(lambda: False, 0.1, what="the impossible")
