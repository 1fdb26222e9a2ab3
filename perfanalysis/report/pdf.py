"""PDF through headless Chromium's print-to-PDF: the same page, laid out by the print CSS.

The browser runs with a throwaway profile, no network features and no sandbox (it may run as
root in a container), and is given the HTML file by ``file://`` URL; it fetches nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from perfanalysis import atomicfile
from perfanalysis.report import files
from perfanalysis.report.influx import ReportError
from perfanalysis.report.source import SettingError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
)


def find_browser(configured: str) -> str:
    if configured:
        found = shutil.which(configured)
        if not found:
            raise SettingError(f"--chromium {configured}: not found or not executable")
        return found
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ReportError(
        "PDF output needs Chromium (Debian package chromium): none of "
        f"{', '.join(BROWSERS)} is on PATH; give --chromium"
    )


def print_pdf(html_path: Path, pdf_path: Path, browser: str, timeout: float = 120.0) -> None:
    """Print to a temporary file beside ``pdf_path``, renamed over it once Chromium has written
    it: a failure keeps the previous PDF (see perfanalysis.report.files)."""
    if files.in_place(pdf_path):  # /dev/stdout and the like: no rename over a device
        _print(html_path, pdf_path, pdf_path, browser, timeout)
        return
    with atomicfile.replacing(pdf_path) as temporary:
        _print(html_path, temporary, pdf_path, browser, timeout)
        if not temporary.is_file() or temporary.stat().st_size == 0:  # Chromium wrote nothing
            raise ReportError(f"Chromium could not print {pdf_path}: it wrote nothing")


def _print(html_path: Path, into: Path, pdf_path: Path, browser: str, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="perfanalysis-chromium-") as profile:
        command = [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={into}",
            html_path.resolve().as_uri(),
        ]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium did not print the PDF within {timeout:.0f}s") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise ReportError(f"Chromium could not print {pdf_path} (exit {result.returncode}): {tail}")
