"""deploy/kubernetes and the Dockerfile: the exporter's uid, kubelet volumes, the container-host
setting, pinned builds, autoscaled replicas and trusted proxies (static checks, no cluster)."""

from __future__ import annotations

import re
import shlex
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.test_deploy_container_host import (
    CONTAINER_INTERFACES,
    KEPT_INTERFACES,
    KEPT_MOUNTS,
    assert_container_host_filters,
    container_host_mount_exclude,
    exported_interfaces,
    exported_mounts,
)
from tests.unit.test_deploy_kubernetes import containers, load_resources, of_kind, workloads

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    return load_resources()


def image_user() -> tuple[int, int]:
    """The uid:gid the image runs as when a pod does not say (the Dockerfile's last USER)."""
    [*_, user] = re.findall(r"^USER (\S+)", DOCKERFILE.read_text(), re.M)
    uid, _, gid = user.partition(":")
    return int(uid), int(gid or uid)


def run_as(pod: dict[str, Any], container: dict[str, Any]) -> tuple[int, int]:
    uid, gid = image_user()
    for context in (pod.get("securityContext", {}), container.get("securityContext", {})):
        uid = context.get("runAsUser", uid)
        gid = context.get("runAsGroup", gid)
    return uid, gid


def holds_secrets(pod: dict[str, Any], container: dict[str, Any]) -> bool:
    from_env = any("secretKeyRef" in e.get("valueFrom", {}) for e in container.get("env", []))
    from_env_from = any("secretRef" in s for s in container.get("envFrom", []))
    secret_volumes = {v["name"] for v in pod.get("volumes", []) if {"secret", "projected"} & set(v)}
    mounted = any(m["name"] in secret_volumes for m in container.get("volumeMounts", []))
    return from_env or from_env_from or mounted


def test_no_container_holding_secrets_shares_a_uid_or_gid_with_a_host_pid_pod(
    resources: list[dict[str, Any]],
) -> None:
    """With the host's PID namespace a process may read /proc/<pid>/environ of, and signal, every
    process of its uid on the node: the exporter must not share one with ingest or admin."""
    host_pid: dict[tuple[int, int], str] = {}
    holders: dict[tuple[int, int], str] = {}
    for name, workload in workloads(resources).items():
        pod = workload["spec"]["template"]["spec"]
        for container in containers(workload):
            ids = run_as(pod, container)
            where = f"{name}/{container['name']}"
            if pod.get("hostPID"):
                host_pid[ids] = where
            if holds_secrets(pod, container):
                holders[ids] = where
    assert host_pid, "no hostPID pod"
    assert holders, "no pod holds secrets"
    for uid, gid in host_pid:
        for other_uid, other_gid in holders:
            assert uid != other_uid, f"{host_pid[uid, gid]} runs as {holders[other_uid, other_gid]}"
            assert gid != other_gid, f"{host_pid[uid, gid]} shares a group with a secret holder"


