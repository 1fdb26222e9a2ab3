"""Every panel query of every committed dashboard returns data from real servers.

The real exporter pushes through real ingest (gunicorn) into real InfluxDB 1.6.7 and is scraped,
with ingest, by real Prometheus for 20 seconds, while this process reads a file from disk
(bypassing the page cache) every half second, so that the disk-read panels have reads to show
on an otherwise idle machine. Then each panel's InfluxQL goes to InfluxDB and
each PromQL to Prometheus's HTTP API, with Grafana's macros and variables expanded as Grafana
expands them (perfanalysis.grafana.macros): host = the pushing host, device and interface =
"All" over the values Grafana's variable queries and regexes leave. Each query must return at
least one series with a non-null value, not merely parse; so must each server-side math target
(Memory used, Root filesystem used, CPU busy, Filesystem fill, Disk latency...), evaluated over
the panel's InfluxQL results as Grafana evaluates it (test_dashboards_values.evaluate_math, which
also checks every panel's values against known data).
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from ingest.testing import IngestProcess, ingest_environment, issue_collector_key
from perfanalysis.grafana.macros import ALL, TimeRange, expand_influxql, expand_promql
from perfanalysis.grafana.queries import dashboard_variables, panel_queries
from perfanalysis.testing.servers import (
    ExporterProcess,
    InfluxDB,
    Prometheus,
    ServerRegistry,
    prometheus_config,
    wait_until,
)
from tenants import db as database
from tests.conftest import TEST_SECRET
from tests.integration.test_dashboards_values import Series, evaluate_math, influx_series

pytestmark = pytest.mark.integration

DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
HOST = "dash-host"
# InfluxDB rates derive from complete intervals, the newest ending one interval before the range
# does (perfanalysis.grafana.influxql): a rate needs two of them. The queries are expanded with a
# 5 s minimum interval instead of the provisioned data source's 20 s (the same query text, finer
# buckets), so that 20 s of pushes hold enough of them.
MIN_INTERVAL = "5s"
RUN_FOR_S = 20.0


def host_has_swap() -> bool:
    with open("/proc/meminfo") as meminfo:
        return any(line.startswith("SwapTotal:") and line.split()[1] != "0" for line in meminfo)


# Queries that are empty by design on a host without swap: used swap is guarded by SwapTotal > 0.
WITHOUT_SWAP = ("node_memory_SwapFree_bytes",)


def js_regex(text: str) -> re.Pattern[str]:
    """A Grafana variable regex (``/…/``) as a Python pattern."""
    return re.compile(text[1 : text.rindex("/")])


def has_data_influx(answer: dict[str, Any]) -> bool:
    for result in answer.get("results", []):
        for series in result.get("series", []):
            for row in series.get("values", []):
                if any(value is not None for value in row[1:]):
                    return True
    return False


def has_data_math(series: list[Series]) -> bool:
    return any(v is not None and not math.isnan(v) for s in series for _, v in s.points)


def has_data_prom(result: list[dict[str, Any]]) -> bool:
    for series in result:
        values = series.get("values") or [series.get("value")]
        if any(v and v[1] not in ("NaN", None) for v in values):
            return True
    return False


class DiskReads:
    """Reads a block of this file straight from the disk (O_DIRECT) every half second."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> DiskReads:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)

    def _read(self) -> None:
        block = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
        try:
            fd = os.open(__file__, os.O_RDONLY | os.O_DIRECT)
        except OSError:  # a file system without O_DIRECT: the machine's own reads must do
            return
        try:
            while not self.stop.wait(0.5):
                os.preadv(fd, [block], 0)
        finally:
            os.close(fd)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    migrated_engine: Any,
    database_url: str,
) -> Any:
    """One minute of real data, shared by every dashboard's check."""
    from tenants.app import create_app
    from tenants.settings import load
    from tests.conftest import empty_tables

    base = tmp_path_factory.mktemp("dashboards")
    empty_tables(migrated_engine)
    app: Flask = create_app(load([], {"PERFANALYSIS_ADMIN_DATABASE_URL": database_url,
                                      "PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET}))  # fmt: skip
    registry = ServerRegistry(base / "servers")
    try:
        influxdb: InfluxDB = registry.influxdb(auth=True)
        with app.app_context():
            key = issue_collector_key(
                database.session(), app.extensions["pa_hasher"], "dash", "web", hostname=HOST
            )
        influxdb.create_database(key.database)
        (base / "ingest-metrics").mkdir()
        environment = ingest_environment(
            TEST_SECRET, database_url, influxdb, base / "ingest-metrics"
        )
        ingest = registry.start(IngestProcess(registry.base_dir, environment))
        key_file = base / "collector.key"
        key_file.write_text(key.key + "\n")
        key_file.chmod(0o600)
        exporter: ExporterProcess = registry.exporter([
            f"--push.url={ingest.url}", f"--push.key-file={key_file}", "--push.interval=1s",
            f"--push.spool-dir={base / 'spool'}", f"--push.host={HOST}",
        ])  # fmt: skip
        config = prometheus_config({"node": [exporter.address], "ingest": [ingest.address]})
        prometheus: Prometheus = registry.prometheus(config)
        prometheus.wait_for_target_up("node", timeout=60)
        # one refused batch, so that the rejection panels have something to show
        refused = requests.post(f"{ingest.url}/api/v2/write", data=b"bad line without fields\n",
                                headers={"Authorization": f"Token {key.key}"}, timeout=10)  # fmt: skip
        assert refused.status_code == 400
        started = time.monotonic()
        with DiskReads():
            wait_until(
                lambda: (
                    time.monotonic() - started >= RUN_FOR_S
                    and prometheus.query("count(perfanalysis_ingest_points_accepted_total)")
                ),
                timeout=RUN_FOR_S + 60,
                interval=1.0,
                what=f"{RUN_FOR_S:g} s of pushed and scraped data",
            )
        yield influxdb, prometheus, key.database, int(time.time() * 1000)
    finally:
        registry.stop_all()
        app.extensions["pa_engine"].dispose()


def influx_options(influxdb: InfluxDB, db: str, model: dict[str, Any], host: str) -> list[str]:
    query = model["query"].replace("$host", re.escape(host))
    rows = influxdb.rows(query, db=db)
    values = [row["value"] for row in rows]
    pattern = model.get("regex")
    return [v for v in values if not pattern or js_regex(pattern).search(v)]


def prom_options(prometheus: Prometheus, model: dict[str, Any]) -> list[str]:
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", model["query"])
    assert match, model["query"]
    selector = match.group(1).replace('=~"$job"', '=~".+"').replace('=~"$instance"', '=~".+"')
    label = match.group(2)
    values = sorted(
        {s["metric"][label] for s in prometheus.query(selector) if label in s["metric"]}
    )
    pattern = model.get("regex")
    return [v for v in values if not pattern or js_regex(pattern).search(v)]


@pytest.mark.parametrize("name", sorted(p.stem for p in DASHBOARDS.glob("*.json")))
def test_every_panel_query_returns_data(stack: Any, name: str) -> None:
    influxdb, prometheus, db, now_ms = stack
    dashboard = json.loads((DASHBOARDS / f"{name}.json").read_text())
    models = {m["name"]: m for m in dashboard["templating"]["list"] if m.get("type") == "query"}
    time_range = TimeRange(now_ms - 5 * 60_000, now_ms)
    values: dict[str, str | list[str]] = {}
    options: dict[str, list[str]] = {}
    for variable_name, model in models.items():
        is_influx = model.get("datasource", {}).get("type") == "influxdb"
        if variable_name == "host":
            values[variable_name] = [HOST]
            continue
        found = (influx_options(influxdb, db, model, HOST) if is_influx
                 else prom_options(prometheus, model))  # fmt: skip
        assert found, f"variable {variable_name} of {name} has no values"
        values[variable_name], options[variable_name] = ALL, found
    variables = dashboard_variables(dashboard, values, options)
    empty: list[str] = []
    checked = 0
    results: dict[int, dict[str, list[Series]]] = {}  # panel id -> refId -> series, for the math
    queries = list(panel_queries(dashboard))
    for query in sorted(queries, key=lambda q: q.language == "expression"):  # math last
        label = f"panel {query.panel_id} {query.panel_title!r} {query.ref_id}"
        if query.language == "influxql":
            text = expand_influxql(query.text, time_range, variables, min_interval=MIN_INTERVAL)
            answer = influxdb.query(text, db=db, epoch="ms")
            errors = [r["error"] for r in answer.get("results", []) if "error" in r]
            assert not errors, f"{label}: {errors} in {text}"
            results.setdefault(query.panel_id, {})[query.ref_id] = influx_series(answer)
            if not has_data_influx(answer):
                empty.append(f"{label}: {text}")
        elif query.language == "expression":
            inputs = results.get(query.panel_id, {})
            found = evaluate_math(query.text, inputs)
            swap = any(name in q.text for q in queries if q.panel_id == query.panel_id
                       and f"${q.ref_id}" in query.text for name in WITHOUT_SWAP)  # fmt: skip
            if not has_data_math(found) and not (swap and not host_has_swap()):
                empty.append(f"{label}: {query.text} over {sorted(inputs)}")
        elif query.language == "promql":
            prom = expand_promql(query.text, time_range, variables, scrape_interval="1s",
                                 instant=query.instant)  # fmt: skip
            path = "/api/v1/query" if prom.instant else "/api/v1/query_range"
            result = prometheus.api(path, params=prom.params())["result"]
            if not has_data_prom(result) and not (
                not host_has_swap() and any(name in prom.expr for name in WITHOUT_SWAP)
            ):
                empty.append(f"{label}: {prom.expr}")
        else:
            continue
        checked += 1
    assert checked > 0
    assert not empty, "queries without data:\n" + "\n".join(empty)
