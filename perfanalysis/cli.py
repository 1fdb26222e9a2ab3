"""``perfanalysis COMPONENT [flags]``: one console command, one subcommand per component.

Components are imported only when chosen, so the exporter never loads server libraries.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMPONENTS = {
    "exporter": ("exporter.main", "serve node_exporter-compatible metrics for this host"),
    "ingest": ("ingest.main", "the write API: line protocol from collectors into tenant databases"),
    "loadtest": ("exporter.loadtest.main", "calibrated CPU load test of this host, and its upload"),
    "report": (
        "perfanalysis.report.cli",
        "HTML/PDF performance report from a tenant's InfluxDB data",
    ),
    "admin": ("tenants.cli", "the admin app: database, tenants, users, collectors, API keys"),
    "alerting": (
        "perfanalysis.alerting.cli",
        "Prometheus rules and Alertmanager routes from thresholds.yaml",
    ),
    "grafana": (
        "perfanalysis.grafana.cli",
        "dashboards, provisioning files and the per-tenant Grafana sync",
    ),
}


def usage() -> str:
    lines = ["usage: perfanalysis COMPONENT [flags]", "", "components:"]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in COMPONENTS.items()]
    lines += ["", "Run 'perfanalysis COMPONENT --help' for a component's flags."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMPONENTS:
        print(f"perfanalysis: unknown component {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMPONENTS[name][0])
    result: int = module.run(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
