"""Write (or check) every generated file: rule files, their promtool tests, alertmanager.yml.

The layout mirrors provisioning/: with ``--out X/prometheus/rules`` the tests go to
``X/prometheus/tests`` and Alertmanager's file to ``X/alertmanager/alertmanager.yml``, so a
temporary tree can be generated without touching the committed one. Generated files that are no
longer produced (a tenant was removed) are deleted, but only files carrying the generated header.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from perfanalysis.alerting import alertmanager, promtests, rules
from perfanalysis.alerting.thresholds import Thresholds
from perfanalysis.paths import ROOT

THRESHOLDS = ROOT / "provisioning" / "thresholds.yaml"
RULES_DIR = ROOT / "provisioning" / "prometheus" / "rules"


class OutputError(Exception):
    """A generated file could not be read, written or deleted."""


@contextmanager
def _reporting(verb: str, path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot {verb} {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Layout:
    rules_dir: Path
    tests_dir: Path
    alertmanager_file: Path

    @classmethod
    def under(
        cls, rules_dir: Path, tests_dir: Path | None = None, alertmanager_file: Path | None = None
    ) -> Layout:
        return cls(
            rules_dir,
            tests_dir or rules_dir.parent / "tests",
            alertmanager_file or rules_dir.parent.parent / "alertmanager" / "alertmanager.yml",
        )


def outputs(thresholds: Thresholds, layout: Layout) -> dict[Path, str]:
    """Path → contents of every generated file."""
    rules_from_tests = os.path.relpath(layout.rules_dir, layout.tests_dir)
    files = {layout.rules_dir / name: text for name, text in rules.rule_files(thresholds).items()}
    for name, text in promtests.promtool_tests(thresholds, rules_from_tests).items():
        files[layout.tests_dir / name] = text
    files[layout.alertmanager_file] = alertmanager.render(thresholds)
    return files


def stale(layout: Layout, files: dict[Path, str]) -> list[Path]:
    """Generated files on disk that the thresholds no longer produce."""
    found = [*layout.rules_dir.glob("*.rules.yml"), *layout.tests_dir.glob("*.test.yml")]
    return sorted(p for p in found if p not in files and _generated(p))


def _generated(path: Path) -> bool:
    with _reporting("read", path), path.open() as handle:
        return handle.readline() == rules.GENERATED.splitlines(keepends=True)[0]


def drift(files: dict[Path, str], old: list[Path]) -> list[str]:
    """What differs between the generated files and the tree: one line per file."""
    problems = [f"{path}: stale, no longer generated" for path in old]
    for path, text in files.items():
        if not path.exists():
            problems.append(f"{path}: missing")
        elif _read(path) != text:
            problems.append(f"{path}: differs from what the generator produces")
    return problems


def _read(path: Path) -> str:
    with _reporting("read", path):
        return path.read_text()


def write(files: dict[Path, str], old: list[Path]) -> list[Path]:
    """Write what changed and delete stale files; returns the paths touched."""
    touched = []
    for path in old:
        with _reporting("delete", path):
            path.unlink()
        touched.append(path)
    for path, text in files.items():
        if not path.exists() or _read(path) != text:
            with _reporting("write", path):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            touched.append(path)
    return touched
