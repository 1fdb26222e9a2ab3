"""``perfanalysis alerting generate [--check]``: thresholds.yaml → rules, tests, routes.

Exit status: 0 done (or, with --check, nothing to change); 1 the tree differs (--check) or a file
could not be read or written; 2 a bad flag or an invalid thresholds file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from perfanalysis.alerting.generate import (
    RULES_DIR,
    THRESHOLDS,
    Layout,
    OutputError,
    drift,
    outputs,
    stale,
    write,
)
from perfanalysis.alerting.promtests import ScenarioError
from perfanalysis.alerting.thresholds import ThresholdsError, load

PROGRAM = "perfanalysis alerting"
EXIT_STATUS = (
    "exit status: 0 done (with --check: nothing would change); 1 the tree differs (--check) or a "
    "file could not be read or written; 2 a bad flag or an invalid thresholds file"
)


def parser(prog: str = PROGRAM) -> argparse.ArgumentParser:
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
        "file for each, and alertmanager.yml, from the thresholds file.",
        epilog=EXIT_STATUS,
    )
    generate.add_argument(
        "--thresholds", type=Path, default=THRESHOLDS, help="default: %(default)s"
    )
    generate.add_argument(
        "--out", type=Path, default=RULES_DIR, help="rules directory; default: %(default)s"
    )
    generate.add_argument(
        "--tests-out", type=Path, help="promtool tests directory; default: OUT/../tests"
    )
    generate.add_argument(
        "--alertmanager-out", type=Path, help="default: OUT/../../alertmanager/alertmanager.yml"
    )
    generate.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if anything would change"
    )
    return main


def run(argv: Sequence[str], prog: str = PROGRAM) -> int:
    """``prog`` is how the command was run, for its usage and hints."""
    args = parser(prog).parse_args(list(argv))  # exits 2 for a bad flag
    try:
        thresholds = load(args.thresholds)
        layout = Layout.under(args.out, args.tests_out, args.alertmanager_out)
        files = outputs(thresholds, layout)
    except ThresholdsError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ScenarioError as exc:  # thresholds no promtool test can be built for
        print(f"{args.thresholds}: {exc}", file=sys.stderr)
        return 2
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
