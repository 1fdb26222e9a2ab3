"""``perfanalysis grafana generate|check|sync|prune-orphans``: dashboards and provisioning files,
and the live sync.

* ``generate`` writes grafana/dashboards/*.json and provisioning/grafana/** from the code (the
  alert rules with the defaults of provisioning/thresholds.yaml);
* ``check`` exits 1 when the committed files differ from what ``generate`` would write;
* ``sync [flags]`` applies every tenant's org, data source, dashboards and alert rules (with the
  tenant's thresholds) to Grafana;
* ``prune-orphans [flags]`` deletes the orgs sync made for tenants since deleted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perfanalysis.grafana.sync import Report

USAGE = """usage: perfanalysis grafana COMMAND [flags]

commands:
  generate   write grafana/dashboards/*.json and provisioning/grafana/ from the code
  check      exit 1 when the committed files differ from what generate writes
  sync       create or update each tenant's Grafana org, data source, dashboards and alert rules
             (perfanalysis grafana sync --help for its flags)
  prune-orphans
             delete the orgs sync made for tenants that have since been deleted
             (perfanalysis grafana prune-orphans --help for its flags)"""

HELP = {
    "generate": """usage: perfanalysis grafana generate

Write grafana/dashboards/*.json and provisioning/grafana/** from the code (only the files that
differ), the alert rules with the defaults of provisioning/thresholds.yaml: run it after changing
them. Takes no flags and reads no environment variables; exits 2 when the thresholds file is
invalid (every problem listed), having written nothing.""",
    "check": """usage: perfanalysis grafana check

Exit 1, listing each file, when the committed grafana/dashboards/*.json or provisioning/grafana/**
differ from what generate writes (or a dashboard file is no longer produced), as after a change
of the defaults in provisioning/thresholds.yaml; 0 when they match; 2 when the thresholds file is
invalid. Takes no flags and reads no environment variables.""",
}
HELP_FLAGS = ("-h", "--help", "help")


def generated() -> dict[Path, str]:
    """Every generated file by absolute path; ThresholdsError when thresholds.yaml is invalid."""
    from perfanalysis.alerting.thresholds import load
    from perfanalysis.grafana import alerts, provisioning, render

    thresholds = load(alerts.default_thresholds())
    files = {render.default_dir() / name: text for name, text in render.render_all().items()}
    files |= {
        provisioning.default_dir() / name: text
        for name, text in provisioning.files(thresholds).items()
    }
    return files


def _generated_or_refused(command: str) -> dict[Path, str] | int:
    """``generated()``, or exit status 2 after listing what is wrong with the thresholds file."""
    from perfanalysis.alerting.thresholds import ThresholdsError

    try:
        return generated()
    except ThresholdsError as exc:
        _print_problems(
            f"perfanalysis grafana {command}",
            "invalid thresholds file (nothing written)",
            exc.errors,
        )
        return 2


def _print_problems(program: str, heading: str, errors: Sequence[str]) -> None:
    """``program: heading:``, then every problem on a line of its own (each names where it is)."""
    print(f"{program}: {heading}:", file=sys.stderr)
    for error in errors:
        print(f"  - {error}", file=sys.stderr)


def generate() -> int:
    """Write the files that differ, all or none (perfanalysis.alerting.generate.write): every
    target is checked and every new file written in full beside it before any is renamed over
    the old one, so a failure leaves the tree as it was, never new dashboards beside old alert
    provisioning, and Grafana's provisioner, which rereads the dashboards, never loads half a
    file. Files are compared as bytes: one that is not UTF-8 is rewritten, a directory in a
    file's place or an unreadable file stops the run (exit 1) naming it, before anything is
    written."""
    from perfanalysis.alerting.generate import OutputError, write

    files = _generated_or_refused("generate")
    if isinstance(files, int):
        return files
    try:
        written = write(files, [])
    except OutputError as exc:
        print(f"perfanalysis grafana generate: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} file(s) written, {len(files) - len(written)} already up to date")
    return 0


def check() -> int:
    """The files that differ from the generator's output as bytes (one that is not UTF-8 simply
    differs), are missing, are directories, or are dashboards it no longer produces; a file that
    cannot be read is named (exit 1 either way)."""
    from perfanalysis.alerting.generate import OutputError, drift
    from perfanalysis.grafana import render

    files = _generated_or_refused("check")
    if isinstance(files, int):
        return files
    problems = []
    for path, text in files.items():
        try:
            problems += [f"{problem} (run generate)" for problem in drift({path: text}, [])]
        except OutputError as exc:
            problems.append(f"perfanalysis grafana check: {exc}")
    problems += [f"{path}: not produced by the generator"
                 for path in sorted(render.default_dir().glob("*.json"))
                 if path not in files]  # fmt: skip
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def sync(argv: Sequence[str]) -> int:
    from perfanalysis.alerting.thresholds import ThresholdsError
    from perfanalysis.alerting.thresholds import load as load_thresholds
    from perfanalysis.grafana.client import SyncError
    from perfanalysis.grafana.settings import load
    from perfanalysis.grafana.sync import sync as run_sync
    from perfanalysis.grafana.tenantsource import DatabaseSettingError, TenantError, load_tenants

    program = "perfanalysis grafana sync"
    settings = _settings(program, load, argv)
    if isinstance(settings, int):
        return settings
    try:  # before the admin database and Grafana: a bad file stops the run with nothing written
        thresholds = load_thresholds(settings["thresholds"])
    except ThresholdsError as exc:
        _print_problems(
            program, "invalid thresholds file (nothing was sent to Grafana)", exc.errors
        )
        return 2
    try:
        tenants = load_tenants(
            settings["database_url"], settings["secret_key"], settings["tenants"]
        )
        report = run_sync(settings, tenants.chosen, tenants.instances, thresholds)
    except DatabaseSettingError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 2
    except (SyncError, TenantError) as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 1
    _print_report(program, report)
    summary = f"{len(tenants.chosen)} tenant(s), {report.changes} change(s)"
    if report.orphans:
        summary += f", {report.orphans} orphan org(s) (perfanalysis grafana prune-orphans)"
    if report.failures:
        summary += f", {len(report.failures)} tenant(s) not synced (see above)"
    print(summary)
    return 1 if report.failures else 0


def prune_orphans(argv: Sequence[str]) -> int:
    from perfanalysis.grafana.client import SyncError
    from perfanalysis.grafana.orgs import PruneRefused
    from perfanalysis.grafana.settings import load_prune
    from perfanalysis.grafana.sync import prune
    from perfanalysis.grafana.tenantsource import DatabaseSettingError, TenantError, load_instances

    program = "perfanalysis grafana prune-orphans"
    settings = _settings(program, load_prune, argv)
    if isinstance(settings, int):
        return settings
    try:
        report = prune(settings, load_instances(settings["database_url"]))
    except DatabaseSettingError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 2
    except PruneRefused as exc:
        print(f"{program}: refused, nothing deleted: {exc}", file=sys.stderr)
        return 1
    except (SyncError, TenantError) as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 1
    _print_report(program, report)
    if not report.orphans:
        print("no orphan org: nothing to delete")
    elif settings["dry_run"]:
        print(f"{report.orphans} orphan org(s) would be deleted (--dry-run: none was)")
    else:
        print(f"{report.orphans} orphan org(s) deleted")
    return 0


def _settings(
    program: str, load: Callable[[Sequence[str]], dict[str, Any]], argv: Sequence[str]
) -> dict[str, Any] | int:
    """The parsed settings, or the exit status when there are none to run with (help, errors)."""
    from perfanalysis.config import ConfigError, HelpRequested

    try:
        return load(argv)
    except HelpRequested as help_:
        print(help_.text)
        return 0
    except ConfigError as exc:
        _print_problems(program, "invalid configuration", exc.errors)
        return 2


def _print_report(program: str, report: Report) -> None:
    for line in report.lines:
        print(line)
    for warning in report.warnings:
        print(f"{program}: warning: {warning}", file=sys.stderr)
    for failure in report.failures:
        print(f"{program}: {failure}", file=sys.stderr)


def run(argv: Sequence[str]) -> int:
    args = list(argv)
    if not args or args[0] in HELP_FLAGS:
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "sync":
        return sync(rest)
    if command == "prune-orphans":
        return prune_orphans(rest)
    if command not in HELP:
        print(f"perfanalysis grafana: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    if rest and rest[0] in HELP_FLAGS:
        print(HELP[command])
        return 0
    if rest:
        print(
            f"perfanalysis grafana {command}: takes no arguments, got {' '.join(rest)!r}\n\n"
            f"{HELP[command]}",
            file=sys.stderr,
        )
        return 2
    return generate() if command == "generate" else check()
