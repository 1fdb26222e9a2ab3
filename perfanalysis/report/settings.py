"""The report command's flags, each with a PERFANALYSIS_REPORT_ variable (perfanalysis.config).

What to report is in the YAML file (``--config``); where the data and the credentials are is
deployment, and comes from here. ``DATABASE_URL`` is honoured when the prefixed variable is unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from perfanalysis.config import (
    Setting,
    Spec,
    admin_database_url,
    optional_http_url,
    parse,
    positive_int,
    timeout_seconds,
)

ENV_PREFIX = "PERFANALYSIS_REPORT_"


def build_spec() -> Spec:
    spec = Spec(
        program="perfanalysis report",
        env_prefix=ENV_PREFIX,
        description="Build a performance report (HTML, and PDF on request) from a YAML configuration.",
    )
    for setting in (
        Setting(
            "config",
            "The report configuration (YAML); see provisioning/examples/report.yaml.",
            None,
            str,
            metavar="FILE",
        ),
        Setting(
            "output",
            "The HTML file to write; default: the configuration's name with .html, in the current directory.",
            "",
            str,
            metavar="FILE",
        ),
        Setting(
            "pdf",
            "Also print the report to this PDF file (needs Chromium).",
            "",
            str,
            metavar="FILE",
        ),
        Setting(
            "influxdb.url",
            "InfluxDB 1.x URL (the YAML's influxdb.url wins when given).",
            "http://127.0.0.1:8086",
            optional_http_url,
            metavar="URL",
        ),
        Setting(
            "influxdb.timeout",
            "Timeout of one InfluxDB query, in seconds.",
            120.0,
            timeout_seconds,
            metavar="SECONDS",
        ),
        Setting(
            "influxdb.concurrency", "Queries run at the same time.", 4, positive_int, metavar="N"
        ),
        Setting(
            "database-url",
            "SQLAlchemy URL of the admin database, for the tenant's read credentials and collector ids (also DATABASE_URL); default: SQLite in var/admin.db. Unused when the YAML gives influxdb credentials.",
            None,
            admin_database_url,
            metavar="URL",
        ),
        Setting(
            "secret-key",
            "The admin app's secret key, which decrypts the stored InfluxDB password.",
            "",
            str,
            secret=True,
            metavar="SECRET",
        ),
        Setting(
            "dev",
            "Development mode: use the admin app's generated secret key under var/.",
            False,
            boolean=True,
        ),
        Setting(
            "admin-url",
            "Base URL of the admin app, for links in recommendations (e.g. https://admin.example.com); paths only when empty.",
            "",
            optional_http_url,
            metavar="URL",
        ),
        Setting(
            "chromium",
            "The Chromium binary for --pdf; default: chromium (or chromium-browser, google-chrome) on PATH.",
            "",
            str,
            metavar="PATH",
        ),
        Setting("progress", "Show a progress line on stderr while reading.", True, boolean=True),
    ):
        spec.add(setting)
    spec.checks.append(_checks)
    return spec


def _checks(values: dict[str, Any]) -> list[str]:
    if not values["config"]:
        return ["flag --config: required: the report configuration file (YAML)"]
    return []


def load(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse flags and PERFANALYSIS_REPORT_* variables; ConfigError lists every problem."""
    env = dict(os.environ if environ is None else environ)
    if "DATABASE_URL" in env and f"{ENV_PREFIX}DATABASE_URL" not in env:
        env[f"{ENV_PREFIX}DATABASE_URL"] = env["DATABASE_URL"]
    values = parse(build_spec(), argv, {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
    if values["database_url"] is None:
        from perfanalysis.paths import var_dir

        values["database_url"] = f"sqlite:///{var_dir() / 'admin.db'}"
    if not values["secret_key"] and values["dev"]:
        from tenants.settings import development_secret

        values["secret_key"] = development_secret()
    return values
