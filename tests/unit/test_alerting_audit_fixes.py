"""Alerting audit fixes: thresholds the rules cannot express are refused up front, naming the place
(not a traceback, a hang or a promtool-test failure blaming another level); long ``for:`` is
capped and the test-series builder is linear; exporters dropping points, dead mounts and
filesystems turned read-only alert; CPU busy and disk saturation measure what node-mixin does.

Behaviour is checked with Debian's promtool against the committed rule files (hand-written
scenarios, the annotations rendered by the catalogue); those tests skip when it is unavailable.
"""

from __future__ import annotations

import copy
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from exporter.push.metrics import PushMetrics
from exporter.push.pusher import PushStats
from perfanalysis.alerting import catalogue, cli, scenarios
from perfanalysis.alerting.catalogue import RULES, RuleDef
from perfanalysis.alerting.durations import parse_duration
from perfanalysis.alerting.generate import RULES_DIR, THRESHOLDS, Layout, outputs
from perfanalysis.alerting.promtests import expanding
from perfanalysis.alerting.thresholds import ThresholdsError, load, parse
from perfanalysis.testing.servers import ServerUnavailable, promtool
from tests.unit.test_alerting_generate import out_flags

BASE: dict[str, Any] = yaml.safe_load(THRESHOLDS.read_text())
DEFAULTS = load(THRESHOLDS).defaults


def with_defaults(**rules: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for key, fields in rules.items():
        data["defaults"][key] = {**data["defaults"][key], **fields}
    return data


def errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ThresholdsError) as caught:
        parse(data, "thresholds.yaml")
    return caught.value.errors


