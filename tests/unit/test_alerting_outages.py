"""Alerting when scrapes fail and hosts go dark: hand-written promtool scenarios against the
committed rules (default.rules.yml, an unlisted tenant ``zeta``).

Every series, every firing time and every value here is worked out by hand from what a real
exporter and Prometheus do, not from the generator's scenario model (scenarios.py), so that a
mistake shared by the rules and that model still shows:

* a failed scrape writes a stale marker into every series of the target: an instant-vector rule
  loses its series for that evaluation and its ``for:`` started again, so a host that fails one
  scrape in eight never alerted (the gauges are read through ``last_over_time``);
* an exporter that never had a push acknowledged and serves no process metrics
  (``--web.disable-exporter-metrics``) was never counted as stalled (the push path's own start
  time now is);
* a host that goes dark keeps its alerts firing until TargetDown fires and Alertmanager inhibits
  them (``keep_firing_for``), instead of sending "resolved" for each.

The annotations are rendered by the catalogue, whose rendering promtool checks against Go.
"""

from __future__ import annotations

from typing import Any

import yaml

from perfanalysis.alerting import catalogue
from perfanalysis.alerting.durations import parse_duration
from perfanalysis.alerting.generate import RULES_DIR, THRESHOLDS
from perfanalysis.alerting.thresholds import load
from tests.unit.test_alerting_audit_fixes import expected, run_promtool

ZETA = {"instance": "h:9100", "job": "node", "tenant": "zeta"}
LABELS = 'instance="h:9100",job="node",tenant="zeta"'
STARTED = "perfanalysis_exporter_push_started_timestamp_seconds"
LAST = "perfanalysis_exporter_push_last_success_timestamp_seconds"


def flaky(value: float | str, minutes: int, every: int, first: int | None = None) -> str:
    """``value`` each minute for ``minutes`` minutes, but a failed scrape (a stale marker) every
    ``every`` minutes, the first at minute ``first`` (default: ``every - 1``)."""
    first = every - 1 if first is None else first
    return " ".join(
        "stale" if t >= first and (t - first) % every == 0 else str(value) for t in range(minutes)
    )


def up(minutes: int, every: int, first: int | None = None) -> str:
    """``up``: 0 at the failed scrapes of ``flaky``, 1 otherwise (never 5 minutes down)."""
    return flaky(1, minutes, every, first).replace("stale", "0")


def test_flaky_marks_the_failed_scrapes() -> None:
    assert flaky(3, 9, 4) == "3 3 3 stale 3 3 3 stale 3"
    assert up(5, 2, 0) == "0 1 0 1 0"


# -- failed scrapes no longer restart every ``for:`` (memory, filesystems, push path)


def test_memory_used_alerts_though_one_scrape_in_eight_fails(tmp_path: Any) -> None:
    """97% used all along, a failed scrape at minutes 7, 15, 23...: the ``for: 10m`` of both
    levels never elapsed, as each failure dropped the series for one evaluation."""
    series = {
        f"node_memory_MemAvailable_bytes{{{LABELS}}}": flaky(3, 41, 8),
        f"node_memory_MemTotal_bytes{{{LABELS}}}": flaky(100, 41, 8),
        f"up{{{LABELS}}}": up(41, 8),
    }
    both = [expected(catalogue.MEMORY, s, ZETA, 97) for s in ("warning", "critical")]
    run_promtool(
        tmp_path,
        series,
        [("9m", "HostMemoryUsed", []), ("10m", "HostMemoryUsed", both),
         ("38m", "HostMemoryUsed", both), ("38m", "TargetDown", [])],
    )  # fmt: skip


