"""A real hung filesystem never hangs a scrape.

Each test mounts a real FUSE filesystem (tests/support/blocking_fuse.py, served by a child process)
whose statfs answers fixed values, or blocks inside the filesystem while the test says so: for the
kernel and the exporter that is a hung NFS mount. The exporter's registry is built in-process from
flags, as ``perfanalysis exporter`` builds it, and every scrape runs in a thread joined with a
deadline, so a regression fails the test instead of hanging it.

Needs root, /dev/fuse, fusepy (PyPI) and libfuse2 (Debian); skips naming whichever is missing.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import build_registry
from exporter.collectors.filesystem import FilesystemCollector
from exporter.config import load
from exporter.exposition import render
from exporter.registry import Registry
from exporter.server import ExporterServer
from tests.support.blocking_fuse import (
    STATFS,
    BlockingFuse,
    FuseUnavailable,
    wait_until,
)

pytestmark = pytest.mark.integration

MOUNT_TIMEOUT = 0.5  # --collector.filesystem.mount-timeout
SLACK = 2.0  # a scrape must return within MOUNT_TIMEOUT + SLACK: a liveness bound, not a benchmark
DEADLINE = MOUNT_TIMEOUT + SLACK
ME = os.getpid()  # statfs calls are counted per calling process: other processes may stat too

SIZE_FAMILIES = {
    "node_filesystem_size_bytes": STATFS["f_blocks"] * STATFS["f_bsize"],
    "node_filesystem_free_bytes": STATFS["f_bfree"] * STATFS["f_bsize"],
    "node_filesystem_avail_bytes": STATFS["f_bavail"] * STATFS["f_bsize"],
    "node_filesystem_files": STATFS["f_files"],
    "node_filesystem_files_free": STATFS["f_ffree"],
    "node_filesystem_readonly": 0,
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def mount_fuse() -> Iterator[Callable[[], BlockingFuse]]:
    """Starts blocking FUSE mounts on demand; each is released, unmounted and reaped at teardown."""
    started: list[BlockingFuse] = []

    def start() -> BlockingFuse:
        fs = BlockingFuse()
        try:
            fs.start()  # cleans up after itself when it fails
        except FuseUnavailable as exc:
            pytest.skip(f"cannot mount a FUSE filesystem here: {exc}")
        started.append(fs)
        return fs

    try:
        yield start
    finally:
        for fs in reversed(started):
            fs.stop()


@pytest.fixture
def fuse_fs(mount_fuse: Callable[[], BlockingFuse]) -> BlockingFuse:
    return mount_fuse()


@pytest.fixture
def serve() -> Iterator[Callable[[Registry], tuple[ExporterServer, str]]]:
    """Serves a registry over HTTP on a free loopback port; shut down at teardown."""
    running: list[tuple[ExporterServer, threading.Thread]] = []

    def start(registry: Registry) -> tuple[ExporterServer, str]:
        server = ExporterServer(("127.0.0.1", 0), registry)
        server.health_sources = [
            c for c in registry.collectors if isinstance(c, FilesystemCollector)
        ]
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        running.append((server, thread))
        return server, f"http://127.0.0.1:{server.server_address[1]}"

    try:
        yield start
    finally:
        for server, thread in running:
            server.shutdown()
            server.server_close()
            thread.join(5)


# -- helpers -----------------------------------------------------------------------------------


def registry_for(*mounts: BlockingFuse) -> Registry:
    include = "|".join(re.escape(fs.mountpoint) for fs in mounts)
    return build_registry(
        load(
            [
                "--collector.disable-defaults",
                "--collector.filesystem",
                f"--collector.filesystem.mount-points-include=^({include})$",
                "--collector.filesystem.fs-types-include=^fuse",
                f"--collector.filesystem.mount-timeout={MOUNT_TIMEOUT}",
            ],
            {},
        )
    )


def filesystem_collector(registry: Registry) -> FilesystemCollector:
    (collector,) = [c for c in registry.collectors if isinstance(c, FilesystemCollector)]
    return collector


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for fam in text_string_to_metric_families(text)
        for sample in fam.samples
    }


def scrape(registry: Registry, deadline: float = DEADLINE) -> tuple[Samples, float]:
    """One scrape rendered as /metrics would, from a thread that must finish within ``deadline``."""
    box: list[Any] = []

    def run() -> None:
        start = time.monotonic()
        try:
            text = render(registry.scrape().families).decode()
            box.append((parse(text), time.monotonic() - start))
        except BaseException as exc:
            box.append(exc)

    worker = threading.Thread(target=run, name="scrape", daemon=True)
    worker.start()
    worker.join(deadline)
    assert not worker.is_alive(), f"the scrape did not return within {deadline}s: it hung"
    (outcome,) = box
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome  # type: ignore[no-any-return]


def labels_of(fs: BlockingFuse) -> frozenset[tuple[str, str]]:
    """The mount's labels exactly as the kernel's mount table (PID 1's, as the exporter reads)."""
    device, fstype, mountpoint = fs.mount_entry("/proc/1/mounts")
    return frozenset({"device": device, "fstype": fstype, "mountpoint": mountpoint}.items())


def value(samples: Samples, name: str, labels: frozenset[tuple[str, str]]) -> float | None:
    return samples.get((name, labels))


def collector_success(samples: Samples) -> float | None:
    return samples.get(
        ("node_scrape_collector_success", frozenset({"collector": "filesystem"}.items()))
    )


def assert_healthy(samples: Samples, fs: BlockingFuse) -> None:
    labels = labels_of(fs)
    for name, expected in SIZE_FAMILIES.items():
        assert value(samples, name, labels) == expected, name
    assert value(samples, "node_filesystem_device_error", labels) == 0
    assert collector_success(samples) == 1


def assert_stuck(samples: Samples, fs: BlockingFuse) -> None:
    labels = labels_of(fs)
    assert value(samples, "node_filesystem_device_error", labels) == 1
    present = [name for name in SIZE_FAMILIES if (name, labels) in samples]
    assert present == [], f"a stuck mount must export no statfs series, got {present}"
    assert collector_success(samples) == 1  # one stuck mount does not fail the collector


def block_and_scrape(fs: BlockingFuse, registry: Registry) -> Samples:
    """Block statfs, scrape once: the scrape gives up on the mount after the mount timeout."""
    calls = fs.calls(ME)
    fs.block()
    samples, _ = scrape(registry)
    assert_stuck(samples, fs)
    # The statfs really reached the filesystem and is still hanging there.
    assert wait_until(lambda: fs.calls(ME) == calls + 1 and fs.in_flight(ME) == 1, 5.0), (
        f"expected one blocked statfs, got {fs.events()}"
    )
    return samples


def http_get(url: str, timeout: float = DEADLINE) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with opener.open(url, timeout=timeout) as response:
        return response.status, response.read()


# -- tests -------------------------------------------------------------------------------------


def test_responsive_mount_reports_the_filesystem_answer(fuse_fs: BlockingFuse) -> None:
    registry = registry_for(fuse_fs)
    samples, _ = scrape(registry)
    assert_healthy(samples, fuse_fs)
    device, fstype, mountpoint = fuse_fs.mount_entry("/proc/1/mounts")
    assert (device, fstype, mountpoint) == (
        "perfanalysis-blocking",
        "fuse.perfanalysis_blocking",
        fuse_fs.mountpoint,
    )
    # the include filters select exactly this mount
    sized = [labels for name, labels in samples if name == "node_filesystem_size_bytes"]
    assert sized == [labels_of(fuse_fs)]
    assert filesystem_collector(registry).device_errors == {}


def test_blocked_statfs_never_hangs_a_scrape(fuse_fs: BlockingFuse) -> None:
    registry = registry_for(fuse_fs)
    collector = filesystem_collector(registry)
    assert_healthy(scrape(registry)[0], fuse_fs)

    block_and_scrape(fuse_fs, registry)
    assert collector.device_errors == {fuse_fs.mountpoint: "mountpoint timeout"}
    assert collector.runner.stuck == [fuse_fs.mountpoint]

    # While it still hangs, the next scrape skips the mount: no second statfs, no second wait.
    calls = fuse_fs.calls(ME)
    samples, elapsed = scrape(registry)
    assert_stuck(samples, fuse_fs)
    assert elapsed < MOUNT_TIMEOUT, f"the second scrape waited {elapsed:.2f}s for a stuck mount"
    assert fuse_fs.calls(ME) == calls, f"a second statfs reached the filesystem: {fuse_fs.events()}"
    assert fuse_fs.in_flight(ME) == 1
    assert collector.device_errors == {fuse_fs.mountpoint: "mountpoint timeout"}


def test_scrape_recovers_once_statfs_returns(fuse_fs: BlockingFuse) -> None:
    registry = registry_for(fuse_fs)
    collector = filesystem_collector(registry)
    block_and_scrape(fuse_fs, registry)

    fuse_fs.release()
    assert wait_until(lambda: fuse_fs.in_flight(ME) == 0, 5.0), "the released statfs never returned"

    def recovered() -> Samples | None:
        samples, _ = scrape(registry)
        labels = labels_of(fuse_fs)
        return samples if value(samples, "node_filesystem_device_error", labels) == 0 else None

    samples = wait_until(recovered, 5.0)
    assert samples is not None, "the mount is still reported stuck after its statfs returned"
    assert_healthy(samples, fuse_fs)
    assert collector.device_errors == {}
    assert collector.runner.stuck == []


def test_http_metrics_and_health_while_statfs_hangs(
    fuse_fs: BlockingFuse, serve: Callable[[Registry], tuple[ExporterServer, str]]
) -> None:
    registry = registry_for(fuse_fs)
    _server, base = serve(registry)

    status, body = http_get(f"{base}/metrics")
    assert status == 200
    assert_healthy(parse(body.decode()), fuse_fs)
    assert json.loads(http_get(f"{base}/health")[1])["status"] == "ok"

    fuse_fs.block()
    for _ in range(2):  # the first gives up after the mount timeout, the second skips the mount
        status, body = http_get(f"{base}/metrics")
        assert status == 200
        assert_stuck(parse(body.decode()), fuse_fs)
    assert fuse_fs.in_flight(ME) == 1

    status, body = http_get(f"{base}/health")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "degraded"
    assert health["filesystem_device_errors"] == {fuse_fs.mountpoint: "mountpoint timeout"}
    assert health["failed_collectors"] == {}

    fuse_fs.release()

    def recovered() -> bool:
        samples = parse(http_get(f"{base}/metrics")[1].decode())
        return value(samples, "node_filesystem_device_error", labels_of(fuse_fs)) == 0

    assert wait_until(recovered, 5.0), "/metrics still reports the mount stuck after release"
    assert json.loads(http_get(f"{base}/health")[1])["status"] == "ok"


def test_a_healthy_mount_is_not_blamed_for_a_hung_one(
    mount_fuse: Callable[[], BlockingFuse],
) -> None:
    hung, *healthy = [mount_fuse() for _ in range(4)]
    registry = registry_for(hung, *healthy)
    collector = filesystem_collector(registry)
    samples, _ = scrape(registry)
    for fs in (hung, *healthy):
        assert_healthy(samples, fs)

    block_and_scrape(hung, registry)
    for _ in range(2):
        samples, _ = scrape(registry)
        assert_stuck(samples, hung)
        for fs in healthy:
            assert_healthy(samples, fs)
        assert collector.device_errors == {hung.mountpoint: "mountpoint timeout"}
