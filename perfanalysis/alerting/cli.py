"""``python -m perfanalysis.alerting generate [--check]``: thresholds.yaml → rules, tests, routes."""

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


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m perfanalysis.alerting", description=__doc__)
    commands = main.add_subparsers(dest="command", required=True)
    generate = commands.add_parser(
        "generate",
        help="write the Prometheus rule files, their promtool tests and alertmanager.yml",
        description="Generate one rule file per tenant plus default.rules.yml, a promtool test "
        "file for each, and alertmanager.yml, from the thresholds file.",
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


def run(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    try:
        thresholds = load(args.thresholds)
        layout = Layout.under(args.out, args.tests_out, args.alertmanager_out)
        files = outputs(thresholds, layout)
    except (ThresholdsError, ScenarioError) as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        old = stale(layout, files)
        if args.check:
            return _check(files, old)
        touched = write(files, old)
    except OutputError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in touched:
        print(f"{'deleted' if not path.exists() else 'wrote'} {path}")
    return 0


def _check(files: dict[Path, str], old: list[Path]) -> int:
    problems = drift(files, old)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("run: python -m perfanalysis.alerting generate", file=sys.stderr)
    return 1 if problems else 0
