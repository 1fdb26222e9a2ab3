"""Writes docs/configuration.md from the configuration parsers: ``python -m deploy.configref``.

Every component declares its settings once (``perfanalysis.config.Spec``); this module renders
them, the exporter's web configuration file (``exporter.webconfig.FIELDS``) and the few variables
read outside the parsers. The deployment tests use the same tables to check that every
``PERFANALYSIS_*`` variable in docker-compose.yml, .env.example and the Kubernetes manifests is
one the component it is given to actually reads. ``--check`` exits 1 when the committed file is
stale (tests/unit/test_deploy_configref.py does the same).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from re import Pattern
from typing import Any

from perfanalysis.config import Setting, Spec
from perfanalysis.configdoc import SPECS
from perfanalysis.devstack import DEFAULT_ADDRESSES

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "configuration.md"
GRAFANA_PROVISIONING = ROOT / "provisioning" / "grafana"


@dataclass(frozen=True)
class Component:
    name: str
    command: tuple[str, ...]  # what follows `perfanalysis` (the image's entry point)
    build: Callable[[], Spec]
    notes: str = ""


def _loadtest_run() -> Spec:
    from exporter.loadtest.settings import run_spec

    return run_spec()


def _loadtest_upload() -> Spec:
    from exporter.loadtest.settings import upload_spec

    return upload_spec()


COMPONENTS: tuple[Component, ...] = (
    Component("exporter", ("exporter",), SPECS["exporter"],
              "Runs on every monitored host. With `--web.config.file` it serves TLS and/or basic "
              "authentication (see [the web configuration file](#web-configuration-file))."),
    Component("ingest", ("ingest",), SPECS["ingest"],
              "`DATABASE_URL` and `REDIS_URL` are read when the prefixed variables are unset. The "
              "secret key must be the admin app's."),
    Component("admin", ("admin",), SPECS["admin"],
              "Settings come before the command: `perfanalysis admin [settings] init-db|serve|"
              "create-tenant|...`. `DATABASE_URL` and `REDIS_URL` are read when the prefixed "
              "variables are unset."),
    Component("grafana", ("grafana", "sync"), SPECS["grafana"],
              "Also reads `PERFANALYSIS_ADMIN_DATABASE_URL`, `DATABASE_URL` and "
              "`PERFANALYSIS_ADMIN_SECRET_KEY` when its own database URL or secret key is unset."),
    Component("grafana-prune-orphans", ("grafana", "prune-orphans"),
              SPECS["grafana-prune-orphans"],
              "`--influxdb-url`, `--alert-webhook-url`, `--tenants` and `--thresholds` are refused as flags and "
              "their variables ignored, so the grafana-sync service of docker-compose.yml runs it "
              "too. Like sync, reads `PERFANALYSIS_ADMIN_DATABASE_URL`, `DATABASE_URL` and "
              "`PERFANALYSIS_ADMIN_SECRET_KEY` when its own database URL is unset."),
    Component("report", ("report",), SPECS["report"],
              "What to report (tenant, hosts, time range, thresholds) is in the YAML file of "
              "`--config`; these settings say where the data and the credentials are. "
              "`DATABASE_URL` is read when the prefixed variable is unset."),
    Component("loadtest-run", ("loadtest", "run"), _loadtest_run),
    Component("loadtest-upload", ("loadtest", "upload"), _loadtest_upload),
)  # fmt: skip


MAKE_UP = "make up"  # a reader that is no component: the local stack (perfanalysis/devstack.py)
GRAFANA_PRUNE = "grafana-prune-orphans"
DEVSTACK_SERVICES = {
    "PERFANALYSIS_DEV_INFLUXDB_ADDRESS": "InfluxDB's HTTP API",
    "PERFANALYSIS_DEV_INFLUXDB_RPC_ADDRESS": "InfluxDB's backup and restore RPC",
    "PERFANALYSIS_DEV_PROMETHEUS_ADDRESS": "Prometheus",
    "PERFANALYSIS_DEV_ALERTMANAGER_ADDRESS": "Alertmanager",
    "PERFANALYSIS_DEV_ALERTSINK_ADDRESS": "the alert sink (Alertmanager's webhooks, appended to "
    "var/log/alerts.jsonl)",
}
DEVSTACK_ADDRESSES = {
    name: f"HOST:PORT of {service} in the `make up` stack; default {DEFAULT_ADDRESSES[name]}."
    for name, service in DEVSTACK_SERVICES.items()
}


@dataclass(frozen=True)
class Variable:
    """A variable read outside the settings parsers: by whom, and where (checked by a test)."""

    name: str
    readers: tuple[str, ...]  # component names, or MAKE_UP
    source: str  # the file that reads it, relative to the checkout
    meaning: str


OTHER_VARIABLES: tuple[Variable, ...] = (
    Variable("DATABASE_URL", ("ingest", "admin", "grafana", GRAFANA_PRUNE, "report"),
             "tenants/settings.py",
             "Admin database URL, when the component's own database-url setting is unset."),
    Variable("REDIS_URL", ("ingest", "admin"), "tenants/settings.py",
             "Redis URL, when the component's own redis-url setting is unset."),
    Variable("PERFANALYSIS_VAR_DIR", ("ingest", "admin", "grafana", GRAFANA_PRUNE, "report",
                                      MAKE_UP),
             "perfanalysis/paths.py",
             "State directory of development mode (generated secret key, SQLite database) and of "
             "the `make up` stack; the image sets /var/lib/perfanalysis. Default: var/ in the "
             "checkout; set but empty is refused."),
    Variable("PERFANALYSIS_NEW_PASSWORD", ("admin",), "tenants/cli.py",
             "Password for `admin create-user` and `admin set-password` instead of the prompt "
             "(keeps it off the command line)."),
    Variable("PROMETHEUS_MULTIPROC_DIR", ("ingest",), "ingest/main.py",
             "Directory the gunicorn workers share their metrics in, theirs alone: a previous "
             "run's metrics files there are removed at start, and a directory that holds the "
             "SQLite admin database or other `*.db` files is refused. Default: a private "
             "temporary directory."),
    Variable("STATE_DIRECTORY", ("exporter",), "exporter/config.py",
             "Set by systemd's StateDirectory=: the push spool's default parent."),
    Variable("XDG_STATE_HOME", ("exporter",), "exporter/config.py",
             "The push spool's default parent for a non-root user without systemd."),
    *(Variable(name, (MAKE_UP,), "perfanalysis/devstack.py", meaning)
      for name, meaning in DEVSTACK_ADDRESSES.items()),
)  # fmt: skip


def component(name: str) -> Component:
    for entry in COMPONENTS:
        if entry.name == name:
            return entry
    raise KeyError(name)


def component_of(command: Sequence[str]) -> Component | None:
    """The component an image command runs (``["admin", "serve"]`` → admin), or None."""
    args = list(command)
    if args and args[0] == "perfanalysis":
        args = args[1:]
    best: Component | None = None
    for entry in COMPONENTS:
        if tuple(args[: len(entry.command)]) == entry.command and (
            best is None or len(entry.command) > len(best.command)
        ):
            best = entry
    return best


def settings_variables(name: str) -> dict[str, Setting]:
    spec = component(name).build()
    return {setting.env_name(spec.env_prefix): setting for setting in spec.settings}


def variables_read_by(name: str) -> set[str]:
    """Every environment variable the named component (or ``make up``) reads."""
    names = {v.name for v in OTHER_VARIABLES if name in v.readers}
    if name == MAKE_UP:  # and the listen addresses of the services it starts
        return names | set(DEFAULT_ADDRESSES)
    names |= set(settings_variables(name))
    if name in ("grafana", GRAFANA_PRUNE):
        # both fall back to the admin app's settings (perfanalysis/grafana/settings.py)
        names |= set(settings_variables("admin"))
    return names


def all_settings_variables() -> dict[str, Setting]:
    found: dict[str, Setting] = {}
    for entry in COMPONENTS:
        found.update(settings_variables(entry.name))
    return found


def grafana_provisioning_variables() -> set[str]:
    """``${NAME}`` references in provisioning/grafana, which Grafana expands at start."""
    names: set[str] = set()
    for path in sorted(GRAFANA_PROVISIONING.rglob("*.yaml")):
        names |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", path.read_text()))
    return names


# ---------------------------------------------------------------------------------------------
# rendering


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(setting: Setting) -> str:
    value: Any = setting.default
    if setting.secret:
        return "*(secret, none)*" if value in (None, "") else "*(secret)*"
    if value is None or value == "":
        return ""
    if isinstance(value, Pattern):
        value = value.pattern
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return f"`{value}`"


def _value(setting: Setting) -> str:
    return "true/false" if setting.boolean else setting.metavar


def settings_table(spec: Spec) -> str:
    rows = [
        "| flag | environment variable | value | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in spec.settings:
        flag = f"`--[no-]{s.flag}`" if s.boolean else f"`--{s.flag}`"
        cells = (flag, f"`{s.env_name(spec.env_prefix)}`", _value(s), _default(s), s.help)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


# a bcrypt hash for basic_auth_users from the project's own dependency (htpasswd is Debian's
# apache2-utils, which no setup step installs); docs/operations.md gives the same line
BCRYPT_ONE_LINER = (
    ".venv/bin/python -c 'import bcrypt, getpass; "
    "print(bcrypt.hashpw(getpass.getpass().encode(), bcrypt.gensalt(10)).decode())'"
)


def web_config_section() -> str:
    from exporter.webconfig import FIELDS, NOT_IMPLEMENTED

    rows = ["| key | default | meaning |", "|---|---|---|"]
    rows += [f"| `{key}` | {f'`{default}`' if default else ''} | {_cell(meaning)} |"
             for key, default, meaning in FIELDS]  # fmt: skip
    refused = ", ".join(f"`{key}`" for key in sorted(NOT_IMPLEMENTED))
    return "\n".join(
        [
            "## Web configuration file",
            "",
            "`perfanalysis exporter --web.config.file=FILE` reads node_exporter's web "
            "configuration format (the Prometheus exporter-toolkit's): TLS and basic "
            "authentication on every path (`/metrics`, `/health`, `/`). The file is checked when "
            "the exporter starts, and every problem is listed then; as in node_exporter, a key "
            "given twice is refused. Relative paths are taken from "
            "the file's directory. The certificate, key and CA files are re-read when they change "
            "on disk, so a renewed certificate needs no restart, and so is the file itself, as "
            "node_exporter does: new users, headers and TLS settings apply at once (a revoked "
            "password stops working); a changed file that is invalid is logged once and every "
            "request is answered 500 until it is fixed; turning TLS on or off needs a restart. "
            "Without the flag the exporter loads none of this (no `ssl`, `yaml` or `bcrypt`).",
            "",
            *rows,
            "",
            f"Refused by name rather than ignored (exporter-toolkit settings not implemented "
            f"here): {refused}.",
            "",
            "```yaml",
            "tls_server_config:",
            "  cert_file: /etc/perfanalysis/tls/tls.crt",
            "  key_file: /etc/perfanalysis/tls/tls.key",
            "  # mutual TLS: only clients with a certificate from this CA",
            "  # client_auth_type: RequireAndVerifyClientCert",
            "  # client_ca_file: /etc/perfanalysis/tls/ca.crt",
            "basic_auth_users:",
            "  # a hash from the one-liner below",
            "  prometheus: $2b$10$...",
            "```",
            "",
            "A bcrypt hash for `basic_auth_users`, with the `bcrypt` package every install of "
            "PerfAnalysis has (a dependency of the project; the password is asked for, not put "
            "on the command line; `/opt/perfanalysis/bin/python` on a host set up as "
            "docs/operations.md says):",
            "",
            "```sh",
            BCRYPT_ONE_LINER,
            "```",
            "",
            "Or, where Debian's `apache2-utils` package is installed, "
            "`htpasswd -nBC 10 \"\" | tr -d ':\\n'`.",
            "",
            "Prometheus then scrapes with `scheme: https`, `tls_config: {ca_file: ...}` and "
            "`basic_auth: {username: prometheus, password_file: ...}`. A plain-HTTP request to "
            "the TLS port is answered `400 Client sent an HTTP request to an HTTPS server`; a "
            "missing or wrong password `401` with `WWW-Authenticate: Basic`.",
        ]
    )


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m deploy.configref` from the configuration parsers: do not "
        "edit; tests/unit/test_deploy_configref.py fails when this file is stale. -->",
        "",
        "Every setting of every component is a flag and an environment variable under the "
        "component's prefix. A flag wins over the variable, which wins over the default; a "
        "flag given twice is refused. "
        "Booleans are `--flag`/`--no-flag`, and `true/false`, `1/0`, `yes/no` or `on/off` in "
        "the environment. A variable with a component's prefix that is not one of its settings "
        "is an error, so a misspelt name never passes silently. Every unknown name and every "
        "value wrong on its own is reported at once; the checks across settings follow once "
        "those pass; either way the command exits with code 2. Secrets have no default "
        "outside development mode and are never echoed back.",
        "",
        "| component | command | environment prefix | settings |",
        "|---|---|---|---|",
    ]
    specs = {entry.name: entry.build() for entry in COMPONENTS}
    for entry in COMPONENTS:
        spec = specs[entry.name]
        out.append(
            f"| [{entry.name}](#{entry.name}) | `perfanalysis {' '.join(entry.command)}` | "
            f"`{spec.env_prefix}` | {len(spec.settings)} |"
        )
    for entry in COMPONENTS:
        spec = specs[entry.name]
        out += ["", f"## {entry.name}", "", f"`{spec.program}`: {spec.description}"]
        if entry.notes:
            out += ["", entry.notes]
        out += ["", settings_table(spec)]
    out += ["", web_config_section()]
    out += [
        "",
        "## Other environment variables",
        "",
        "Read outside the settings parsers.",
        "",
        "| variable | read by | meaning |",
        "|---|---|---|",
    ]
    for variable in OTHER_VARIABLES:
        readers = ", ".join(f"`{r}`" if r == MAKE_UP else r for r in variable.readers)
        out.append(f"| `{variable.name}` | {readers} | {_cell(variable.meaning)} |")
    components = ", ".join(f"`{name}` ({DEFAULT_ADDRESSES[name]})" for name in DEFAULT_ADDRESSES
                           if name not in DEVSTACK_SERVICES)  # fmt: skip
    out += [
        "",
        f"`make up` (perfanalysis/devstack.py) also reads {components} for the services it "
        "starts, with these defaults on loopback rather than the components' own; in every "
        "address it reads, a bare :PORT means 127.0.0.1. While any service of the stack runs, "
        "the addresses recorded in var/addresses.json win (`make up` refuses a variable naming "
        "another), so `make status`, `make admin` and a later `make up` find the stack without "
        "the variables set. Its services ignore `DATABASE_URL` and "
        "`REDIS_URL`: the stack keeps its own SQLite database under `PERFANALYSIS_VAR_DIR`, and "
        "no Redis.",
    ]
    grafana = ", ".join(f"`{name}`" for name in sorted(grafana_provisioning_variables()))
    out += [
        "",
        "Grafana (not PerfAnalysis) expands these in the provisioning files it is given "
        f"(provisioning/grafana/README.md says what each holds): {grafana}.",
        "",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    text = render()
    if args == ["--check"]:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python -m deploy.configref", file=sys.stderr)
            return 1
        return 0
    if args:
        print("usage: python -m deploy.configref [--check]", file=sys.stderr)
        return 2
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
