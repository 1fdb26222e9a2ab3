"""Write (or check) every generated file: rule files, their promtool tests, alertmanager.yml.

The committed layout is provisioning/prometheus/rules, provisioning/prometheus/tests and
provisioning/alertmanager/alertmanager.yml; the command line moves each of the three only by
naming it (``Layout.under`` derives the other two from a rules directory, for tests that build a
tree in memory). Generated files that are no
longer produced (a tenant was removed) are deleted, but only files carrying the generated header.
Every target is checked before anything changes, and each file is written next to its target and
renamed over it (``write``), so a failure never leaves new rules beside an old alertmanager.yml.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from perfanalysis import atomicfile
from perfanalysis.alerting import alertmanager, promtests, rules
from perfanalysis.alerting.thresholds import Thresholds
from perfanalysis.paths import ROOT

THRESHOLDS = ROOT / "provisioning" / "thresholds.yaml"
RULES_DIR = ROOT / "provisioning" / "prometheus" / "rules"
TESTS_DIR = ROOT / "provisioning" / "prometheus" / "tests"
ALERTMANAGER_FILE = ROOT / "provisioning" / "alertmanager" / "alertmanager.yml"


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
    """Whether the file carries the generated header; anything else (a directory, another
    encoding, a hand-written file) is not ours and is left alone."""
    if not path.is_file():
        return False
    header = rules.GENERATED.splitlines(keepends=True)[0].encode()
    with _reporting("read", path), path.open("rb") as handle:
        return handle.readline() == header


def drift(files: dict[Path, str], old: list[Path]) -> list[str]:
    """What differs between the generated files and the tree: one line per file."""
    problems = [f"{path}: stale, no longer generated" for path in old]
    for path, text in files.items():
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.is_dir():
            problems.append(f"{path}: is a directory, not the generated file")
        elif _read(path) != text.encode():
            problems.append(f"{path}: differs from what the generator produces")
    return problems


def _read(path: Path) -> bytes:
    with _reporting("read", path):
        return path.read_bytes()


def _writable_directory(directory: Path, path: Path) -> None:
    """Refuse, before anything is changed, a target whose directory cannot be made or written."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {existing} is not writable")


def _check_targets(files: dict[Path, str], old: list[Path]) -> dict[Path, str]:
    """The files that change; OutputError if any target or stale file cannot be replaced."""
    changed = {}
    for path, text in files.items():
        if path.is_dir():
            raise OutputError(f"cannot write {path}: it is a directory")
        _writable_directory(path.parent, path)
        if not path.exists() or _read(path) != text.encode():
            changed[path] = text
    for path in old:
        _writable_directory(path.parent, path)
    return changed


def _stage(path: Path, text: str) -> Path:
    """The new contents in a hidden temporary file next to ``path`` (no rule-file glob matches
    it), with ``path``'s permissions if it exists; os.replace then swaps it in whole."""
    with _reporting("write", path):
        return atomicfile.stage(path, text.encode())


def write(files: dict[Path, str], old: list[Path]) -> list[Path]:
    """Write what changed, then delete stale files; returns the paths touched.

    Nothing is changed until every target has been checked and every new file written in full
    next to its target: a failure before that leaves the tree as it was. The new files then
    replace the old ones (a rename each, so Prometheus never reads half a file), and stale files
    go last: a removed tenant's rules stay until default.rules.yml, which then covers it, is in.
    """
    changed = _check_targets(files, old)
    staged: dict[Path, Path] = {}
    try:
        for path, text in changed.items():
            staged[path] = _stage(path, text)
    except OutputError:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
        raise
    touched: list[Path] = []
    try:
        for path, temporary in staged.items():
            with _reporting("write", path):
                os.replace(temporary, atomicfile.target(path))
            touched.append(path)
    except OutputError:
        for path in staged.keys() - set(touched):
            staged[path].unlink(missing_ok=True)
        raise
    for path in old:
        with _reporting("delete", path):
            path.unlink()
        touched.append(path)
    return touched
