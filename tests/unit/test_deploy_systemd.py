"""deploy/systemd/perfanalysis-exporter.service and its settings example exporter.env, checked
statically: its command line and environment load as the exporter's settings, its sandbox leaves
what the exporter reads visible, the container-host setting is there, and, where systemd-analyze
exists, systemd accepts it."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy.configref import variables_read_by
from tests.unit.test_deploy_container_host import (
    CONTAINER_INTERFACES,
    KEPT_INTERFACES,
    KEPT_MOUNTS,
    assert_container_host_filters,
    container_host_mount_exclude,
    exported_interfaces,
    exported_mounts,
)

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "perfanalysis-exporter.service"
SETTINGS_EXAMPLE = ROOT / "deploy" / "systemd" / "exporter.env"
CONTAINER_HOST_VARIABLES = (
    "PERFANALYSIS_EXPORTER_COLLECTOR_NETDEV_DEVICE_EXCLUDE",
    "PERFANALYSIS_EXPORTER_COLLECTOR_NETCLASS_IGNORED_DEVICES",
)
OPERATIONS = ROOT / "docs" / "operations.md"
INSTALLED = "/opt/perfanalysis/bin/perfanalysis"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections to keys to values, in order (a key may repeat, as SystemCallFilter does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{line!r} before any section"
        assert not line.endswith("\\"), "keep each setting on one line"
        key, sep, value = line.partition("=")
        assert sep, f"not a setting: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def service() -> dict[str, str]:
    unit = parse_unit(UNIT.read_text())
    assert {"Unit", "Service", "Install"} <= set(unit)
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    return {key: " ".join(values) for key, values in unit["Service"].items()}


def test_it_runs_the_exporter_restarting_on_failure_as_a_user_of_its_own(
    service: dict[str, str],
) -> None:
    assert shlex.split(service["ExecStart"])[:2] == [INSTALLED, "exporter"]
    assert service["Restart"] == "on-failure"
    assert service.get("DynamicUser") == "yes" or service.get("User") not in (None, "root")
    assert service["StateDirectory"] == "perfanalysis-exporter"
    assert service["EnvironmentFile"].startswith("/etc/perfanalysis/")


def test_the_command_line_loads_with_the_credential_and_spools_in_the_state_directory(
    service: dict[str, str], tmp_path: Path
) -> None:
    """systemd puts each LoadCredential= file in $CREDENTIALS_DIRECTORY (%d in ExecStart); the
    exporter finds the spool under $STATE_DIRECTORY by itself."""
    from exporter.config import default_spool_dir, load

    name, _, source = service["LoadCredential"].partition(":")
    assert source == "/etc/perfanalysis/push-key"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / name).write_text("pak_1_" + "s" * 32 + "\n")
    args = [arg.replace("%d", str(credentials)) for arg in shlex.split(service["ExecStart"])[2:]]
    state = tmp_path / "state"
    env = {
        "PERFANALYSIS_EXPORTER_PUSH_URL": "https://ingest.example.com",
        "STATE_DIRECTORY": str(state),
    }
    values = load(args, env)
    assert values["push_key_file"] == str(credentials / name)
    assert values["push_spool_dir"] in (None, "")  # so the default below applies
    assert default_spool_dir(env) == str(state / "spool")


def test_the_sandbox_is_strict_but_leaves_what_the_exporter_reads(
    service: dict[str, str],
) -> None:
    for key, value in {
        "ProtectSystem": "strict",
        "ProtectHome": "read-only",  # "yes" would hide /home's filesystem from statfs
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet": "",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
    }.items():
        assert service.get(key) == value, f"{key}={service.get(key)}"
    # the filesystem collector reads /proc/1/mounts (the host's mount table), root's process
    assert service.get("ProtectProc", "default") == "default"
    # /proc/stat, /proc/meminfo, /proc/pressure and the like are not per-process files
    assert service.get("ProcSubset", "all") == "all"
    # netdev reads /proc/net/dev, the reading process's network namespace
    assert service.get("PrivateNetwork", "no") == "no"
    assert "ReadWritePaths" not in service, "StateDirectory= is the one writable place"


def unit_environment() -> dict[str, str]:
    """The unit's Environment= assignments (systemd's quoting, which shlex follows here)."""
    assignments = parse_unit(UNIT.read_text())["Service"].get("Environment", [])
    return dict(word.partition("=")[::2] for value in assignments for word in shlex.split(value))


def env_file(text: str) -> dict[str, str]:
    """VAR=value lines as systemd's EnvironmentFile= reads them, refusing what it would not read
    as written here: quotes, backslashes, continuation lines."""
    found = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"line {number}: not VAR=value: {line!r}"
        assert name.isidentifier(), f"line {number}: not a variable name: {name!r}"
        assert not set(value) & set("\\\"'"), f"line {number}: systemd would rewrite {value!r}"
        found[name] = value
    return found


def load_as_the_unit(environment: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """The exporter's settings from the unit's command line, its Environment= and
    ``environment`` (what EnvironmentFile= adds, which overrides Environment=)."""
    from exporter.config import load

    credentials = tmp_path / "credentials"
    credentials.mkdir(parents=True)
    (credentials / "push-key").write_text("pak_1_" + "s" * 32 + "\n")
    command = parse_unit(UNIT.read_text())["Service"]["ExecStart"][0]
    args = [arg.replace("%d", str(credentials)) for arg in shlex.split(command)[2:]]
    values: dict[str, Any] = load(args, {**unit_environment(), **environment})
    return values


def test_the_unit_skips_kubelet_and_container_mounts_on_every_host(tmp_path: Path) -> None:
    """As the unit's dynamic uid, statfs under /var/lib/kubelet/pods (root's, 0750) fails and
    pages as HostFilesystemDeviceError; an exclusion of paths a host lacks excludes nothing."""
    from exporter.config import load

    key = "PERFANALYSIS_EXPORTER_COLLECTOR_FILESYSTEM_MOUNT_POINTS_EXCLUDE"
    assert unit_environment() == {key: container_host_mount_exclude()}
    values = load_as_the_unit(
        {"PERFANALYSIS_EXPORTER_PUSH_URL": "https://ingest.example.com"}, tmp_path
    )
    assert exported_mounts(values, tmp_path) == KEPT_MOUNTS
    assert exported_mounts(load([], {}), tmp_path / "defaults") > KEPT_MOUNTS


def test_the_settings_example_loads_and_offers_the_container_host_setting(
    tmp_path: Path,
) -> None:
    """Active: the push URL, every interface kept (elsewhere, br-* or tap* may be a real one).
    Commented: the two interface exclusions, for container hosts."""
    text = SETTINGS_EXAMPLE.read_text()
    active = env_file(text)
    assert set(active) <= variables_read_by("exporter"), set(active) - variables_read_by("exporter")
    assert active["PERFANALYSIS_EXPORTER_PUSH_URL"].startswith("https://")
    values = load_as_the_unit(active, tmp_path / "ordinary")
    assert exported_interfaces(values, tmp_path / "ordinary")["netdev"] > KEPT_INTERFACES

    commented_out = re.compile(r"^#(?=[A-Z][A-Z0-9_]*=)", re.M)
    offered = env_file(commented_out.sub("", text))
    container_host = {name: offered[name] for name in CONTAINER_HOST_VARIABLES}
    assert set(container_host.values()) == {CONTAINER_INTERFACES}
    assert set(offered) - set(active) == set(CONTAINER_HOST_VARIABLES)
    values = load_as_the_unit({**active, **container_host}, tmp_path / "container")
    assert_container_host_filters(values)
    assert exported_interfaces(values, tmp_path / "container") == {
        "netdev": KEPT_INTERFACES,
        "netclass": KEPT_INTERFACES,
    }


def test_the_operations_guide_installs_the_unit_as_it_expects() -> None:
    text = OPERATIONS.read_text()
    assert "deploy/systemd/perfanalysis-exporter.service" in text
    for path in (
        "/opt/perfanalysis",
        "/etc/perfanalysis/exporter.env",
        "/etc/perfanalysis/push-key",
    ):
        assert path in text, path
    assert "install -m 0644 deploy/systemd/exporter.env /etc/perfanalysis/" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_accepts_it(tmp_path: Path) -> None:
    """With ExecStart pointed at this checkout's entry point, which verify requires to exist."""
    perfanalysis = shutil.which("perfanalysis") or str(Path(ROOT / ".venv/bin/perfanalysis"))
    assert Path(perfanalysis).exists()
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED, perfanalysis))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert UNIT.name not in result.stderr, result.stderr