def test_a_full_filesystem_alerts_though_scrapes_fail(tmp_path: Any) -> None:
    """/ 97% full for 40 minutes, a failed scrape every 8 minutes: ``for: 15m``."""
    root = 'device="/dev/sda1",fstype="ext4",mountpoint="/"'
    series = {
        f"node_filesystem_avail_bytes{{{root},{LABELS}}}": flaky(3, 41, 8),
        f"node_filesystem_size_bytes{{{root},{LABELS}}}": flaky(100, 41, 8),
        f"node_filesystem_readonly{{{root},{LABELS}}}": flaky(0, 41, 8),
    }
    labels = {**ZETA, "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
    both = [expected(catalogue.FILESYSTEM, s, labels, 97) for s in ("warning", "critical")]
    run_promtool(
        tmp_path,
        series,
        [("14m", "HostFilesystemAlmostFull", []), ("15m", "HostFilesystemAlmostFull", both),
         ("38m", "HostFilesystemAlmostFull", both)],
    )  # fmt: skip


def test_a_filesystem_filling_up_alerts_though_scrapes_fail(tmp_path: Any) -> None:
    """/data is 70% full at minute 0 and loses 1000 of its 1,000,000 bytes a minute: full in 5
    hours, so within the warning's 24 hours from the second sample on (predict_linear needs two),
    not within the critical's 4 before minute 60. ``for: 1h``; a failed scrape every 8 minutes."""
    data = 'device="/dev/sdb1",fstype="ext4",mountpoint="/data"'
    avail = " ".join("stale" if t % 8 == 7 else str(300000 - 1000 * t) for t in range(75))
    series = {
        f"node_filesystem_avail_bytes{{{data},{LABELS}}}": avail,
        f"node_filesystem_size_bytes{{{data},{LABELS}}}": flaky(1000000, 75, 8),
        f"node_filesystem_readonly{{{data},{LABELS}}}": flaky(0, 75, 8),
    }
    labels = {**ZETA, "device": "/dev/sdb1", "fstype": "ext4", "mountpoint": "/data"}
    run_promtool(
        tmp_path,
        series,
        [("60m", "HostFilesystemFillingUp", []),
         # 61 minutes in: 239,000 bytes left, 76.1% used
         ("61m", "HostFilesystemFillingUp", [
             expected(catalogue.FILESYSTEM_PREDICTED, "warning", labels, 76.1)
         ])],
    )  # fmt: skip


def test_read_only_and_dead_mounts_alert_though_scrapes_fail(tmp_path: Any) -> None:
    """/data is remounted read-only at minute 30 and /mnt/nas stops answering then; from then on
    one scrape in four fails: ``for: 5m`` never elapsed."""
    data = 'device="/dev/sdb1",fstype="ext4",mountpoint="/data"'
    nas = 'device="nas:/export",fstype="nfs4",mountpoint="/mnt/nas"'
    after = flaky(1, 20, 4, first=2)  # minutes 30-49: stale at 32, 36, 40, 44, 48
    series = {
        f"node_filesystem_readonly{{{data},{LABELS}}}": f"0x29 {after}",
        f"node_filesystem_device_error{{{nas},{LABELS}}}": f"0x29 {after}",
    }
    data_labels = {**ZETA, "device": "/dev/sdb1", "fstype": "ext4", "mountpoint": "/data"}
    nas_labels = {**ZETA, "device": "nas:/export", "fstype": "nfs4", "mountpoint": "/mnt/nas"}
    run_promtool(
        tmp_path,
        series,
        [("34m", "HostFilesystemTurnedReadOnly", []),
         ("35m", "HostFilesystemTurnedReadOnly", [
             expected(catalogue.FILESYSTEM_READ_ONLY, "critical", data_labels)
         ]),
         ("47m", "HostFilesystemTurnedReadOnly", [
             expected(catalogue.FILESYSTEM_READ_ONLY, "critical", data_labels)
         ]),
         ("35m", "HostFilesystemDeviceError", [
             expected(catalogue.FILESYSTEM_DEVICE_ERROR, "critical", nas_labels)
         ])],
    )  # fmt: skip


def test_a_stalled_push_and_a_growing_spool_alert_though_scrapes_fail(tmp_path: Any) -> None:
    """The last push was acknowledged at second 60; scrapes fail at odd minutes from minute 9
    (``for: 2m`` needs three evaluations in a row). The spool grows by 100 points a minute, a
    scrape failing every 8 minutes (``for: 15m``)."""
    pushes = "60x8 " + flaky(60, 30, 2, first=1)  # minutes 0-8 fine, then stale at 10, 12, ...
    series = {
        f"{LAST}{{{LABELS}}}": pushes,
        f"perfanalysis_exporter_push_points_queued{{{LABELS}}}": " ".join(
            "stale" if t % 8 == 7 else str(100 * t) for t in range(40)
        ),
    }
    run_promtool(
        tmp_path,
        series,
        [  # 300s since the last push at minute 6; above from minute 7 on, firing at minute 9
            ("8m", "ExporterPushStalled", []),
            ("9m", "ExporterPushStalled", [expected(catalogue.PUSH_STALLED, "warning", ZETA, 480)]),
            ("37m", "ExporterPushStalled", [
                expected(catalogue.PUSH_STALLED, "warning", ZETA, 2160),
                expected(catalogue.PUSH_STALLED, "critical", ZETA, 2160),
            ]),
            # above 1000 points from minute 11 (deriv > 0 from the second sample): fires at 26
            ("25m", "ExporterSpoolGrowing", []),
            ("26m", "ExporterSpoolGrowing", [
                expected(catalogue.SPOOL_GROWING, "warning", ZETA, 2600)
            ]),
        ],
    )  # fmt: skip


# -- item 1: an exporter that never pushed, without process metrics


def test_an_exporter_that_never_pushed_alerts_without_process_metrics(tmp_path: Any) -> None:
    """Three hosts start at minute 5 (second 300) and never have a push acknowledged: a (this
    exporter with --web.disable-exporter-metrics) serves the push path's start time only; b (an
    exporter from before that metric) its process start time; c is node_exporter, which does
    not push and must stay quiet."""

    def labels(host: str) -> str:
        return f'instance="{host}:9100",job="node",tenant="zeta"'

    series = {
        f"{LAST}{{{labels('a')}}}": "_x5 0x60",
        f"{STARTED}{{{labels('a')}}}": "_x5 300x60",
        f"{LAST}{{{labels('b')}}}": "_x5 0x60",
        f"process_start_time_seconds{{{labels('b')}}}": "_x5 300x60",
        f"process_start_time_seconds{{{labels('c')}}}": "300x65",
    }

    def stalled(host: str, severity: str, seconds: float) -> dict[str, Any]:
        host_labels = {**ZETA, "instance": f"{host}:9100"}
        return expected(catalogue.PUSH_STALLED, severity, host_labels, seconds)

    # over 300s after the start from minute 11 on: firing at 13 (for: 2m), 480s after the start
    # over 1800s from minute 36: firing at 38, 1980s after the start
    run_promtool(
        tmp_path,
        series,
        [("12m", "ExporterPushStalled", []),
         ("13m", "ExporterPushStalled", [stalled("a", "warning", 480), stalled("b", "warning", 480)]),
         ("38m", "ExporterPushStalled", [
             stalled(host, severity, 1980) for host in "ab" for severity in ("warning", "critical")
         ])],
    )  # fmt: skip


# -- a host going dark: its alerts keep firing until TargetDown does, for Alertmanager to inhibit


def test_a_host_going_dark_keeps_its_alerts_firing_until_target_down_fires(tmp_path: Any) -> None:
    """Memory 97% used, then from minute 30 no scrape answers (a stale marker, then nothing).
    Before, HostMemoryUsed resolved at once, and Alertmanager sent "resolved" five minutes before
    TargetDown came to say the host was unobservable. It now keeps firing (keep_firing_for) past
    the moment TargetDown fires (minute 35), and resolves in the end."""
    series = {
        f"node_memory_MemAvailable_bytes{{{LABELS}}}": "3x29 stale",
        f"node_memory_MemTotal_bytes{{{LABELS}}}": "100x29 stale",
        f"up{{{LABELS}}}": "1x29 0x60",
    }
    both = [expected(catalogue.MEMORY, s, ZETA, 97) for s in ("warning", "critical")]
    down = [expected(catalogue.TARGET_DOWN, "critical", ZETA)]
    run_promtool(
        tmp_path,
        series,
        [("29m", "HostMemoryUsed", both),
         ("34m", "TargetDown", []),
         ("35m", "TargetDown", down),
         ("35m", "HostMemoryUsed", both),
         ("37m", "HostMemoryUsed", both),
         ("60m", "HostMemoryUsed", []),
         ("60m", "TargetDown", down)],
    )  # fmt: skip


def test_host_rules_keep_firing_for_longer_than_target_down_takes() -> None:
    """Every rule on a host's series keeps firing for the scope's exporter_down ``for`` plus a
    margin; TargetDown itself and the rules on ingest's and Alertmanager's series do not."""
    host_alerts = {
        "HostCpuBusy", "HostMemoryUsed", "HostFilesystemAlmostFull", "HostFilesystemFillingUp",
        "HostFilesystemDeviceError", "HostFilesystemTurnedReadOnly", "HostDiskIoSaturated",
        "HostNetworkErrors", "ExporterPushStalled", "ExporterSpoolGrowing",
        "ExporterDroppingPoints", "ExporterSkippingSamples",
    }  # fmt: skip
    for path in [*sorted(RULES_DIR.glob("tenant-*.rules.yml")), RULES_DIR / "default.rules.yml"]:
        rules = yaml.safe_load(path.read_text())["groups"][0]["rules"]
        [down] = [r for r in rules if r["alert"] == "TargetDown"]
        for rule in rules:
            if rule["alert"] in host_alerts:
                keep = parse_duration(rule.get("keep_firing_for", "0s"))
                assert keep >= parse_duration(down["for"]) + 120, (path.name, rule["alert"])
            else:
                assert "keep_firing_for" not in rule, (path.name, rule["alert"])


# -- a storage outage: the rejection must come first, to inhibit the exporters' alerts


def test_a_storage_outage_alerts_on_ingest_before_any_exporter(tmp_path: Any) -> None:
    """InfluxDB stops taking zeta's points at minute 10: ingest refuses 30 of them a second
    (storage_unavailable), and the exporter's last acknowledged push stays at second 600.
    IngestRejectingPoints must fire first: Alertmanager's inhibition (storage failures mute that
    tenant's ExporterPushStalled) cannot take back a page already sent. With ``for: 10m`` it came
    three minutes after every host's ExporterPushStalled."""
    ingest = 'instance="ingest-1:8087",job="ingest",reason="storage_unavailable",tenant="zeta"'
    series = {
        f"perfanalysis_ingest_points_rejected_total{{{ingest}}}": "0x10 1800+1800x30",
        f"{LAST}{{{LABELS}}}": "0+60x10 600x30",
    }
    rejecting = {"tenant": "zeta", "reason": "storage_unavailable"}
    run_promtool(
        tmp_path,
        series,
        [  # rejecting from minute 11 (for: 5m); the push over 300s old from minute 16 (for: 2m)
            ("16m", "IngestRejectingPoints", [
                expected(catalogue.INGEST_REJECTING, "warning", rejecting, 30)
            ]),
            ("16m", "ExporterPushStalled", []),
            ("18m", "ExporterPushStalled", [expected(catalogue.PUSH_STALLED, "warning", ZETA, 480)]),
        ],
    )  # fmt: skip


def test_in_every_scope_ingest_trouble_alerts_before_a_stalled_push() -> None:
    """The order the inhibitions need, for the committed thresholds: IngestRejectingPoints
    (from its first minute of rejections) and ingest's TargetDown (judged by the default scope)
    fire at least a minute before ExporterPushStalled can."""
    thresholds = load(THRESHOLDS)
    ingest_down = thresholds.defaults["exporter_down"].for_seconds
    for settings in [thresholds.defaults, *(t.settings for t in thresholds.tenants.values())]:
        stalled = settings["push_stalled_seconds"]
        earliest = min(lv.threshold or 0 for lv in stalled.levels()) + stalled.for_seconds
        assert settings["ingest_rejecting"].for_seconds + 60 + 60 <= earliest
        assert ingest_down + 60 <= earliest
