"""Generated Prometheus rules, promtool tests and Alertmanager routes: committed = generated, and
Debian's promtool and amtool accept and pass them.

promtool and amtool are the oracles (installed from Debian's prometheus and
prometheus-alertmanager packages); these tests skip when they cannot be installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfanalysis.alerting import alertmanager, cli, platform
from perfanalysis.alerting.catalogue import RULES
from perfanalysis.alerting.generate import RULES_DIR, THRESHOLDS, Layout, drift, outputs, stale
from perfanalysis.alerting.rules import scopes
from perfanalysis.alerting.templates import humanize, humanize_duration
from perfanalysis.alerting.thresholds import Thresholds, load, parse
from perfanalysis.testing.servers import amtool, promtool
from tests.support.tools import tool
from tests.unit.test_alerting_generate import out_flags

LAYOUT = Layout.under(RULES_DIR)
PROMETHEUS_YML = RULES_DIR.parent / "prometheus.yml"
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")


@pytest.fixture(scope="module")
def thresholds() -> Thresholds:
    return load(THRESHOLDS)


def rule_groups() -> Iterator[tuple[str, dict[str, Any]]]:
    """The groups of the scopes' files (default and tenants), not of platform.rules.yml."""
    for path in sorted(LAYOUT.rules_dir.glob("*.rules.yml")):
        if path.name == platform.FILE_NAME:
            continue
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield path.name, group


# -- committed files


def test_committed_files_are_what_the_generator_produces(thresholds: Thresholds) -> None:
    files = outputs(thresholds, LAYOUT)
    assert drift(files, stale(LAYOUT, files)) == [], (
        "generated alerting files are stale: run .venv/bin/python -m perfanalysis.alerting generate"
    )


def test_one_rule_file_per_tenant_plus_default(thresholds: Thresholds) -> None:
    names = sorted(p.name for p in LAYOUT.rules_dir.glob("*.rules.yml"))
    assert names == [
        "default.rules.yml",
        "platform.rules.yml",
        *(f"tenant-{t}.rules.yml" for t in sorted(thresholds.tenants)),
    ]


def test_the_platform_file_holds_the_platform_rules_only() -> None:
    """Watchdog, Prometheus' own failures and ingest's rate limits falling back per process, once,
    on no tenant's series (Prometheus' and ingest's own); hand-written tests."""
    [group] = yaml.safe_load((LAYOUT.rules_dir / platform.FILE_NAME).read_text())["groups"]
    assert group["name"] == platform.GROUP
    assert [r["alert"] for r in group["rules"]] == [
        "Watchdog", "PrometheusNotificationsFailing", "PrometheusNotificationsDropped",
        "PrometheusRuleEvaluationFailures", "IngestRateLimitNotShared",
    ]  # fmt: skip
    for rule in group["rules"]:
        assert "tenant" not in rule["expr"]
        assert "tenant" not in rule["labels"]
        for metric, _ in SELECTOR.findall(rule["expr"]):
            assert metric.startswith(("prometheus_", "perfanalysis_ingest_")), rule["expr"]
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
    tested = (LAYOUT.tests_dir / "platform.test.yml").read_text()
    assert not tested.startswith("# Generated"), "the platform's promtool tests are hand-written"
    for rule in group["rules"]:
        assert f"alertname: {rule['alert']}" in tested


def test_every_selector_is_scoped_to_its_tenant(thresholds: Thresholds) -> None:
    """A tenant file's series are that tenant's only; the default file takes everything else."""
    listed = "|".join(sorted(thresholds.tenants))
    for name, group in rule_groups():
        tenant = name.removeprefix("tenant-").removesuffix(".rules.yml")
        scope = f'tenant!~"{listed}"' if name == "default.rules.yml" else f'tenant="{tenant}"'
        for rule in group["rules"]:
            selectors = SELECTOR.findall(rule["expr"])
            assert selectors, rule["expr"]
            for metric, matchers in selectors:
                assert scope in matchers.split(","), f"{name}: {metric} in {rule['expr']}"