def generate(tmp_path: Path, data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command on a thresholds file; returns its stderr, asserting exit status 2."""
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(data))
    capsys.readouterr()
    assert cli.run(["generate", "--thresholds", str(path), *out_flags(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.replace(str(path), "FILE")


def promtool_passes(test_file: Path) -> None:
    try:
        result: subprocess.CompletedProcess[str] = promtool("test", "rules", test_file)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    assert result.returncode == 0, result.stdout + result.stderr


# -- F1: thresholds that crashed the generator


@pytest.mark.parametrize(
    ("where", "data", "message"),
    [
        (
            "defaults.filesystem_predicted_full_hours.critical",
            with_defaults(filesystem_predicted_full_hours={"critical": 0}),
            "must be above 0 and at most 8760 (hours until full at the rate of the last 6h), got 0",
        ),
        (
            "tenants.demo.filesystem_predicted_full_hours.critical",
            {**BASE, "tenants": {"demo": {"filesystem_predicted_full_hours": {"critical": 0}}}},
            "must be above 0",
        ),
        (
            "defaults.filesystem_predicted_full_hours.min_used_percent",
            with_defaults(filesystem_predicted_full_hours={"min_used_percent": 100}),
            "must be at least 0 and below 100 (min_used_percent), got 100",
        ),
    ],
)
def test_zero_hours_to_full_and_a_full_floor_are_refused_naming_the_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, data: Any, message: str
) -> None:
    """They divided by zero in the promtool scenarios (a traceback, exit 1); and the rules could
    never fire: nothing is full within 0 hours, and no filesystem is more than 100% used."""
    [error] = errors(data)
    assert error.startswith(f"thresholds.yaml: {where}: {message}")
    assert generate(tmp_path, data, capsys).startswith(f"FILE: {where}: {message}")


# -- F2: long for: durations


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1w", "must be at most 1d (a condition that must hold longer belongs in a report"),
        ("4w", "must be at most 1d"),
        ("99999999999w", "'99999999999w' is out of range: Prometheus durations end at about 292"),
    ],
)
def test_a_for_beyond_a_day_or_prometheus_range_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    data = with_defaults(cpu_busy_percent={"for": value})
    started = time.monotonic()
    err = generate(tmp_path, data, capsys)
    assert time.monotonic() - started < 5  # 99999999999w used to never return
    assert err.startswith(f"FILE: defaults.cpu_busy_percent.for: {message}")


def test_the_read_only_rule_caps_its_for_below_its_one_day_window() -> None:
    data = with_defaults(filesystem_turned_read_only={"for": "2h"})
    assert errors(data) == [
        "thresholds.yaml: defaults.filesystem_turned_read_only.for: must be at most 1h (the rule "
        "looks back 1d: it must fire well within that), got '2h'"
    ]


@pytest.mark.parametrize("text", ["15251w", "9223372037s", "9" * 5000 + "w"])
def test_durations_prometheus_refuses_are_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match="is out of range"):
        parse_duration(text)
    assert parse_duration("15250w") == 15250 * 604800  # Prometheus's limit is about 15250.3w


def test_the_expanding_notation_is_built_in_linear_time() -> None:
    """It recomputed each run from its start for every value: a day of minutes took seconds per
    series, four weeks over a minute per file."""
    values: list[float | None] = [1000 + 0.25 * t for t in range(40_000)]
    started = time.monotonic()
    assert expanding(values) == "1000+0.25x39999"
    assert time.monotonic() - started < 1
    assert expanding([1.0, 2.0, 3.0, None, None, 5.0, 5.0, 0.1, 0.2, 0.3]) == (
        "1+1x2 _x2 5x1 0.1+0.1x1 0.3"  # 0.1 + 0.1 + 0.1 is not 0.3: a run of its own
    )


def test_a_day_long_for_generates_quickly(tmp_path: Path) -> None:
    data = with_defaults(**{k: {"for": "1d"} for k in RULES if k != "filesystem_turned_read_only"})
    started = time.monotonic()
    files = outputs(parse(data), Layout.under(tmp_path / "prometheus" / "rules"))
    assert time.monotonic() - started < 10
    assert "for: 1d" in files[tmp_path / "prometheus" / "rules" / "default.rules.yml"]


# -- F3: values the rules cannot express are refused up front, naming the place


@pytest.mark.parametrize(
    ("key", "field", "value", "message"),
    [
        ("cpu_busy_percent", "critical", 100, "must be above 0 and below 100"),
        ("memory_used_percent", "critical", 100, "must be above 0 and below 100"),
        ("filesystem_used_percent", "critical", 100, "must be above 0 and below 100"),
        ("push_stalled_seconds", "warning", 0, "must be at least 60 and at most 86400"),
    ],
)
def test_thresholds_no_rule_can_cross_are_refused_by_the_validator(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    field: str,
    value: float,
    message: str,
) -> None:
    """They were accepted, then refused by the promtool-test builder in words that named neither
    the file nor the key, blaming the warning level for a critical at 100."""
    data = with_defaults(**{key: {field: value}})
    [error] = errors(data)
    assert error.startswith(f"thresholds.yaml: defaults.{key}.{field}: {message} (")
    assert generate(tmp_path, data, capsys) == error.replace("thresholds.yaml", "FILE") + "\n"


def test_the_old_disk_key_is_refused_rather_than_read_in_new_units() -> None:
    data = copy.deepcopy(BASE)
    data["tenants"]["acme"]["disk_io_saturation"] = {"warning": 0.8}
    [error] = errors(data)
    assert error.startswith(
        "thresholds.yaml: tenants.acme.disk_io_saturation: renamed to disk_io_queue_length"
    )


def edge_thresholds() -> dict[str, Any]:
    """Every threshold rule at the far ends of what the validator accepts, plus levels where a
    rate ramping up over five minutes passes a level exactly (4/5 of 50% is 40%)."""
    edges: dict[str, dict[str, Any]] = {
        "cpu_busy_percent": {"warning": 40, "critical": 60},
        "memory_used_percent": {"warning": 0.001, "critical": 99.999},
        "filesystem_used_percent": {"warning": 0.001, "critical": 99.99},
        "filesystem_predicted_full_hours": {
            "warning": 8760, "critical": 0.001, "min_used_percent": 99.9,
        },
        "disk_io_queue_length": {"warning": 1e-5, "critical": 1e12},
        "network_errors_per_second": {"warning": 0, "critical": 1e-7},
        "push_stalled_seconds": {"warning": 60, "critical": 86400},
        "ingest_rejecting": {"warning": 0, "critical": 0.25},
        "spool_growing": {"warning": 0, "critical": 3},
        "exporter_dropping_points": {"warning": 0, "critical": 9},
        "exporter_skipping_samples": {"warning": 0, "critical": 1e-3},
    }  # fmt: skip
    assert set(edges) == {k for k, r in RULES.items() if r.thresholds}
    data = with_defaults(**edges)
    data["tenants"] = {"acme": {"cpu_busy_percent": {"warning": 0.001, "critical": 99.999}}}
    return data


def test_every_value_the_validator_accepts_gets_a_promtool_test_that_passes(
    tmp_path: Path,
) -> None:
    rules_dir = tmp_path / "prometheus" / "rules"
    for path, text in outputs(parse(edge_thresholds()), Layout.under(rules_dir)).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    promtool_passes(tmp_path / "prometheus" / "tests" / "default.test.yml")
    promtool_passes(tmp_path / "prometheus" / "tests" / "tenant-acme.test.yml")


def test_a_test_that_cannot_be_built_names_the_file_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A safety net behind the validator: a scenario on a threshold after every attempt, here in
    tenant acme's scope only."""
    original = scenarios.BUILDERS["cpu_busy_percent"]
    attempts = []

    def on_the_threshold(setting: Any, hosts: Any, tenant: str, attempt: int) -> list[Any]:
        if hosts.base.get("tenant") != "acme":
            return original(setting, hosts, tenant, attempt)
        attempts.append(attempt)
        return [scenarios.Scenario("always 70", [], hosts(1), lambda t: 70.0, lambda lv, t: 0.0)]

    monkeypatch.setitem(scenarios.BUILDERS, "cpu_busy_percent", on_the_threshold)
    assert generate(tmp_path, copy.deepcopy(BASE), capsys) == (
        "FILE: tenants.acme.cpu_busy_percent: cannot build a promtool test for its warning level "
        "(70): scenario 'always 70' is on the threshold at minute 4\n"
    )
    assert attempts == list(range(scenarios.ATTEMPTS))


# -- promtool scenarios against the committed rules


def expected(
    rule: RuleDef, severity: str, labels: Mapping[str, str], value: float = 0.0
) -> dict[str, Any]:
    """An alert as the committed default rules fire it, its annotations rendered by the
    catalogue (promtests checks that rendering against Prometheus)."""
    [level] = [lv for lv in DEFAULTS[rule.key].levels() if lv.severity == severity]
    labels = {**labels, "severity": severity}
    return {
        "exp_labels": labels,
        "exp_annotations": {
            "summary": rule.summary(level).render(value, labels),
            "description": rule.description(level).render(value, labels),
        },
    }


def run_promtool(tmp_path: Path, series: dict[str, str], evaluations: list[Any]) -> None:
    test = {
        "rule_files": [str(RULES_DIR / "default.rules.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "alert_rule_test": [
                    {"eval_time": t, "alertname": name, "exp_alerts": alerts}
                    for t, name, alerts in evaluations
                ],
            }
        ],
    }
    path = tmp_path / "audit.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False, width=4096))
    promtool_passes(path)


