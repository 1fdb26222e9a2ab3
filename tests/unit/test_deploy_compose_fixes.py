"""docker-compose.yml's production defects, checked without a Docker engine: where alerts go,
Grafana's main org, the uids services run as, memory limits, and the documented restores."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfanalysis.alerting import alertmanager
from perfanalysis.alerting.generate import RULES_DIR, THRESHOLDS
from perfanalysis.alerting.thresholds import load
from perfanalysis.testing.servers import amtool, promtool
from tests.support.tools import tool
from tests.unit.test_deploy_compose import (
    COMPOSE,
    ENV_EXAMPLE,
    PROJECT_IMAGE,
    PROMETHEUS,
    ROOT,
    environment,
    generated_env,
    interpolate,
    read_env_file,
    services,
)

OPERATIONS = ROOT / "docs" / "operations.md"
WEBHOOK = "https://alerts.example.com/hook?team={tenant}&token=it's\\odd"
# The uid each image runs its main process as when the service sets no `user` (the images'
# Dockerfiles: ours USER 10001; postgres drops to its user 999 by itself; influxdb 1.8 stays root).
IMAGE_UIDS = {
    PROJECT_IMAGE: "10001",
    "influxdb": "0",
    "postgres": "999",
    "redis": "0",  # the entrypoint drops to 999 only when it runs redis-server itself
    "grafana/grafana": "472",
    "prom/prometheus": "65534",
    "prom/alertmanager": "65534",
}


def resolved(**changes: str) -> dict[str, Any]:
    env = {**generated_env(), "PERFANALYSIS_ALERT_WEBHOOK_URL": WEBHOOK, **changes}
    missing: list[str] = []
    document = interpolate(yaml.safe_load(COMPOSE.read_text()), env, missing)
    assert not missing, missing
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return resolved()


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target → source of the service's bind mounts of repository paths."""
    result = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str) and volume.startswith("."):
            source, target = volume.split(":")[:2]
            result[target] = source
    return result


# -- 1. alerts from Compose reach the deployer's receiver


