"""The report's output files: never the configuration file, never one file for HTML and PDF, and
each replaced whole or not at all, so a failed run keeps the previous report."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from perfanalysis.report import cli
from perfanalysis.report.files import same_file

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = "tenant: acme\nhosts: [web-01]\ntime: {last: 1h}\n"
PAGE = "<!DOCTYPE html>\n<title>new report</title>\n" + "<p>figures</p>\n" * 5000


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret key a run reading the admin database needs: without it the settings are
    refused (exit 2) before anything is built or written."""
    monkeypatch.setenv("PERFANALYSIS_REPORT_SECRET_KEY", "s" * 32)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """No storage: the report is built from nothing and rendered as PAGE."""
    calls: list[Any] = []

    def build_report(config: Any, values: Any, stream: Any) -> Any:
        calls.append(config)
        return SimpleNamespace(hosts=["web-01"], grid=SimpleNamespace(count=60, step=60))

    monkeypatch.setattr(cli, "build_report", build_report)
    monkeypatch.setattr(cli, "render_page", lambda report: PAGE)
    return calls


def fake_chromium(directory: Path, body: str) -> Path:
    """An executable standing in for Chromium; ``body`` is Python run with ``target``, the path
    of --print-to-pdf."""
    script = directory / "fake-chromium"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "target = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--print-to-pdf='))\n"
        + textwrap.dedent(body)
    )
    script.chmod(0o755)
    return script


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# -- the configuration file is never an output


def test_an_output_that_is_the_configuration_is_refused_with_exit_2(
    tmp_path: Path, built: list[Any]
) -> None:
    config = tmp_path / "same.yaml"
    config.write_text(MINIMAL)
    err = io.StringIO()
    assert cli.run(["--config", str(config), "--output", str(config)], stderr=err) == 2
    assert err.getvalue() == (
        "perfanalysis report: invalid settings:\n"
        f"  flag --output: {config} is the configuration file (--config): the report would "
        "overwrite it; give another --output\n"
    )
    assert config.read_text() == MINIMAL
    assert built == []  # refused before anything is read