def test_every_alert_has_severity_tenant_summary_and_description(thresholds: Thresholds) -> None:
    alerts = set()
    for name, group in rule_groups():
        for rule in group["rules"]:
            labels = rule["labels"]
            assert labels["severity"] in ("warning", "critical")
            if name != "default.rules.yml":
                assert labels["tenant"] == name.removeprefix("tenant-").removesuffix(".rules.yml")
            assert (
                "{{ $labels.instance }}" in rule["annotations"]["description"]
                or rule["alert"] == "IngestRejectingPoints"
            )
            assert rule["annotations"]["summary"]
            assert rule["annotations"]["description"]
            alerts.add(rule["alert"])
    assert alerts == {rule.alert for rule in RULES.values()}


def test_the_override_reaches_acmes_file_only() -> None:
    def cpu_warning(file: str) -> str:
        rules = yaml.safe_load((LAYOUT.rules_dir / file).read_text())["groups"][0]["rules"]
        [rule] = [
            r for r in rules if r["alert"] == "HostCpuBusy" and r["labels"]["severity"] == "warning"
        ]
        expr: str = rule["expr"]
        return expr

    assert cpu_warning("tenant-acme.rules.yml").endswith(" > 70")
    assert cpu_warning("tenant-demo.rules.yml").endswith(" > 80")
    assert cpu_warning("default.rules.yml").endswith(" > 80")


# -- promtool and amtool


def test_promtool_check_rules_passes_on_every_rule_file() -> None:
    files = sorted(LAYOUT.rules_dir.glob("*.rules.yml"))
    result = tool(promtool, "check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_promtool_check_config_accepts_prometheus_yml() -> None:
    result = tool(promtool, "check", "config", PROMETHEUS_YML)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"SUCCESS: {len(list(LAYOUT.rules_dir.glob('*.rules.yml')))} rule files found"
        in result.stdout
    )


def test_promtool_test_rules_passes_for_every_test_file() -> None:
    """Firing, not firing and the ``for:`` of every rule in every scope, plus the hand-written
    override tests; the files run side by side (each loads every rule file)."""
    files = sorted(LAYOUT.tests_dir.glob("*.test.yml"))
    assert {f.name for f in files} >= {f"{s}.test.yml" for s in ("default", "tenant-overrides")}
    with ThreadPoolExecutor(len(files)) as pool:
        results = list(pool.map(lambda f: tool(promtool, "test", "rules", f), files))
    failed = [r.stdout + r.stderr for r in results if r.returncode != 0]
    assert not failed, "\n".join(failed)


def test_amtool_check_config_accepts_alertmanager_yml() -> None:
    result = tool(amtool, "check-config", LAYOUT.alertmanager_file)
    assert result.returncode == 0, result.stdout + result.stderr


def route_cases(thresholds: Thresholds) -> list[tuple[str | None, str]]:
    tenants: list[str | None] = [*sorted(thresholds.tenants), "not-listed", None]
    return [(t, alertmanager.expected_receiver(thresholds, t)) for t in tenants]


def test_amtool_routes_each_tenant_to_its_receiver(thresholds: Thresholds) -> None:
    cases = route_cases(thresholds)
    assert ("acme", "tenant-acme") in cases
    assert ("not-listed", "default") in cases
    assert (None, "default") in cases
    for tenant, receiver in cases:
        labels = ["alertname=HostCpuBusy", "severity=critical", "instance=h:9100"]
        labels += [f"tenant={tenant}"] if tenant else []
        result = tool(
            amtool, "config", "routes", "test", f"--config.file={LAYOUT.alertmanager_file}",
            f"--verify.receivers={receiver}", *labels,
        )  # fmt: skip
        assert result.returncode == 0, f"tenant {tenant}: {result.stdout}{result.stderr}"
        assert result.stdout.strip() == receiver


def test_alertmanager_groups_and_inhibits_warning_by_critical(thresholds: Thresholds) -> None:
    config = alertmanager.config(thresholds)
    assert config["route"]["group_by"] == ["alertname", "tenant", "instance"]
    inhibit = config["inhibit_rules"][0]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert {"alertname", "tenant", "instance"} <= set(inhibit["equal"])


