"""The container-host setting (docs/operations.md, "Container hosts"): what it is, what it leaves
out and keeps on a fake Kubernetes node, and the guide's account of it and of Grafana. The
deployments that carry it are checked in test_deploy_kubernetes_fixes.py and
test_deploy_systemd.py, with the helpers here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"
README = ROOT / "README.md"

CONTAINER_INTERFACES = r"^(veth|cali|lxc|tap|vxlan|flannel|cni|docker|br-).*$"
CONTAINER_MOUNTS = ("var/lib/kubelet/pods/.+", "run/containerd/.+", "run/netns/.+")

# the node's own: loopback, NICs, a bond and its VLAN, and Calico's one IP-in-IP tunnel
KEPT_INTERFACES = {"lo", "eth0", "ens5", "bond0", "bond0.100", "wlan0", "tunl0"}
CONTAINER_INTERFACE_NAMES = {
    "veth1a2b3c4d", "cali0123456789a", "lxcbr0", "tap0", "vxlan.calico", "flannel.1", "cni0",
    "docker0", "br-5f3e2a1b",
}  # fmt: skip

PV = "var/lib/kubelet/pods/0f1e/volumes/kubernetes.io~csi/pvc-1/mount"
# (device, mount point, fs type) of a node's mount table, with whether the setting keeps it
NODE_MOUNTS = [
    ("/dev/sda1", "/", "ext4", True),
    ("/dev/sda2", "/var", "ext4", True),
    ("/dev/sda3", "/var/lib/kubelet", "ext4", True),
    ("/dev/sdc1", "/var/lib/containerd", "ext4", True),  # the runtime's disk is the node's
    ("tmpfs", "/run", "tmpfs", True),
    ("/dev/rbd0", f"/{PV}", "ext4", False),
    ("tmpfs", "/var/lib/kubelet/pods/0f1e/volumes/kubernetes.io~projected/token", "tmpfs", False),
    ("shm", "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/9a8b/shm", "tmpfs", False),
    ("tmpfs", "/run/credentials/x.service", "tmpfs", False),
    ("/dev/sdb1", "/var/lib/docker/overlay2/abc", "ext4", False),
    ("shm", "/dev/shm", "tmpfs", False),
]


def container_host_mount_exclude() -> str:
    """node_exporter's default mount exclusion with the container mounts appended."""
    from exporter.collectors.filesystem import DEFAULT_MOUNT_POINTS_EXCLUDE

    head, tail, rest = DEFAULT_MOUNT_POINTS_EXCLUDE.rpartition(")($|/)")
    assert tail, DEFAULT_MOUNT_POINTS_EXCLUDE
    assert not rest, DEFAULT_MOUNT_POINTS_EXCLUDE
    return f"{head}|{'|'.join(CONTAINER_MOUNTS)}{tail}"


def exported_interfaces(values: dict[str, Any], tmp_path: Path) -> dict[str, set[str]]:
    """The `device` labels netdev and netclass export, with ``values`` (the exporter's loaded
    settings), on a node with the physical and the container interfaces above."""
    from exporter.collectors.catalogue import COLLECTORS
    from exporter.paths import Paths

    names = sorted(KEPT_INTERFACES | CONTAINER_INTERFACE_NAMES)
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    (proc / "net").mkdir(parents=True)
    header = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|"
        "bytes    packets errs drop fifo colls carrier compressed\n"
    )
    rows = "".join(f"{name:>6}: {' '.join(['1'] * 16)}\n" for name in names)
    (proc / "net" / "dev").write_text(header + rows)
    for name in names:
        (sys / "class" / "net" / name).mkdir(parents=True)
        (sys / "class" / "net" / name / "operstate").write_text("up\n")
    paths = Paths(procfs=str(proc), sysfs=str(sys))
    exported = {}
    for collector in ("netdev", "netclass"):
        built: Any = COLLECTORS[collector].build(paths, values)
        exported[collector] = {
            labels[0] for family in built.collect() for labels, _ in family.samples if labels
        }
    return exported


def exported_mounts(values: dict[str, Any], tmp_path: Path, prefix: str = "") -> set[str]:
    """The mount points the filesystem collector keeps from NODE_MOUNTS (each under ``prefix``
    too, as a container's own table shows them with --path.rootfs)."""
    from exporter.collectors.catalogue import COLLECTORS
    from exporter.paths import Paths

    proc = tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "1" / "mounts").write_text(
        "".join(
            f"{dev} {where}{mnt} {fs} rw 0 0\n"
            for dev, mnt, fs, _ in NODE_MOUNTS
            for where in {"", prefix}
        )
    )
    paths = Paths(procfs=str(proc), rootfs=values["path_rootfs"])
    collector: Any = COLLECTORS["filesystem"].build(paths, values)
    return {mount.mountpoint for mount in collector.mounts()}


