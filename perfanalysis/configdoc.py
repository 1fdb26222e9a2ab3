"""Writes each component's configuration table into README.md between its markers.

``python -m perfanalysis.configdoc`` rewrites the README; a unit test fails when it is stale.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from perfanalysis.config import Spec

README = Path(__file__).resolve().parent.parent / "README.md"


def _exporter_spec() -> Spec:
    from exporter.config import build_spec

    return build_spec()


def _admin_spec() -> Spec:
    from tenants.settings import build_spec

    return build_spec()


def _ingest_spec() -> Spec:
    from ingest.settings import build_spec

    return build_spec()


def _report_spec() -> Spec:
    from perfanalysis.report.settings import build_spec

    return build_spec()


def _grafana_spec() -> Spec:
    from perfanalysis.grafana.settings import build_spec

    return build_spec()


def _grafana_prune_spec() -> Spec:
    from perfanalysis.grafana.settings import build_prune_spec

    return build_prune_spec()


SPECS: dict[str, Callable[[], Spec]] = {
    "exporter": _exporter_spec,
    "ingest": _ingest_spec,
    "admin": _admin_spec,
    "grafana": _grafana_spec,
    "grafana-prune-orphans": _grafana_prune_spec,
    "report": _report_spec,
}


def render_readme(text: str) -> str:
    for name, spec in SPECS.items():
        pattern = re.compile(
            rf"(<!-- config:{name} -->\n)(?:.*?\n)?(<!-- /config:{name} -->)", flags=re.DOTALL
        )
        if not pattern.search(text):
            raise ValueError(f"README.md lacks the <!-- config:{name} --> markers")
        table = spec().markdown_table()

        def fill(match: re.Match[str], table: str = table) -> str:
            return f"{match.group(1)}{table}\n{match.group(2)}"

        text = pattern.sub(fill, text)
    return text


def main() -> int:
    README.write_text(render_readme(README.read_text()))
    print(f"updated {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
