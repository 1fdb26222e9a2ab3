"""exporter.paths.read_text: what every collector reads its files with."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.paths import READ_SIZE, read_text


def test_reads_the_whole_file_however_long(tmp_path: Path) -> None:
    text = "".join(f"line {number}\n" for number in range(READ_SIZE // 4))
    assert len(text) > 2 * READ_SIZE
    (tmp_path / "big").write_text(text)
    (tmp_path / "empty").write_text("")
    assert read_text(str(tmp_path / "big")) == text
    assert read_text(str(tmp_path / "empty")) == ""


def test_bad_utf8_is_replaced_and_newlines_are_kept_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "odd").write_bytes(b"name \xff\xfe value\r\nnext\n")
    assert read_text(str(tmp_path / "odd")) == "name \ufffd\ufffd value\r\nnext\n"


def test_a_missing_file_or_a_directory_raises_what_open_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        read_text(str(tmp_path))


def test_reads_a_real_proc_file() -> None:
    assert read_text("/proc/self/status").startswith("Name:")