def test_the_dropped_points_metric_and_its_reasons_are_the_exporters() -> None:
    spool = SimpleNamespace(dropped_points=0, queued_points=0, disk_bytes=0, corrupt=0)
    pusher = SimpleNamespace(stats=PushStats(), spool=spool, max_points=5000)
    metrics = PushMetrics(pusher)  # type: ignore[arg-type]
    [dropped] = [f for f in metrics.collect() if f.name == catalogue.PUSH_DROPPED]
    assert sorted(labels[0] for labels, _ in dropped.samples) == list(scenarios.DROP_REASONS)
    assert "increase(perfanalysis_exporter_push_points_dropped_total{" in (
        (RULES_DIR / "default.rules.yml").read_text()
    )


def test_a_full_spool_dropping_points_alerts_when_the_growing_spool_alert_resolves(
    tmp_path: Path,
) -> None:
    """The spool grows for an hour, then is full: points_queued goes flat (ExporterSpoolGrowing
    resolves, once the 10 minutes of its deriv and of its keep_firing_for have passed) while
    points_dropped_total{reason="spool_full"} climbs."""
    host = {"instance": "h6:9100", "job": "node"}
    dropped = "perfanalysis_exporter_push_points_dropped_total"
    series = {
        'perfanalysis_exporter_push_points_queued{instance="h6:9100",job="node"}':
            "0+3000x60 180000x100",
        f'{dropped}{{instance="h6:9100",job="node",reason="spool_full"}}': "0x60 3000+3000x100",
        f'{dropped}{{instance="h6:9100",job="node",reason="rejected"}}': "0x160",
    }  # fmt: skip
    spool = {**host, "reason": "spool_full"}
    run_promtool(
        tmp_path,
        series,
        [
            ("60m", "ExporterDroppingPoints", []),
            ("61m", "ExporterDroppingPoints", [expected(catalogue.EXPORTER_DROPPING, "warning", spool, 3000)]),
            ("80m", "ExporterSpoolGrowing", []),  # flat from 60m: deriv 0 at 70m, +10m
            ("75m", "ExporterDroppingPoints", [
                expected(catalogue.EXPORTER_DROPPING, severity, spool, 45000)
                for severity in ("warning", "critical")
            ]),
        ],
    )  # fmt: skip