def test_the_default_output_of_a_configuration_named_html_is_refused(
    tmp_path: Path, built: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("x.html").write_text(MINIMAL)
    err = io.StringIO()
    assert cli.run(["--config", "x.html"], stderr=err) == 2
    assert (
        "flag --output: not given, and the default, x.html (the configuration's name with .html, "
        "in the current directory), is the configuration file itself: give --output"
    ) in err.getvalue()
    assert Path("x.html").read_text() == MINIMAL


@pytest.mark.parametrize("link", ["symlink", "hardlink", "dotted"])
def test_other_names_of_the_configuration_are_the_configuration(
    tmp_path: Path, built: list[Any], link: str
) -> None:
    config = tmp_path / "report.yaml"
    config.write_text(MINIMAL)
    other = tmp_path / "other.html"
    if link == "symlink":
        other.symlink_to(config)
    elif link == "hardlink":
        os.link(config, other)
    else:
        other = tmp_path / "sub" / ".." / "report.yaml"
        (tmp_path / "sub").mkdir()
    err = io.StringIO()
    argv = ["--config", str(config), "--output", str(tmp_path / "r.html"), "--pdf", str(other)]
    assert cli.run(argv, stderr=err) == 2
    assert f"flag --pdf: {other} is the configuration file (--config)" in err.getvalue()
    assert config.read_text() == MINIMAL


def test_a_pdf_that_is_the_html_file_is_refused(tmp_path: Path, built: list[Any]) -> None:
    config = tmp_path / "report.yaml"
    config.write_text(MINIMAL)
    output = tmp_path / "out.html"
    err = io.StringIO()
    argv = ["--config", str(config), "--output", str(output), "--pdf", f"{tmp_path}/./out.html"]
    assert cli.run(argv, stderr=err) == 2
    assert (
        f"flag --pdf: {tmp_path}/./out.html is the HTML report's file too (--output {output}): "
        "give the PDF a name of its own"
    ) in err.getvalue()
    assert not output.exists()


def test_same_file_compares_existing_files_by_identity_and_new_ones_by_path(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("a")
    assert not same_file(tmp_path / "a", tmp_path / "b")  # equal content, two files
    assert same_file(tmp_path / "a", tmp_path / "x" / ".." / "a")
    assert same_file(tmp_path / "new", tmp_path / "." / "new")
    assert not same_file(tmp_path / "new", tmp_path / "a")


# -- the HTML: replaced whole, or the previous one kept


def test_the_html_replaces_the_previous_report_and_follows_a_symlink(
    tmp_path: Path, built: list[Any]
) -> None:
    config = tmp_path / "report.yaml"
    config.write_text(MINIMAL)
    (tmp_path / "reports").mkdir()
    real = tmp_path / "reports" / "weekly.html"
    real.write_text("old report")
    real.chmod(0o600)  # made private by its owner: the new report stays private
    link = tmp_path / "current.html"
    link.symlink_to(real)
    err = io.StringIO()
    assert cli.run(["--config", str(config), "--output", str(link)], stderr=err) == 0, err
    assert link.is_symlink()
    assert real.read_text() == PAGE
    assert leftovers(tmp_path / "reports") == []
    assert oct(real.stat().st_mode & 0o777) == oct(0o600)


def test_a_new_report_gets_the_mode_a_plain_open_gives(tmp_path: Path, built: list[Any]) -> None:
    config = tmp_path / "report.yaml"
    config.write_text(MINIMAL)
    output = tmp_path / "new.html"
    err = io.StringIO()
    assert cli.run(["--config", str(config), "--output", str(output)], stderr=err) == 0, err
    assert oct(output.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


WRITE_LIMITED = """
import resource, signal, sys
from types import SimpleNamespace
from perfanalysis.report import cli
cli.build_report = lambda config, values, stream: SimpleNamespace(
    hosts=[], grid=SimpleNamespace(count=1, step=60))
cli.render_page = lambda report: "<!DOCTYPE html>" + "x" * 200_000
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # a disk that fills up
sys.exit(cli.run(sys.argv[1:]))
"""


def test_a_write_that_fails_midway_keeps_the_previous_report(tmp_path: Path) -> None:
    config = tmp_path / "report.yaml"
    config.write_text(MINIMAL)
    output = tmp_path / "report.html"
    output.write_text("the previous report")
    result = subprocess.run(
        [sys.executable, "-c", WRITE_LIMITED, "--config", str(config), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"perfanalysis report: cannot write {output}: File too large\n"
    assert output.read_text() == "the previous report"
    assert leftovers(tmp_path) == []


def test_an_output_in_a_missing_directory_is_named(tmp_path: Path, built: list[Any]) -> None:
    """Refused as a bad flag before anything is read (it used to fail after every query)."""
    config = tmp_path / "report.yaml"
    config.write_text(MINIMAL)
    output = tmp_path / "nowhere" / "r.html"
    err = io.StringIO()
    assert cli.run(["--config", str(config), "--output", str(output)], stderr=err) == 2
    assert err.getvalue() == (
        "perfanalysis report: invalid settings:\n"
        f"  flag --output: {output}: the directory {output.parent} does not exist\n"
    )
    assert built == []  # nothing was read


# -- the PDF: printed beside it, renamed on success


def test_a_failed_print_keeps_the_previous_pdf(tmp_path: Path, built: list[Any]) -> None:
    config = tmp_path / "report.yaml"
    config.write_text(MINIMAL)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF- the previous one")
    for body in ("sys.exit('crashed')", "open(target, 'wb').close()"):  # an error; nothing
        err = io.StringIO()
        argv = ["--config", str(config), "--output", str(tmp_path / "r.html"), "--pdf", str(pdf),
                "--chromium", str(fake_chromium(tmp_path, body))]  # fmt: skip
        assert cli.run(argv, stderr=err) == 1
        assert f"perfanalysis report: Chromium could not print {pdf}" in err.getvalue()
        assert pdf.read_bytes() == b"%PDF- the previous one"
        assert leftovers(tmp_path) == []


def test_a_printed_pdf_replaces_the_previous_one(tmp_path: Path, built: list[Any]) -> None:
    config = tmp_path / "report.yaml"
    config.write_text(MINIMAL)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF- the previous one")
    chromium = fake_chromium(
        tmp_path,
        """
        assert target != sys.argv[-1]
        with open(target, "wb") as out:
            out.write(b"%PDF- printed from " + sys.argv[-1].encode())
        """,
    )
    err = io.StringIO()
    argv = ["--config", str(config), "--output", str(tmp_path / "r.html"), "--pdf", str(pdf),
            "--chromium", str(chromium)]  # fmt: skip
    assert cli.run(argv, stderr=err) == 0, err.getvalue()
    assert pdf.read_bytes() == b"%PDF- printed from " + (tmp_path / "r.html").as_uri().encode()
    assert leftovers(tmp_path) == []
    assert f"report: wrote {pdf}" in err.getvalue()
