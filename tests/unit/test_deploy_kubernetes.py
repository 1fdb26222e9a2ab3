"""deploy/kubernetes, checked structurally (no cluster): kinds, selectors, probes, security, settings.

Each container's environment (ConfigMaps through envFrom, Secrets through secretKeyRef) is run
through its component's own settings parser, and every HTTP probe must name a route the
component's Flask app or the exporter serves, on a port the container declares and listens on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.configref import component_of, settings_variables, variables_read_by
from perfanalysis.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
PLACEHOLDER = "CHANGE-ME"
TEST_SECRET = "k8s-test-secret-" + "x" * 40


def load_resources() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    resources: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        path = BASE / name
        assert path.is_file(), f"kustomization lists {name}, which does not exist"
        resources += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return resources


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    document = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    return load_resources()


def of_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def workloads(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] in ("Deployment", "DaemonSet")}


def containers(workload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def container_env(container: dict[str, Any], resources: list[dict[str, Any]]) -> dict[str, str]:
    """The container's environment as the kubelet builds it (test secret for the secret key)."""
    config_maps = of_kind(resources, "ConfigMap")
    secrets = of_kind(resources, "Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert name in config_maps, f"envFrom names missing ConfigMap {name}"
            env.update(config_maps[name]["data"])
        else:
            name = source["secretRef"]["name"]
            assert name in secrets, f"envFrom names missing Secret {name}"
            env.update(secrets[name]["stringData"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["name"] in secrets, f"{item['name']}: no Secret {ref['name']}"
        data = secrets[ref["name"]]["stringData"]
        if ref.get("optional") and ref["key"] not in data:
            continue  # Kubernetes then leaves the variable unset
        assert ref["key"] in data, f"{item['name']}: Secret {ref['name']} has no {ref['key']}"
        value = data[ref["key"]]
        env[item["name"]] = TEST_SECRET if ref["key"] == "admin-secret-key" else value
    return env


def listen_port(container: dict[str, Any], env: dict[str, str]) -> int:
    for arg in container.get("args", []):
        if arg.startswith("--web.listen-address="):
            return int(arg.rpartition(":")[2])
    for key, value in env.items():
        if key.endswith("_WEB_LISTEN_ADDRESS"):
            return int(value.rpartition(":")[2])
    raise AssertionError(f"{container['name']}: no listen address")


def routes(component: str) -> set[str]:
    """Paths each component serves: its Flask blueprints, or the exporter's fixed routes."""
    from flask import Flask

    if component == "exporter":
        return {"/metrics", "/health", "/"}
    app = Flask("routes")
    if component == "ingest":
        from ingest import views

        app.register_blueprint(views.bp)
    elif component == "admin":
        from tenants.views import auth, health

        app.register_blueprint(auth.bp)
        app.register_blueprint(health.bp)
    return {rule.rule for rule in app.url_map.iter_rules()}


def test_the_kustomization_lists_existing_files_and_the_required_kinds(
    resources: list[dict[str, Any]],
) -> None:
    kinds = {(r["kind"], r["metadata"]["name"]) for r in resources}
    assert {
        ("Namespace", "perfanalysis"),
        ("ServiceAccount", "perfanalysis"),
        ("DaemonSet", "exporter"),
        ("Service", "exporter"),
        ("Deployment", "ingest"),
        ("Service", "ingest"),
        ("HorizontalPodAutoscaler", "ingest"),
        ("PodDisruptionBudget", "ingest"),
        ("Deployment", "admin"),
        ("Service", "admin"),
        ("HorizontalPodAutoscaler", "admin"),
        ("PodDisruptionBudget", "admin"),
        ("ConfigMap", "perfanalysis-ingest"),
        ("ConfigMap", "perfanalysis-admin"),
        ("Secret", "perfanalysis-secrets"),
    } <= kinds
    for resource in resources:
        assert resource.get("apiVersion"), resource["kind"]


def test_images_are_pinned(kustomization: dict[str, Any], resources: list[dict[str, Any]]) -> None:
    pins = {image["name"]: image for image in kustomization.get("images", [])}
    for workload in workloads(resources).values():
        for container in containers(workload):
            image = container["image"]
            name, _, tag = image.partition(":")
            if not tag:
                assert name in pins, f"{image}: untagged and not pinned by the kustomization"
                tag = str(pins[name]["newTag"])
            assert tag != "latest", image
            assert re.match(r"^v?\d+\.\d+\.\d+", tag), f"{image}: tag {tag!r} is not a version"


def test_selectors_match_their_pods(resources: list[dict[str, Any]]) -> None:
    pods = {
        name: w["spec"]["template"]["metadata"]["labels"]
        for name, w in workloads(resources).items()
    }
    for name, workload in workloads(resources).items():
        selector = workload["spec"]["selector"]["matchLabels"]
        assert matches(selector, pods[name]), f"{name}: selector does not match its pods"
        for constraint in workload["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
            assert matches(constraint["labelSelector"]["matchLabels"], pods[name]), name
    for name, service in of_kind(resources, "Service").items():
        selected = [w for w, labels in pods.items() if matches(service["spec"]["selector"], labels)]
        assert selected == [name], f"Service {name} selects {selected}"
        ports = {
            key
            for container in workloads(resources)[name]["spec"]["template"]["spec"]["containers"]
            for port in container["ports"]
            for key in (port["name"], port["containerPort"])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name}: targetPort {port['targetPort']}"
    for name, budget in of_kind(resources, "PodDisruptionBudget").items():
        selected = [
            w
            for w, labels in pods.items()
            if matches(budget["spec"]["selector"]["matchLabels"], labels)
        ]
        assert selected == [name], f"PodDisruptionBudget {name} selects {selected}"
    deployments = of_kind(resources, "Deployment")
    for name, autoscaler in of_kind(resources, "HorizontalPodAutoscaler").items():
        target = autoscaler["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert target["name"] in deployments
        assert autoscaler["spec"]["minReplicas"] >= 2, "one replica cannot survive a node drain"
        assert autoscaler["spec"]["maxReplicas"] > autoscaler["spec"]["minReplicas"]
    assert set(of_kind(resources, "HorizontalPodAutoscaler")) == set(deployments)
    assert set(of_kind(resources, "PodDisruptionBudget")) == set(deployments)


def test_every_variable_is_a_setting_of_the_component_and_parses(
    resources: list[dict[str, Any]],
) -> None:
    from ingest.settings import load as ingest_settings
    from tenants.settings import load as admin_settings

    loaders = {
        "ingest": lambda env: ingest_settings([], env),
        "admin": lambda env: admin_settings([], env),
    }
    for name, workload in workloads(resources).items():
        for container in containers(workload):
            component = component_of(container["args"])
            assert component is not None, f"{name}/{container['name']}: {container['args']}"
            env = container_env(container, resources)
            unknown = set(env) - variables_read_by(component.name)
            assert not unknown, f"{name}/{container['name']} does not read {sorted(unknown)}"
            if component.name == "exporter":
                from exporter.config import load as exporter_settings

                exporter_settings(container["args"][1:], env)
                continue
            try:
                loaders[component.name](env)
            except ConfigError as exc:
                pytest.fail(f"{name}/{container['name']}: refused: {exc.errors}")


def test_probes_ask_real_paths_on_the_ports_the_containers_listen_on(
    resources: list[dict[str, Any]],
) -> None:
    for name, workload in workloads(resources).items():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            component = component_of(container["args"])
            assert component is not None
            env = container_env(container, resources)
            port = listen_port(container, env)
            declared = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert port in declared.values(), f"{name}: listens on {port}, declares {declared}"
            served = routes(component.name)
            assert "readinessProbe" in container, name
            assert "livenessProbe" in container, name
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(kind)
                if probe is None:
                    continue
                action = probe.get("httpGet") or probe.get("tcpSocket")
                assert action, f"{name}: {kind} is neither httpGet nor tcpSocket"
                probe_port = declared.get(action["port"], action["port"])
                assert probe_port == port, f"{name}: {kind} asks port {action['port']}"
                if "httpGet" in probe:
                    assert probe["httpGet"]["path"] in served, f"{name}: {kind} path not served"
            readiness = container["readinessProbe"].get("httpGet", {})
            assert readiness.get("path") == "/health", f"{name}: readiness must be /health"


def test_containers_run_unprivileged_with_requests_and_limits(
    resources: list[dict[str, Any]],
) -> None:
    for name, workload in workloads(resources).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in containers(workload):
            context = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context.get("privileged", False) is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][section]), where
            if name != "exporter":
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert "/tmp" in mounts, f"{where}: gunicorn needs a writable /tmp"
        if name != "exporter":
            assert not pod.get("hostPID"), name
            assert not pod.get("hostNetwork"), name
            assert not any("hostPath" in v for v in pod.get("volumes", [])), name


def test_the_exporter_daemonset_reads_the_host_read_only_on_every_node(
    resources: list[dict[str, Any]],
) -> None:
    daemonset = of_kind(resources, "DaemonSet")["exporter"]
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert {"operator": "Exists"} in pod["tolerations"]
    volumes = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    [container] = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    expected = {"/host/proc": "/proc", "/host/sys": "/sys", "/host/root": "/"}
    for target, source in expected.items():
        assert volumes[mounts[target]["name"]] == source
        assert mounts[target]["readOnly"] is True
    assert mounts["/host/root"]["mountPropagation"] == "HostToContainer"
    for flag in ("--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/host/root"):
        assert flag in container["args"]


def test_admin_pods_migrate_seed_prices_then_create_the_user_ingest_logs_in_as(
    resources: list[dict[str, Any]],
) -> None:
    """ingest's readiness probe (/health) logs in to InfluxDB as its own user: until something
    creates it (before the first tenant, nothing else does) no ingest pod would be ready. And
    without the price catalog every load test is unranked ("no price"): the pods load it when
    empty, never over a catalog loaded before (--if-empty)."""
    from tenants.settings import load

    admin_pod = workloads(resources)["admin"]["spec"]["template"]["spec"]
    init = admin_pod["initContainers"]
    assert [container["args"] for container in init] == [
        ["admin", "init-db"],
        ["admin", "seed-prices", "--if-empty"],
        ["admin", "grant-ingest-writes"],
    ]
    [server] = admin_pod["containers"]
    for container in init:
        assert container_env(container, resources) == container_env(server, resources)
    admin = load([], container_env(init[1], resources))
    [ingest] = workloads(resources)["ingest"]["spec"]["template"]["spec"]["containers"]
    ingest_env = container_env(ingest, resources)
    assert admin["influxdb_url"] == ingest_env["PERFANALYSIS_INGEST_STORAGE_URL"]
    assert admin["influxdb_ingest_user"] == ingest_env["PERFANALYSIS_INGEST_STORAGE_USERNAME"]
    assert admin["influxdb_ingest_password"] == ingest_env["PERFANALYSIS_INGEST_STORAGE_PASSWORD"]


def test_servers_run_the_measured_worker_layout(resources: list[dict[str, Any]]) -> None:
    """web.workers x web.threads as each component defaults to: for the admin app, four workers
    of eight threads, which docs/architecture.md ("Serving") measured as faster than two of
    sixteen."""
    config_maps = of_kind(resources, "ConfigMap")
    layout = {}
    for component in ("admin", "ingest"):
        data = config_maps[f"perfanalysis-{component}"]["data"]
        defaults = settings_variables(component)
        for part in ("WORKERS", "THREADS"):
            name = f"PERFANALYSIS_{component.upper()}_WEB_{part}"
            layout[name] = int(data[name])
            assert layout[name] == defaults[name].default, f"ConfigMap {name}"
    assert (layout["PERFANALYSIS_ADMIN_WEB_WORKERS"], layout["PERFANALYSIS_ADMIN_WEB_THREADS"]) == (
        4,
        8,
    )


def test_secrets_hold_placeholders_only(resources: list[dict[str, Any]]) -> None:
    for name, secret in of_kind(resources, "Secret").items():
        assert "data" not in secret, f"{name}: base64 data hides what it holds"
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER in value, f"Secret {name}: {key} must be a {PLACEHOLDER} placeholder"
    for name, config_map in of_kind(resources, "ConfigMap").items():
        for key in config_map["data"]:
            assert not re.search(r"PASSWORD|SECRET|TOKEN", key), f"ConfigMap {name}: {key}"


def test_the_placeholder_secret_key_is_refused_at_start() -> None:
    """Applying the manifests unchanged must not run with a known secret."""
    from tenants.settings import load

    with pytest.raises(ConfigError, match="at least 32 characters"):
        load([], {"PERFANALYSIS_ADMIN_SECRET_KEY": PLACEHOLDER})


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_every_resource(resources: list[dict[str, Any]]) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(BASE)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert len(rendered) == len(resources)
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "perfanalysis", doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "perfanalysis"
        if doc["kind"] in ("Deployment", "DaemonSet"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                assert container["image"] == "perfanalysis:0.1.0"
