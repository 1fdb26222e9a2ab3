"""``perfanalysis alerting generate`` as a command: it never leaves a half-updated tree, leaves
files that are not its own alone, exits 2 for a bad thresholds file, and what it lets through
Alertmanager loads (amtool is the oracle; those tests skip when it cannot be installed)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfanalysis import cli as top
from perfanalysis.alerting import cli, generate, thresholds
from perfanalysis.alerting.generate import THRESHOLDS
from perfanalysis.paths import ROOT
from perfanalysis.testing.servers import ServerUnavailable, amtool


def out_flags(rules: Path) -> list[str]:
    """--out and the two flags it needs, laid out as provisioning/ is (rules, tests, and
    alertmanager/alertmanager.yml two levels up)."""
    return ["--out", str(rules), "--tests-out", str(rules.parent / "tests"),
            "--alertmanager-out", str(rules.parent.parent / "alertmanager" / "alertmanager.yml")]  # fmt: skip


def thresholds_file(tmp_path: Path, **changes: Any) -> Path:
    data = yaml.safe_load(THRESHOLDS.read_text())
    data.update(changes)
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (hidden ones too) and directory under root, with file contents."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[str]]:
    """A generated tree for tenants one and two, and the flags that regenerate it for tenant one
    alone with another CPU default: every rule and test file changes (alertmanager.yml does not)
    and tenant two's files become stale."""
    out = tmp_path / "out" / "prometheus" / "rules"
    before = thresholds_file(tmp_path, tenants={"one": {}, "two": {}})
    assert cli.run(["generate", "--thresholds", str(before), *out_flags(out)]) == 0
    defaults = yaml.safe_load(THRESHOLDS.read_text())["defaults"]
    defaults["cpu_busy_percent"]["warning"] = 75
    after = thresholds_file(tmp_path, tenants={"one": {}}, defaults=defaults)
    return tmp_path / "out", ["generate", "--thresholds", str(after), *out_flags(out)]


