"""exporter.paths.read_text: what every collector reads its files with."""

from __future__ import annotations

import os
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


def test_bad_utf8_is_kept_byte_for_byte_and_newlines_as_they_are(tmp_path: Path) -> None:
    raw = b"name \xff\xfe value\r\nnext \xc3\xa9\n"
    (tmp_path / "odd").write_bytes(raw)
    text = read_text(str(tmp_path / "odd"))
    assert text == "name \udcff\udcfe value\r\nnext \u00e9\n"
    assert os.fsencode(text) == raw  # what a system call given this text receives


def test_a_missing_file_or_a_directory_raises_what_open_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        read_text(str(tmp_path))


def test_reads_a_real_proc_file() -> None:
    assert read_text("/proc/self/status").startswith("Name:")
