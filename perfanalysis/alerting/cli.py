"""``perfanalysis alerting generate [--check]``: thresholds.yaml → rules, tests, routes.

Without flags it writes the committed tree (provisioning/prometheus/rules and tests,
provisioning/alertmanager/alertmanager.yml). ``--out`` moves the rules only and needs
``--tests-out`` and ``--alertmanager-out`` with it: nothing is derived from it, so the command
writes only where it is told (a derived ``OUT/../../alertmanager`` once landed at the
filesystem's root). As every other command, it refuses a flag given twice (perfanalysis.config)
rather than letting the last one win.

Exit status: 0 done (or, with --check, nothing to change); 1 the tree differs (--check) or a file
could not be read or written; 2 a bad flag or an invalid thresholds file. Warnings (a null default
receiver, no watchdog heartbeat, a tenant no Prometheus target carries) go to stderr, each as
``FILE: key: warning: ...``, and change neither what is written nor the exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perfanalysis.alerting.generate import (
    ALERTMANAGER_FILE,
    RULES_DIR,
    TESTS_DIR,
    THRESHOLDS,
    Layout,
    OutputError,
    drift,
    outputs,
    stale,
    write,
)
from perfanalysis.alerting.promtests import ScenarioError
from perfanalysis.alerting.targets import unscraped_warnings
from perfanalysis.alerting.thresholds import ThresholdsError, load
from perfanalysis.paths import ROOT

PROGRAM = "perfanalysis alerting"
EXIT_STATUS = (
    "exit status: 0 done (with --check: nothing would change); 1 the tree differs (--check) or a "
    "file could not be read or written; 2 a bad flag or an invalid thresholds file"
)


class _Once(argparse.Action):
    """Stores the value, and every value given, so that ``run`` can refuse a repeated flag."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given = getattr(namespace, GIVEN, None)
        if given is None:
            given = {}
            setattr(namespace, GIVEN, given)
        shown = str(option_string) if self.nargs == 0 else repr(str(values))
        given.setdefault(self.option_strings[-1], []).append(shown)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


class _OnceFlag(_Once):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, const=True, default=False, **kwargs)


GIVEN = "_given"  # the namespace attribute _Once records each flag's values in


def _shown(path: Path) -> str:
    """A default as the checkout names it (the absolute path when it is elsewhere)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parser(prog: str = PROGRAM) -> argparse.ArgumentParser:
    return _parsers(prog)[0]


def _parsers(prog: str) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command's parser and its ``generate`` subparser."""
    main = argparse.ArgumentParser(
        prog=prog,
        description="Prometheus rules, their promtool tests and Alertmanager routes from "
        "thresholds.yaml.",
        epilog=EXIT_STATUS,
    )
    commands = main.add_subparsers(dest="command", required=True)
    generate = commands.add_parser(
        "generate",
        help="write the Prometheus rule files, their promtool tests and alertmanager.yml",
        description="Generate one rule file per tenant plus default.rules.yml, a promtool test "
        "file for each, and alertmanager.yml, from the thresholds file. Without --out, "
        "--tests-out and --alertmanager-out it writes the committed tree under provisioning/. "
        "--out needs --tests-out and --alertmanager-out too: nothing is written anywhere not "
        "named. A flag given twice is refused.",
        epilog=EXIT_STATUS,
    )
    generate.add_argument(
        "--thresholds",
        type=Path,
        default=THRESHOLDS,
        action=_Once,
        help=f"default: {_shown(THRESHOLDS)}",
    )
    generate.add_argument(
        "--out",
        type=Path,
        action=_Once,
        help=f"rules directory; default: {_shown(RULES_DIR)}. Given, it needs --tests-out and "
        "--alertmanager-out too",
    )
    generate.add_argument(
        "--tests-out",
        type=Path,
        action=_Once,
        help=f"promtool tests directory; default: {_shown(TESTS_DIR)} (required with --out)",
    )
    generate.add_argument(
        "--alertmanager-out",
        type=Path,
        action=_Once,
        help=f"Alertmanager's configuration file; default: {_shown(ALERTMANAGER_FILE)} "
        "(required with --out)",
    )
    generate.add_argument(
        "--check", action=_OnceFlag, help="write nothing; exit 1 if anything would change"
    )
    return main, generate


def _flag_problems(args: argparse.Namespace) -> list[str]:
    """A flag given twice (as perfanalysis.config words it), and --out without the other two."""
    given: dict[str, list[str]] = getattr(args, GIVEN, None) or {}
    problems = [
        f"flag {flag}: given {'twice' if len(each) == 2 else f'{len(each)} times'} "
        f"({', '.join(each[:-1])} and {each[-1]})"
        for flag, each in given.items()
        if len(each) > 1
    ]
    if args.out is not None:
        missing = [flag for flag, value in (("--tests-out", args.tests_out),
                                            ("--alertmanager-out", args.alertmanager_out))
                   if value is None]  # fmt: skip
        if missing:
            problems.append(
                f"flag --out: needs {' and '.join(missing)} as well: nothing is derived from "
                "--out, so that nothing is written where it was not named"
            )
    return problems


def run(argv: Sequence[str], prog: str = PROGRAM) -> int:
    """``prog`` is how the command was run, for its usage and hints."""
    main, generate = _parsers(prog)
    args = main.parse_args(list(argv))  # exits 2 for a bad flag
    problems = _flag_problems(args)
    if problems:  # as argparse words its own errors, each of them
        generate.print_usage(sys.stderr)
        for problem in problems:
            print(f"{generate.prog}: error: {problem}", file=sys.stderr)
        return 2
    try:
        thresholds = load(args.thresholds)
        layout = Layout(
            args.out or RULES_DIR,
            args.tests_out or TESTS_DIR,
            args.alertmanager_out or ALERTMANAGER_FILE,
        )
        files = outputs(thresholds, layout)
        # the Prometheus that loads the rules has its configuration beside them
        warnings = [*thresholds.warnings, *unscraped_warnings(thresholds, layout.rules_dir.parent)]
    except ThresholdsError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ScenarioError as exc:  # thresholds no promtool test can be built for
        print(f"{args.thresholds}: {exc}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(warning, file=sys.stderr)
    try:
        old = stale(layout, files)
        if args.check:
            return _check(files, old, prog)
        touched = write(files, old)
    except OutputError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in touched:
        print(f"{'deleted' if not path.exists() else 'wrote'} {path}")
    return 0


def _check(files: dict[Path, str], old: list[Path], prog: str) -> int:
    problems = drift(files, old)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"run: {prog} generate", file=sys.stderr)
    return 1 if problems else 0