def rendered_alertmanager_config(service: dict[str, Any], tmp_path: Path) -> Path:
    """Run the alertmanager service's entrypoint here (sh and awk, as busybox has them), with
    its paths moved under tmp_path and `true` for alertmanager: the config it writes."""
    [template] = [s for t, s in mounts(service).items() if t.startswith("/etc/alertmanager/")]
    [target] = [t for t in mounts(service) if t.startswith("/etc/alertmanager/")]
    config_flag = next(a for a in service["command"] if a.startswith("--config.file="))
    output = config_flag.partition("=")[2]
    assert output.startswith("/tmp/")
    assert "/tmp" in service["tmpfs"][0]
    script = service["entrypoint"][2]
    script = script.replace(target, str(ROOT / template))
    script = script.replace(output, str(tmp_path / "alertmanager.yml"))
    script = script.replace("/bin/alertmanager", "true")
    assert service["entrypoint"][:2] == ["sh", "-c"]
    result = subprocess.run(
        ["sh", "-c", script, "alertmanager", *service["command"]],
        env={"PATH": "/usr/bin:/bin", **environment(service)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tmp_path / "alertmanager.yml"


def test_compose_alertmanager_posts_to_the_required_webhook_url(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    raw = yaml.safe_load(COMPOSE.read_text())["services"]["alertmanager"]
    assert (
        raw.get("environment", {})
        .get("ALERT_WEBHOOK_URL", "")
        .startswith("${PERFANALYSIS_ALERT_WEBHOOK_URL:?")
    ), "docker compose up must refuse to start without a receiver"
    service = services(compose)["alertmanager"]
    assert "./provisioning/alertmanager/alertmanager.yml" not in mounts(service).values()
    config = rendered_alertmanager_config(service, tmp_path)
    checked = tool(amtool, "check-config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    document = yaml.safe_load(config.read_text())
    urls = [
        hook.get("url")
        for receiver in document["receivers"]
        for hook in receiver.get("webhook_configs", [])
    ]
    assert urls == [WEBHOOK], "the URL exactly as written, quotes and backslashes included"
    assert document["route"]["receiver"] == "default"
    text = config.read_text()
    for example in ("127.0.0.1", "localhost", "acme", "demo", "smtp"):
        assert example not in text, f"the production config mentions {example}"
    # grouping and inhibition are the generator's
    generated = alertmanager.config(load(THRESHOLDS))
    assert document["inhibit_rules"] == generated["inhibit_rules"]
    for key in ("group_by", "group_wait", "group_interval", "repeat_interval"):
        assert document["route"][key] == generated["route"][key], key


def test_failed_notifications_alert_from_alertmanagers_own_metrics() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert "alertmanager:9093" in targets, "Prometheus must scrape Alertmanager"
    rules = yaml.safe_load((RULES_DIR / "default.rules.yml").read_text())["groups"][0]["rules"]
    [rule] = [r for r in rules if r["alert"] == "AlertmanagerNotificationsFailing"]
    assert "alertmanager_notifications_failed_total" in rule["expr"]
    assert rule["labels"]["severity"] == "critical"
    test_file = RULES_DIR.parent / "tests" / "default.test.yml"
    groups = yaml.safe_load(test_file.read_text())["tests"]
    [group] = [g for g in groups if g["name"].startswith("AlertmanagerNotificationsFailing")]
    assert any(e["exp_alerts"] for e in group["alert_rule_test"]), "the test never fires"
    result = tool(promtool, "test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


# -- 2. Grafana's main org gets the single-tenant provisioning only when it is configured


def provisioning_files(compose: dict[str, Any]) -> list[str]:
    grafana = services(compose)["grafana"]
    path = environment(grafana).get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
    source = mounts(grafana).get(path)
    assert source, f"Grafana's provisioning directory {path} is not mounted"
    found = (ROOT / source).rglob("*")
    return sorted(str(f.relative_to(ROOT)) for f in found if f.suffix in (".yaml", ".yml"))


def test_multi_tenant_defaults_provision_no_rules_in_the_main_org() -> None:
    env = read_env_file(ENV_EXAMPLE)
    assert env["INFLUXDB_DATABASE"] == env["INFLUXDB_READ_USER"] == ""
    shipped = resolved(**{k: v for k, v in env.items() if v})
    assert provisioning_files(shipped) == [], "rules on an unconfigured data source page forever"
    single = provisioning_files(resolved(GRAFANA_PROVISIONING="single-tenant"))
    assert "provisioning/grafana/alerting/rules.yaml" in single
    assert "provisioning/grafana/datasources/perfanalysis.yaml" in single
    docs = OPERATIONS.read_text()
    assert "GRAFANA_PROVISIONING=multi-tenant" in docs
    assert "single-tenant" in ENV_EXAMPLE.read_text()


# -- 3 and 4. who runs as which uid


def uid(service: dict[str, Any]) -> str:
    if "user" in service:
        return str(service["user"]).partition(":")[0]
    image = str(service["image"]).rpartition(":")[0]
    return IMAGE_UIDS[image]


def test_redis_runs_as_the_redis_user_without_capabilities(compose: dict[str, Any]) -> None:
    redis = services(compose)["redis"]
    assert redis["command"][0] != "redis-server", "the image's entrypoint would drop root itself"
    assert uid(redis) == "999", "the image's redis user, owner of /data (and so of the volume)"
    assert str(redis["user"]) == "999:999"
    assert redis["cap_drop"] == ["ALL"]


def holds_secrets(raw_service: dict[str, Any]) -> bool:
    """Given a required .env value (the secrets, the webhook URL) in its environment."""
    return any(":?" in str(v) for v in environment(raw_service).values())


def test_no_service_holding_secrets_shares_a_uid_with_a_host_pid_service(
    compose: dict[str, Any],
) -> None:
    """With pid: host, a process may read /proc/<pid>/environ of every process of its uid."""
    raw = yaml.safe_load(COMPOSE.read_text())["services"]
    all_services = services(compose)
    host_pid = {n for n, s in all_services.items() if s.get("pid") == "host"}
    assert host_pid == {"exporter"}
    for name in host_pid:
        mine = uid(all_services[name])
        assert mine != "0", f"{name} runs as root"
        for other, service in all_services.items():
            if other != name and holds_secrets(raw[other]):
                assert uid(service) != mine, f"{name} and {other} (secrets) both run as uid {mine}"
    assert "uid 10002" in OPERATIONS.read_text()


# -- 5. memory limits


def size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", text.lower()).groups()  # type: ignore[union-attr]
    return int(number) * 1024 ** " kmg".index(unit or " ")


def test_every_service_has_a_memory_limit_from_env(compose: dict[str, Any]) -> None:
    raw = yaml.safe_load(COMPOSE.read_text())["services"]
    env = read_env_file(ENV_EXAMPLE)
    for name, service in raw.items():
        limit = str(service.get("mem_limit", ""))
        match = re.fullmatch(r"\$\{([A-Z_]+_MEM_LIMIT):-([0-9]+[kmg])\}", limit)
        assert match, f"{name}: mem_limit must be ${{X_MEM_LIMIT:-default}}, not {limit!r}"
        assert env.get(match.group(1)) == match.group(2), f".env.example: {match.group(1)}"
        assert size(match.group(2)) >= 128 * 1024**2, name
    for name in ("exporter", "ingest", "influxdb"):
        assert re.fullmatch(r"\$\{[A-Z_]+_CPUS:-[0-9.]+\}", str(raw[name].get("cpus", ""))), name
    # ingest: about 7 x 16 MiB per request in flight, and room for the workers themselves
    ingest = environment(services(compose)["ingest"])
    in_flight = int(ingest["PERFANALYSIS_INGEST_WEB_WORKERS"]) * int(
        ingest["PERFANALYSIS_INGEST_WEB_THREADS"]
    )
    needed = in_flight * 7 * 16 * 1024**2 + 256 * 1024**2
    assert size(str(services(compose)["ingest"]["mem_limit"])) >= needed
    assert "INGEST_MEM_LIMIT" in OPERATIONS.read_text()


# -- 6. the documented InfluxDB restore and the restore drill


def section(title: str) -> str:
    return OPERATIONS.read_text().split(title, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def unquoted_variables(line: str) -> list[str]:
    """Variables the operator's shell would expand: those outside single quotes."""
    found, quoted = [], False
    for i, char in enumerate(line):
        if char == "'":
            quoted = not quoted
        elif char == "$" and not quoted:
            match = re.match(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", line[i:])
            if match:
                found.append(match.group(1))
    return found


def test_influxdb_restore_commands_use_the_containers_credentials(
    compose: dict[str, Any],
) -> None:
    text = section("### InfluxDB")
    influxdb_env = environment(services(compose)["influxdb"])
    lines = [line for line in text.splitlines() if "INFLUX" in line and "influx" in line]
    assert lines
    for line in lines:
        assert "-username admin" not in line, line
        for name in unquoted_variables(line):
            assert not name.startswith("INFLUX"), f"{name} is expanded by the operator's shell"
        for name in re.findall(r"\$\{?(INFLUXDB_[A-Z_]+)", line):
            assert name in influxdb_env, f"the influxdb container has no {name}"
    assert "INFLUXDB_ADMIN_USER" in " ".join(lines), "the admin user may not be called admin"


def test_restore_drill_starts_nothing_that_collides_with_the_running_stack(
    compose: dict[str, Any],
) -> None:
    text = section("### Schedule and drill")
    assert re.search(r"drill\(\) \{ docker compose -p restore-drill \"\$@\"; \}", text)
    all_services = services(compose)
    started = [line for line in text.splitlines() if re.match(r"drill (up|run|start)\b", line)]
    assert any(line.startswith("drill up") for line in started)
    for line in started:
        words = [w for w in line.split("#")[0].split()[2:] if not w.startswith("-")]
        names = words[:1] if line.startswith("drill run") else words
        assert names, f"{line}: would start every service"
        for name in names:
            service = all_services[name]
            assert not service.get("ports"), f"{line}: {name} publishes fixed ports"
            assert service.get("network_mode") != "host", f"{line}: {name} is on the host network"


# -- 7. InfluxDB's series index and limits, per tenant database (docs/operations.md,
# "Container hosts")

SERIES_SETTINGS = {
    "INFLUXDB_DATA_INDEX_VERSION": ("data", "index-version"),
    "INFLUXDB_DATA_MAX_SERIES_PER_DATABASE": ("data", "max-series-per-database"),
    "INFLUXDB_DATA_MAX_VALUES_PER_TAG": ("data", "max-values-per-tag"),
}
CONTAINER_HOST_SERIES = 7_120  # measured with the container-host setting (25,400 without)


def test_influxdb_sets_its_index_and_series_limits_deliberately(compose: dict[str, Any]) -> None:
    """tsi1 keeps the index off INFLUXDB_MEM_LIMIT; the limits, which bind shards still on inmem,
    are sized for a tenant of 140 container hosts with as much again for churn, not left at
    1,000,000 series (39 unfiltered Kubernetes nodes)."""
    env = environment(services(compose)["influxdb"])
    assert set(SERIES_SETTINGS) <= set(env), set(SERIES_SETTINGS) - set(env)
    assert env["INFLUXDB_DATA_INDEX_VERSION"] == "tsi1"
    assert int(env["INFLUXDB_DATA_MAX_SERIES_PER_DATABASE"]) >= 2 * 140 * CONTAINER_HOST_SERIES
    assert int(env["INFLUXDB_DATA_MAX_VALUES_PER_TAG"]) > 0, "0 means no limit"


def test_influxd_reads_the_series_settings_under_those_names(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """influxd ignores an INFLUXDB_* variable it does not know: its resolved configuration shows
    each value (Debian's 1.6.7 here; 1.8 has the same names)."""
    import tomllib

    from perfanalysis.testing.servers import ServerUnavailable, ensure_installed

    try:
        influxd = ensure_installed("influxd", "influxdb")
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    env = environment(services(compose)["influxdb"])
    empty = tmp_path / "influxdb.conf"
    empty.write_text("")  # not the host's /etc/influxdb/influxdb.conf
    result = subprocess.run(
        [influxd, "config", "-config", str(empty)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = tomllib.loads(result.stdout)
    for variable, (section_name, key) in SERIES_SETTINGS.items():
        assert str(config[section_name][key]) == env[variable], variable
