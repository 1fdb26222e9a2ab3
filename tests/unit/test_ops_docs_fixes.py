"""What an audit that followed docs/operations.md and README.md literally still found, fixed:

1. a tenant's receivers in thresholds.yaml never reach Compose's Alertmanager: the guide says
   where each install (make up, Compose, Kubernetes) reads them, and its Compose route is valid;
2. how to produce a report, on the make up stack and under Compose (the example's hosts);
3. a restored admin database whose admin does not take var/admin-password: ensure-demo, and so
   make up's summary, says so with the fix instead of the password hint;
4. make reload (tests/integration/test_ops_docs_fixes.py runs it against the real servers);
5. a bcrypt hash without htpasswd, which no setup step installs;
6. grafana sync and prune-orphans --dev, and prune-orphans in the settings references;
7. how to run and upload a load test.

The tests marked integration run the real local stack (``make up`` on free ports in a temporary
var/), once for the module.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask

from perfanalysis import devstack
from perfanalysis.paths import ROOT
from perfanalysis.testing.servers import amtool, free_port, wait_until
from tests.integration.test_devstack import ADDRESS_VARIABLES, Stack
from tests.support.tools import tool

OPERATIONS = ROOT / "docs" / "operations.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
README = ROOT / "README.md"
COMPOSE = ROOT / "docker-compose.yml"
EXAMPLE_REPORT = ROOT / "provisioning" / "examples" / "report.yaml"


def section(title: str) -> str:
    """The text of operations.md's section ``## title``, up to the next one."""
    text = OPERATIONS.read_text()
    assert f"\n## {title}\n" in text, f"operations.md has no section {title!r}"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def code_blocks(text: str, language: str) -> list[str]:
    """The fenced blocks of ``language`` in ``text``, indentation removed."""
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", text, flags=re.DOTALL | re.M)
    return [
        "\n".join(line.removeprefix(indent) for line in body.splitlines())
        for indent, body in blocks
    ]


# --- 1. where a tenant's thresholds and receivers take effect ----------------------------------


def tenant_alerting_step() -> str:
    step = section("Adding a tenant").split("5. For Prometheus alerting", 1)
    assert len(step) == 2, "Adding a tenant has no step 5 about Prometheus alerting"
    return step[1]


def test_the_alerting_step_says_what_each_install_reads() -> None:
    step = tenant_alerting_step()
    make_up, compose, kubernetes = (
        step.split("**`make up`**", 1)[1].split("**Compose**", 1)[0],
        step.split("**Compose**", 1)[1].split("**Kubernetes**", 1)[0],
        step.split("**Kubernetes**", 1)[1],
    )
    assert "make reload" in make_up
    assert "deploy/compose/alertmanager.yml" in compose
    assert "does nothing there" in compose
    assert "docker compose restart prometheus alertmanager" in compose
    assert "runs neither Prometheus nor Alertmanager" in kubernetes
    # ...and those are what the files say
    [alertmanager] = [s for s in devstack.services() if s.name == "alertmanager"]
    assert f"--config.file={ROOT / 'provisioning/alertmanager/alertmanager.yml'}" in (
        alertmanager.argv
    )
    mounted = yaml.safe_load(COMPOSE.read_text())["services"]["alertmanager"]["volumes"]
    assert "./deploy/compose/alertmanager.yml:/etc/alertmanager/compose.yml:ro" in mounted
    assert not any("provisioning/alertmanager" in str(volume) for volume in mounted)
    kinds = {
        document.get("kind")
        for path in (ROOT / "deploy" / "kubernetes").glob("*.yaml")
        for document in yaml.safe_load_all(path.read_text())
        if isinstance(document, dict)
    }
    assert not {"Prometheus", "Alertmanager", "PrometheusRule"} & kinds
    assert "alertmanager" not in " ".join(
        path.read_text().lower() for path in (ROOT / "deploy" / "kubernetes").glob("*.yaml")
    )


