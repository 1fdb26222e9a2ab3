"""Dashboards as the JSON committed under ``grafana/dashboards/``, and the check that they match.

The text is deterministic (sorted keys, two-space indent, trailing newline), so a difference
between the committed files and the generator's output is a real change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from perfanalysis.grafana.dashboards import DASHBOARDS
from perfanalysis.paths import ROOT

DASHBOARD_DIR = Path("grafana") / "dashboards"


def default_dir() -> Path:
    return ROOT / DASHBOARD_DIR


def as_dict(dashboard: object) -> dict[str, Any]:
    """The dashboard's JSON model as plain data."""
    data: dict[str, Any] = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    return data


def to_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """File name -> JSON text, built in memory."""
    return {name: to_text(as_dict(build())) for name, build in DASHBOARDS.items()}


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def drift(directory: Path) -> list[str]:
    """Files that differ from the generator's output, are missing, or are not generated."""
    expected = render_all()
    problems = []
    for name, text in expected.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text() != text:
            problems.append(f"{path}: differs from the generator's output")
    for path in sorted(directory.glob("*.json")):
        if path.name not in expected:
            problems.append(f"{path}: not produced by the generator")
    return problems