def test_the_exporter_writes_nothing_or_to_a_writable_volume(
    resources: list[dict[str, Any]],
) -> None:
    """The root filesystem is read-only: without push there is no spool; with push the spool
    must be on a volume, not the image's /var/lib/perfanalysis owned by 10001."""
    pod = workloads(resources)["exporter"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = container["args"]
    if not any(a.startswith("--push.url") for a in args):
        return
    [spool] = [a.partition("=")[2] for a in args if a.startswith("--push.spool-dir=")]
    writable = {
        m["mountPath"]
        for m in container["volumeMounts"]
        if not m.get("readOnly")
        and any(v["name"] == m["name"] and "emptyDir" in v for v in pod["volumes"])
    }
    assert any(spool == path or spool.startswith(path + "/") for path in writable), spool


def daemonset_args(resources: list[dict[str, Any]]) -> list[str]:
    [container] = workloads(resources)["exporter"]["spec"]["template"]["spec"]["containers"]
    args: list[str] = container["args"][1:]
    return args


def test_the_daemonset_skips_kubelet_volumes_and_keeps_the_default_exclusions(
    resources: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Non-root statfs on a persistent volume under /var/lib/kubelet/pods (root's, 0750) fails,
    which the exporter reports as node_filesystem_device_error 1 (a critical alert); the
    runtime's shm and network-namespace mounts are a pod's, not the node's. Mounts come from the
    host's table (hostPID) or, with the --path.rootfs prefix, from a container's own."""
    from exporter.config import load

    args = daemonset_args(resources)
    exclude = f"--collector.filesystem.mount-points-exclude={container_host_mount_exclude()}"
    assert exclude in args
    values = load(args, {})
    assert values["path_rootfs"] == "/host/root"
    assert exported_mounts(values, tmp_path, prefix="/host/root") == KEPT_MOUNTS


def test_the_daemonset_runs_with_the_container_host_setting(
    resources: list[dict[str, Any]], tmp_path: Path
) -> None:
    """A node's veths are most of its series, and each pod start adds some (docs/operations.md,
    "Container hosts"): only the node's own interfaces are exported."""
    from exporter.config import load

    args = daemonset_args(resources)
    for flag in ("--collector.netdev.device-exclude", "--collector.netclass.ignored-devices"):
        assert f"{flag}={CONTAINER_INTERFACES}" in args, flag
    values = load(args, {})
    assert_container_host_filters(values)
    assert exported_interfaces(values, tmp_path) == {
        "netdev": KEPT_INTERFACES,
        "netclass": KEPT_INTERFACES,
    }


def constraints() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{CONSTRAINTS.name}: {line!r} is not pinned with =="
            assert version, line
            pins[canonicalize_name(name)] = version
    return pins


def install_args() -> list[str]:
    """The arguments of each `pip install` in the Dockerfile's RUN lines."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for command in re.split(r"&&|\n", text):
        words = shlex.split(command.replace("RUN ", "", 1)) if "pip install" in command else []
        if words:
            found.append(words[words.index("install") + 1 :])
    return found


def test_the_image_installs_pinned_versions() -> None:
    installs = install_args()
    assert ["pip==26.3"] in installs or any(
        re.fullmatch(r"pip==[\d.]+", a) for args in installs for a in args
    ), installs
    [server] = [args for args in installs if ".[server]" in args]
    constraint = "deploy/constraints.txt"
    assert server[server.index("--constraint") + 1] == constraint, server
    assert server[server.index("--build-constraint") + 1] == constraint, server
    assert "--upgrade" not in " ".join(" ".join(a) for a in installs)
    assert re.search(rf"^COPY {re.escape(constraint)} ", DOCKERFILE.read_text(), re.M)


def closure(name: str, extras: set[str], seen: dict[str, set[str]]) -> None:
    """Every distribution ``name[extras]`` needs, by the installed metadata (Linux markers)."""
    key = canonicalize_name(name)
    done = seen.get(key)
    if done is not None and extras <= done:
        return
    seen[key] = (done or set()) | extras
    try:
        requires = distribution(name).requires or []
    except PackageNotFoundError:
        pytest.fail(f"{name} is not installed here: cannot resolve what it needs")
    for text in requires:
        requirement = Requirement(text)
        wanted = {""} | extras
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in wanted):
            closure(requirement.name, set(requirement.extras), seen)


def test_the_constraints_pin_every_distribution_the_server_extra_installs() -> None:
    needed: dict[str, set[str]] = {}
    closure("perfanalysis", {"server"}, needed)
    needed.pop("perfanalysis")
    pins = constraints()
    missing = sorted(set(needed) - set(pins))
    assert not missing, f"{CONSTRAINTS.name} does not pin {missing}"
    from importlib.metadata import requires

    for text in requires("perfanalysis") or []:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name in pins:
            assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    for build in ("setuptools", "wheel"):  # this project's and gunicorn_h1c's build backend
        assert build in pins, f"{CONSTRAINTS.name} does not pin the build dependency {build}"


def test_no_autoscaled_deployment_sets_replicas(resources: list[dict[str, Any]]) -> None:
    """kubectl apply would reset the replicas the HorizontalPodAutoscaler chose."""
    deployments = of_kind(resources, "Deployment")
    for autoscaler in of_kind(resources, "HorizontalPodAutoscaler").values():
        target = autoscaler["spec"]["scaleTargetRef"]["name"]
        assert "replicas" not in deployments[target]["spec"], target


def test_admin_trusts_no_proxy_unless_one_is_shipped(resources: list[dict[str, Any]]) -> None:
    """No Ingress is shipped: trusting X-Forwarded-For would let any client that reaches the
    Service forge the address the audit log and the login throttle see."""
    data = of_kind(resources, "ConfigMap")["perfanalysis-admin"]["data"]
    if not of_kind(resources, "Ingress"):
        assert data["PERFANALYSIS_ADMIN_WEB_TRUSTED_PROXIES"] == "0"