KEPT_MOUNTS = {mnt for _, mnt, _, kept in NODE_MOUNTS if kept}


def assert_container_host_filters(values: dict[str, Any]) -> None:
    """``values`` carry the setting exactly, as the exporter parsed it (Go regex translated)."""
    assert values["collector_netdev_device_exclude"] is not None
    assert values["collector_netdev_device_include"] is None
    for key in ("collector_netdev_device_exclude", "collector_netclass_ignored_devices"):
        pattern = values[key]
        assert all(pattern.search(name) for name in CONTAINER_INTERFACE_NAMES), key
        assert not any(pattern.search(name) for name in KEPT_INTERFACES), key
    mounts = values["collector_filesystem_mount_points_exclude"]
    for path in ("/run/netns/cni-1234", f"/{PV}", "/run/containerd/io.containerd.runtime.v2.task"):
        assert mounts.search(path), path
    for path in ("/run/netns", "/var/lib/containerd", "/var/lib/kubelet", "/home", "/"):
        assert not mounts.search(path), path


def test_the_setting_parses_as_go_regexes_and_leaves_out_only_container_interfaces(
    tmp_path: Path,
) -> None:
    from exporter.config import load

    values = load(
        [
            f"--collector.netdev.device-exclude={CONTAINER_INTERFACES}",
            f"--collector.netclass.ignored-devices={CONTAINER_INTERFACES}",
            f"--collector.filesystem.mount-points-exclude={container_host_mount_exclude()}",
        ],
        {},
    )
    assert_container_host_filters(values)
    assert exported_interfaces(values, tmp_path / "with") == {
        "netdev": KEPT_INTERFACES,
        "netclass": KEPT_INTERFACES,
    }
    assert exported_mounts(values, tmp_path / "with") == KEPT_MOUNTS
    defaults = load([], {})
    everything = KEPT_INTERFACES | CONTAINER_INTERFACE_NAMES
    assert exported_interfaces(defaults, tmp_path / "defaults") == {
        "netdev": everything,
        "netclass": everything,
    }, "the exporter's own defaults stay node_exporter's"


def section(title: str) -> str:
    text = OPERATIONS.read_text()
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^##)", text, re.M | re.S)
    assert match, f"docs/operations.md has no section {title!r}"
    return match.group(1)


def test_the_operations_guide_gives_the_setting_as_deployed() -> None:
    text = " ".join(section("Container hosts").split())
    assert f"`{CONTAINER_INTERFACES}`" in text
    assert f"`{container_host_mount_exclude()}`" in text
    for flag in (
        "--collector.netdev.device-exclude",
        "--collector.netclass.ignored-devices",
        "--collector.filesystem.mount-points-exclude",
    ):
        assert f"`{flag}`" in text, flag
    for setting in ("index-version", "max-series-per-database", "max-values-per-tag"):
        assert f"`{setting}`" in text, setting


def test_the_guide_names_the_lists_grafana_and_the_rules_share() -> None:
    """The guide names the shared lists with what they hold, and says they leave out every
    interface the setting drops; how each dashboard reads them is test_grafana_ignored_devices."""
    from perfanalysis.alerting.catalogue import DISK_IGNORED, NIC_IGNORED, NIC_IGNORED_PATTERNS

    text = " ".join(section("Container hosts").split())
    *head, last = (f"`{pattern}`" for pattern in NIC_IGNORED_PATTERNS)
    for named in (
        "`NIC_IGNORED`",
        f"{', '.join(head)} and {last}",
        "`DISK_IGNORED`",
        f"`{DISK_IGNORED}`",
    ):
        assert named in text, named
    assert "covers every interface the setting drops" in text
    assert all(re.fullmatch(NIC_IGNORED, name) for name in CONTAINER_INTERFACE_NAMES)


def test_the_readme_sends_container_hosts_to_the_guide() -> None:
    text = " ".join(README.read_text().split())
    advice = text.index("narrow it with `--collector.netclass.ignored-devices`")
    assert "docs/operations.md, *Container hosts*" in text[advice : advice + 200]
