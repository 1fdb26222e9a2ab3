"""docker-compose.yml and .env.example, checked without a Docker engine.

The file is interpolated here as Compose would (``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``,
``$$``), with .env.example's values or with generated secrets, and each PerfAnalysis service's
environment is then run through that component's own settings parser.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from deploy.configref import (
    OTHER_VARIABLES,
    all_settings_variables,
    component_of,
    grafana_provisioning_variables,
    variables_read_by,
)
from perfanalysis.config import ConfigError, parse_bool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS = ROOT / "deploy" / "compose" / "prometheus.yml"
PROJECT_IMAGE = "perfanalysis"
# Ports the third-party images listen on by default (ours come from their listen-address setting;
# the healthcheck URLs below are checked against this table too).
THIRD_PARTY_PORTS = {
    "influxdb": 8086,
    "postgres": 5432,
    "redis": 6379,
    "grafana": 3000,
    "prometheus": 9090,
    "alertmanager": 9093,
}
# What only the exporter may have, and only read-only (node_exporter's container recipe).
HOST_MOUNTS = {"/proc": "/host/proc", "/sys": "/host/sys", "/": "/host/root"}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN)", re.IGNORECASE)
VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


# -- Compose's interpolation, enough of it for this file


class Missing(Exception):
    pass


def interpolate(value: Any, env: Mapping[str, str], missing: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: interpolate(v, env, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, missing) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if name is None:
            return "$"
        current = env.get(name)
        empty = current is None or (current == "" and operator and operator.startswith(":"))
        if operator in (":-", "-"):
            return argument if empty else str(current)
        if operator in (":?", "?"):
            if empty:
                missing.append(name)
                return ""
            return str(current)
        return current or ""

    return VARIABLE.sub(substitute, value)


def strings(value: Any) -> Iterator[str]:
    """Every string in a parsed document (keys and values), where Compose interpolates."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: not NAME=value: {line!r}"
        values[name.strip()] = value.strip()
    return values


def generated_env() -> dict[str, str]:
    """.env.example with every empty required value filled as an operator would."""
    env = read_env_file(ENV_EXAMPLE)
    for name, value in env.items():
        if not value and SECRET_NAME.search(name):
            env[name] = secrets.token_hex(32)
    env["PERFANALYSIS_ALERT_WEBHOOK_URL"] = "https://alerts.example.com/grafana"
    return env


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    missing: list[str] = []
    resolved = interpolate(raw, generated_env(), missing)
    assert not missing, f"unresolved required variables: {sorted(set(missing))}"
    assert isinstance(resolved, dict)
    return resolved


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


