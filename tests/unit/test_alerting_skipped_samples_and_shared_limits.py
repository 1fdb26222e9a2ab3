"""Alerts on two metrics that had none: ExporterSkippingSamples (a tenant's rule, thresholds in
thresholds.yaml) on ``perfanalysis_exporter_push_samples_skipped_total``, and
IngestRateLimitNotShared (a platform rule) on ``perfanalysis_ingest_rate_limit_shared``.

The promtool scenarios here are worked out by hand against the committed rules, independently of
the generator's scenario model; the platform rule's own are in platform.test.yml.
"""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from exporter.push.metrics import PushMetrics
from exporter.push.pusher import PushStats
from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit, make_limiter
from perfanalysis.alerting import catalogue, platform
from perfanalysis.alerting.durations import parse_duration
from perfanalysis.alerting.generate import RULES_DIR, Layout, outputs
from perfanalysis.alerting.thresholds import parse
from tests.unit.test_alerting_audit_fixes import (
    BASE,
    DEFAULTS,
    errors,
    expected,
    promtool_passes,
    run_promtool,
    with_defaults,
)

SKIPPING = "exporter_skipping_samples"
ZETA = {"job": "node", "tenant": "zeta"}  # a tenant thresholds.yaml does not list


def host(name: str) -> dict[str, str]:
    return {"instance": f"{name}:9100", **ZETA}


def series(name: str) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(host(name).items()))
    return f"{catalogue.PUSH_SKIPPED}{{{labels}}}"


# -- the metrics are the components' own


def test_the_skipped_samples_metric_is_the_exporters_counter() -> None:
    spool = SimpleNamespace(dropped_points=0, queued_points=0, disk_bytes=0, corrupt=0)
    stats = PushStats()
    stats.samples_skipped = 4
    pusher = SimpleNamespace(stats=stats, spool=spool, max_points=5000)
    families = {f.name: f for f in PushMetrics(pusher).collect()}  # type: ignore[arg-type]
    skipped = families[catalogue.PUSH_SKIPPED]
    assert skipped.type == "counter"
    assert [value for _, value in skipped.samples] == [4.0]
    rule_text = (RULES_DIR / "default.rules.yml").read_text()
    assert f"increase({catalogue.PUSH_SKIPPED}{{" in rule_text


def test_the_rate_limit_gauge_is_absent_without_redis_and_1_with_it_until_redis_fails() -> None:
    """What the platform rule relies on: without a redis-url there is no series (so the rule
    can alert on 0 alone); with one it starts at 1 and turns 0 when Redis fails."""
    metrics = IngestMetrics()

    def shared() -> float | None:
        return metrics.registry.get_sample_value(platform.RATE_LIMIT_SHARED)

    settings = {"redis_url": "", "limits_redis_prefix": "p:"}
    make_limiter(settings, metrics.rate_limit_shared.set).acquire("t", 1, Limit(10.0, 10))
    assert shared() is None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    limiter = make_limiter(
        {**settings, "redis_url": f"redis://127.0.0.1:{closed}/0"}, metrics.rate_limit_shared.set
    )
    assert shared() == 1.0
    limiter.acquire("t", 1, Limit(10.0, 10))  # refused: the limiter falls back per process
    assert shared() == 0.0
    assert platform.RATE_LIMIT_NOT_SHARED.expr == (
        f"last_over_time({platform.RATE_LIMIT_SHARED}[2m]) == 0"
    )


# -- thresholds


def test_a_negative_count_and_a_warning_above_critical_are_refused_naming_the_key() -> None:
    unit = catalogue.EXPORTER_SKIPPING.unit
    assert errors(with_defaults(**{SKIPPING: {"warning": -1}})) == [
        f"thresholds.yaml: defaults.{SKIPPING}.warning: must be at least 0 ({unit}), got -1"
    ]
    data = copy.deepcopy(BASE)
    data["tenants"]["acme"][SKIPPING] = {"warning": 40}
    assert errors(data) == [
        f"thresholds.yaml: tenants.acme.{SKIPPING}: warning (40) must be below critical "
        f"(30, from defaults): {unit}"
    ]


def test_by_default_one_burst_is_shorter_than_the_for() -> None:
    """The count's window is shorter than the default ``for``, so a suspended machine's burst
    cannot hold the condition long enough: only skipping that goes on alerts."""
    setting = DEFAULTS[SKIPPING]
    assert setting.for_seconds > parse_duration(catalogue.SKIPPED_WINDOW)
    assert [lv.severity for lv in setting.levels()] == ["warning", "critical"]


# -- promtool, against the committed default.rules.yml


