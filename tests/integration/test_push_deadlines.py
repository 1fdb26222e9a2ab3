"""Our exporter as a real process against an ingest that trickles, hangs, or cannot be looked up.

What the audit saw before the fix, with --push.interval=1s --push.timeout=2s: against a server
trickling its answer a byte a second, one sample in 30 s and /health "starting" (a request stayed
open for 8192 times the timeout); against a hanging ingest with --push.timeout=5s, 5 samples in
21 s and the other 16 lost uncounted; with a nameserver that does not answer, each request took
10 s and SIGTERM had to abandon it. Now every request ends by the next sample, every tick is
sampled, and the lookup is waited for no longer than the request.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from perfanalysis.testing.servers import ExporterProcess, wait_until

pytestmark = pytest.mark.integration

INTERVAL = 1.0  # the shortest --push.interval
COLLECTORS = ["--collector.disable-defaults", "--collector.loadavg"]


class Ingest(ThreadingHTTPServer):
    """Stands in for ingest: ``mode`` is ok (204, the lines kept), hang (no answer until the
    test ends) or trickle (a status line that never ends, a byte every 0.2 s)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.mode = "ok"
        self.lines: list[str] = []
        self.done = threading.Event()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: Ingest
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        mode = self.server.mode
        try:
            if mode == "trickle":
                self.close_connection = True
                self.wfile.write(b"HTTP/1.1 503 Busy")
                while not self.server.done.wait(0.2):
                    self.wfile.write(b"x")
                return
            if mode == "hang":
                self.close_connection = True
                self.server.done.wait(120)
                return
            with self.server.lock:
                self.server.lines += gzip.decompress(body).decode().splitlines()
            self.send_response(204)
            self.end_headers()
        except OSError:  # the exporter gave up on the request and closed
            self.close_connection = True


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    server = Ingest()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.done.set()  # lets hanging and trickling answers end
        server.shutdown()
        server.server_close()
        thread.join(10)


def push_args(tmp_path: Path, url: str, **overrides: str) -> list[str]:
    key = tmp_path / "collector.key"
    key.write_text("pak_itest.secret\n")
    key.chmod(0o600)
    settings = {
        "push.url": url,
        "push.key-file": str(key),
        "push.interval": f"{INTERVAL:g}s",
        "push.spool-dir": str(tmp_path / "spool"),
        "push.max-backoff": "300ms",
        "push.host": "itest",
        **overrides,
    }
    return [*COLLECTORS, *(f"--{flag}={value}" for flag, value in settings.items())]


def metric(exporter: ExporterProcess, name: str) -> float:
    """A sample's value; 0 for a labelled counter not served yet."""
    for line in exporter.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    if "{" in name:
        return 0.0
    raise AssertionError(f"{name} not served")


def timeouts(exporter: ExporterProcess) -> float:
    return metric(exporter, 'perfanalysis_exporter_push_requests_total{code="timeout"}')


def sample_times(lines: list[str]) -> list[float]:
    """The distinct sample times (seconds) of the node_load1 points received, in order."""
    return sorted(
        {int(line.rsplit(" ", 1)[1]) / 1e9 for line in lines if line.startswith("node_load1,")}
    )


def assert_no_tick_without_its_sample(
    exporter: ExporterProcess, ingest: Ingest, since: float
) -> None:
    """Once ingest takes everything again: each tick since ``since`` was sampled and delivered.
    Every request timed out by a sample's time was followed by that sample: one more sample than
    timeouts at least."""
    timed_out = int(timeouts(exporter))
    ingest.mode = "ok"
    wait_until(
        lambda: metric(exporter, "perfanalysis_exporter_push_points_queued") == 0,
        timeout=30,
        what="the spool to drain",
    )
    assert metric(exporter, "perfanalysis_exporter_push_samples_skipped_total") == 0
    with ingest.lock:
        stamps = [t for t in sample_times(ingest.lines) if t >= since]
    assert len(stamps) >= max(timed_out + 1, 4), (timed_out, stamps)
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert max(gaps) < 2 * INTERVAL, gaps