def test_the_compose_route_of_the_guide_is_a_config_alertmanager_takes(tmp_path: Path) -> None:
    [snippet] = code_blocks(tenant_alerting_step(), "yaml")
    example = yaml.safe_load(snippet)
    config = yaml.safe_load((ROOT / "deploy" / "compose" / "alertmanager.yml").read_text())
    default = next(r for r in config["receivers"] if r["name"] == config["route"]["receiver"])
    assert default in example["receivers"], "the guide's default receiver is the file's"
    config["route"]["routes"] = example["route"]["routes"]
    config["receivers"] = example["receivers"]
    rendered = yaml.safe_dump(config).replace("@WEBHOOK_URL@", "https://alerts.example.com/hook")
    path = tmp_path / "alertmanager.yml"
    path.write_text(rendered)

    checked = tool(amtool, "check-config", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for labels, receiver in (("tenant=acme", "tenant-acme"), ("tenant=globex", "default")):
        routed = tool(amtool, "config", "routes", "test", f"--config.file={path}", labels)
        assert routed.returncode == 0, routed.stderr
        assert routed.stdout.strip() == receiver, labels


# --- 2. producing a report ---------------------------------------------------------------------


def test_the_example_report_says_to_report_on_this_machine_for_make_up() -> None:
    from perfanalysis.report.config import load_config

    text = EXAMPLE_REPORT.read_text()
    comments = "\n".join(line for line in text.splitlines() if "#" in line)
    assert "hostname" in comments
    assert "make up" in comments
    assert 'sed "s/^hosts: .*/hosts: [$(hostname)]/"' in comments
    assert load_config(EXAMPLE_REPORT).tenant == "demo"


def report_section_commands() -> tuple[list[str], str]:
    """The make up stack's report commands (shell lines), and the Compose one."""
    text = section("Producing a report")
    local, compose = code_blocks(text, "sh")
    return local.splitlines(), compose


def test_the_make_up_report_commands_report_on_this_machine_with_settings_that_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perfanalysis.report import settings as report_settings
    from perfanalysis.report.config import load_config

    edit, report = report_section_commands()[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "provisioning" / "examples").mkdir(parents=True)
    (tmp_path / "provisioning" / "examples" / "report.yaml").write_text(EXAMPLE_REPORT.read_text())
    (tmp_path / "var").mkdir()
    subprocess.run(["sh", "-c", edit], check=True)
    hostname = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    assert list(load_config(tmp_path / "var" / "report.yaml").hosts) == [hostname]

    words = shlex.split(report)
    assert words[:2] == [".venv/bin/perfanalysis", "report"]
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path / "var"))
    values = report_settings.load(words[2:], {})
    assert values["secret_key"] == (tmp_path / "var" / "dev-secret-key").read_text().strip()
    assert values["database_url"] == f"sqlite:///{tmp_path / 'var' / 'admin.db'}"


def test_the_compose_report_runs_on_the_internal_network_with_the_admin_settings() -> None:
    compose = report_section_commands()[1]
    command = shlex.split(compose.split("\n", 1)[1].replace("\\\n", " "))
    assert command[:3] == ["docker", "compose", "run"]
    service = command[command.index("-c") - 1]
    script = command[command.index("-c") + 1]
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    runner = services[service]
    assert set(runner["networks"]) & set(services["influxdb"]["networks"])
    assert set(runner["networks"]) & set(services["postgres"]["networks"])
    given = dict(re.findall(r'(PERFANALYSIS_REPORT_\w+)="\$(\w+)"', script))
    assert given == {
        "PERFANALYSIS_REPORT_DATABASE_URL": "PERFANALYSIS_ADMIN_DATABASE_URL",
        "PERFANALYSIS_REPORT_SECRET_KEY": "PERFANALYSIS_ADMIN_SECRET_KEY",
    }
    assert set(given.values()) <= set(runner["environment"])
    assert "--influxdb.url http://influxdb:8086" in script
    assert "8086" in str(services["influxdb"]["healthcheck"])
    mount = command[command.index("-v") + 1]
    assert mount.endswith(":/reports")
    assert "--config /reports/" in script
    assert "--output /reports/" in script


# --- 3. a password file the restored admin does not take ---------------------------------------

