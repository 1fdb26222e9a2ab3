"""``perfanalysis grafana generate`` replaces each file whole: Grafana's provisioner, which
rereads the dashboards directory, sees the old file or the new one and never half a file; a
failed write leaves the old file and no temporary one."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from perfanalysis.grafana import cli, provisioning, render


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (hidden ones too) and directory under root, with file contents."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Path:
    """A generated tree under tmp_path instead of the committed one."""
    monkeypatch.setattr(render, "default_dir", lambda: tmp_path / "grafana" / "dashboards")
    monkeypatch.setattr(provisioning, "default_dir", lambda: tmp_path / "provisioning" / "grafana")
    assert cli.run(["generate"]) == 0
    assert cli.run(["check"]) == 0
    capsys.readouterr()
    return tmp_path


def a_dashboard(root: Path) -> Path:
    return sorted((root / "grafana" / "dashboards").glob("*.json"))[0]


def test_a_changed_file_is_swapped_in_whole_keeping_its_mode(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dashboard = a_dashboard(tree)
    wanted = dashboard.read_bytes()
    dashboard.write_text("{}\n")
    dashboard.chmod(0o640)
    inode = dashboard.stat().st_ino
    replaced: list[tuple[str, str]] = []
    replace = os.replace

    def recording_replace(source: Any, target: Any) -> None:
        replaced.append((Path(source).name, Path(target).name))
        replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    assert cli.run(["generate"]) == 0
    monkeypatch.undo()
    [(source, target)] = replaced
    assert target == dashboard.name
    assert source.startswith(f".{dashboard.name}.")
    assert source.endswith(".tmp")
    assert dashboard.read_bytes() == wanted
    assert dashboard.stat().st_ino != inode
    assert dashboard.stat().st_mode & 0o777 == 0o640
    assert not list(tree.rglob(".*"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = a_dashboard(tree)
    dashboard.write_text("{}\n")
    before = snapshot(tree)

    def fsync(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    assert cli.run(["generate"]) == 1
    assert capsys.readouterr().err == (
        f"perfanalysis grafana generate: cannot write {dashboard}: No space left on device\n"
    )
    assert snapshot(tree) == before
