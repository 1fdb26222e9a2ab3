"""The report command's flags, each with a PERFANALYSIS_REPORT_ variable (perfanalysis.config).

What to report is in the YAML file (``--config``); where the data and the credentials are is
deployment, and comes from here. ``DATABASE_URL`` is honoured when the prefixed variable is unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from perfanalysis.config import (
    Setting,
    Spec,
    admin_database_url,
    http_url,
    optional_http_url,
    parse,
    positive_int,
    timeout_seconds,
)
from perfanalysis.report.files import same_file, target_problem

ENV_PREFIX = "PERFANALYSIS_REPORT_"
DEFAULT_INFLUXDB_URL = "http://127.0.0.1:8086"
# the first segments of InfluxDB 1.x's own endpoints: a URL whose path holds one names an
# endpoint, not the base the report puts /query after (make status once showed .../ping)
INFLUXDB_ENDPOINTS = frozenset({"ping", "query", "write", "health", "metrics", "debug", "api"})


def influxdb_base_url(text: str) -> str:
    """InfluxDB's base URL, where /query is: any path before it is a proxy's prefix. The check
    of both --influxdb.url and the configuration's influxdb.url. A URL naming one of InfluxDB's
    endpoints (/ping, /query, ...) or with a query or fragment is refused with the base URL to
    give, rather than read as a base that every query 404s under; so is one with a user or
    password, which requests would send instead of the read user's, and messages would print."""
    if not text:
        return text
    url = http_url(text)
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    endpoint = next((i for i, s in enumerate(segments) if s.lower() in INFLUXDB_ENDPOINTS), None)
    credentials = "@" in parts.netloc
    if endpoint is None and not parts.query and not parts.fragment and not credentials:
        return url
    kept = segments if endpoint is None else segments[:endpoint]
    host = parts.netloc.rpartition("@")[2]
    base = urlunsplit((parts.scheme, host, "/".join(["", *kept]), "", ""))
    if endpoint is not None:
        what = f"its path ends in /{'/'.join(segments[endpoint:])}, an InfluxDB endpoint"
    elif parts.query or parts.fragment:
        what = "it has a query or fragment"
    else:
        what = (
            "it holds a user name or password, which would be sent instead of the tenant's read "
            "user and printed in messages: give them as influxdb.username and password_env or "
            "password_file in the report configuration"
        )
    raise ValueError(
        f"not InfluxDB's base URL ({what}): give {base}, to which the report adds /query"
    )


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
            "The HTML file to write, replaced whole (a failed run keeps the previous one); default: the configuration's name with .html, in the current directory. Never the --config file.",
            "",
            str,
            metavar="FILE",
        ),
        Setting(
            "pdf",
            "Also print the report to this PDF file (needs Chromium), replaced once printed; not the --config or --output file.",
            "",
            str,
            metavar="FILE",
        ),
        Setting(
            "influxdb.url",
            "InfluxDB 1.x base URL, without /ping or /query (the YAML's influxdb.url wins when "
            f"given); default: {DEFAULT_INFLUXDB_URL}, or with --dev the address 'make up' "
            "recorded for its InfluxDB in var/addresses.json (as 'make status' shows it).",
            "",
            influxdb_base_url,
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
            conventional_env="DATABASE_URL",
        ),
        Setting(
            "secret-key",
            "The admin app's secret key, which decrypts the stored InfluxDB password. Required "
            "outside --dev, unless the YAML gives influxdb credentials (then the admin database "
            "is not read).",
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
    config, output, pdf = values["config"], output_path(values), values["pdf"]
    problems = []
    if same_file(output, config):
        problems.append(
            f"flag --output: {output} is the configuration file (--config): the report would "
            "overwrite it; give another --output"
            if values["output"]
            else f"flag --output: not given, and the default, {output} (the configuration's name "
            "with .html, in the current directory), is the configuration file itself: give --output"
        )
    unusable = target_problem(output)  # before the queries, not after them
    if unusable:
        default = "" if values["output"] else " (not given: the default)"
        problems.append(f"flag --output{default}: {unusable}")
    unusable = target_problem(pdf) if pdf else None
    if unusable:
        problems.append(f"flag --pdf: {unusable}")
    if pdf and same_file(pdf, config):
        problems.append(
            f"flag --pdf: {pdf} is the configuration file (--config): the PDF would overwrite "
            "it; give another --pdf"
        )
    elif pdf and same_file(pdf, output):
        problems.append(f"flag --pdf: {pdf} is the HTML report's file too (--output {output}): "
                        "give the PDF a name of its own")  # fmt: skip
    return problems


def output_path(values: Mapping[str, Any]) -> str:
    """``--output``, or the configuration's name with .html in the current directory."""
    return str(values["output"] or Path(values["config"]).with_suffix(".html").name)


def load(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse flags and PERFANALYSIS_REPORT_* variables; ConfigError lists every problem."""
    values = parse(build_spec(), argv, os.environ if environ is None else environ)
    if values["database_url"] is None:
        from perfanalysis.paths import var_dir

        values["database_url"] = f"sqlite:///{var_dir() / 'admin.db'}"
    if not values["influxdb_url"]:
        values["influxdb_url"] = dev_influxdb_url() if values["dev"] else DEFAULT_INFLUXDB_URL
    if not values["secret_key"] and values["dev"]:
        from tenants.settings import development_secret

        values["secret_key"] = development_secret()
    return values


def dev_influxdb_url() -> str:
    """The local stack's InfluxDB, where ``make status`` and ``make admin`` find it: the address
    ``make up`` recorded while the stack runs, else PERFANALYSIS_DEV_INFLUXDB_ADDRESS or its
    default."""
    from perfanalysis.devstack import address

    return f"http://{address('PERFANALYSIS_DEV_INFLUXDB_ADDRESS')}"
