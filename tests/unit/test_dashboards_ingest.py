"""The ingest dashboard's collector panels, evaluated by promtool (Debian's prometheus package)
on an exporter that has pushed and one that never has.

``perfanalysis_exporter_push_last_success_timestamp_seconds`` is 0 until the first acknowledged
push: "time since" must not turn that into the time since 1970.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfanalysis.grafana import render
from perfanalysis.grafana.ingest import NEVER
from perfanalysis.grafana.macros import ALL, TimeRange, expand_promql
from perfanalysis.grafana.queries import dashboard_variables, panel_queries
from perfanalysis.testing.servers import ServerUnavailable, promtool

PUSHED = 'job="node", instance="pushed:9100"'
NEVER_PUSHED = 'job="node", instance="never:9100"'
LAST_PUSH_AT = 200  # seconds after the epoch of promtool's test clock
EVALUATED_AT = 250


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((render.default_dir() / "ingest.json").read_text())
    return data


def _expressions(dashboard: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(panel title, refId) → the PromQL Grafana sends, with every variable at "All"."""
    chosen = dashboard_variables(dashboard, {"job": ALL, "instance": ALL, "tenant": ALL})
    time_range = TimeRange.last("6h", 1_700_000_000_000)
    return {
        (query.panel_title, query.ref_id): expand_promql(query.text, time_range, chosen).expr
        for query in panel_queries(dashboard)
    }


def _promtool_test(tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    (tmp_path / "none.rules.yml").write_text("groups: []\n")
    spec = {
        "rule_files": ["none.rules.yml"],
        "evaluation_interval": "15s",
        "tests": [{
            "interval": "15s",
            "input_series": [
                {"series": f"perfanalysis_exporter_push_last_success_timestamp_seconds{{{PUSHED}}}",
                 "values": f"{LAST_PUSH_AT}x40"},
                {"series": f"perfanalysis_exporter_push_last_success_timestamp_seconds{{{NEVER_PUSHED}}}",
                 "values": "0x40"},
                {"series": f"process_start_time_seconds{{{PUSHED}}}", "values": "10x40"},
                {"series": f"process_start_time_seconds{{{NEVER_PUSHED}}}", "values": "10x40"},
            ],
            "promql_expr_test": tests,
        }],
    }  # fmt: skip
    path = tmp_path / "panels.test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    try:
        result = promtool("test", "rules", path)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_exporter_that_never_pushed_has_no_time_since_its_last_push(tmp_path: Path) -> None:
    expressions = _expressions(_dashboard())
    since_pushed = [{"labels": f"{{{PUSHED}}}", "value": EVALUATED_AT - LAST_PUSH_AT}]
    _promtool_test(tmp_path, [
        {"expr": expressions["Time since last push", "A"], "eval_time": f"{EVALUATED_AT}s",
         "exp_samples": since_pushed},
        {"expr": expressions["Collectors by time since last push", "A"],
         "eval_time": f"{EVALUATED_AT}s", "exp_samples": since_pushed},
        {"expr": expressions["Collectors pushing", "A"], "eval_time": f"{EVALUATED_AT}s",
         "exp_samples": [{"labels": "{}", "value": 1}]},
    ])  # fmt: skip


def test_the_collectors_table_shows_never_for_an_exporter_without_a_push() -> None:
    [table] = [
        p for p in _dashboard()["panels"] if p["title"] == "Collectors by time since last push"
    ]
    since = [
        o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "Since last push"
    ]
    assert since == [{"matcher": {"id": "byName", "options": "Since last push"},
                      "properties": [{"id": "noValue", "value": NEVER}]}]  # fmt: skip
    assert NEVER == "never"