def test_steady_skipping_alerts_and_a_burst_or_an_occasional_skip_does_not(
    tmp_path: Path,
) -> None:
    """steady skips 4 samples a minute from minute 10: over 0 in 10 minutes from minute 10
    (warning, for: 15m, firing at 25), over 30 from minute 17 (critical, firing at 32), 40 once
    the window is full. burst's machine was suspended: 100 at once at minute 10, counted in the
    window until minute 19 only. occasional skips one sample every 12 minutes."""
    occasional = " ".join(str(1 + (t - 10) // 12) if t >= 10 else "0" for t in range(60))
    run_promtool(
        tmp_path,
        {
            series("steady"): "0x9 4+4x50",
            series("burst"): "0x9 100x50",
            series("occasional"): occasional,
        },
        [
            ("19m", "ExporterSkippingSamples", []),
            ("24m", "ExporterSkippingSamples", []),
            ("25m", "ExporterSkippingSamples", [
                expected(catalogue.EXPORTER_SKIPPING, "warning", host("steady"), 40)
            ]),
            ("31m", "ExporterSkippingSamples", [
                expected(catalogue.EXPORTER_SKIPPING, "warning", host("steady"), 40)
            ]),
            ("32m", "ExporterSkippingSamples", [
                expected(catalogue.EXPORTER_SKIPPING, severity, host("steady"), 40)
                for severity in ("warning", "critical")
            ]),
            ("55m", "ExporterSkippingSamples", [
                expected(catalogue.EXPORTER_SKIPPING, severity, host("steady"), 40)
                for severity in ("warning", "critical")
            ]),
        ],
    )  # fmt: skip


def test_a_host_that_stops_skipping_resolves_after_the_window_and_keep_firing_for(
    tmp_path: Path,
) -> None:
    """Skipping 4 a minute from minute 10 to 40, then none. The warning's count is above 0 until
    minute 49 (minute 40's skips leave the window at 50), the critical's above 30 until 42; each
    keeps firing for keep_firing_for (10m) after, with the annotations of its last match."""
    values = " ".join(str(4 * min(max(t - 9, 0), 31)) for t in range(80))

    def alert(severity: str, value: float) -> dict[str, Any]:
        return expected(catalogue.EXPORTER_SKIPPING, severity, host("h"), value)

    run_promtool(
        tmp_path,
        {series("h"): values},
        [
            ("42m", "ExporterSkippingSamples", [alert("warning", 32), alert("critical", 32)]),
            ("49m", "ExporterSkippingSamples", [alert("warning", 4), alert("critical", 32)]),
            ("52m", "ExporterSkippingSamples", [alert("warning", 4), alert("critical", 32)]),
            ("53m", "ExporterSkippingSamples", [alert("warning", 4)]),
            ("59m", "ExporterSkippingSamples", [alert("warning", 4)]),
            ("60m", "ExporterSkippingSamples", []),
        ],
    )


# -- the generated promtool tests


def generated_group(data: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], Path]:
    rules_dir = tmp_path / "prometheus" / "rules"
    for path, text in outputs(parse(data), Layout.under(rules_dir)).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    test_file = tmp_path / "prometheus" / "tests" / "default.test.yml"
    groups = yaml.safe_load(test_file.read_text())["tests"]
    [group] = [g for g in groups if g["name"].startswith("ExporterSkippingSamples")]
    return group, test_file


def test_the_generated_tests_hold_a_burst_only_where_the_for_outlasts_it(tmp_path: Path) -> None:
    """With the default ``for`` (15m) a suspended machine's burst must stay quiet; with a ``for``
    shorter than the 10-minute window it fires, as that setting asks, so no quiet burst is built."""
    group, test_file = generated_group(copy.deepcopy(BASE), tmp_path / "default")
    assert "(a suspended machine)" in group["name"]
    fired = {a["exp_labels"]["instance"] for e in group["alert_rule_test"] for a in e["exp_alerts"]}
    assert fired == {"host-2:9100", "host-3:9100"}
    promtool_passes(test_file)
    group, test_file = generated_group(with_defaults(**{SKIPPING: {"for": "5m"}}), tmp_path / "5m")
    assert "suspended" not in group["name"]
    promtool_passes(test_file)


@pytest.mark.parametrize("levels", [{"warning": 0, "critical": None}, {"enabled": False}])
def test_the_generated_tests_pass_for_one_level_or_none(
    tmp_path: Path, levels: dict[str, Any]
) -> None:
    _, test_file = generated_group(with_defaults(**{SKIPPING: levels}), tmp_path)
    promtool_passes(test_file)
