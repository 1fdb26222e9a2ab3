"""``perfanalysis report --config report.yaml [--output out.html] [--pdf out.pdf]``.

Exit codes: 0 written; 2 bad flags (among them an --output or --pdf that is the configuration file,
a directory or in a directory that does not exist, all refused before anything is read, a PDF
that is the HTML file, a database-url naming a SQLite file that does not exist, or no secret
key when the credentials come from the admin database: a check across settings, as ingest, admin
and grafana sync make it) or a bad configuration file (every problem listed, each naming the file,
the line and the key path: an influxdb.database other than the tenant's among them); 1 the report could
not be built or written (storage, credentials, unknown host, a full disk, Chromium). The HTML and the PDF are each replaced whole, or not at all
(perfanalysis.report.files): a failed run keeps the previous report.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from perfanalysis.config import ConfigError, HelpRequested
from perfanalysis.report import settings as report_settings
from perfanalysis.report.build import build_report
from perfanalysis.report.config import load_config
from perfanalysis.report.files import write_bytes
from perfanalysis.report.influx import ReportError
from perfanalysis.report.page import render_page
from perfanalysis.report.pdf import find_browser, print_pdf
from perfanalysis.report.source import SettingError, setting_problems
from perfanalysis.report.validate import ReportConfigError


def run(argv: Sequence[str], stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        values = report_settings.load(argv)
    except HelpRequested as shown:
        print(shown.text, file=out)
        return 0
    except ConfigError as exc:
        print("perfanalysis report: invalid settings:", *exc.errors, sep="\n  ", file=err)
        return 2
    try:
        config = load_config(values["config"])
    except ReportConfigError as exc:
        print("perfanalysis report: invalid configuration:", *exc.errors, sep="\n  ", file=err)
        return 2
    problems = setting_problems(config, values)  # before anything is read or written
    if problems:
        print("perfanalysis report: invalid settings:", *problems, sep="\n  ", file=err)
        return 2
    output = Path(report_settings.output_path(values))
    try:
        browser = find_browser(values["chromium"]) if values["pdf"] else ""
        started = time.monotonic()
        report = build_report(config, values, stream=err)
        write_bytes(output, render_page(report).encode("utf-8"))  # whole, or the old one kept
        print(
            f"report: wrote {output} ({output.stat().st_size / 1e6:.1f} MB, {len(report.hosts)} host(s), "
            f"{report.grid.count:,} steps of {report.grid.step}s) in {time.monotonic() - started:.1f}s",
            file=err,
        )
        if values["pdf"]:
            print_pdf(output, Path(values["pdf"]), browser)
            print(f"report: wrote {values['pdf']}", file=err)
    except SettingError as exc:
        print(f"perfanalysis report: {exc}", file=err)
        return 2
    except ReportError as exc:
        print(f"perfanalysis report: {exc}", file=err)
        return 1
    except OSError as exc:
        print(
            f"perfanalysis report: cannot write {exc.filename or output}: {exc.strerror or exc}",
            file=err,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
