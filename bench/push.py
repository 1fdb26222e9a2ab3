"""CPU time of one push cycle: sample the collectors, encode line protocol, gzip, append to the spool.

The exporter's default collectors plus the push path's own metrics on this machine's /proc (about
250 samples), in this process, timed with time.process_time (CPU of every thread, so the statfs
workers count too). The spool is a real one in a temporary directory, so each append writes and
fdatasyncs; the time waiting for the disk is not CPU and is not counted. Target
(docs/architecture.md): median <= 2 ms per cycle. The steps are also timed apart, to show where
the time goes.

Anchor: Debian's node_exporter, running the same collectors (perfanalysis.testing.anchor), its
CPU per gzip-compressed scrape read from /proc, in blocks interleaved with the push cycles so
that other load on the machine hits both alike. Most of a cycle is the kernel producing /proc's
files, which node_exporter pays too: the ratio says what a slower or faster machine does not.

    python -m bench.push [--cycles 500] [--json results.json] [--strict]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.exporter import Scraper
from bench.procstat import cpu_seconds
from exporter.app import build_registry
from exporter.config import load
from exporter.push.client import compress
from exporter.push.service import build_pusher
from perfanalysis.testing.anchor import COMMON_FLAGS, NODE_EXPORTER_ONLY
from perfanalysis.testing.servers import NodeExporter

TARGET_MS = 2.0
WARMUP = 20
BLOCKS = 10


def cpu_ms(action: Callable[[], Any], cycles: int, warmup: int = WARMUP) -> list[float]:
    for _ in range(warmup):
        action()
    timings = []
    for _ in range(cycles):
        start = time.process_time()
        action()
        timings.append((time.process_time() - start) * 1e3)
    return timings


class AnchorScraper:
    """Scrapes node_exporter as Prometheus does (bench.exporter's scraper: keep-alive, gzip) and
    counts node_exporter's CPU over the timed scrapes."""

    def __init__(self, server: NodeExporter) -> None:
        assert server.pid is not None
        self.pid = server.pid
        self.scraper = Scraper(server)
        self.scrapes = 0
        self.cpu_seconds = 0.0

    def scrape(self) -> None:
        self.scraper.scrape(record=False)

    def timed(self, scrapes: int) -> None:
        before = cpu_seconds([self.pid])
        for _ in range(scrapes):
            self.scrape()
        self.cpu_seconds += cpu_seconds([self.pid]) - before
        self.scrapes += scrapes


def interleaved(sample: Callable[[], Any], anchor: AnchorScraper, cycles: int) -> list[float]:
    """Push cycles' CPU in milliseconds, in BLOCKS blocks, each followed by as many scrapes of
    node_exporter."""
    for _ in range(WARMUP):
        sample()
        anchor.scrape()
    timings: list[float] = []
    for block in range(BLOCKS):
        size = cycles // BLOCKS + (1 if block < cycles % BLOCKS else 0)
        timings += cpu_ms(sample, size, warmup=0)
        anchor.timed(size)
        print(f"  {len(timings)}/{cycles} cycles: median {statistics.median(timings):.3f} ms; "
              f"node_exporter {anchor.cpu_seconds * 1e3 / anchor.scrapes:.3f} ms per scrape",
              file=sys.stderr, flush=True)  # fmt: skip
    return timings


def run(cycles: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-push-") as base:
        key = Path(base) / "key"
        key.write_text("pak_bench.secret\n")
        key.chmod(0o600)
        values = load(
            [
                "--push.url=http://127.0.0.1:9",  # never contacted: the bench only samples
                f"--push.key-file={key}",
                f"--push.spool-dir={Path(base) / 'spool'}",
            ],
            {},
        )
        registry = build_registry(values)
        pusher = build_pusher(values, registry)
        node_exporter = NodeExporter(
            Path(base) / "node_exporter", COMMON_FLAGS + NODE_EXPORTER_ONLY
        ).start()
        try:
            anchor = AnchorScraper(node_exporter)
            cycle_timings = interleaved(pusher.sample, anchor, cycles)
            families = registry.scrape().families
            encoded = pusher.encoder.encode(families, time.time_ns())
            body = "".join(encoded.lines).encode()
            payload = compress(body)
            points = len(encoded.lines)
            result = {
                "cycles": cycles,
                "points": points,
                "raw_bytes": len(body),
                "gzip_bytes": len(payload),
                "cycle_ms": statistics.median(cycle_timings),
                "cycle_mean_ms": statistics.fmean(cycle_timings),
                "node_exporter_scrape_ms": anchor.cpu_seconds * 1e3 / anchor.scrapes,
                "scrape_ms": statistics.median(cpu_ms(registry.scrape, cycles)),
                "encode_ms": statistics.median(
                    cpu_ms(lambda: pusher.encoder.encode(families, time.time_ns()), cycles)
                ),
                "gzip_ms": statistics.median(cpu_ms(lambda: compress(body), cycles)),
                "append_ms": statistics.median(
                    cpu_ms(lambda: pusher.spool.append(payload, points), cycles)
                ),
            }
        finally:
            pusher.stop(1.0)
            node_exporter.stop()
    result["push_only_ms"] = result["encode_ms"] + result["gzip_ms"] + result["append_ms"]
    result["anchor_ratio"] = result["cycle_mean_ms"] / result["node_exporter_scrape_ms"]
    return result


def report(result: dict[str, float]) -> bool:
    met = result["cycle_ms"] <= TARGET_MS
    print(
        f"push cycle, {int(result['points'])} points "
        f"({int(result['raw_bytes'])} bytes, {int(result['gzip_bytes'])} gzipped), "
        f"median CPU over {int(result['cycles'])} cycles"
    )
    for label, key in [
        ("whole cycle", "cycle_ms"),
        ("  sample (collectors)", "scrape_ms"),
        ("  encode", "encode_ms"),
        ("  gzip", "gzip_ms"),
        ("  spool append", "append_ms"),
    ]:
        print(f"{label:24}{result[key]:>8.3f} ms")
    print(f"node_exporter, same collectors, one gzip scrape (mean CPU): "
          f"{result['node_exporter_scrape_ms']:.3f} ms; "
          f"push cycle / node_exporter scrape (means): {result['anchor_ratio']:.2f}x")  # fmt: skip
    print(f"target <= {TARGET_MS} ms per cycle: {'met' if met else 'MISSED'}")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=500, help="timed cycles of each step")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    if args.cycles < 10:
        parser.error("--cycles must be at least 10")
    result = run(args.cycles)
    met = report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if met or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