def test_a_full_filesystem_turned_read_only_and_a_dead_mount_alert(tmp_path: Path) -> None:
    """/data, 97% full, is remounted read-only at minute 31: HostFilesystemAlmostFull resolves
    (it covers read-write filesystems; after its keep_firing_for, 10m), HostFilesystemTurnedReadOnly
    takes over for a day (and its keep_firing_for).
    /boot/efi is read-only by design and never alerts; an NFS mount stops answering."""
    fs = 'device="{}",fstype="{}",instance="h2:9100",job="node",mountpoint="{}"'
    data, efi = (
        fs.format("/dev/sdb1", "ext4", "/data"),
        fs.format("/dev/sda15", "vfat", "/boot/efi"),
    )
    nfs = fs.format("nas:/export", "nfs4", "/mnt/nas")
    series = {
        f"node_filesystem_size_bytes{{{data}}}": "100x1500",
        f"node_filesystem_avail_bytes{{{data}}}": "3x1500",
        f"node_filesystem_readonly{{{data}}}": "0x30 1x1470",
        f"node_filesystem_size_bytes{{{efi}}}": "100x1500",
        f"node_filesystem_avail_bytes{{{efi}}}": "3x1500",
        f"node_filesystem_readonly{{{efi}}}": "1x1500",
        f"node_filesystem_device_error{{{data}}}": "0x1500",
        f"node_filesystem_device_error{{{nfs}}}": "0x30 1x40",
    }
    host = {"instance": "h2:9100", "job": "node"}
    data_labels = {**host, "device": "/dev/sdb1", "fstype": "ext4", "mountpoint": "/data"}
    nfs_labels = {**host, "device": "nas:/export", "fstype": "nfs4", "mountpoint": "/mnt/nas"}
    full = [expected(catalogue.FILESYSTEM, s, data_labels, 97) for s in ("warning", "critical")]
    read_only = [expected(catalogue.FILESYSTEM_READ_ONLY, "critical", data_labels)]
    run_promtool(
        tmp_path,
        series,
        [
            ("30m", "HostFilesystemAlmostFull", full),
            ("40m", "HostFilesystemAlmostFull", full),  # keep_firing_for: 10m
            ("41m", "HostFilesystemAlmostFull", []),
            ("35m", "HostFilesystemTurnedReadOnly", []),  # for: 5m
            ("36m", "HostFilesystemTurnedReadOnly", read_only),
            ("1470m", "HostFilesystemTurnedReadOnly", read_only),  # read-write at 30m, in the day
            ("1480m", "HostFilesystemTurnedReadOnly", read_only),  # keep_firing_for: 10m
            ("1481m", "HostFilesystemTurnedReadOnly", []),  # a day and 10m later, documented
            ("35m", "HostFilesystemDeviceError", []),
            ("36m", "HostFilesystemDeviceError", [
                expected(catalogue.FILESYSTEM_DEVICE_ERROR, "critical", nfs_labels)
            ]),
        ],
    )  # fmt: skip


