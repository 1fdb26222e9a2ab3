"""textfile collector: *.prom files parsed and checked as node_exporter 1.5.0 does.

The integration test tests/integration/test_node_exporter_parity.py compares the same cases
against 1.5.0's binary; these pin the behaviour without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exporter.collectors.promparse import ParseError, parse
from tests.unit.promtext import headers, labels, parse_samples, scrape, series, value


def run(tmp_path: Path, files: dict[str, str], *extra: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    directory = tmp_path / "textfiles"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    text = scrape(
        tmp_path, "textfile", flags=(f"--collector.textfile.directory={directory}", *extra)
    )
    return text, parse_samples(text)


def test_no_directory_reads_nothing_and_reports_no_error(tmp_path: Path) -> None:
    text = scrape(tmp_path, "textfile")
    samples = parse_samples(text)
    assert value(samples, "node_textfile_scrape_error") == 0
    assert "node_textfile_mtime_seconds" not in headers(text)


def test_files_help_type_labels_and_mtime(tmp_path: Path) -> None:
    text, samples = run(tmp_path, {
        "cron.prom": '# HELP job_last_success_seconds Last success.\n# TYPE job_last_success_seconds gauge\n'
                     'job_last_success_seconds{job="backup"} 1.7e+09\n'
                     'job_last_success_seconds{job="rotate",host="a\\"b"} 12\n',
        "plain.prom": "plain 5\n",
        "notes.txt": "not_read 1\n",
    })  # fmt: skip
    directory = tmp_path / "textfiles"
    assert headers(text)["job_last_success_seconds"] == ("gauge", "Last success.")
    assert headers(text)["plain"] == ("untyped", f"Metric read from {directory / 'plain.prom'}")
    assert series(samples, "job_last_success_seconds") == {
        labels(job="backup", host=""): 1.7e9,  # a label another sample has: exported empty
        labels(job="rotate", host='a"b'): 12,
    }
    assert ("not_read", frozenset()) not in samples
    mtime = os.stat(directory / "cron.prom").st_mtime_ns // 1_000_000_000
    assert value(samples, "node_textfile_mtime_seconds", file=str(directory / "cron.prom")) == mtime
    assert value(samples, "node_textfile_scrape_error") == 0


@pytest.mark.parametrize(
    "content",
    ["bad metric here\n", "with_ts 1 1700000000000\n", "# TYPE t gauge\nt 1\n# TYPE t gauge\n",
     "x{a=\"b\\q\"} 1\n", "hex 0x1p-2\n", "under 1_000\n", "last_line_without_newline 1",
     "# TYPE t sometype\n", 'x{__name__="y"} 1\n', 'x{a="1",a="2"} 1\n',
     "signed_nan +NaN\n", "out_of_range 1e400\n"],  # Go's ParseFloat refuses both
)  # fmt: skip
def test_bad_file_is_skipped_with_scrape_error(tmp_path: Path, content: str) -> None:
    _, samples = run(tmp_path, {"bad.prom": content, "good.prom": "good 1\n"})
    assert value(samples, "node_textfile_scrape_error") == 1
    assert value(samples, "good") == 1
    assert set(series(samples, "node_textfile_mtime_seconds")) == {
        labels(file=str(tmp_path / "textfiles" / "good.prom"))
    }


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    text = scrape(
        tmp_path, "textfile", flags=(f"--collector.textfile.directory={tmp_path}/absent",)
    )
    assert value(parse_samples(text), "node_textfile_scrape_error") == 1


def test_first_help_and_type_win_and_repeated_series_are_dropped(tmp_path: Path) -> None:
    text, samples = run(tmp_path, {
        "a.prom": '# HELP shared A test.\n# TYPE shared gauge\nshared{a="b"} 3\n',
        "b.prom": 'shared{a="c"} 4\nnohelp 5\n',
        "c.prom": "nohelp 6\n",
    })  # fmt: skip
    directory = tmp_path / "textfiles"
    assert series(samples, "shared") == {labels(a="b"): 3}  # b.prom's has another HELP
    assert value(samples, "nohelp") == 5  # c.prom's repeats the series
    assert headers(text)["nohelp"] == (
        "untyped",
        f"Metric read from {directory / 'b.prom'}, {directory / 'c.prom'}",
    )
    assert value(samples, "node_textfile_scrape_error") == 0  # as 1.5.0: logged only


def test_own_collectors_win_over_textfiles(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "loadavg").write_text("0.5 0.4 0.3 1/100 42\n")
    directory = tmp_path / "textfiles"
    directory.mkdir()
    (directory / "load.prom").write_text("node_load1 7\n")
    text = scrape(tmp_path, "loadavg", "textfile",
                  flags=(f"--collector.textfile.directory={directory}",))  # fmt: skip
    assert value(parse_samples(text), "node_load1") == 0.5
    assert headers(text)["node_load1"] == ("gauge", "1m load average.")


def test_histogram_and_summary_become_their_series(tmp_path: Path) -> None:
    text, samples = run(tmp_path, {"h.prom": (
        "# HELP lat Latency.\n# TYPE lat histogram\n"
        'lat_bucket{le="0.5"} 1\nlat_bucket{le="1"} 3\nlat_sum 2.5\nlat_count 4\n'
        "# TYPE q summary\n"
        'q{quantile="0.50"} 7\nq_sum 20\nq_count 3\n'
    )})  # fmt: skip
    assert series(samples, "lat_bucket") == {
        labels(le="0.5"): 1, labels(le="1"): 3, labels(le="+Inf"): 4,
    }  # fmt: skip
    assert value(samples, "lat_sum") == 2.5
    assert value(samples, "lat_count") == 4
    assert series(samples, "q") == {labels(quantile="0.5"): 7}
    assert headers(text)["lat_bucket"] == ("untyped", "Latency.")


def test_glob_of_directories(tmp_path: Path) -> None:
    for sub in ("one", "two"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "m.prom").write_text(f'from_dir{{d="{sub}"}} 1\n')
    text = scrape(tmp_path, "textfile", flags=(f"--collector.textfile.directory={tmp_path}/[ot]*",))
    samples = parse_samples(text)
    assert set(series(samples, "from_dir")) == {labels(d="one"), labels(d="two")}


def test_parser_details() -> None:
    families = parse(
        "# HELP esc Back\\\\slash \\n and \\t.\n# TYPE esc COUNTER\n"
        '  esc { a = "x\\n" , } +Inf\n# just a comment\n\nnan NaN\n'
        "# HELP declared_only Dropped: no samples.\n"
    )
    assert list(families) == ["esc", "nan"]
    assert families["esc"].help == "Back\\slash \n and \\t."
    assert families["esc"].type == "counter"
    assert families["esc"].samples[0].labels == {"a": "x\n"}
    assert families["esc"].samples[0].value == float("inf")
    with pytest.raises(ParseError, match="line 2"):
        parse("ok 1\nnot ok\n")
