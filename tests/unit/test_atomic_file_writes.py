"""perfanalysis.atomicfile: a generated file replaced whole, keeping what an operator set on it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from perfanalysis import atomicfile


def test_the_file_is_replaced_whole_with_its_mode_kept(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("old\n")
    path.chmod(0o640)
    atomicfile.write(path, b"new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["rules.yml"]


def test_a_symbolic_link_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "shared" / "alertmanager.yml"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "alertmanager.yml"
    link.symlink_to(real)
    atomicfile.write(link, b"new\n")
    assert link.is_symlink()
    assert real.read_text() == "new\n"
    assert sorted(p.name for p in real.parent.iterdir()) == ["alertmanager.yml"]


def test_the_group_of_the_old_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.json"
    path.write_text("{}\n")
    other_group = 1 if os.getgid() != 1 else 2
    try:
        os.chown(path, -1, other_group)
    except PermissionError:
        pytest.skip("only root, or a member of that group, may give a file to it")
    atomicfile.write(path, b"{ }\n")
    assert path.stat().st_gid == other_group
