"""bench/floor records what a scrape reads and replays it with no parsing."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

from bench.floor import Recording, record
from exporter.app import build_registry
from exporter.collectors.statfs import StatfsRunner
from exporter.config import load
from exporter.registry import Registry
from tests.unit.promtext import path_flags, tree


def fake_host_registry(*collectors: str) -> Registry:
    values = load(
        [
            "--collector.disable-defaults",
            "--web.disable-exporter-metrics",
            *[f"--collector.{name}" for name in collectors],
            *path_flags(tree("6.8")),
        ],
        {},
    )
    return build_registry(values)


def test_a_recording_holds_the_files_the_scrape_read_and_restores_what_it_wrapped() -> None:
    originals = (os.open, builtins.open, os.listdir, os.scandir)
    registry = fake_host_registry("meminfo", "loadavg", "netdev")
    recording = record(registry)
    root = tree("6.8") / "proc"
    assert sorted(recording.files) == sorted(
        str(root / name) for name in ("meminfo", "loadavg", "net/dev")
    )
    assert recording.directories == []
    assert (os.open, builtins.open, os.listdir, os.scandir) == originals


def test_statfs_calls_are_recorded_through_the_runner_and_it_is_restored() -> None:
    registry = fake_host_registry("filesystem")
    runners = [getattr(c, "runner", None) for c in registry.collectors]
    assert runners
    assert all(isinstance(r, StatfsRunner) for r in runners)
    recording = record(registry)
    assert recording.mounts  # the fake mount table names at least one file system
    assert all(getattr(r, "statfs", None) is os.statvfs for r in runners)


def test_replay_reads_every_file_to_its_end_and_skips_what_has_gone(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 200_000)  # more than one read
    reads: list[int] = []
    original_read = os.read

    def counting(fd: int, size: int) -> bytes:
        data = original_read(fd, size)
        reads.append(len(data))
        return data

    recording = Recording(
        files=[str(big), str(tmp_path / "gone")],
        directories=[str(tmp_path), str(tmp_path / "gone")],
        mounts=[str(tmp_path), str(tmp_path / "gone")],
    )
    os.read = counting
    try:
        recording.replay()
    finally:
        os.read = original_read
    assert sum(reads) == 200_000
    assert reads[-1] == 0