BACKUPS = "the backup's own password"


@pytest.mark.usefixtures("fast_password_hashing")
def test_ensure_demo_says_when_the_admin_does_not_take_the_password_file(
    app: Flask, runner: Callable[..., Any], tmp_path: Path
) -> None:
    from tenants import db as database
    from tenants.accounts import get_user_by_email
    from tenants.crypto import verify_password
    from tenants.demo import ADMIN_EMAIL

    password_file = tmp_path / "admin-password"
    first = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert first.exit_code == 0, first.output
    assert f"admin login: {ADMIN_EMAIL} / password in {password_file}\n" in first.output
    kept = password_file.read_text()

    # the admin database restored from before the file: another password
    restored = runner("set-password", ADMIN_EMAIL, env={"PERFANALYSIS_NEW_PASSWORD": BACKUPS})
    assert restored.exit_code == 0, restored.output
    again = runner("ensure-demo", "--var-dir", str(tmp_path))

    assert again.exit_code == 0, again.output
    [line] = [line for line in again.output.splitlines() if line.startswith("admin login:")]
    assert line.startswith(f"admin login: {ADMIN_EMAIL} / LOGIN REFUSED: the password in ")
    assert "password in" not in line.split("LOGIN REFUSED", 1)[0]
    assert f"make admin ARGS='set-password {ADMIN_EMAIL} --password-file {password_file}'" in line
    assert f"remove {password_file} and run make up again" in line
    assert password_file.read_text() == kept  # nothing changed for it
    with app.app_context():
        admin = get_user_by_email(database.session(), ADMIN_EMAIL)
        assert admin is not None
        assert verify_password(admin.password_hash, BACKUPS)

    # the fix it names
    fixed = runner("set-password", ADMIN_EMAIL, "--password-file", str(password_file))
    assert fixed.exit_code == 0, fixed.output
    after = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert f"admin login: {ADMIN_EMAIL} / password in {password_file}\n" in after.output

    with app.app_context():
        db = database.session()
        admin = get_user_by_email(db, ADMIN_EMAIL)
        assert admin is not None
        admin.is_active = False
        db.commit()
    disabled = runner("ensure-demo", "--var-dir", str(tmp_path))
    assert (
        f"admin login: {ADMIN_EMAIL} / LOGIN REFUSED: the admin is disabled: "
        f"make admin ARGS='enable-user {ADMIN_EMAIL}'\n"
    ) in disabled.output


def test_up_repeats_what_ensure_demo_said_about_the_login_never_its_own_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path / "var"))
    said = "admin login: admin@perfanalysis.local / LOGIN REFUSED: the password in ... (fix)"
    step = [sys.executable, "-c", f"print({said!r}); print('demo tenant: demo')"]
    monkeypatch.setattr(devstack, "setup_steps", lambda: [(step, {})])
    monkeypatch.setattr(devstack, "start", lambda service: False)
    stand_in = devstack.Service("influxdb", [], "http://127.0.0.1:1/", {"UI": "http://x/"})

    devstack.up([stand_in])

    summary = capsys.readouterr().out.split("PerfAnalysis is up:", 1)[1]
    logins = [line for line in summary.splitlines() if "admin login" in line]
    assert logins == [f"  {said}"]


# --- 4. make reload ----------------------------------------------------------------------------


def test_make_reload_runs_devstack_reload() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    plan = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "reload"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "-m perfanalysis.devstack reload" in plan
    assert "make reload" in subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, env=env, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip


def test_reload_of_a_stack_that_does_not_run_says_so_and_signals_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path / "var"))
    killed: list[int] = []
    monkeypatch.setattr(devstack.os, "kill", lambda pid, sig: killed.append(pid))

    assert devstack.main(["reload"]) == 1

    assert killed == []
    assert capsys.readouterr().err.startswith(
        "prometheus and alertmanager: not running; 'make up' starts the stack"
    )