@pytest.mark.parametrize("mode", ["trickle", "hang"])
def test_an_answer_that_never_comes_costs_requests_not_samples(
    ingest: Ingest, tmp_path: Path, mode: str
) -> None:
    ingest.mode = mode
    began = time.time()
    exporter = ExporterProcess(
        tmp_path / "exporter",
        push_args(tmp_path, f"http://127.0.0.1:{ingest.port}", **{"push.timeout": "5s"}),
    ).start()
    try:
        wait_until(lambda: timeouts(exporter) >= 3, timeout=20, what="three requests timed out")
        health = exporter.request("GET", "/health").json()["push"]
        assert health["status"] == "retrying"
        assert "all the time left before a sample" in health["last_error"]
        assert_no_tick_without_its_sample(exporter, ingest, began)
        ingest.mode = mode  # SIGTERM while requests go unanswered: each ends by the next sample
        seen = timeouts(exporter)
        wait_until(lambda: timeouts(exporter) > seen, timeout=20, what="another timeout")
        stopping = time.monotonic()
        assert exporter.stop() == 0
        assert time.monotonic() - stopping < INTERVAL + 3
        assert "abandoning it" not in exporter.log_tail()
    finally:
        exporter.stop()


# -- a nameserver that never answers, for the exporter alone (a mount namespace of its own)


def _private_resolv_conf_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount --bind /etc/hostname /etc/resolv.conf"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


needs_mount_namespace = pytest.mark.skipif(
    not _private_resolv_conf_works(),
    reason="needs root and unshare to give the exporter a resolv.conf of its own",
)


class DeafNameserver:
    """UDP and TCP port 53 on a loopback address of its own, never answering."""

    def __init__(self) -> None:
        rng = random.Random()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket()
        for _ in range(20):
            self.address = f"127.53.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"
            try:
                self.udp.bind((self.address, 53))
                self.tcp.bind((self.address, 53))
            except OSError:
                self.close()
                self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.tcp = socket.socket()
                continue
            self.tcp.listen(16)
            return
        raise RuntimeError("no free loopback address for a nameserver")

    def close(self) -> None:
        for sock in (self.udp, self.tcp):
            with contextlib.suppress(OSError):
                sock.close()


class ExporterWithResolvConf(ExporterProcess):
    """Our exporter in a mount namespace where /etc/resolv.conf is ``resolv_conf``."""

    def __init__(self, base_dir: Path, args: list[str], resolv_conf: Path) -> None:
        super().__init__(base_dir, args)
        self.resolv_conf = resolv_conf

    def executable(self) -> str:
        unshare = shutil.which("unshare")
        assert unshare is not None
        return unshare

    def command(self) -> list[str]:
        script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
        python = super().executable()
        exporter = super().command()
        return [
            "unshare",
            "--mount",
            "sh",
            "-c",
            script,
            str(self.resolv_conf),
            python,
            *exporter[1:],
        ]


@needs_mount_namespace
def test_a_lookup_that_never_answers_costs_requests_not_samples_and_stops_promptly(
    tmp_path: Path,
) -> None:
    nameserver = DeafNameserver()
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(f"nameserver {nameserver.address}\noptions timeout:5 attempts:2\n")
    exporter = ExporterWithResolvConf(
        tmp_path / "exporter",
        push_args(tmp_path, "http://ingest.deadline.test:8087", **{"push.timeout": "2s"}),
        resolv_conf,
    )
    try:
        exporter.start()
        wait_until(lambda: timeouts(exporter) >= 3, timeout=20, what="three lookups timed out")
        health = exporter.request("GET", "/health").json()["push"]
        assert re.search(r"resolving ingest\.deadline\.test", health["last_error"]), health
        queued = metric(exporter, "perfanalysis_exporter_push_points_queued")
        wait_until(
            lambda: metric(exporter, "perfanalysis_exporter_push_points_queued") > queued,
            timeout=10,
            what="samples to go on",
        )
        assert metric(exporter, "perfanalysis_exporter_push_samples_skipped_total") == 0
        stopping = time.monotonic()
        assert exporter.stop() == 0
        assert time.monotonic() - stopping < 4  # the request ends by the next sample
        assert "abandoning it" not in exporter.log_tail()
    finally:
        exporter.stop()
        nameserver.close()