def test_a_muted_tenant_and_no_default_receiver_route_to_null(tmp_path: Path) -> None:
    data = yaml.safe_load(THRESHOLDS.read_text())
    data["notify"] = {"mute": True}
    data["tenants"]["quiet"] = {"notify": {"mute": True}}
    thresholds = parse(data)
    config = alertmanager.config(thresholds)
    assert config["route"]["receiver"] == "null"
    assert {"matchers": ['tenant="quiet"'], "receiver": "null"} in config["route"]["routes"]
    assert [r["name"] for r in config["receivers"]] == ["null", "watchdog", "tenant-acme"]
    assert [alertmanager.expected_receiver(thresholds, t) for t in ("quiet", "demo", None)] == [
        "null", "null", "null",
    ]  # fmt: skip
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager.render(thresholds))
    result = tool(amtool, "check-config", path)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the generator


def write_thresholds(tmp_path: Path, tenants: dict[str, Any]) -> Path:
    data = yaml.safe_load(THRESHOLDS.read_text())
    data["tenants"] = tenants
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_generates_a_separate_tree_checks_it_and_removes_stale_tenants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "prometheus" / "rules"
    args = ["generate", *out_flags(out)]
    path = write_thresholds(tmp_path, {"one": {}, "two": {"cpu_busy_percent": {"for": "1m"}}})
    assert cli.run([*args, "--thresholds", str(path)]) == 0
    tree = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.yml"))
    assert tree == [
        "alertmanager/alertmanager.yml",
        "prometheus/rules/default.rules.yml",
        "prometheus/rules/platform.rules.yml",
        "prometheus/rules/tenant-one.rules.yml",
        "prometheus/rules/tenant-two.rules.yml",
        "prometheus/tests/default.test.yml",
        "prometheus/tests/tenant-one.test.yml",
        "prometheus/tests/tenant-two.test.yml",
    ]
    assert cli.run([*args, "--thresholds", str(path), "--check"]) == 0
    (out.parent / "tests" / "mine.test.yml").write_text("# hand-written, kept\n")
    write_thresholds(tmp_path, {"one": {}})
    capsys.readouterr()
    assert cli.run([*args, "--thresholds", str(path), "--check"]) == 1
    assert "tenant-two.rules.yml: stale" in capsys.readouterr().err
    assert cli.run([*args, "--thresholds", str(path)]) == 0
    assert not (out / "tenant-two.rules.yml").exists()
    assert (out.parent / "tests" / "mine.test.yml").exists()
    assert cli.run([*args, "--thresholds", str(path), "--check"]) == 0


def test_cli_reports_every_threshold_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_thresholds(tmp_path, {"acme": {"cpu_busy_percent": {"warning": 99}, "disk": {}}})
    assert cli.run(["generate", "--thresholds", str(path), *out_flags(tmp_path / "rules")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: tenants.acme.disk: unknown rule" in err
    assert f"{path}: tenants.acme.cpu_busy_percent: warning (99) must be below critical" in err
    assert not (tmp_path / "rules").exists()


def test_cli_says_which_file_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_directory = tmp_path / "afile"
    not_a_directory.touch()
    assert cli.run(["generate", *out_flags(not_a_directory / "rules")]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"cannot write {not_a_directory}/rules/default.rules.yml: "
        f"{not_a_directory} is not a directory\n"
    )


def test_scopes_put_unlisted_tenants_in_the_default_file(thresholds: Thresholds) -> None:
    default, *tenants = scopes(thresholds)
    assert default.matcher == 'tenant!~"acme|demo"'
    assert [s.matcher for s in tenants] == ['tenant="acme"', 'tenant="demo"']


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (0.5, "500m"), (1, "1"), (1500, "1.5k"), (123456789, "123.5M"), (2e-6, "2u")],
)
def test_humanize_matches_prometheus(value: float, text: str) -> None:
    assert humanize(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1s"), (59.5, "59.5s"), (400, "6m 40s"), (3600, "1h 0m 0s"), (90061, "1d 1h 1m 1s")],
)
def test_humanize_duration_matches_prometheus(value: float, text: str) -> None:
    assert humanize_duration(value) == text