def test_reload_with_a_prometheus_yml_it_cannot_write_from_signals_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path / "var"))
    checkout = tmp_path / "checkout"
    (checkout / "provisioning" / "prometheus").mkdir(parents=True)
    (checkout / "provisioning" / "prometheus" / "prometheus.yml").write_text("rule_files: [\n")
    monkeypatch.setattr(devstack, "ROOT", checkout)
    monkeypatch.setattr(devstack, "running_pid", lambda service: 4242)  # both "run"
    killed: list[int] = []
    monkeypatch.setattr(devstack.os, "kill", lambda pid, sig: killed.append(pid))

    assert devstack.reload(devstack.services()) == 1

    assert killed == []
    err = capsys.readouterr().err
    assert err.startswith(
        "prometheus: cannot write its configuration from "
        f"{checkout / 'provisioning/prometheus/prometheus.yml'} (ParserError: "
    )
    assert err.rstrip().endswith("nothing was reloaded")


# --- 5. a bcrypt hash with what is installed ---------------------------------------------------


def test_the_documented_bcrypt_one_liner_makes_a_hash_the_exporter_takes() -> None:
    import bcrypt

    from deploy.configref import BCRYPT_ONE_LINER
    from exporter.webconfig import parse

    assert BCRYPT_ONE_LINER in OPERATIONS.read_text()
    assert BCRYPT_ONE_LINER in CONFIGURATION.read_text()
    python, _, script = BCRYPT_ONE_LINER.partition(" ")
    assert python == ".venv/bin/python"
    words = shlex.split(script)
    hashed = subprocess.run(
        [sys.executable, *words],
        input="correct horse\n",
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,  # no terminal: getpass reads standard input
    ).stdout.strip()
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    assert parse({"basic_auth_users": {"prometheus": hashed}}, "web.yml").users
    assert "bcrypt>=" in (ROOT / "pyproject.toml").read_text().split("[project.optional", 1)[0]


def test_htpasswd_is_offered_only_with_the_package_it_comes_from() -> None:
    for document in (OPERATIONS, CONFIGURATION):
        paragraphs = [p for p in document.read_text().split("\n\n") if "htpasswd -nBC" in p]
        offered = [p for p in paragraphs if "apache2-utils" in p]
        assert offered, f"{document.name}: htpasswd without its package"
    assert "apache2-utils" not in (ROOT / "scripts" / "install-debian-packages.sh").read_text()


# --- 6. grafana --dev, and prune-orphans in the references -------------------------------------

GRAFANA = {"PERFANALYSIS_GRAFANA_URL": "http://grafana:3000", "PERFANALYSIS_GRAFANA_TOKEN": "t",
           "PERFANALYSIS_GRAFANA_INFLUXDB_URL": "http://influxdb:8086"}  # fmt: skip


@pytest.mark.parametrize("command", ["sync", "prune-orphans"])
def test_dev_reads_the_make_up_stacks_database_with_its_secret_key(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perfanalysis.config import ConfigError
    from perfanalysis.grafana.settings import load, load_prune

    loader = load if command == "sync" else load_prune
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="or run with --dev"):
        loader([], GRAFANA)

    values = loader(["--dev"], GRAFANA)

    assert values["database_url"] == f"sqlite:///{tmp_path / 'admin.db'}"
    assert values["secret_key"] == (tmp_path / "dev-secret-key").read_text().strip()
    assert loader([], {**GRAFANA, "PERFANALYSIS_GRAFANA_DEV": "1"}) == values
    # a key given still wins, as with the admin app's --dev
    given = loader(["--dev"], {**GRAFANA, "PERFANALYSIS_ADMIN_SECRET_KEY": "k" * 40})
    assert given["secret_key"] == "k" * 40


