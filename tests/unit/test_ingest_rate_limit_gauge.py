"""``perfanalysis_ingest_rate_limit_shared`` is exported only by an ingest with a redis-url (an
ingest without one has nothing to say there, and its 0 read as Redis failing), in one process
and across gunicorn workers (PROMETHEUS_MULTIPROC_DIR: livemin over the live workers)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from ingest.metrics import IngestMetrics, RateLimitSharedGauge
from ingest.ratelimit import Limit, make_limiter
from perfanalysis.alerting import platform

ROOT = Path(__file__).resolve().parents[2]
GAUGE = RateLimitSharedGauge.NAME


def closed_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def test_without_a_redis_url_the_gauge_is_not_exported() -> None:
    metrics = IngestMetrics()
    settings = {"redis_url": "", "limits_redis_prefix": "p:"}
    make_limiter(settings, metrics.rate_limit_shared.set).acquire("t", 1, Limit(10.0, 10))
    assert GAUGE not in metrics.exposition().decode()
    assert GAUGE == platform.RATE_LIMIT_SHARED


def test_with_a_redis_url_it_is_1_from_the_start_and_0_once_redis_fails() -> None:
    metrics = IngestMetrics()

    def shared() -> float | None:
        return metrics.registry.get_sample_value(GAUGE)

    settings = {"redis_url": closed_redis_url(), "limits_redis_prefix": "p:"}
    limiter = make_limiter(settings, metrics.rate_limit_shared.set)
    assert shared() == 1.0
    limiter.acquire("t", 1, Limit(10.0, 10))  # refused: per process
    assert shared() == 0.0
    assert f"# TYPE {GAUGE} gauge" in metrics.exposition().decode()


WORKER = """
import os, sys
from ingest.metrics import IngestMetrics
metrics = IngestMetrics()
if sys.argv[1] != "no-redis":
    metrics.rate_limit_shared.set(sys.argv[1] == "shared")
print(os.getpid())
"""
SCRAPE = """
import sys
from prometheus_client import multiprocess
from ingest.metrics import IngestMetrics, multiprocess_enabled
assert multiprocess_enabled()
for pid in sys.argv[1:]:
    multiprocess.mark_process_dead(int(pid))
sys.stdout.write(IngestMetrics().exposition().decode())
"""


def run(script: str, metrics_dir: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(GAUGE)]


def test_across_gunicorn_workers_the_gauge_is_the_least_of_the_live_workers_or_absent(
    tmp_path: Path,
) -> None:
    """Each worker is a process writing its own file, as under gunicorn; the arbiter marks an
    exited worker dead (ingest/main.py's child_exit), which takes its value out."""
    no_redis = tmp_path / "no-redis"
    no_redis.mkdir()
    run(WORKER, no_redis, "no-redis")
    run(WORKER, no_redis, "no-redis")
    scraped = run(SCRAPE, no_redis)
    assert "perfanalysis_ingest_batch_points" in scraped  # the workers' files were read
    assert samples(scraped) == []

    with_redis = tmp_path / "redis"
    with_redis.mkdir()
    shared = run(WORKER, with_redis, "shared").strip()
    alone = run(WORKER, with_redis, "alone").strip()
    assert samples(run(SCRAPE, with_redis)) == [f"{GAUGE} 0.0"]
    assert samples(run(SCRAPE, with_redis, alone)) == [f"{GAUGE} 1.0"]
    assert samples(run(SCRAPE, with_redis, shared)) == []