def test_a_target_that_cannot_be_written_is_found_before_anything_changes(
    tree: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, args = tree
    alertmanager_yml = root / "alertmanager" / "alertmanager.yml"
    alertmanager_yml.unlink()
    alertmanager_yml.mkdir()
    before = snapshot(root)
    capsys.readouterr()
    assert cli.run(args) == 1
    assert capsys.readouterr().err == f"cannot write {alertmanager_yml}: it is a directory\n"
    assert snapshot(root) == before  # no new rules, and tenant two's files are still there
    assert cli.run([*args, "--check"]) == 1
    assert f"{alertmanager_yml}: is a directory" in capsys.readouterr().err


def test_a_write_failing_midway_leaves_every_file_as_it_was(
    tree: tuple[Path, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, args = tree
    before = snapshot(root)
    calls = []

    def fsync(descriptor: int) -> None:
        calls.append(descriptor)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(generate.os, "fsync", fsync)
    capsys.readouterr()
    assert cli.run(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"cannot write {root}/")
    assert err.endswith(": No space left on device\n")
    assert snapshot(root) == before  # and no temporary file is left behind


def test_files_are_swapped_in_whole_keeping_their_mode_and_stale_ones_go_last(
    tree: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prometheus may read a rule file at any moment: it must see the old file or the new one."""
    root, args = tree
    rules = root / "prometheus" / "rules"
    (rules / "default.rules.yml").chmod(0o640)
    inode = (rules / "default.rules.yml").stat().st_ino
    events: list[str] = []
    replace, unlink = os.replace, Path.unlink

    def recording_replace(source: Any, target: Any) -> None:
        events.append(f"replace {Path(target).name}")
        replace(source, target)

    def recording_unlink(path: Path, missing_ok: bool = False) -> None:
        events.append(f"delete {path.name}")
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(generate.os, "replace", recording_replace)
    monkeypatch.setattr(Path, "unlink", recording_unlink)
    assert cli.run(args) == 0
    monkeypatch.undo()
    assert events == [
        *(f"replace {n}" for n in ("default.rules.yml", "tenant-one.rules.yml", "default.test.yml",
                                   "tenant-one.test.yml")),
        "delete tenant-two.rules.yml",
        "delete tenant-two.test.yml",
    ]  # fmt: skip
    new = (rules / "default.rules.yml").stat()
    assert new.st_ino != inode
    assert new.st_mode & 0o777 == 0o640
    assert not [p for p in root.rglob(".*")]
    assert cli.run([*args, "--check"]) == 0


def test_files_in_the_rules_directory_that_are_not_text_or_files_are_not_ours(
    tmp_path: Path,
) -> None:
    out = tmp_path / "prometheus" / "rules"
    out.mkdir(parents=True)
    (out / "x.rules.yml").write_bytes(b"\xff\xfe")
    (out / "d.rules.yml").mkdir()
    args = ["generate", *out_flags(out)]
    assert cli.run(args) == 0
    assert (out / "x.rules.yml").read_bytes() == b"\xff\xfe"
    assert (out / "d.rules.yml").is_dir()
    assert cli.run([*args, "--check"]) == 0


def test_an_invalid_thresholds_file_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text(THRESHOLDS.read_text().replace("tenants:\n", "tenants:\n  acme: {}\n"))
    assert cli.run(["generate", "--thresholds", str(path), *out_flags(tmp_path / "r")]) == 2
    assert "found the key 'acme' a second time" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_usage_and_hints_name_the_program_as_it_was_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        top.main(["alerting", "generate", "--bogus"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("usage: perfanalysis alerting ")
    assert cli.run(["generate", *out_flags(tmp_path / "rules"), "--check"]) == 1
    assert capsys.readouterr().err.endswith("run: perfanalysis alerting generate\n")
    module = subprocess.run(
        [sys.executable, "-m", "perfanalysis.alerting", "--bogus"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert module.returncode == 2
    assert module.stderr.startswith("usage: python -m perfanalysis.alerting ")


# -- what Alertmanager accepts


def amtool_accepts(config: dict[str, Any], directory: Path) -> subprocess.CompletedProcess[str]:
    path = directory / "alertmanager.yml"
    path.write_text(json.dumps(config))  # JSON is YAML, and keeps control characters escaped
    try:
        return amtool("check-config", path)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))


def test_amtool_accepts_what_a_tricky_but_valid_thresholds_file_generates(
    tmp_path: Path,
) -> None:
    webhooks = [
        "http://[::1]:9095/alerts",
        "https://user:p%40ss@hooks.example:65535/a%2Fb/c d?x=%zz&y={tenant}#top",
        "http://h_x.example./",
        "HTTP://Exämple.COM/é",
        "http://10.0.0.1:08080",
    ]
    path = thresholds_file(
        tmp_path,
        notify={"webhooks": webhooks, "emails": ["on+call@ops.example"]},
        smtp={"smarthost": "[::1]:587", "from": "alerts@ops.example", "require_tls": True},
        tenants={
            "acme": {"notify": {"webhooks": ["http://127.0.0.1:1/"]}},
            "quiet": {"notify": {"mute": True}},
        },
    )
    out = tmp_path / "prometheus" / "rules"
    assert cli.run(["generate", "--thresholds", str(path), *out_flags(out)]) == 0
    try:
        result = amtool("check-config", tmp_path / "alertmanager" / "alertmanager.yml")
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    assert result.returncode == 0, result.stdout + result.stderr


URLS = [
    # accepted by both
    "http://h:/x", "http://h:65535/", "http://[::1]:9/", "http://[fe80::1%25eth0]:9/x",
    "http://u:p@h/x", "http://@h/", "http://h/a?b=%zz", "http://h/a b", "http://h/{tenant}",
    "http://h_x.example/", "http://exämple.com/", "https://h:08080/", "http://h.:80/",
    "http://-h/", "http://h!$&'()*+,;=/", "http://h/\"<x>", "http://h/%41", "http://u:p%40@h/",
    # refused by both
    "http://a b/x", "http://a\\b/", "http://h{x}/", "http://h|x/", "http://a%41b/", "http://[::1/",
    "http://h/a\tb", "http://h/a\x7f", "http://h\n/", "http://h:8a/", "http://u%zz@h/",
    "http://u^x@h/", "http://h/a%zz", "http://h/a#%zz", "http://h/%", "http://user@/",
    # refused by us, loaded by Alertmanager, but never reachable (or not a host name)
    "http://127.0.0.1:99999/", "http://h:0/", "http://:80/", "http://h:80:90/", 'http://h"/',
]  # fmt: skip


def test_every_webhook_url_we_accept_alertmanager_accepts(tmp_path: Path) -> None:
    def check(index: int, url: str) -> tuple[str, bool, bool]:
        directory = tmp_path / str(index)
        directory.mkdir()
        config = {
            "route": {"receiver": "r"},
            "receivers": [{"name": "r", "webhook_configs": [{"url": url}]}],
        }
        result = amtool_accepts(config, directory)
        return url, thresholds.webhook_problem(url) is None, result.returncode == 0

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda item: check(*item), enumerate(URLS)))
    assert [url for url, ours, theirs in results if ours and not theirs] == []
    assert [url for url, ours, theirs in results if not ours and not theirs] == URLS[18:34]
    assert [url for url, ours, theirs in results if ours] == URLS[:18]
