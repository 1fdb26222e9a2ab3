"""filefd collector: node_filefd_allocated and node_filefd_maximum from /proc/sys/fs/file-nr."""

from __future__ import annotations

from pathlib import Path

from tests.unit.promtext import headers, parse_samples, scrape, success, tree, value


def test_file_nr_on_6_8() -> None:
    text = scrape(tree("6.8"), "filefd")
    samples = parse_samples(text)
    assert value(samples, "node_filefd_allocated") == 4512
    assert value(samples, "node_filefd_maximum") == float(2**63 - 1)  # a float64, as in 1.5.0
    assert "node_filefd_maximum 9.223372036854776e+18" in text
    assert headers(text)["node_filefd_allocated"] == (
        "gauge",
        "File descriptor statistics: allocated.",
    )
    assert headers(text)["node_filefd_maximum"] == ("gauge", "File descriptor statistics: maximum.")


def test_short_or_missing_file_nr_fails_the_collector(tmp_path: Path) -> None:
    assert success(parse_samples(scrape(tmp_path, "filefd"))) == {"filefd": 0}
    (tmp_path / "proc" / "sys" / "fs").mkdir(parents=True)
    (tmp_path / "proc" / "sys" / "fs" / "file-nr").write_text("12\t0\n")
    assert success(parse_samples(scrape(tmp_path, "filefd"))) == {"filefd": 0}
    (tmp_path / "proc" / "sys" / "fs" / "file-nr").write_text("12\t0\t1_000\n")
    assert success(parse_samples(scrape(tmp_path, "filefd"))) == {"filefd": 0}