def test_iowait_is_not_busy_and_a_busy_nvme_is_not_saturated(tmp_path: Path) -> None:
    """h4 waits for its disk all the time and its NVMe device is busy all the time with one
    request in flight: neither alerts. h5 is 90% busy in user mode, and its sda has 20 requests
    in flight: both alert."""
    cpu = 'node_cpu_seconds_total{{cpu="0",instance="{}",job="node",mode="{}"}}'
    disk = '{}{{device="{}",instance="{}",job="node"}}'
    io, weighted = "node_disk_io_time_seconds_total", "node_disk_io_time_weighted_seconds_total"
    series = {
        cpu.format("h4:9100", "idle"): "1000x60",
        cpu.format("h4:9100", "iowait"): "0+60x60",
        cpu.format("h5:9100", "idle"): "0+6x60",
        cpu.format("h5:9100", "user"): "0+54x60",
        disk.format(io, "nvme0n1", "h4:9100"): "0+60x60",
        disk.format(weighted, "nvme0n1", "h4:9100"): "0+60x60",
        disk.format(io, "sda", "h5:9100"): "0+60x60",
        disk.format(weighted, "sda", "h5:9100"): "0+1200x60",
    }
    h5 = {"instance": "h5:9100", "job": "node"}
    run_promtool(
        tmp_path,
        series,
        [
            ("30m", "HostCpuBusy", [expected(catalogue.CPU, "warning", h5, 90)]),
            ("50m", "HostDiskIoSaturated", [
                expected(catalogue.DISK_IO, "warning", {**h5, "device": "sda"}, 20)
            ]),
        ],
    )  # fmt: skip


def test_the_generated_tests_cover_the_new_cases() -> None:
    """The committed promtool tests hold a quiet host mostly in iowait, a busy NVMe device that
    is not saturated, a spool that is full and dropping, a read-only-by-design filesystem."""
    text = (RULES_DIR.parent / "tests" / "default.test.yml").read_text()
    groups = {g["name"].split(" (")[0]: g for g in yaml.safe_load(text)["tests"]}
    assert "iowait" in groups["HostCpuBusy"]["name"]
    assert "100% busy" in groups["HostDiskIoSaturated"]["name"]
    assert "spool_full: drops" in groups["ExporterDroppingPoints"]["name"]
    assert "/boot/efi always read-only" in groups["HostFilesystemTurnedReadOnly"]["name"]
    assert "NFS mount hangs" in groups["HostFilesystemDeviceError"]["name"]
    fired = {
        a["exp_labels"].get("reason")
        for e in groups["ExporterDroppingPoints"]["alert_rule_test"]
        for a in e["exp_alerts"]
    }
    assert "spool_full" in fired


def test_the_catalogue_docstring_lists_every_difference_from_node_mixin() -> None:
    doc = catalogue.__doc__ or ""
    assert "with two changes" not in doc
    for name in ("NodeCPUHighUsage", "NodeDiskIOSaturation", "io_time_weighted", "iowait"):
        assert name in doc