def test_sync_dev_goes_on_to_the_stacks_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from perfanalysis.grafana.cli import run

    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path))
    for name in (
        "DATABASE_URL",
        "PERFANALYSIS_ADMIN_DATABASE_URL",
        "PERFANALYSIS_ADMIN_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in GRAFANA.items():
        monkeypatch.setenv(name, value)

    assert run(["sync", "--dev"]) == 2
    assert f"no SQLite database at {tmp_path / 'admin.db'}" in capsys.readouterr().err
    assert run(["prune-orphans", "--dev", "--dry-run"]) == 2
    assert f"no SQLite database at {tmp_path / 'admin.db'}" in capsys.readouterr().err


def test_prune_orphans_is_in_both_settings_references() -> None:
    from deploy.configref import component_of, variables_read_by

    readme = README.read_text()
    table = readme.split("<!-- config:grafana-prune-orphans -->", 1)[1].split("<!-- /config", 1)[0]
    for variable in ("DRY_RUN", "FORCE", "DEV", "DATABASE_URL"):
        assert f"`PERFANALYSIS_GRAFANA_{variable}`" in table
    assert "INFLUXDB_URL" not in table
    reference = CONFIGURATION.read_text()
    assert (
        "| [grafana-prune-orphans](#grafana-prune-orphans) | `perfanalysis grafana prune-orphans`"
        in (reference)
    )
    assert "`PERFANALYSIS_GRAFANA_FORCE`" in reference.split("## grafana-prune-orphans", 1)[1]
    found = component_of(["grafana", "prune-orphans", "--dry-run"])
    assert found is not None
    assert found.name == "grafana-prune-orphans"
    assert "PERFANALYSIS_ADMIN_SECRET_KEY" in variables_read_by("grafana-prune-orphans")


# --- 7. running a load test --------------------------------------------------------------------


def test_the_load_test_how_to_uses_flags_the_runner_has_and_links_its_readme() -> None:
    from exporter.loadtest.settings import run_spec

    text = section("Running a load test")
    assert "(../exporter/loadtest/README.md)" in text
    flags = {f"--{setting.flag}" for setting in run_spec().settings}
    [commands] = code_blocks(text, "sh")
    runs = [line for line in commands.replace("\\\n", " ").splitlines() if "loadtest run" in line]
    assert len(runs) == 2
    for line in runs:
        used = {word.partition("=")[0] for word in shlex.split(line) if word.startswith("--")}
        assert used <= flags, used - flags
        assert {"--upload", "--key-file"} <= used
    assert "--key-file var/demo-collector.key" in commands


# --- with the real local stack (make up on free ports in a temporary var/, as
# tests/integration/test_devstack.py runs it): make reload against the real Prometheus and
# Alertmanager, the SQLite restore followed literally, the report how-to --------------------

ADMIN = "admin@perfanalysis.local"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    made = Stack(tmp_path_factory.mktemp("opsdocs") / "var")
    try:
        completed = made.up()
        assert completed.returncode == 0, completed.stdout + completed.stderr
        yield made
    finally:
        made.run("down")


@pytest.fixture
def in_process(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """This process's environment as the stack's commands get it, to call devstack directly."""
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(stack.var))
    for variable in ADDRESS_VARIABLES:
        monkeypatch.setenv(variable, stack.addresses[variable])
    return stack


def reload_metrics(stack: Stack, service: str) -> dict[str, float]:
    """The service's *_config_last_reload_* metrics, from its own /metrics."""
    variable = f"PERFANALYSIS_DEV_{service.upper()}_ADDRESS"
    text = requests.get(f"{stack.url(variable)}/metrics", timeout=5).text
    return {
        name.rpartition("config_last_reload_")[2]: float(value)
        for name, value in re.findall(r"^(\w+_config_last_reload_\w+) (\S+)$", text, re.M)
    }


# --- make reload ------------------------------------------------------------------------------


@pytest.mark.integration
def test_reload_has_both_reload_and_waits_until_their_metrics_show_it(stack: Stack) -> None:
    before = {name: reload_metrics(stack, name) for name in ("prometheus", "alertmanager")}
    # what make up writes for Prometheus at start is written again from provisioning/
    written = stack.var / "prometheus" / "prometheus.yml"
    written.write_text("this: [is not a Prometheus configuration\n")

    reloaded = stack.run("reload")

    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    pids = stack.pids()
    assert reloaded.stdout.splitlines() == [
        f"prometheus: reloaded its configuration (pid {pids['prometheus']})",
        f"alertmanager: reloaded its configuration (pid {pids['alertmanager']})",
    ]
    for name, earlier in before.items():
        now = reload_metrics(stack, name)  # already there when reload returned: no waiting
        assert now["successful"] == 1
        assert now["success_timestamp_seconds"] > earlier["success_timestamp_seconds"]
    assert "Written by 'make up'" in written.read_text()
    assert stack.pids() == pids  # reloaded, not restarted


@pytest.mark.integration
def test_reload_reports_a_configuration_prometheus_refuses(
    in_process: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = in_process
    written = stack.var / "prometheus" / "prometheus.yml"

    def refused() -> None:
        written.write_text("scrape_configs: [{job_name: x, scrape_interval: not-a-duration}]\n")

    monkeypatch.setattr(devstack, "_write_prometheus_config", refused)
    assert devstack.main(["reload"]) == 1

    out, err = capsys.readouterr()
    assert "prometheus: reload FAILED: it keeps running its previous configuration" in err
    assert "Error reloading config" in err
    assert "not-a-duration" in err
    assert str(stack.var / "log" / "prometheus.log") in err
    assert "alertmanager: reloaded its configuration" in out
    assert reload_metrics(stack, "prometheus")["successful"] == 0
    status = stack.run("status")
    assert status.returncode == 0, status.stdout  # still serving, on the previous configuration

    monkeypatch.undo()
    assert stack.run("reload").returncode == 0
    assert reload_metrics(stack, "prometheus")["successful"] == 1


@pytest.mark.integration
def test_reload_reports_a_configuration_alertmanager_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stack's Alertmanager reads the committed provisioning/alertmanager/alertmanager.yml:
    here a real one of its own (a var/ and a port of its own, not a restart of the module's,
    whose port another connection may take meanwhile) runs on a copy."""
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS", f"127.0.0.1:{free_port()}")
    devstack.make_state_private()
    [alertmanager] = [s for s in devstack.services() if s.name == "alertmanager"]
    copy = tmp_path / "alertmanager.yml"
    shutil.copy(ROOT / "provisioning" / "alertmanager" / "alertmanager.yml", copy)
    on_copy = dataclasses.replace(
        alertmanager,
        argv=[f"--config.file={copy}" if a.startswith("--config.file=") else a
              for a in alertmanager.argv],
    )  # fmt: skip
    try:
        assert devstack.start(on_copy)
        assert devstack.reload([on_copy]) == 0
        copy.write_text(copy.read_text() + "route: [not, a, route\n")
        capsys.readouterr()

        assert devstack.reload([on_copy]) == 1

        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith(
            "alertmanager: reload FAILED: it keeps running its previous configuration; its log "
            f"{tmp_path / 'var' / 'log' / 'alertmanager.log'} says:\n"
        )
        assert "Loading configuration file failed" in err
        assert devstack.healthy(on_copy)  # still serving
    finally:
        devstack.stop(on_copy, quiet=True)


# --- a restored admin database and var/admin-password -----------------------------------------


@pytest.mark.integration
def test_the_sqlite_restore_with_an_older_backup_says_the_login_is_refused_and_the_fix_works(
    stack: Stack, tmp_path: Path
) -> None:
    guide = OPERATIONS.read_text().split("### The admin database: SQLite", 1)[1].split("\n## ")[0]
    assert "make admin ARGS='set-password admin@perfanalysis.local --password-file" in guide
    backup = tmp_path / "admin-backup.db"
    with sqlite3.connect(stack.var / "admin.db") as source, sqlite3.connect(backup) as target:
        source.backup(target)  # sqlite3's .backup
    password_file = stack.var / "admin-password"
    password_file.unlink()  # lost: the next up writes another and gives it to the admin
    assert stack.run("up").returncode == 0
    assert stack.admin_login(password_file.read_text().strip())[0] == 302

    # the restore, as the guide says it
    assert stack.run("down").returncode == 0
    shutil.copy(backup, stack.var / "admin.db")
    for leftover in ("admin.db-wal", "admin.db-shm"):
        (stack.var / leftover).unlink(missing_ok=True)
    assert "`make admin ARGS=init-db`" in guide  # the stack's database, whatever DATABASE_URL
    migrated = stack.run("admin", "init-db")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    again = stack.run("up")

    assert again.returncode == 0, again.stdout + again.stderr
    summary = again.stdout.split("PerfAnalysis is up:", 1)[1]
    [line] = [line for line in summary.splitlines() if "admin login" in line]
    assert f"LOGIN REFUSED: the password in {password_file} is not this admin's" in line
    assert f"password in {password_file}" not in line.split("LOGIN REFUSED")[0]
    assert stack.admin_login(password_file.read_text().strip())[0] != 302

    fix = re.search(r"make admin ARGS='([^']+)'", line)
    assert fix is not None, line
    fixed = stack.run("admin", *shlex.split(fix.group(1)))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert stack.admin_login(password_file.read_text().strip())[0] == 302
    after = stack.run("up")
    assert f"  admin login: {ADMIN} / password in {password_file}\n" in after.stdout


# --- producing a report ----------------------------------------------------------------------


@pytest.mark.integration
def test_the_report_how_to_runs_on_the_stack(stack: Stack, tmp_path: Path) -> None:
    (edit, report), compose = report_section_commands()
    checkout = tmp_path / "checkout"
    (checkout / "provisioning" / "examples").mkdir(parents=True)
    shutil.copy(
        ROOT / "provisioning" / "examples" / "report.yaml", checkout / "provisioning" / "examples"
    )
    (checkout / "var").mkdir()
    subprocess.run(["sh", "-c", edit], cwd=checkout, check=True)
    password = (stack.var / "influxdb-admin-password").read_text().strip()
    influxdb = stack.url("PERFANALYSIS_DEV_INFLUXDB_ADDRESS")

    def cpu_data() -> bool | None:
        answer = requests.get(f"{influxdb}/query", auth=("admin", password), timeout=5, params={
            "db": "pa_demo", "q": 'SELECT count("value") FROM "node_cpu_seconds_total"'})  # fmt: skip
        return bool(answer.json()["results"][0].get("series")) or None

    wait_until(cpu_data, timeout=90, interval=1, what="the exporter's CPU data in pa_demo")
    words = shlex.split(report)
    assert words[0] == ".venv/bin/perfanalysis"
    # the stack's InfluxDB is not on 127.0.0.1:8086: the flag the guide says to add then; and
    # the stack's DATABASE_URL, the test suite's, would win over var/admin.db: unset, as it says
    guide = OPERATIONS.read_text().split("## Producing a report", 1)[1]
    assert "add `--influxdb.url http://HOST:PORT`" in guide
    assert "`DATABASE_URL`" in guide
    shell = {k: v for k, v in stack.env.items() if k != "DATABASE_URL"}
    ran = subprocess.run(
        [sys.executable, "-m", "perfanalysis.cli", *words[1:], f"--influxdb.url={influxdb}"],
        cwd=checkout, env=shell, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    hostname = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    assert hostname in (checkout / "var" / "report.html").read_text()

    # the Compose command's script, with the variables admin-init has, here the stack's
    script = re.search(r"-c '(.*)'\s*$", compose, re.S)
    assert script is not None
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(checkout / "var" / "report.yaml", reports / "weekly.yaml")
    inner = script.group(1).replace("http://influxdb:8086", influxdb)
    inner = inner.replace("/reports/", f"{reports}/")
    environment = {
        **{k: v for k, v in stack.env.items() if not k.startswith("PERFANALYSIS_")},
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PERFANALYSIS_ADMIN_DATABASE_URL": f"sqlite:///{stack.var / 'admin.db'}",
        "PERFANALYSIS_ADMIN_SECRET_KEY": (stack.var / "dev-secret-key").read_text().strip(),
    }
    if shutil.which("perfanalysis", path=environment["PATH"]) is None:
        pytest.skip("no perfanalysis console script beside this Python")
    composed = subprocess.run(
        ["sh", "-c", inner], env=environment, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert composed.returncode == 0, composed.stderr
    assert hostname in (reports / "weekly.html").read_text()