def ours(compose: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in services(compose).items():
        if str(service.get("image", "")).split(":")[0] == PROJECT_IMAGE:
            yield name, service


def one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def as_run(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment, a value naming a file the service bind-mounts from the checkout
    (``./provisioning/thresholds.yaml:/etc/perfanalysis/thresholds.yaml``) as that file here, so
    that a settings parser checking the file finds it."""
    mounted = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str) and volume.startswith("./"):
            source, target = volume.split(":")[:2]
            mounted[target] = str(ROOT / source)
    return {k: mounted.get(v, v) for k, v in environment(service).items()}


def listen_port(name: str, service: dict[str, Any]) -> int:
    """The port a service listens on: our listen-address setting, or the image's default."""
    command = [str(c) for c in service.get("command") or []]
    for arg in command:
        if arg.startswith("--web.listen-address="):
            return int(arg.rpartition(":")[2])
    for key, value in environment(service).items():
        if key.endswith("_WEB_LISTEN_ADDRESS"):
            return int(value.rpartition(":")[2])
    return THIRD_PARTY_PORTS[name]


def networks(service: dict[str, Any]) -> set[str]:
    if service.get("network_mode") == "host":
        return {"host"}
    found = service.get("networks") or ["default"]
    return set(found if isinstance(found, list) else found.keys())


RECORDING_PERFANALYSIS = """#!{python}
import json, os, sys
with open(os.environ["RECORD"], "a") as record:
    record.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(3 if sys.argv[1:] == json.loads(os.environ["FAIL"]) else 0)
"""


def run_in_image(
    service: dict[str, Any], args: Sequence[str] = (), fail: Sequence[str] = ()
) -> tuple[int, list[list[str]]]:
    """Run what the service's container runs, entrypoint included, with a stand-in
    ``perfanalysis`` first on PATH: the exit status and the perfanalysis commands it ran (the
    stand-in fails the command ``fail``)."""
    if "entrypoint" not in service:  # the image's: ENTRYPOINT ["perfanalysis"]
        return 0, [list(args) or [str(c) for c in service["command"]]]
    with tempfile.TemporaryDirectory() as directory:
        stand_in = Path(directory) / "perfanalysis"
        stand_in.write_text(RECORDING_PERFANALYSIS.format(python=sys.executable))
        stand_in.chmod(0o755)
        record = Path(directory) / "record"
        record.touch()
        result = subprocess.run(
            [*service["entrypoint"], *(args or service.get("command") or [])],
            env={"PATH": f"{directory}:{os.environ['PATH']}", "RECORD": str(record),
                 "FAIL": json.dumps(list(fail))},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return result.returncode, [json.loads(line) for line in record.read_text().splitlines()]


def commands(service: dict[str, Any]) -> list[list[str]]:
    """The perfanalysis commands the service runs when Compose starts it."""
    status, ran = run_in_image(service)
    assert status == 0, f"{service}: exit status {status}"
    return ran


# -- the file itself


def test_the_file_parses_with_the_expected_services(raw: dict[str, Any]) -> None:
    assert set(raw["services"]) == {
        "influxdb", "postgres", "redis", "admin-init", "admin", "ingest", "exporter",
        "grafana-sync", "prometheus", "alertmanager", "grafana",
    }  # fmt: skip


def test_every_variable_compose_interpolates_is_documented_in_env_example(
    raw: dict[str, Any],
) -> None:
    used = {m.group(1) for text in strings(raw) for m in VARIABLE.finditer(text) if m.group(1)}
    documented = set(read_env_file(ENV_EXAMPLE))
    assert used - documented == set(), "add these to .env.example, with a comment"
    assert documented - used == set(), ".env.example lists variables docker-compose.yml never uses"


def test_with_env_example_as_shipped_only_the_secrets_are_missing(raw: dict[str, Any]) -> None:
    missing: list[str] = []
    interpolate(raw, read_env_file(ENV_EXAMPLE), missing)
    assert set(missing) == {
        "PERFANALYSIS_ADMIN_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
        "INFLUXDB_ADMIN_PASSWORD", "INFLUXDB_INGEST_PASSWORD", "GRAFANA_ADMIN_PASSWORD",
        "PERFANALYSIS_ALERT_WEBHOOK_URL",
    }  # fmt: skip


def test_env_example_holds_no_secret_and_only_known_perfanalysis_names() -> None:
    env = read_env_file(ENV_EXAMPLE)
    known = set(all_settings_variables()) | grafana_provisioning_variables()
    for name, value in env.items():
        if name.startswith("PERFANALYSIS_"):
            assert name in known, f".env.example: {name} is no setting of any component"
        if SECRET_NAME.search(name):
            assert value == "", f".env.example: {name} must be empty (a placeholder to fill in)"


# -- images, health, order


def test_images_are_pinned_and_ours_is_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        image = str(service.get("image", ""))
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.match(r"^v?\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$", tag), f"{name}: tag {tag!r}"
    for _name, service in ours(compose):
        assert service["build"]["context"] == "."
        assert (ROOT / service["build"]["dockerfile"]).is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001", dockerfile, re.MULTILINE), "the image must not run as root"
    assert 'ENTRYPOINT ["perfanalysis"]' in dockerfile


def test_every_long_running_service_has_a_healthcheck_without_curl_in_our_image(
    compose: dict[str, Any],
) -> None:
    for name, service in services(compose).items():
        if one_shot(service):
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name}: no healthcheck"
        assert test != ["NONE"], f"{name}: healthcheck disabled"
    for name, service in ours(compose):
        if one_shot(service):
            continue
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: the slim image has no curl or wget"
        assert "urllib.request" in test[3]
        url = re.search(r"'(http://[^']+)'", test[3])
        assert url, f"{name}: healthcheck URL not found"
        parts = urlsplit(url.group(1))
        assert parts.port == listen_port(name, service), f"{name}: healthcheck port"
        assert parts.path == "/health"
    for name in ("influxdb", "grafana", "prometheus", "alertmanager"):
        test = " ".join(services(compose)[name]["healthcheck"]["test"])
        port = re.search(r"http://127\.0\.0\.1:(\d+)/", test)
        assert port, name
        assert int(port.group(1)) == THIRD_PARTY_PORTS[name], f"{name}: healthcheck port"


def test_dependencies_wait_for_health_or_completion(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    for name, service in all_services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in all_services, f"{name} depends on unknown {dependency}"
            expected = (
                "service_completed_successfully"
                if one_shot(all_services[dependency])
                else "service_healthy"
            )
            assert condition == {"condition": expected}, f"{name} -> {dependency}"
    for name in ("admin", "ingest"):
        assert "admin-init" in all_services[name]["depends_on"], "the schema comes first"


def test_admin_init_migrates_seeds_prices_then_creates_the_ingest_user_once_influxdb_is_healthy(
    compose: dict[str, Any],
) -> None:
    """ingest's /health logs in to InfluxDB as its own user: on a fresh install nothing else
    creates it before the first tenant, so ingest would never become healthy. And without the
    price catalog every load test is unranked ("no price"): admin-init loads it when empty,
    never over a catalog loaded before (--if-empty)."""
    init = services(compose)["admin-init"]
    assert set(init["depends_on"]) == {"postgres", "influxdb"}
    seed = ["admin", "seed-prices", "--if-empty"]
    assert commands(init) == [["admin", "init-db"], seed, ["admin", "grant-ingest-writes"]]
    status, ran = run_in_image(init, fail=["admin", "init-db"])
    assert status != 0, "a failed migration must fail the one-shot, so admin and ingest wait"
    assert ran == [["admin", "init-db"]]
    status, ran = run_in_image(init, fail=seed)
    assert (status, ran) == (3, [["admin", "init-db"], seed]), "a bad price file fails it too"
    status, ran = run_in_image(init, fail=["admin", "grant-ingest-writes"])
    assert (status, len(ran)) == (3, 3)
    # the handle for CLI work runs the command given, alone, and exits as it does
    given = ["admin", "create-tenant", "acme", "Acme Corp"]
    assert run_in_image(init, given) == (0, [given])
    assert run_in_image(init, given, fail=given) == (3, [given])
    # the user admin-init creates is the one ingest logs in as
    admin_env, ingest_env = environment(init), environment(services(compose)["ingest"])
    for admin_key, ingest_key in (("INFLUXDB_URL", "STORAGE_URL"),
                                  ("INFLUXDB_INGEST_USER", "STORAGE_USERNAME"),
                                  ("INFLUXDB_INGEST_PASSWORD", "STORAGE_PASSWORD")):  # fmt: skip
        admin_value = admin_env[f"PERFANALYSIS_ADMIN_{admin_key}"]
        assert admin_value == ingest_env[f"PERFANALYSIS_INGEST_{ingest_key}"], ingest_key


# -- files and environment


def test_every_mounted_host_path_exists_and_only_the_exporter_sees_the_host(
    raw: dict[str, Any],
) -> None:
    for name, service in raw["services"].items():
        for volume in service.get("volumes") or []:
            if isinstance(volume, str):
                source, _, rest = volume.partition(":")
                target, _, mode = rest.partition(":")
                volume = {"type": "bind" if source.startswith((".", "/")) else "volume",
                          "source": source, "target": target, "read_only": mode.startswith("ro")}  # fmt: skip
            if volume["type"] != "bind":
                assert volume["source"] in raw["volumes"], f"{name}: undeclared volume"
                continue
            source = volume["source"]
            if source.startswith("/"):
                assert name == "exporter", f"{name}: mounts host path {source}"
                assert HOST_MOUNTS.get(source) == volume["target"], source
            else:
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            assert volume.get("read_only"), f"{name}: {source} must be mounted read-only"


def test_every_perfanalysis_variable_is_read_by_the_service_it_is_given_to(
    compose: dict[str, Any],
) -> None:
    provisioning = grafana_provisioning_variables()
    for name, service in services(compose).items():
        env = environment(service)
        if str(service.get("image", "")).split(":")[0] == PROJECT_IMAGE:
            for command in commands(service):
                component = component_of(command)
                assert component is not None, f"{name}: command {command}"
                known = variables_read_by(component.name)
                unknown = {k for k in env if k.startswith("PERFANALYSIS_") and k not in known}
                assert not unknown, f"{name} ({component.name}) does not read {sorted(unknown)}"
        else:
            for key in env:
                if key.startswith("PERFANALYSIS_"):
                    assert name == "grafana", f"{name}: {key} means nothing to it"
                    assert key in provisioning, f"grafana: {key} is in no provisioning file"
    # and the variables Grafana's provisioning needs are all given to it
    assert provisioning <= set(environment(services(compose)["grafana"]))
    assert {v.name for v in OTHER_VARIABLES}  # the table the check above relies on


def test_each_component_accepts_its_configuration(compose: dict[str, Any]) -> None:
    """The settings parsers themselves: names, values and cross-setting rules."""
    from exporter.config import load as exporter_settings
    from ingest.settings import load as ingest_settings
    from perfanalysis.grafana.settings import load as grafana_settings
    from tenants.settings import load as admin_settings

    loaders = {
        "exporter": lambda args, env: exporter_settings(args, env),
        "ingest": lambda args, env: ingest_settings(args, env),
        "admin": lambda args, env: admin_settings([], env),
        "grafana": lambda args, env: grafana_settings(args, env),
    }
    for name, service in ours(compose):
        for command in commands(service):
            component = component_of(command)
            assert component is not None
            args = command[len(component.command) :] if component.name != "admin" else []
            try:
                loaders[component.name](args, as_run(service))
            except ConfigError as exc:
                pytest.fail(f"{name}: {component.name} refuses its configuration: {exc.errors}")


def test_grafana_sync_sends_tenant_alerts_where_grafana_sends_its_own(
    compose: dict[str, Any],
) -> None:
    """Without the webhook, sync skips each tenant org's contact point: alerts go nowhere."""
    from perfanalysis.grafana.settings import load

    webhook = environment(services(compose)["grafana"])["PERFANALYSIS_ALERT_WEBHOOK_URL"]
    sync = services(compose)["grafana-sync"]
    [command] = commands(sync)
    assert load(command[2:], as_run(sync))["alert_webhook_url"] == webhook


def tuning_section() -> dict[str, str]:
    """.env.example's optional settings, whose values it says are the defaults."""
    text = ENV_EXAMPLE.read_text()
    header = re.search(r"^# --- tuning \(optional: the defaults are shown\b.*$", text, re.MULTILINE)
    assert header, ".env.example: no tuning section"
    section = text[header.end() :].split("\n# ---", 1)[0]
    values = {}
    for line in section.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_env_example_shows_the_defaults_it_claims_to(raw: dict[str, Any]) -> None:
    """What a tuning line says is what applies without it: Compose's fallback, and the
    component's own default (for the admin app's layout, the one docs/architecture.md measured
    as the faster)."""
    fallbacks = {
        name: argument
        for text in strings(raw)
        for name, operator, argument in VARIABLE.findall(text)
        if operator == ":-"
    }
    settings = all_settings_variables()
    tuning = tuning_section()
    assert {"PERFANALYSIS_ADMIN_WEB_WORKERS", "PERFANALYSIS_ADMIN_WEB_THREADS"} <= set(tuning)
    for name, shown in tuning.items():
        assert fallbacks.get(name) == shown, f"docker-compose.yml's fallback for {name}"
        if name in settings:
            setting = settings[name]
            parsed = parse_bool(shown) if setting.boolean else setting.convert(shown)
            assert parsed == setting.default, (
                f".env.example: {name}={shown}, default {setting.default}"
            )


def test_no_secret_is_written_in_the_file(raw: dict[str, Any]) -> None:
    settings = all_settings_variables()
    for name, service in raw["services"].items():
        for key, value in environment(service).items():
            secret = (key in settings and settings[key].secret) or SECRET_NAME.search(key)
            if secret or ("://" in value and "@" in value):
                # required (${NAME:?...}), or optional with nothing as the default (${NAME:-})
                found = VARIABLE.findall(value)
                assert found, f"{name}: {key} must come from .env"
                for variable, operator, argument in found:
                    assert operator == ":?" or (operator == ":-" and argument == ""), (
                        f"{name}: {key}: ${{{variable}}} must be required or default to nothing"
                    )
                literal = VARIABLE.sub("", value)
                assert not SECRET_NAME.search(literal), f"{name}: {key}"
    text = COMPOSE.read_text()
    assert not re.search(r"(?i)(password|secret)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9]{8,}", text)


# -- privileges


def test_nothing_is_privileged_and_only_the_exporter_shares_host_namespaces(
    compose: dict[str, Any],
) -> None:
    for name, service in services(compose).items():
        assert not service.get("privileged"), f"{name} runs privileged"
        assert not service.get("cap_add"), f"{name} adds capabilities"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        if name != "exporter":
            assert "pid" not in service, name
            assert service.get("network_mode") in (None, "bridge"), name
    for name, service in ours(compose):
        assert service["cap_drop"] == ["ALL"], name
        assert service["read_only"] is True, name
        assert "user" not in service or not str(service["user"]).startswith("0"), name
    exporter = services(compose)["exporter"]
    assert exporter["pid"] == "host"
    assert exporter["network_mode"] == "host"
    args = exporter["command"]
    for flag in ("--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/host/root"):
        assert flag in args


def test_the_exporter_leaves_out_the_containers_as_the_daemonset_does(
    raw: dict[str, Any], compose: dict[str, Any], tmp_path: Path
) -> None:
    """On a Docker host the exporter would export every container's veth, the docker0 and br-
    bridges and the runtime's mounts: it runs with the container-host setting, the DaemonSet's
    values (docs/operations.md, "Container hosts"), each $ written $$ for Compose."""
    from exporter.config import load
    from tests.unit.test_deploy_container_host import (
        CONTAINER_INTERFACES,
        KEPT_INTERFACES,
        KEPT_MOUNTS,
        assert_container_host_filters,
        container_host_mount_exclude,
        exported_interfaces,
        exported_mounts,
    )

    for arg in raw["services"]["exporter"]["command"]:
        assert "$" not in VARIABLE.sub("", arg), f"{arg}: Compose refuses a lone $ (write $$)"
    [command] = commands(services(compose)["exporter"])
    args = command[1:]
    setting = {
        "--collector.netdev.device-exclude": CONTAINER_INTERFACES,
        "--collector.netclass.ignored-devices": CONTAINER_INTERFACES,
        "--collector.filesystem.mount-points-exclude": container_host_mount_exclude(),
    }
    for flag, value in setting.items():
        assert f"{flag}={value}" in args, flag
    values = load(args, {})
    assert_container_host_filters(values)
    assert exported_interfaces(values, tmp_path / "interfaces") == {
        "netdev": KEPT_INTERFACES,
        "netclass": KEPT_INTERFACES,
    }
    assert exported_mounts(values, tmp_path / "mounts", prefix="/host/root") == KEPT_MOUNTS


# -- ports and addresses


def test_published_ports_are_the_ports_services_listen_on(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for mapping in service.get("ports") or []:
            address, host_port, container_port = str(mapping).rsplit(":", 2)
            assert address == "127.0.0.1", f"{name}: published beyond loopback by default"
            assert int(container_port) == listen_port(name, service), f"{name}: {mapping}"
            assert host_port == container_port, f"{name}: {mapping}"
    for name in ("admin", "ingest"):
        listen = environment(services(compose)[name])[
            f"PERFANALYSIS_{name.upper()}_WEB_LISTEN_ADDRESS"
        ]
        assert listen.startswith("0.0.0.0:"), f"{name} must listen beyond its own loopback"


def test_every_address_in_an_environment_names_a_reachable_service(
    compose: dict[str, Any],
) -> None:
    all_services = services(compose)
    for name, service in all_services.items():
        for key, value in environment(service).items():
            if "://" not in value:
                continue
            url = urlsplit(value)
            if url.hostname in (None, "localhost") or url.hostname.endswith("example.com"):
                continue
            assert url.hostname in all_services, f"{name}: {key} points at {url.hostname}"
            target = all_services[url.hostname]
            assert url.port == listen_port(url.hostname, target), f"{name}: {key}"
            assert networks(service) & networks(target), f"{name} cannot reach {url.hostname}"


def test_prometheus_scrapes_services_where_they_listen(compose: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    all_services = services(compose)
    prometheus = all_services["prometheus"]
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    targets += [
        target
        for manager in config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert "host.docker.internal:9100" in targets
    for target in targets:
        host, _, port = target.rpartition(":")
        if host == "host.docker.internal":  # the exporter, on the host's network
            assert "host.docker.internal:host-gateway" in prometheus["extra_hosts"]
            exporter = all_services["exporter"]
            assert exporter["network_mode"] == "host"
            assert int(port) == listen_port("exporter", exporter)
            continue
        assert host in all_services, f"prometheus scrapes {target}: no such service"
        assert int(port) == listen_port(host, all_services[host]), target
        assert networks(prometheus) & networks(all_services[host]), f"{target} is unreachable"
    mounts = {volume.split(":")[1] for volume in prometheus["volumes"] if volume.startswith(".")}
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert config_flag.partition("=")[2] in mounts
    for rule_glob in config["rule_files"]:
        assert rule_glob.startswith("/etc/prometheus/provisioning/")
        local = rule_glob.replace("/etc/prometheus/provisioning/", "provisioning/prometheus/")
        assert list(ROOT.glob(local)), f"{rule_glob} matches no committed rule file"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_compose_prometheus_config(tmp_path: Path) -> None:
    text = PROMETHEUS.read_text().replace(
        "/etc/prometheus/provisioning/", f"{ROOT / 'provisioning' / 'prometheus'}/"
    )
    (tmp_path / "prometheus.yml").write_text(text)
    result = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
