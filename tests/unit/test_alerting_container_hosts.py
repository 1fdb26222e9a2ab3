"""Alert rules on container hosts: a Kubernetes node's virtual interfaces and device-mapper volumes
do not alert, and the runbook text of ExporterDroppingPoints and HostFilesystemDeviceError holds
for any host (no spool duration worked out for one host size; what to do when the exporter may
not read a mount).

Behaviour is checked with Debian's promtool against the committed default rules, as in
test_alerting_audit_fixes (skipped when promtool is unavailable).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from types import SimpleNamespace

import yaml

from exporter.collectors.filesystem import DEFAULT_MOUNT_POINTS_EXCLUDE, FilesystemCollector
from exporter.collectors.filters import NameFilter
from exporter.collectors.statfs import StatfsRunner
from exporter.paths import Paths
from exporter.push.metrics import PushMetrics
from exporter.push.pusher import PushStats
from perfanalysis.alerting import catalogue
from perfanalysis.alerting.generate import RULES_DIR
from perfanalysis.grafana import fleet
from tests.unit.promtext import series
from tests.unit.test_alerting_audit_fixes import expected, run_promtool
from tests.unit.test_filesystem import FakeStatfs, samples_of

VIRTUAL_NICS = ["lo", "veth1a2b3c4", "cali12ab34cd56e", "lxc5d6e7f8", "lxcbr0", "tap0",
                "vxlan.calico", "flannel.1", "cni0", "docker0", "br-0ab1c2d3e4f5", "virbr0",
                "tunl0", "cilium_host", "cilium_vxlan"]  # fmt: skip
PHYSICAL_NICS = ["eth0", "enp3s0", "ens5", "eno1", "bond0", "bond0.100", "wlan0", "br0", "ib0"]
VIRTUAL_DISKS = ["dm-0", "dm-149", "loop0", "ram0", "zram0", "sr0", "fd0"]
PHYSICAL_DISKS = ["nvme0n1", "sda", "vda", "xvda", "md0", "mmcblk0"]


def rule_exprs(alert: str) -> list[str]:
    groups = yaml.safe_load((RULES_DIR / "default.rules.yml").read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"] if r.get("alert") == alert]


def excluded(pattern: str, names: list[str]) -> list[str]:
    """The names a PromQL ``!~`` leaves out (Prometheus anchors the regex at both ends)."""
    return [name for name in names if re.fullmatch(pattern, name)]


def test_virtual_interfaces_are_left_out_and_physical_ones_kept() -> None:
    assert excluded(catalogue.NIC_IGNORED, VIRTUAL_NICS) == VIRTUAL_NICS
    assert excluded(catalogue.NIC_IGNORED, PHYSICAL_NICS) == []


def test_device_mapper_and_virtual_disks_are_left_out_and_disks_kept() -> None:
    assert excluded(catalogue.DISK_IGNORED, VIRTUAL_DISKS) == VIRTUAL_DISKS
    assert excluded(catalogue.DISK_IGNORED, PHYSICAL_DISKS) == []


def test_the_network_rule_and_the_fleet_dashboard_share_one_interface_list() -> None:
    physical_nic = f'"device" !~ /^({catalogue.NIC_IGNORED})$/'
    assert physical_nic == fleet.PHYSICAL_NIC
    exprs = rule_exprs("HostNetworkErrors")
    assert exprs
    for expr in exprs:
        assert expr.count(f'device!~"{catalogue.NIC_IGNORED}"') == 2, expr
    for expr in rule_exprs("HostDiskIoSaturated"):
        assert f'device!~"{catalogue.DISK_IGNORED}"' in expr, expr


def test_a_nodes_veth_and_lvm_volumes_do_not_alert_its_nic_and_nvme_do(tmp_path: Path) -> None:
    """On node n1, 40 veth pairs and a Cilium interface count 5 errors/s each and eth0 20; its
    nvme0n1 has 20 requests in flight and so do the LVM volumes on it, dm-0 to dm-2. Only eth0
    and nvme0n1 alert."""
    nic = '{}{{device="{}",instance="n1:9100",job="node"}}'
    disk = 'node_disk_io_time_weighted_seconds_total{{device="{}",instance="n1:9100",job="node"}}'
    virtual = [f"veth{n:07x}" for n in range(40)] + ["lxc5d6e7f8"]
    input_series = {}
    for metric in ("node_network_receive_errs_total", "node_network_transmit_errs_total"):
        input_series[nic.format(metric, "eth0")] = "0+600x60"
        for device in virtual:
            input_series[nic.format(metric, device)] = "0+150x60"
    for device in ("nvme0n1", "dm-0", "dm-1", "dm-2"):
        input_series[disk.format(device)] = "0+1200x60"
    n1 = {"instance": "n1:9100", "job": "node"}
    run_promtool(
        tmp_path,
        input_series,
        [
            ("20m", "HostNetworkErrors", [
                expected(catalogue.NETWORK, severity, {**n1, "device": "eth0"}, 20)
                for severity in ("critical", "warning")
            ]),
            ("50m", "HostDiskIoSaturated", [
                expected(catalogue.DISK_IO, "warning", {**n1, "device": "nvme0n1"}, 20)
            ]),
        ],
    )  # fmt: skip


def test_dropping_points_says_how_to_work_out_the_spool_duration_from_served_metrics() -> None:
    """No duration worked out for one host size: the spool holds 4 hours of a small host's points
    and half an hour of a large one's. The metrics the formula names are ones the exporter
    serves."""
    description = catalogue.EXPORTER_DROPPING.description(catalogue.Level("warning", 0, 0)).render(
        1.0, {"instance": "h:9100", "reason": "spool_full"}
    )
    assert "hours of points with" not in description
    assert "--push.spool-max-bytes" in description
    spool = SimpleNamespace(dropped_points=0, queued_points=0, disk_bytes=0, corrupt=0)
    pusher = SimpleNamespace(stats=PushStats(), spool=spool, max_points=5000)
    served = {f.name for f in PushMetrics(pusher).collect()}  # type: ignore[arg-type]
    named = set(re.findall(r"perfanalysis_exporter_push_\w+", description))
    assert named == {
        "perfanalysis_exporter_push_spool_bytes",
        "perfanalysis_exporter_push_points_queued",
        "perfanalysis_exporter_push_points_sent_total",
    }
    assert named <= served


class DeniedStatfs(FakeStatfs):
    """statfs as a non-root exporter gets it under /var/lib/kubelet/pods (root's, mode 0750)."""

    def __call__(self, path: str) -> os.statvfs_result:
        if "/var/lib/kubelet/pods/" in path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return super().__call__(path)


POD_VOLUME = "/var/lib/kubelet/pods/0c1d/volumes/kubernetes.io~csi/pvc-1/mount"


def test_a_permission_error_is_a_device_error_and_the_described_exclusion_removes_it(
    tmp_path: Path,
) -> None:
    """The collector cannot tell EACCES from EIO in device_error (as node_exporter), so the rule
    fires for both; the description says how to tell (the reason in /health) and what to add to
    --collector.filesystem.mount-points-exclude, which then leaves the pod volume out."""
    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "mounts").write_text(
        f"/dev/sda1 / ext4 rw 0 0\n/dev/sdb {POD_VOLUME} ext4 rw 0 0\n"
    )
    paths = Paths(procfs=str(tmp_path / "proc"), rootfs="/")

    def collector(exclude: str) -> FilesystemCollector:
        mount_points = NameFilter.build(None, re.compile(exclude))
        runner = StatfsRunner(2, 5.0, statfs=DeniedStatfs())
        return FilesystemCollector(paths, mount_points=mount_points, runner=runner)

    default = collector(DEFAULT_MOUNT_POINTS_EXCLUDE)
    errors = series(samples_of(default), "node_filesystem_device_error")
    assert {dict(labels)["mountpoint"]: value for labels, value in errors.items()} == {
        "/": 0,
        POD_VOLUME: 1,
    }
    assert "Permission denied" in default.device_errors[POD_VOLUME]

    description = catalogue.FILESYSTEM_DEVICE_ERROR.description(
        catalogue.Level("critical", None, 300)
    ).render(1.0, {"instance": "n1:9100", "mountpoint": POD_VOLUME, "device": "/dev/sdb",
                   "fstype": "ext4"})  # fmt: skip
    assert "Permission denied" in description
    assert "/health (filesystem_device_errors)" in description
    [added] = re.findall(r"keep its alternatives and add (\S+)\)", description)
    extended = DEFAULT_MOUNT_POINTS_EXCLUDE.replace("^/(", f"^/({added}|", 1)
    assert extended != DEFAULT_MOUNT_POINTS_EXCLUDE
    excluding = collector(extended)
    errors = series(samples_of(excluding), "node_filesystem_device_error")
    assert {dict(labels)["mountpoint"]: value for labels, value in errors.items()} == {"/": 0}
    assert excluding.device_errors == {}
    for own in ("/var/lib/kubelet", "/var/lib/kubelet/pods", "/var/lib/kubelet-data"):
        assert re.search(extended, own) is None, own
